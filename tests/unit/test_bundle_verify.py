"""A bundle you can defend: signed by the operator, every byte covered, checkable by a third party.

`trial verify ID` checks the signature over manifest.json, every listed file's size and
sha256, files nobody listed, the gateway chain and its head against the manifest. A one-byte
change anywhere (each file, the manifest, the signature, a final newline) fails, exit 1,
naming the first difference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.evidence.bundle import MANIFEST
from orchestrator.evidence.signing import SIGNATURE, key_path, operator_key
from orchestrator.store import Store, Trial, utcnow
from tests.fixtures.bundle_builder import careful_session

pytestmark = pytest.mark.unit


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def signed_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """One careful session's bundle, signed by a key; copied per test."""
    root = tmp_path_factory.mktemp("signed")
    home = root / "home"
    bundle = careful_session(root)
    key = operator_key(home)
    from orchestrator.evidence.signing import sign_bundle

    sign_bundle(bundle, key)
    return bundle, key_path(home).read_bytes()


@pytest.fixture
def collected(signed_template: tuple[Path, bytes], trial_home: Path) -> Path:
    """The bundle as trial tcareful01's collected evidence in this test's data dir, with its key."""
    template, pem = signed_template
    bundle = trial_home / "evidence" / "tcareful01"
    shutil.copytree(template, bundle)
    key_file = key_path(trial_home)
    key_file.parent.mkdir(parents=True, mode=0o700)
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    store = Store.open(trial_home)
    now = utcnow()
    store.create_trial(Trial(id="tcareful01", template="mini", candidate="carol", agent="claude-code",
                             state="collected", created_at=now, updated_at=now, hours=1, budget_usd=5))
    store.close()
    return bundle


def test_an_untouched_bundle_verifies(collected: Path) -> None:
    code, output = run("verify", "tcareful01")
    assert code == 0, output
    assert "ok" in output and "signed by sha256:" in output
    code, output = run("verify", "tcareful01", "--json")
    data = json.loads(output)["data"]
    assert data["ok"] is True and data["problems"] == [] and data["checked"] > 10


def _files(bundle: Path) -> list[str]:
    return sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())


def test_a_one_byte_change_anywhere_is_caught(collected: Path) -> None:
    """Every file of the bundle, the manifest and the signature included: flip one byte, then
    drop the final newline; each time verify fails and names that file first."""
    names = _files(collected)
    assert {MANIFEST, SIGNATURE, "gateway.jsonl", "events.jsonl", "repo.bundle"} <= set(names)
    originals = {name: (collected / name).read_bytes() for name in names}
    for name in names:
        data = originals[name]
        middle = len(data) // 2
        for changed in (data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:], data[:-1]):
            (collected / name).write_bytes(changed)
            code, output = run("verify", "tcareful01", "--json")
            first = json.loads(output)["data"]["first_difference"]
            assert code == 1, (name, output)
            assert name in first or (name in (MANIFEST, SIGNATURE) and "signature" in first) or \
                (name == MANIFEST and "not a JSON object" in first), (name, first)
            (collected / name).write_bytes(data)
    assert run("verify", "tcareful01")[0] == 0


def test_added_removed_and_linked_files_are_named(collected: Path, tmp_path: Path) -> None:
    (collected / "pulls" / "extra.json").write_text("{}")
    code, output = run("verify", "tcareful01")
    assert code == 1 and "pulls/extra.json: in the bundle but not in the manifest" in output
    (collected / "pulls" / "extra.json").unlink()
    (collected / "commits.jsonl").unlink()
    (collected / "commits.jsonl").symlink_to(tmp_path)
    code, output = run("verify", "tcareful01")
    assert code == 1 and "commits.jsonl: is a link" in output
    (collected / "commits.jsonl").unlink()
    code, output = run("verify", "tcareful01")
    assert code == 1 and "commits.jsonl: missing" in output


def test_a_manifest_resigned_with_another_key_or_unsigned_fails(collected: Path, tmp_path: Path) -> None:
    from orchestrator.evidence.signing import sign_bundle

    sign_bundle(collected, operator_key(tmp_path / "other"))
    code, output = run("verify", "tcareful01")
    assert code == 1 and "signed by key sha256:" in output
    (collected / SIGNATURE).unlink()
    code, output = run("verify", "tcareful01")
    assert code == 1 and "unsigned" in output


def test_gateway_records_cut_off_the_end_are_caught_by_the_recorded_head(collected: Path, trial_home: Path) -> None:
    """Dropping the last record leaves an intact chain; the manifest's head and count do not match.
    With the manifest rewritten to match and re-signed by someone else, the signature fails."""
    log = collected / "gateway.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))
    code, output = run("verify", "tcareful01", "--json")
    problems = {p["check"] for p in json.loads(output)["data"]["problems"]}
    assert code == 1 and {"file", "gateway_head"} <= problems and "gateway_chain" not in problems


def test_the_live_gateway_log_is_compared_with_the_bundles(collected: Path, trial_home: Path) -> None:
    live = trial_home / "gateway" / "tcareful01.jsonl"
    live.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(collected / "gateway.jsonl", live)
    assert run("verify", "tcareful01")[0] == 0
    lines = live.read_bytes().splitlines(keepends=True)
    live.write_bytes(b"".join(lines[:-1]))  # the operator's own log lost its last record
    code, output = run("verify", "tcareful01")
    assert code == 1 and "the gateway's own log" in output


def test_a_third_party_verifies_a_copy_with_the_exported_public_key(collected: Path, tmp_path: Path) -> None:
    code, output = run("key", "export", "--output", str(tmp_path / "operator.pem"))
    assert code == 0 and "sha256:" in output
    assert (tmp_path / "operator.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    copy = tmp_path / "received"
    shutil.copytree(collected, copy)
    code, output = run("verify", "--bundle", str(copy), "--public-key", str(tmp_path / "operator.pem"))
    assert code == 0, output
    (copy / "events.jsonl").write_bytes((copy / "events.jsonl").read_bytes() + b"\n")
    code, output = run("verify", "--bundle", str(copy), "--public-key", str(tmp_path / "operator.pem"))
    assert code == 1 and "events.jsonl" in output


def test_the_key_is_made_once_private_and_exported_as_json(trial_home: Path) -> None:
    assert not key_path(trial_home).exists()
    code, output = run("key", "export", "--json")
    first = json.loads(output)["data"]
    assert code == 0 and first["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert key_path(trial_home).stat().st_mode & 0o777 == 0o600
    assert key_path(trial_home).parent.stat().st_mode & 0o777 == 0o700
    assert json.loads(run("key", "export", "--json")[1])["data"]["fingerprint"] == first["fingerprint"]


def test_verifying_without_a_key_in_the_data_dir_says_how(collected: Path, trial_home: Path) -> None:
    key_path(trial_home).unlink()
    from orchestrator.errors import UsageError

    with pytest.raises(UsageError, match="no operator key") as raised:
        run("verify", "tcareful01")
    assert "--public-key FILE" in str(raised.value.hint)
    assert not key_path(trial_home).exists()  # checking never makes a key


def test_a_chain_already_broken_at_collect_verifies_as_unchanged_and_says_so(tmp_path: Path) -> None:
    """A gateway killed mid-write leaves a torn last line: the collector records that in the signed
    manifest, and the bundle still verifies as unchanged (any later change still fails)."""
    from orchestrator.evidence.bundle import write_manifest
    from orchestrator.evidence.signing import sign_bundle
    from orchestrator.evidence.verify import verify_bundle
    from orchestrator.gateway.log import verify_chain

    bundle = careful_session(tmp_path)
    with (bundle / "gateway.jsonl").open("ab") as log:
        log.write(b'{"seq":99,"ts":"2026')  # the write the crash cut short
    chain = verify_chain(bundle / "gateway.jsonl")
    assert not chain.ok
    header = {k: v for k, v in json.loads((bundle / MANIFEST).read_text()).items() if k not in ("files", "version")}
    header["gateway"] = {"records": chain.records, "head": chain.head, "chain_ok": False, "reason": chain.reason}
    write_manifest(bundle, header)
    key = operator_key(tmp_path / "home")
    sign_bundle(bundle, key)
    verdict = verify_bundle(bundle, key.public_key())
    assert verdict.ok, verdict.to_json()
    [chain_finding] = [f for f in verdict.findings if f.check == "gateway_chain"]
    assert "unchanged since collect, where the manifest recorded it broken" in chain_finding.detail


def test_parallel_collects_in_one_process_agree_on_one_key(trial_home: Path) -> None:
    # A cohort collects in threads of one process: the first use must make exactly one key,
    # and every thread must sign with it.
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.evidence.signing import fingerprint, operator_key

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: operator_key(trial_home), range(16)))
    assert len({fingerprint(key.public_key()) for key in keys}) == 1
    assert [p.name for p in key_path(trial_home).parent.iterdir()] == [key_path(trial_home).name]
