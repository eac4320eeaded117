#!/usr/bin/env bash
# One whole trial on the embedded defaults (local forge, no GitHub, no LLM key): the real
# Claude Code in the sandbox, answered by the scripted model through the gateway; a scripted
# candidate specifies, rejects a flawed agent edit and says why, checks the tests and pushes
# from inside the sandbox; then collect → grade → teardown. The session (both sides) is
# trial_templates/<template>/demo/session.toml. A grading failure, or a report whose spec
# quality, steering or provenance was skipped, fails the demo. State lives in ./.demo-home
# unless TRIAL_HOME says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export TRIAL_HOME="${TRIAL_HOME:-$PWD/.demo-home}"
export TRIAL_SANDBOX_BASE_IMAGE="${TRIAL_SANDBOX_BASE_IMAGE:-${TRIAL_BASE_IMAGE:-trial-base:bookworm}}"
TEMPLATE="${DEMO_TEMPLATE:-api-keys}"
CANDIDATE="${DEMO_CANDIDATE:-demo-candidate}"
SESSION="${DEMO_SESSION:-trial_templates/$TEMPLATE/demo/session.toml}"
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin)['data']; print(eval('d' + sys.argv[1]))" "$1"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the scripted model's session: $SESSION"
# The scripted agent writes the reference solution: it is put beside a copy of the session
# (content_file paths are relative to the session), never kept in the repo twice.
session_dir="$TRIAL_HOME/demo-session"
rm -rf "$session_dir" && mkdir -p "$session_dir/solution"
cp "$SESSION" "$session_dir/session.toml"
cp -r "trial_templates/$TEMPLATE/starter/." "$session_dir/solution/"
# A repository of its own, so that git apply is not confused by an enclosing one.
git -C "$session_dir/solution" init -q
git -C "$session_dir/solution" apply --whitespace=nowarn "$repo/trial_templates/$TEMPLATE/reference/solution.patch"
grep -c '^\[\[step\]\]' "$session_dir/session.toml" | sed 's/$/ model steps/'
grep -c '^\[\[candidate\]\]' "$session_dir/session.toml" | sed 's/$/ candidate actions/'

step "templates"
trial templates list

step "launch $TEMPLATE for $CANDIDATE with Claude Code on the scripted model (first time: builds the image)"
launch_json=$(trial launch "$TEMPLATE" --candidate "$CANDIDATE" --hours 2 --agent claude-code \
  --provider "script:$session_dir/session.toml" --json)
id=$(echo "$launch_json" | json_field "['trial']['id']")
# On a failure the trial is left for inspection; say how to look at it and how to clean up.
trap 'echo "demo failed: inspect with \`trial status $id\` (TRIAL_HOME=$TRIAL_HOME); clean up with \`trial teardown $id --yes && trial serve --stop\`" >&2' ERR
echo "$launch_json" | json_field "['ssh_command']" | sed 's/^/ssh: /'
trial status "$id"

step "the candidate works in the sandbox: prompts Claude Code, rejects a flawed edit, runs the tests, pushes"
trial candidate-play "$id" "$session_dir/session.toml"

step "collect: freeze the sandbox, revoke access, gather the evidence bundle"
trial collect "$id"

step "grade: hidden tests in a fresh container, the session's judgement, report written"
trial grade "$id"

step "teardown: containers, volumes and tokens removed, repo archived (evidence kept)"
trial teardown "$id" --yes
trial serve --stop >/dev/null
trap - ERR

report="$TRIAL_HOME/evidence/$id/report.md"
step "done"
echo "report: $report"
echo "html:   $TRIAL_HOME/evidence/$id/report.html"
# The demo exists to show these three: skipped (or failed) is a broken demo, not a quiet one.
python3 - "$TRIAL_HOME/evidence/$id/report.json" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
by_name = {r["grader"]: r for r in report["graders"]}
bad = []
for name in ("spec_quality", "steering", "provenance"):
    result = by_name.get(name, {"status": "missing"})
    print(f"  {name}: {result['status']} — {result.get('summary', '')}")
    if result["status"] != "ok":
        bad.append(f"{name} is {result['status']}")
if bad:
    sys.exit("demo: " + "; ".join(bad))
PY
