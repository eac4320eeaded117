"""`trial templates check --all` on real Docker (part of `make test`): every bundled template
proves itself: its image builds offline, the starter's tests pass, the hidden tests fail on the
starter and pass with the reference, and the planted defect's tests fail on the starter and on
the reference with reference/defect.patch (the fix taken back out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.docker


@pytest.mark.timeout(3600)  # every template builds its image and runs its tests three times
def test_every_bundled_template_proves_itself() -> None:
    env = {**os.environ, "TRIAL_TEMPLATES_DIR": str(REPO_ROOT / "trial_templates")}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "templates", "check", "--all", "--json"],
                          capture_output=True, text=True, env=env, timeout=3600)
    results = {r["template"]: r for r in json.loads(done.stdout)["data"]}
    assert {"api-keys", "systems"} <= set(results)
    failed = {name: [c for c in r["checks"] if not c["ok"]] for name, r in results.items() if not r["ok"]}
    assert not failed, failed
    assert done.returncode == 0, done.stderr[-2000:]
    for name, result in results.items():
        names = {c["name"] for c in result["checks"]}
        assert {"image builds", "hidden tests fail on the starter", "hidden tests pass with the reference"} <= names
        assert "defect's tests fail on the starter" in names, name
        assert "defect's tests fail on the reference with the defect put back" in names, name


def test_check_needs_a_name_or_all() -> None:
    for args in ((), ("api-keys", "--all")):
        done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "templates", "check", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2
        assert "check needs a template NAME or --all" in done.stderr
