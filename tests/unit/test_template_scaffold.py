"""`trial templates new`: what the scaffold writes, without Docker (the Docker proof is in
tests/integration/test_template_scaffold.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.catalog import load_template, require_complete
from orchestrator.errors import TemplateError
from orchestrator.scaffold import LANGUAGES, make_patch, scaffold
from tests.unit.test_cli_errors import assert_one_line_error, trial

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_scaffold_is_complete_and_its_patches_apply(tmp_path: Path, language: str) -> None:
    path = scaffold(tmp_path, "demo-" + language, language, "builder")
    template = load_template(path)
    require_complete(template)
    assert template.config.track == "builder"
    assert template.config.language == language
    assert template.config.tests.shape == "service"
    assert template.config.defect is not None
    assert set(template.config.defect.tests) <= set(template.config.tests.fail_to_pass)
    assert "REPLACE" in (path / "Dockerfile").read_text() and "ARG BASE_IMAGE" in (path / "Dockerfile").read_text()
    assert "REPLACE" in (path / "brief.md").read_text()
    assert not list(path.rglob("*.tmpl"))
    work = tmp_path / "work"
    shutil.copytree(template.starter_dir, work)
    for patch in (template.reference_patch, template.defect_patch):
        done = subprocess.run(["git", "apply", str(patch)], cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    hidden = (path / "hidden_tests" / "test_service.py").read_text()
    for test_id in (*template.config.tests.fail_to_pass, *template.config.tests.pass_to_pass):
        assert f"def {test_id.rsplit('::', 1)[1]}(" in hidden


def test_bad_names_and_existing_folders_leave_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="is not a template name"):
        scaffold(tmp_path, "Bad_Name", "go", "builder")
    scaffold(tmp_path, "taken", "go", "builder")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(TemplateError, match="already exists"):
        scaffold(tmp_path, "taken", "python", "builder")
    with pytest.raises(TemplateError, match="no scaffold for language 'cobol'"):
        scaffold(tmp_path, "other", "cobol", "builder")
    with pytest.raises(TemplateError, match="'ops' is not a track"):
        scaffold(tmp_path, "other", "go", "ops")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_make_patch_round_trips_new_changed_and_deleted_files(tmp_path: Path) -> None:
    old = {"a.txt": "one\ntwo\n", "gone.txt": "bye\n", "tail.txt": "no newline"}
    new = {"a.txt": "one\n2\n", "b/new.txt": "hello\n", "tail.txt": "no newline either"}
    for path, text in old.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    (tmp_path / "p.patch").write_text(make_patch(old, new))
    done = subprocess.run(["git", "apply", "p.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert {p: (tmp_path / p).read_text() for p in new} == new
    assert not (tmp_path / "gone.txt").exists()


def test_templates_new_cli_errors_are_one_line(trial_home: Path, tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    result = trial("templates", "new", "exists", "--language", "go", "--track", "builder", "--into", str(tmp_path))
    assert_one_line_error(result, 2, "already exists")
    made = trial("templates", "new", "fresh", "--language", "typescript", "--track", "design", "--into",
                 str(tmp_path), "--json")
    assert made.returncode == 0, made.stderr
    assert load_template(tmp_path / "fresh").config.track == "design"
