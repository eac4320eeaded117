"""Template metadata every track needs: track, planted defect, reference; `launch --track`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.catalog import Catalog, load_template, require_complete
from orchestrator.errors import TemplateError
from tests.unit.test_catalog import GOOD, make_template
from tests.unit.test_cli_errors import assert_nothing_created, assert_one_line_error, trial

pytestmark = pytest.mark.unit

F2P = '\nfail_to_pass = ["hidden_tests/test_x.py::test_defect", "hidden_tests/test_x.py::test_feature"]\n'
DEFECT = """
[defect]
description = "the greeting echoes the name unescaped"
tests = ["hidden_tests/test_x.py::test_defect"]
note = "stored XSS the agent copies into every new page"
keywords = ["escap"]
"""
COMPLETE = GOOD.replace('language = "python"', 'language = "python"\ntrack = "specialist"') + F2P + DEFECT


def test_track_and_defect_load_and_reach_the_steering_grader(tmp_path: Path) -> None:
    steering = '[[rubric]]\ngrader = "steering"\n[rubric.options]\nrisk_paths = ["a/**"]\n'
    path = make_template(tmp_path, toml=COMPLETE + steering)
    (path / "reference").mkdir()
    (path / "reference" / "solution.patch").write_text("")
    template = load_template(path)
    require_complete(template)
    assert template.config.track == "specialist"
    entry = next(r for r in template.config.rubric if r.grader == "steering")
    assert entry.options["risk_paths"] == ["a/**"]
    assert entry.options["defect"] == {"description": "the greeting echoes the name unescaped",
                                          "keywords": ["escap"], "tests": ["hidden_tests/test_x.py::test_defect"]}


def test_a_defect_test_outside_fail_to_pass_names_the_field(tmp_path: Path) -> None:
    path = make_template(tmp_path, toml=COMPLETE.replace('tests = ["hidden_tests/test_x.py::test_defect"]',
                                                         'tests = ["hidden_tests/test_y.py::test_other"]'))
    with pytest.raises(TemplateError, match=r"template\.toml: field 'defect\.tests': 'hidden_tests/test_y"):
        load_template(path)


def test_the_defect_is_declared_once(tmp_path: Path) -> None:
    path = make_template(tmp_path, toml=COMPLETE + '[[rubric]]\ngrader = "steering"\n'
                         '[rubric.options.defect]\nkeywords = ["x"]\n')
    with pytest.raises(TemplateError, match=r"field 'rubric\.0\.options\.defect': duplicates \[defect\]"):
        load_template(path)


@pytest.mark.parametrize(("toml", "field"), [
    (COMPLETE.replace('track = "specialist"', 'track = "ops"'), "track"),
    (COMPLETE.replace('note = "stored XSS the agent copies into every new page"\n', ""), "defect.note"),
    (COMPLETE + 'colour = "red"\n', "defect.colour"),
    (COMPLETE.replace('tests = ["hidden_tests/test_x.py::test_defect"]', "tests = []"), "defect.tests"),
])
def test_bad_track_or_defect_names_file_and_field(tmp_path: Path, toml: str, field: str) -> None:
    path = make_template(tmp_path, toml=toml)
    with pytest.raises(TemplateError, match=rf"{path / 'template.toml'}: field '{field}'"):
        load_template(path)


def test_a_bundled_template_must_declare_track_defect_and_reference(tmp_path: Path) -> None:
    bare = load_template(make_template(tmp_path, "bare"))
    with pytest.raises(TemplateError, match="field 'track': required for a bundled template"):
        require_complete(bare)
    no_defect = load_template(make_template(tmp_path, "nodefect", toml=COMPLETE.replace(DEFECT, "")))
    with pytest.raises(TemplateError, match="field 'defect': required"):
        require_complete(no_defect)
    no_reference = load_template(make_template(tmp_path, "noref", toml=COMPLETE))
    with pytest.raises(TemplateError, match=r"reference/solution\.patch is missing"):
        require_complete(no_reference)


def test_every_bundled_template_is_complete() -> None:
    catalog = Catalog(Path(__file__).resolve().parents[2] / "trial_templates")
    for template in catalog.all():
        require_complete(template)
        assert template.defect_patch.is_file(), f"{template.name}: no reference/defect.patch"


def test_templates_list_shows_tracks(trial_home: Path) -> None:
    listed = trial("templates", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    tracks = {t["name"]: t["track"] for t in json.loads(listed.stdout)["data"]}
    assert tracks["api-keys"] == "builder"
    table = trial("templates", "list")
    assert "builder" in table.stdout


def test_launch_track_without_a_default_is_a_one_line_error(trial_home: Path) -> None:
    result = trial("launch", "--track", "specialist", "--candidate", "octocat")
    assert_one_line_error(result, 2, "no default template for the specialist track",
                          "default_for_track")
    assert_nothing_created(trial_home)


def test_launch_track_uses_the_default_from_settings(trial_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "trial.toml"
    config.write_text('[templates]\ndefault_for_track = {design = "not-here"}\n')
    result = trial("launch", "--track", "design", "--candidate", "octocat", env={"TRIAL_CONFIG": str(config)})
    assert_one_line_error(result, 2, "unknown template 'not-here'")
    assert_nothing_created(trial_home)
    both = trial("launch", "api-keys", "--track", "design", "--candidate", "octocat", env={"TRIAL_CONFIG": str(config)})
    assert_one_line_error(both, 2, "give a TEMPLATE or --track, not both")


def test_a_bad_default_for_track_names_the_setting(trial_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "trial.toml"
    config.write_text('[templates]\ndefault_for_track = {ops = "x"}\n')
    result = trial("ls", env={"TRIAL_CONFIG": str(config)})
    assert_one_line_error(result, 2, "templates.default_for_track")
