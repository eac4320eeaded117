"""A fixed subset of the calibration corpus, played end to end, must come out in its known order.

Three sessions of calibration/ (the whole corpus runs in `make calibrate`): the spec-first,
careful candidate (s01), the keyword-stuffed careless one (s07) and the test-weakening one
(s10), each launched on real Docker with the real Claude Code on the scripted model, played
as the candidate inside the sandbox, collected and graded. The careful session must score
above both on the total, on spec quality and on steering: rubric words and skipped tests must
not buy what careful work earns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from calibration.corpus import Played, load_manifest, play, tau_against_order

SUBSET = ("s01_spec_first_careful", "s07_keyword_stuffed", "s10_test_weakening")


@pytest.fixture(scope="module")
def played(calibration_home: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Played]]:
    from orchestrator.config import load_settings
    from orchestrator.service import daemon
    from orchestrator.services import Services

    services = Services.from_settings(load_settings())
    work = tmp_path_factory.mktemp("calibration")
    entries = {e.name: e for e in load_manifest()}
    try:
        yield {name: play(services, entries[name], work / name, lambda _: None) for name in SUBSET}
    finally:
        daemon.stop(services.settings)
        services.close()


@pytest.fixture(scope="module")
def calibration_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module-wide state dir and service port (the function-scoped trial_home cannot serve a module fixture)."""
    import os

    from tests.conftest import BASE_IMAGE, REPO_ROOT, free_port

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("TRIAL_") and name not in ("TRIAL_BASE_IMAGE", "TRIAL_AGENT_CACHE"):
            del os.environ[name]
    os.environ.update({"TRIAL_HOME": str(tmp_path_factory.mktemp("trial-home")),
                       "TRIAL_TEMPLATES_DIR": str(REPO_ROOT / "trial_templates"),
                       "TRIAL_SANDBOX_BASE_IMAGE": BASE_IMAGE, "TRIAL_SERVICE_PORT": str(free_port()),
                       "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"})
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.e2e
@pytest.mark.docker
def test_each_session_went_by_its_script_and_was_graded(played: dict[str, Played]) -> None:
    for name, result in played.items():
        records = [json.loads(line) for line in (result.bundle / "gateway.jsonl").read_text().splitlines() if line]
        problems = [r["script"] for r in records if "script" in r
                    and r["script"].get("status") in ("mismatch", "exhausted", "invalid", "error")]
        assert not problems, f"{name} went off its script: {problems[:2]}"
        assert result.scores["total"] is not None, f"{name} has no total"
        assert result.scores["hidden_tests"] is not None, f"{name}: hidden tests not graded"


@pytest.mark.e2e
@pytest.mark.docker
@pytest.mark.parametrize("grader", ["total", "spec_quality", "steering"])
def test_careful_work_outscores_rubric_words_and_skipped_tests(played: dict[str, Played], grader: str) -> None:
    scores = {name: result.scores.get(grader) for name, result in played.items()}
    careful = scores["s01_spec_first_careful"] or 0.0
    for other in ("s07_keyword_stuffed", "s10_test_weakening"):
        assert careful > (scores[other] or 0.0), f"{grader}: {other} {scores[other]} >= careful {careful} ({scores})"
    assert tau_against_order(list(played.values()), grader) is not None


@pytest.mark.unit
def test_kendall_tau_b_against_reference_values() -> None:
    from calibration.corpus import kendall_tau_b

    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties on both sides (values checked against scipy.stats.kendalltau, variant b).
    assert kendall_tau_b([1, 2, 2, 3], [1, 3, 2, 2]) == pytest.approx(0.4)
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None


@pytest.mark.unit
def test_every_session_loads_and_every_variant_still_applies_to_the_reference(tmp_path: Path) -> None:
    """The corpus does not rot silently: a session off the formats, or a variant whose text the
    reference solution no longer has, fails here rather than in a half-played `make calibrate`."""
    from calibration.corpus import prepare
    from orchestrator.candidate_script import load_actions
    from orchestrator.gateway.scripted import load_script

    entries = load_manifest()
    assert len(entries) >= 12 and sum(e.agent == "codex" for e in entries) >= 3
    held = [e for e in entries if e.held_out]
    # A third held out, spanning the order from the top to the bottom group (ties allowed: tau-b
    # handles them, and fifteen sessions cannot each have a rank of their own on this scale).
    assert len(held) * 3 >= len(entries)
    assert min(e.rank for e in held) <= 2 and max(e.rank for e in held) >= 9
    assert len({e.rank for e in held}) >= min(len(held), 8)
    for entry in entries:
        session = prepare(entry, tmp_path / entry.name)
        assert load_actions(session) and load_script(session).script.step, entry.name
        judge = entry.path.parent.parent / "judge" / f"{entry.name}.toml"
        assert load_script(judge).script.side_reply.startswith("{"), entry.name
