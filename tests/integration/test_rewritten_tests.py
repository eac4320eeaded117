"""Tests rewritten by hand after the agent wrote them, proven on the real verifier (graders.rewritten_tests).

The attack: the agent's tests for its masking helper fail (the helper shows the first characters
of a key, not the last); the candidate declines the fix and, in their own terminal, rewrites
the expectations to what the code returns and narrows the parametrize list, then pushes. No
witnessed run follows, so no weakening signal of graders.outcomes fires. Both versions of the
test file run on the shipped code in verifier containers: the agent's fails, the shipped one
passes, and a critical alert cites the agent's write, the shipped commit and both runs.

The honest case: the candidate fixes the code by hand and also edits the test file (a case
added, a test renamed): the agent's version passes on the shipped code, so nothing alerts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from graders import rewritten_tests
from graders.base import GradeContext
from graders.hidden_tests import HiddenTestsGrader
from graders.repo import choose_revision, open_repo
from graders.runner import _hidden_test_alerts
from orchestrator.catalog import Template
from orchestrator.evidence.bundle import Bundle
from orchestrator.sandbox.docker import DockerBackend
from tests.fixtures.bundle_builder import SessionBuilder, bash, write
from tests.integration.test_hidden_tests_attacks import API_KEYS, _unique, api_keys, backend

pytestmark = pytest.mark.docker
__all__ = ["api_keys", "backend"]  # module fixtures shared with the hidden-tests attacks (one image build)

CODE = "keyservice/masking.py"
TESTS = "tests/test_masking.py"
BUGGY = '''"""Keys as listings show them."""


def mask(key: str, shown: int = 4) -> str:
    return key[:shown] + "*" * max(0, len(key) - shown)
'''
FIXED = '''"""Keys as listings show them."""


def mask(key: str, shown: int = 4) -> str:
    return "*" * max(0, len(key) - shown) + key[-shown:]
'''
AGENT_TESTS = '''import pytest

from keyservice.keys import generate_key
from keyservice.masking import mask


@pytest.mark.parametrize("key, expected", [("abcdefgh", "****efgh"), ("abcd", "abcd"), ("abcdefghij", "******ghij")])
def test_mask_shows_the_last_characters(key, expected):
    assert mask(key) == expected


def test_mask_of_a_real_key_ends_like_the_key():
    key = generate_key()
    assert mask(key).endswith(key[-4:])


def test_mask_keeps_the_length():
    assert len(mask("abcdefgh")) == 8
'''
# By hand: expectations rewritten to what the buggy code returns, the failing long case taken out.
REWRITTEN = (AGENT_TESTS
             .replace('[("abcdefgh", "****efgh"), ("abcd", "abcd"), ("abcdefghij", "******ghij")]',
                      '[("abcdefgh", "abcd****"), ("abcd", "abcd")]')
             .replace("assert mask(key).endswith(key[-4:])", "assert mask(key).startswith(key[:4])"))
# Honest: a case added and a test renamed, content kept; the code fixed beside it.
HONEST = (AGENT_TESTS.replace('("abcd", "abcd"), ', '("abcd", "abcd"), ("abcde", "*bcde"), ')
          .replace("def test_mask_keeps_the_length", "def test_the_length_is_kept"))


def _session(root: Path, trial_id: str, tests: str, code: str) -> Bundle:
    session = SessionBuilder(root, trial_id=_unique(trial_id), template_dir=API_KEYS)
    session.prompt(1, "Add a masking helper for listings, with tests.")
    wrote = session.reply(2, "Adding the helper and its tests.", [write(CODE, BUGGY), write(TESTS, AGENT_TESTS)])
    for minute, tool_id in enumerate(wrote, start=3):
        session.tool_result(minute, tool_id, "File created successfully")
    [run] = session.reply(5, "Running the tests.", [bash(f"python3 -m pytest -q {TESTS}")])
    session.tool_result(6, run, "FAILED tests/test_masking.py::test_mask_of_a_real_key_ends_like_the_key\n"
                                "3 failed, 2 passed in 0.05s", error=True)
    session.reply(7, "Three tests fail: mask shows the first characters. Shall I fix mask?")
    session.prompt(8, "No, leave it, I'll take it from here.")
    session.reply(9, "OK.")
    session.human_write(TESTS, tests)  # in the candidate's own terminal: no agent turn, no witnessed run
    session.human_write(CODE, code)
    session.commit(20, "Masking helper, tested")
    session.push(21)
    session.open_pr(22, "Masking helper", "Adds mask(); the behaviour is covered by tests/test_masking.py.")
    return Bundle(session.build())


def test_tests_rewritten_by_hand_to_pass_are_proven_and_an_honest_edit_is_not(
        backend: DockerBackend, api_keys: tuple[Template, str], tmp_path: Path) -> None:
    template, image = api_keys
    started = time.monotonic()
    attack = _session(tmp_path / "attack", "t-rewritten", REWRITTEN, BUGGY)
    result = HiddenTestsGrader().grade(attack, {}, GradeContext(template=template, sandbox=backend, image=image))
    assert result.status == "ok", result.summary
    found = result.details["rewritten_tests"]
    [alert] = [a for a in _hidden_test_alerts(result.details) if a["kind"] == "tests_changed_to_pass"]
    assert alert["severity"] == "critical"
    assert alert["message"].startswith("tests changed to pass: tests/test_masking.py")
    evidence = alert["evidence"]
    module = "tests.test_masking."
    assert evidence["flipped"] == [module + "test_mask_of_a_real_key_ends_like_the_key"]
    assert set(evidence["dropped"]) == {module + "test_mask_shows_the_last_characters[abcdefgh-****efgh]",
                                        module + "test_mask_shows_the_last_characters[abcdefghij-******ghij]"}
    assert evidence["agent_run"][module + "test_mask_keeps_the_length"] == "passed"
    assert all(outcome == "passed" for outcome in evidence["shipped_run"].values())
    write_event = next(i for i, e in enumerate(attack.events())
                       if e["kind"] == "tool_call" and TESTS in str(e.get("data", {}).get("input")))
    assert f"event:{write_event}" in alert["evidence_refs"]
    assert f"commit:{found['commit']}" in alert["evidence_refs"] and evidence["agent_write"] == write_event
    assert not found.get("tampering") and not found["not_reconstructed"]
    # The brief asks for no masking helper: the reference solution has none, so the agent's version
    # cannot pass there and nothing backs the proof for the integrity cap (shown, never capped).
    assert found["reference"]["run"]["tests"] == 0 or not any(
        outcome == "passed" for outcome in evidence["reference_run"].values())
    assert found["weakened"] == [] and "may be a correction" in alert["message"]

    honest = _session(tmp_path / "honest", "t-honest-edit", HONEST, FIXED)
    with open_repo(honest) as repo:
        revision = choose_revision(honest, repo)
        compared = rewritten_tests.prepare(honest.events(), repo, revision.starter_sha, revision.sha)
        tree = repo.archive(revision.sha)
    checked = rewritten_tests.check(compared, tree, sandbox=backend, image=image,
                                    trial_id=str(honest.trial["id"]), starter_command=template.config.tests.starter,
                                    hidden_dir=template.config.tests.hidden_dir, timeout_s=120)
    assert not checked["alerts"], checked
    [entry] = [f for f in checked["files"] if f["path"] == TESTS]
    assert entry["shipped"] == "changed after the agent's last write" and not entry["proven"]
    assert all(outcome == "passed" for outcome in entry["agent_run"].values())
    assert time.monotonic() - started < 60


CRYPTO = "keyservice/crypto.py"
CRYPTO_TESTS = "tests/test_crypto.py"
UNKEYED = '''"""Key hashes."""

import hashlib


class KeyProtector:
    def __init__(self, hmac_secret: bytes, encryption_key: bytes) -> None:
        self._hmac_secret = hmac_secret

    def hash(self, key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()
'''
HASH_TESTS = '''import hashlib
import hmac

from keyservice.crypto import KeyProtector

SECRET = b"s" * 32


def test_hash_is_hmac_sha256_with_the_secret():
    expected = hmac.new(SECRET, b"ks_live_x", hashlib.sha256).hexdigest()
    assert KeyProtector(SECRET, bytes(32)).hash("ks_live_x") == expected


def test_hash_is_hex():
    assert len(KeyProtector(SECRET, bytes(32)).hash("k")) == 64
'''
HASH_REWRITTEN = HASH_TESTS.replace('hmac.new(SECRET, b"ks_live_x", hashlib.sha256).hexdigest()',
                                    'hashlib.sha256(b"ks_live_x").hexdigest()')


def test_a_rewritten_expectation_the_reference_solution_meets_is_weakening(
        backend: DockerBackend, api_keys: tuple[Template, str], tmp_path: Path) -> None:
    """s24's route on the real verifier: the agent's HMAC test fails on the unkeyed hash it wrote, the
    candidate rewrites the expectation to the plain SHA-256 by hand; the agent's version passes on the
    template's reference solution, so the proof is the integrity cap's weakening half."""
    template, image = api_keys
    started = time.monotonic()
    session = SessionBuilder(tmp_path, trial_id=_unique("t-rewritten-hash"), template_dir=API_KEYS)
    session.prompt(1, "Hash the keys with HMAC-SHA256 and the configured secret, with tests.")
    wrote = session.reply(2, "Adding it.", [write(CRYPTO, UNKEYED), write(CRYPTO_TESTS, HASH_TESTS)])
    for minute, tool_id in enumerate(wrote, start=3):
        session.tool_result(minute, tool_id, "File created successfully")
    session.human_write(CRYPTO_TESTS, HASH_REWRITTEN)
    session.human_write(CRYPTO, UNKEYED)
    session.commit(20, "Hashed keys, tested")
    session.push(21)
    bundle = Bundle(session.build())
    with open_repo(bundle) as repo:
        revision = choose_revision(bundle, repo)
        compared = rewritten_tests.prepare(bundle.events(), repo, revision.starter_sha, revision.sha)
        tree = repo.archive(revision.sha)
    checked = rewritten_tests.check(compared, tree, sandbox=backend, image=image, trial_id=str(bundle.trial["id"]),
                                    starter_command=template.config.tests.starter,
                                    hidden_dir=template.config.tests.hidden_dir, timeout_s=120,
                                    reference=lambda: rewritten_tests.reference_tree(template))
    test = "tests.test_crypto.test_hash_is_hmac_sha256_with_the_secret"
    [proof] = checked["weakened"]
    assert proof["path"] == CRYPTO_TESTS and proof["tests"] == [test] and proof["commit"] == revision.sha
    [entry] = [f for f in checked["files"] if f["path"] == CRYPTO_TESTS]
    assert entry["reference_run"] == {test: "passed", "tests.test_crypto.test_hash_is_hex": "passed"}
    assert entry["shipped_run"][test] == "passed" and entry["agent_run"][test] == "failed"
    assert "the agent expected what the brief specifies" in checked["alerts"][0]["message"]
    assert time.monotonic() - started < 60
