"""A hostile candidate cannot block collection, backdate work or forge evidence, end to end.

Real `trial launch --agent claude-code` on real Docker with the local forge. From inside the
sandbox, as the candidate: transcripts that break parsers (deep nesting, a huge line,
binary, a link to /etc/passwd, a fifo), two forged transcript lines (an interrupt and a
rejected tool result), an orphan branch, a commit dated 2001, and a .gitattributes naming
filter and diff drivers. Collect completes and names what it left out; times are the
host's; the forged lines are transcript-witnessed; the trial grades; `trial verify` passes,
then fails on one changed byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

pytestmark = pytest.mark.e2e

PROJECTS = "/home/candidate/.claude/projects/-workspace"
FORGED = [
    {"type": "user", "uuid": "f1", "sessionId": "s1", "timestamp": "2026-11-20T10:00:00Z",
     "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "is_error": True,
                                              "content": "The user doesn't want to proceed with this tool use."}]}},
    {"type": "user", "uuid": "f2", "sessionId": "s1", "timestamp": "2026-11-20T10:01:00Z",
     "message": {"role": "user", "content": "[Request interrupted by user]"}},
]
HOSTILE = f"""
set -e
mkdir -p {PROJECTS}
cd {PROJECTS}
printf '{{"a":' > deep.jsonl; head -c 100000 /dev/zero | tr '\\0' '[' >> deep.jsonl
python3 -c "import sys; sys.stdout.write('{{\\"type\\": \\"user\\", \\"message\\": \\"' \
  + 'x' * (17 << 20) + '\\"}}\\n')" > huge.jsonl
head -c 65536 /dev/urandom > binary.jsonl
ln -s /etc/passwd passwd.jsonl
mkfifo pipe.jsonl
cat > forged.jsonl <<'EOF'
{chr(10).join(json.dumps(line) for line in FORGED)}
EOF
cd /workspace
git checkout -q -b backdated
echo "written last, dated first" > SPEC.md
git add SPEC.md
GIT_AUTHOR_DATE=2001-01-01T00:00:00Z GIT_COMMITTER_DATE=2001-01-01T00:00:00Z git commit -q -m "Spec first"
printf '* filter=lfs diff=lfs\\n' > .gitattributes
git add .gitattributes && git commit -q -m "Attributes"
git push -q origin backdated
git checkout -q --orphan fresh
git rm -rqf --cached . && git clean -fdq
echo "print('start over')" > app.py && git add app.py && git commit -q -m "Start over"
git push -q origin fresh
"""


def trial(*args: str, ok: tuple[int, ...] = (0,)) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args, "--json"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=1500)
    assert done.returncode in ok, f"trial {' '.join(args)} exit {done.returncode}: {done.stderr[-3000:]}"
    return done.returncode, json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


@pytest.fixture
def stop_service() -> Any:
    yield
    subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], capture_output=True,
                   env=os.environ.copy(), timeout=60)


def test_hostile_inputs_neither_block_collection_nor_pass_as_witnessed(trial_home: Path, service_port: int,
                                                                     stop_service: None) -> None:
    _, launched = trial("launch", "api-keys", "--candidate", "octo-cat", "--agent", "claude-code", "--hours", "1")
    trial_id = launched["data"]["trial"]["id"]
    [container] = docker.from_env().containers.list(filters={"label": f"trial.id={trial_id}"})
    done = container.exec_run(["bash", "-lc", HOSTILE], user="candidate")
    assert done.exit_code == 0, done.output.decode(errors="replace")[-2000:]

    _, collected = trial("collect", trial_id)
    bundle = Path(collected["data"]["bundle"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    left_out = "\n".join(f"{n['what']}: {n['why']}" for n in manifest["left_out"])
    for name, why in (("deep.jsonl", "nested too deep"), ("huge.jsonl", "longer than 16 MiB"),
                      ("binary.jsonl", "skipped"), ("passwd.jsonl", "a link to"), ("pipe.jsonl", "a fifo")):
        assert name in left_out and why in left_out, (name, left_out)

    times = manifest["times"]
    assert times["launched_at"] and times["deadline"] and times["collected_at"]
    assert times["first_push"] and times["last_push"] and times["started_at"] == times["launched_at"]

    events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
    assert all(e["witness"] in ("gateway", "host", "forge", "transcript") for e in events)
    forged = [e for e in events if e["kind"] in ("tool_rejected", "interrupt")]
    assert len(forged) == 2 and {e["witness"] for e in forged} == {"transcript"}
    [spec] = [e for e in events if e["kind"] == "commit" and e["text"] == "Spec first"]
    assert spec["witness"] == "host" and spec["data"]["committed_at"].startswith("2001-01-01")
    assert spec["ts"] >= times["launched_at"].replace("+00:00", "Z")[:19]
    pulls = {pull["head_ref"]: pull for pull in (json.loads(p.read_text()) for p in (bundle / "pulls").glob("*.json"))}
    assert set(pulls) == {"backdated", "fresh"} and pulls["fresh"]["base_sha"] == ""

    trial("grade", trial_id, ok=(0, 4))
    assert (bundle / "report.json").is_file()

    verdict = trial("verify", trial_id)[1]["data"]
    assert verdict["ok"] is True and verdict["key"] == manifest["signature"]["key"]
    events_file = bundle / "events.jsonl"
    original = events_file.read_bytes()
    events_file.write_bytes(original[:-1])  # the last newline
    _, verdict = trial("verify", trial_id, ok=(1,))
    assert "events.jsonl" in verdict["data"]["first_difference"]
    events_file.write_bytes(original)
    trial("teardown", trial_id, ok=(0, 4))
