"""The design round's question channel end to end on the local forge, real Docker, real git: the
candidate asks from inside the sandbox (`trial-ask`, through the host service with the trial
token), the reviewer answers with `trial answer`, the answer reaches the sandbox (`trial-answers`),
both are in the bundle and the timeline (host-witnessed), and the requirements grader cites them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO_ROOT
from tests.e2e.test_lifecycle import stop_service, trial  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.e2e
TEMPLATE = REPO_ROOT / "trial_templates" / "design-round"
QUESTION = "Which channels do we support at launch, and is SMS planned?"
ANSWER = "Email and push at launch; SMS next quarter."


def in_sandbox(container: docker.models.containers.Container, script: str) -> tuple[int, str]:
    done = container.exec_run(["bash", "-lc", script], user="candidate")
    return done.exit_code, done.output.decode(errors="replace")


def test_ask_from_the_sandbox_answer_on_the_host_grade_the_gathering(trial_home: Path, service_port: int,
                                                                      stop_service: None) -> None:  # noqa: F811
    launched = trial("launch", "design-round", "--candidate", "octo-cat", "--agent", "none", "--hours", "1")["data"]
    trial_id = launched["trial"]["id"]
    try:
        [container] = docker.from_env().containers.list(filters={"label": f"trial.id={trial_id}"})

        # The reviewer's questions and answers are nowhere the candidate can read.
        code, output = in_sandbox(container, "find / -xdev -name questions.toml 2>/dev/null; "
                                             "git -C /workspace log --all --format=%H -- reviewer | head -1")
        assert output.strip() == "", output
        code, output = in_sandbox(container, f"trial-ask {json.dumps(QUESTION)}")
        assert code == 0 and "asked as question 1" in output, output
        # A token for another trial (or none) is refused by the service, whatever the sandbox sends.
        code, output = in_sandbox(container, "TRIAL_TOKEN=trl_forged trial-ask 'Forged?'")
        assert code != 0 and "refused (401)" in output, output

        answered = trial("answer", f"{trial_id}:1", ANSWER)["data"]
        assert answered["question"] == 1 and answered["comment_url"]
        code, output = in_sandbox(container, "trial-answers")
        assert code == 0 and QUESTION in output and ANSWER in output, output
        # `trial-ask --wait` in the background of the sandbox, answered from the host while it waits.
        waiting = ("trial-ask --wait 'Are quiet hours in the local time zone?' > /tmp/wait.out 2>&1; "
                   "echo rc=\\$? >> /tmp/wait.out")
        code, output = in_sandbox(container, f"setsid nohup sh -c \"{waiting}\" >/dev/null 2>&1 &")
        assert code == 0, output
        for _ in range(100):
            kinds = [r["kind"] for r in trial("questions", trial_id)["data"]["records"]]
            if kinds == ["question", "answer", "question"]:
                break
            time.sleep(0.2)
        trial("answer", trial_id, "Their profile's time zone.")
        for _ in range(60):
            code, output = in_sandbox(container, "cat /tmp/wait.out")
            if "rc=" in output:
                break
            time.sleep(1)
        assert "rc=0" in output and "A2" in output and "Their profile's time zone." in output, output

        # Building starts after the questions: the reference pushed from the sandbox.
        trial("candidate-push", trial_id, "--patch", str(TEMPLATE / "reference" / "solution.patch"),
              "--branch", "feature/preferences", "--message", "Design and decision prototype")

        collected = trial("collect", trial_id)["data"]
        bundle = Path(collected["bundle"])
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert "questions.jsonl" in manifest["files"]
        events = [json.loads(line) for line in (bundle / "events.jsonl").read_text().splitlines()]
        asked = [(i, e) for i, e in enumerate(events) if e["kind"] in ("question", "answer")]
        assert [(e["kind"], e["witness"]) for _, e in asked] == [("question", "host"), ("answer", "host"),
                                                                 ("question", "host"), ("answer", "host")]
        assert asked[0][1]["text"] == QUESTION and asked[1][1]["text"] == ANSWER

        graded = trial("grade", trial_id, check=False)
        assert graded.get("ok"), graded
        [requirements] = [r for r in graded["data"]["report"]["graders"] if r["grader"] == "requirements"]
        assert requirements["status"] == "ok" and requirements["details"]["trusts"]
        by_id = {c["id"]: c for c in requirements["criteria"]}
        assert by_id["unknown.channels"]["score"] == by_id["unknown.channels"]["max"]
        assert by_id["unknown.time_zones"]["score"] == by_id["unknown.time_zones"]["max"]
        assert f"event:{asked[0][0]}" in by_id["unknown.channels"]["evidence_refs"]
        assert f"event:{asked[1][0]}" in by_id["unknown.channels"]["evidence_refs"]
        assert any(ref.startswith("comment:") for ref in by_id["unknown.channels"]["evidence_refs"])

    finally:
        trial("teardown", trial_id, "--delete-repo", "--yes", check=False)
