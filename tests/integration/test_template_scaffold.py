"""`trial templates new` on real Docker: each language's scaffold passes `trial templates check`
as it is, and a defect patch that does not put the defect back is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def trial(templates: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRIAL_TEMPLATES_DIR": str(templates)}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def check(templates: Path, name: str) -> tuple[int, dict[str, bool]]:
    done = trial(templates, "templates", "check", name, "--json")
    data = json.loads(done.stdout)["data"]
    return done.returncode, {c["name"]: c["ok"] for c in data["checks"]}


@pytest.mark.parametrize("language", ["python", "go", "typescript"])
def test_a_scaffold_passes_the_check_as_it_is(tmp_path: Path, language: str) -> None:
    made = trial(tmp_path, "templates", "new", f"new-{language}", "--language", language, "--track", "builder")
    assert made.returncode == 0, made.stderr
    code, checks = check(tmp_path, f"new-{language}")
    assert code == 0, checks
    assert checks["hidden tests fail on the starter"] and checks["hidden tests pass with the reference"]
    assert checks["defect's tests fail on the starter"]
    assert checks["defect's tests fail on the reference with the defect put back"]
    assert all(checks.values())


def test_a_defect_patch_that_does_not_put_the_defect_back_fails_the_check(tmp_path: Path) -> None:
    made = trial(tmp_path, "templates", "new", "lazy", "--language", "python", "--track", "builder")
    assert made.returncode == 0, made.stderr
    # Applies cleanly to the reference, but only touches the README: the fix stays in.
    (tmp_path / "lazy" / "reference" / "defect.patch").write_text(
        "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1,3 +1,3 @@\n"
        "-# greeter\n+# greeter (defect back?)\n \n A tiny HTTP service (Python standard library only).\n")
    code, checks = check(tmp_path, "lazy")
    assert code == 1
    assert checks["hidden tests pass with the reference"] is True
    assert checks["defect's tests fail on the reference with the defect put back"] is False
