"""`trial templates check` on real Docker: broken templates are caught. (That every bundled template,
api-keys included, passes is proven once by `check --all` in test_template_check_all.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.docker


def check(name: str, templates: Path | None = None) -> tuple[int, dict[str, bool]]:
    env = os.environ.copy()
    if templates is not None:
        env["TRIAL_TEMPLATES_DIR"] = str(templates)
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "templates", "check", name, "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    data = json.loads(done.stdout)["data"]
    return done.returncode, {c["name"]: c["ok"] for c in data["checks"]}


def test_a_reference_that_does_not_solve_the_brief_fails_the_check(tmp_path: Path) -> None:
    copy = tmp_path / "tpl" / "api-keys"
    shutil.copytree(REPO_ROOT / "trial_templates" / "api-keys", copy)
    # A real patch that applies but solves nothing: a README line.
    work = tmp_path / "work"
    shutil.copytree(copy / "starter", work)
    for argv in (["git", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "starter"]):
        subprocess.run(argv, cwd=work, check=True)
    with (work / "README.md").open("a") as readme:
        readme.write("\nDone.\n")
    patch = subprocess.run(["git", "diff"], cwd=work, check=True, capture_output=True, text=True).stdout
    (copy / "reference" / "solution.patch").write_text(patch)
    code, checks = check("api-keys", tmp_path / "tpl")
    assert code == 1
    assert checks["hidden tests fail on the starter"] is True
    assert checks["hidden tests pass with the reference"] is False


def test_an_image_that_does_not_build_is_reported_not_raised(tmp_path: Path) -> None:
    copy = tmp_path / "tpl" / "broken"
    shutil.copytree(REPO_ROOT / "trial_templates" / "api-keys", copy)
    (copy / "Dockerfile").write_text("ARG BASE_IMAGE=debian:bookworm\nFROM ${BASE_IMAGE}\nRUN exit 7\n")
    code, checks = check("broken", tmp_path / "tpl")
    assert code == 1
    assert checks == {"template.toml": True, "image builds": False}
