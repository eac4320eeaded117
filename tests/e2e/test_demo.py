"""`make demo` end to end: scripts/demo.sh itself, on real Docker, with the real Claude Code.

The demo launches api-keys with Claude Code answered by the scripted model, plays the
scripted candidate (acceptance test first, a spec naming files, constraints and the planted
defect, a rejected flawed hash, the defect's tests, a push), collects and grades. Its report
must show spec quality, steering and provenance graded (not skipped) with the evidence they
cite, and the session must have gone exactly by its script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e
SESSION = REPO_ROOT / "trial_templates" / "api-keys" / "demo" / "session.toml"


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_demo_shows_spec_quality_steering_and_provenance_with_evidence(trial_home: Path,
                                                                          service_port: int) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    try:
        done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "demo.sh")], env=env, capture_output=True,
                              text=True, timeout=1800, check=False)
    finally:
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], env=env,
                       capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"demo failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"

    bundles = [p for p in (trial_home / "evidence").iterdir() if (p / "report.json").is_file()]
    assert len(bundles) == 1
    bundle = bundles[0]
    report = json.loads((bundle / "report.json").read_text())
    by_name = {r["grader"]: r for r in report["graders"]}
    for name in ("spec_quality", "steering", "provenance"):
        result = by_name[name]
        assert result["status"] == "ok", f"{name}: {result['status']} — {result.get('summary')}"
        cited = [ref for criterion in result["criteria"] for ref in criterion.get("evidence_refs", [])]
        assert cited, f"{name} cites no evidence"
    assert by_name["hidden_tests"]["status"] == "ok"

    # The session went by its script: every conversation step answered once, in order, and no
    # request was answered with a script problem.
    steps = [step.get("id") for step in tomllib.loads(SESSION.read_text())["step"]]
    records = _records(bundle / "gateway.jsonl")
    scripted = [r["script"] for r in records if "script" in r]
    assert not [s for s in scripted if s["status"] in ("mismatch", "exhausted", "invalid", "error")]
    assert [s["step_id"] for s in scripted if s["status"] == "matched"] == steps
    assert all(r["cost_usd"] > 0 for r in records if r["route"] == "/anthropic/v1/messages")

    # The story the report is about is in the evidence: the flawed edit, and the candidate's no.
    events = _records(bundle / "events.jsonl")
    flawed = [e for e in events if e["kind"] == "tool_call" and e["data"].get("tool") == "Write"
              and "hashlib.sha256(key.encode" in json.dumps(e["data"].get("input"))]
    rejection = [e for e in events if e["kind"] == "user_prompt" and "don't store a bare SHA-256" in e["text"]]
    assert flawed and rejection and flawed[0]["ts"] <= rejection[0]["ts"]
