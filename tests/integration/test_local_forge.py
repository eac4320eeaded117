"""The local forge over real git and a real `trial serve` on loopback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.errors import ForgeError
from orchestrator.forge.local import LocalForge
from orchestrator.store import Store, Trial, utcnow
from tests.conftest import git

pytestmark = pytest.mark.unit


@pytest.fixture
def forge_env(trial_home: Path, service_port: int) -> tuple[LocalForge, Store]:
    settings = load_settings()
    store = Store.open(settings.home)
    store.create_trial(Trial("tabc12345", "api-keys", "octocat", "none", "active", utcnow(), utcnow(), 4, 10))
    return LocalForge(settings, store), store


def _starter(tmp_path: Path) -> Path:
    work = tmp_path / "starter"
    work.mkdir()
    (work / "README.md").write_text("# starter\n")
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("-c", "user.name=bot", "-c", "user.email=bot@x", "commit", "-qm", "Starter", cwd=work)
    return work


def _authed(url: str, token: str) -> str:
    return url.replace("http://", f"http://trial:{token}@")


def test_candidate_clones_pushes_branch_and_it_becomes_a_pull_request(
        forge_env: tuple[LocalForge, Store], host_service: str, tmp_path: Path) -> None:
    forge, store = forge_env
    repo = forge.create_repo("tabc12345", "trial-api-keys-octocat", "demo")
    forge.push(repo, _starter(tmp_path))
    forge.protect_default_branch(repo)
    token = store.mint_token("tabc12345", "sandbox")
    url = f"{host_service}/git/{repo.name}.git"

    clone = tmp_path / "clone"
    git("clone", "-q", _authed(url, token), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "feature/hash-keys", cwd=clone)
    (clone / "keys.py").write_text("def hash_key(k):\n    return k\n" * 200)
    # Incompressible and over git's 1 MiB http.postBuffer: the push body arrives chunked.
    (clone / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git("add", ".", cwd=clone)
    git("-c", "user.name=Octo", "-c", "user.email=o@x", "commit", "-qm",
        "Hash API keys\n\nStore HMAC-SHA256 digests instead of plaintext.", cwd=clone)
    git("push", "-q", "origin", "feature/hash-keys", cwd=clone)

    pulls = forge.pull_requests(repo)
    assert [(p.title, p.head_ref) for p in pulls] == [("Hash API keys", "feature/hash-keys")]
    assert pulls[0].body == "Store HMAC-SHA256 digests instead of plaintext."
    assert {f["filename"]: f["additions"] for f in pulls[0].files} == {"blob.bin": 0, "keys.py": 400}
    assert "+def hash_key" in forge.pull_request_diff(repo, pulls[0].number)
    events = forge.push_events(repo)
    assert events[-1]["ref"] == "refs/heads/feature/hash-keys" and events[-1]["forced"] is False
    assert events[-1]["pusher"] == "trial:tabc12345"

    # main is protected: only pull requests change it.
    (clone / "README.md").write_text("hacked\n")
    git("-c", "user.name=Octo", "-c", "user.email=o@x", "commit", "-qam", "direct", cwd=clone)
    refused = subprocess.run(["git", "push", "origin", "HEAD:main"], cwd=clone, capture_output=True, text=True)
    assert refused.returncode != 0 and "main is protected" in refused.stderr

    # A forced push on the candidate's branch is recorded as such.
    git("reset", "-q", "--hard", "HEAD~2", cwd=clone)
    git("checkout", "-q", "feature/hash-keys", cwd=clone)
    git("-c", "user.name=Octo", "-c", "user.email=o@x", "commit", "-q", "--amend", "-m", "Hash API keys (amended)",
        cwd=clone)
    git("push", "-q", "--force", "origin", "feature/hash-keys", cwd=clone)
    assert forge.push_events(repo)[-1]["forced"] is True


def test_revoked_token_and_foreign_token_cannot_push(forge_env: tuple[LocalForge, Store], host_service: str,
                                                     tmp_path: Path) -> None:
    forge, store = forge_env
    store.create_trial(Trial("tother0001", "api-keys", "mallory", "none", "active", utcnow(), utcnow(), 4, 10))
    repo = forge.create_repo("tabc12345", "trial-api-keys-octocat", "demo")
    forge.push(repo, _starter(tmp_path))
    url = f"{host_service}/git/{repo.name}.git"
    foreign = store.mint_token("tother0001", "sandbox")
    denied = subprocess.run(["git", "ls-remote", _authed(url, foreign)], capture_output=True, text=True,
                            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"})
    assert denied.returncode != 0

    token = store.mint_token("tabc12345", "sandbox")
    assert subprocess.run(["git", "ls-remote", _authed(url, token)], capture_output=True).returncode == 0
    store.revoke_tokens("tabc12345")
    after = subprocess.run(["git", "ls-remote", _authed(url, token)], capture_output=True, text=True,
                           env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"})
    assert after.returncode != 0
    assert "401" in after.stderr or "Authentication failed" in after.stderr


def test_locked_repo_refuses_pushes_but_still_serves_fetches(forge_env: tuple[LocalForge, Store],
                                                            host_service: str, tmp_path: Path) -> None:
    forge, store = forge_env
    repo = forge.create_repo("tabc12345", "trial-api-keys-octocat", "demo")
    forge.push(repo, _starter(tmp_path))
    token = store.mint_token("tabc12345", "sandbox")
    url = _authed(f"{host_service}/git/{repo.name}.git", token)
    clone = tmp_path / "clone"
    git("clone", "-q", url, str(clone), cwd=tmp_path)
    forge.revoke(repo, "octocat")
    git("checkout", "-q", "-b", "late", cwd=clone)
    git("-c", "user.name=O", "-c", "user.email=o@x", "commit", "-q", "--allow-empty", "-m", "late", cwd=clone)
    late = subprocess.run(["git", "push", "origin", "late"], cwd=clone, capture_output=True, text=True)
    assert late.returncode != 0 and "403" in late.stderr


def test_create_repo_is_idempotent_per_trial_and_refuses_a_name_taken_by_another(
        forge_env: tuple[LocalForge, Store]) -> None:
    forge, _ = forge_env
    first = forge.create_repo("tabc12345", "trial-x", "d")
    assert forge.create_repo("tabc12345", "trial-x", "d") == first
    with pytest.raises(ForgeError, match="already exists for trial tabc12345"):
        forge.create_repo("tother", "trial-x", "d")


def test_comment_is_updated_in_place_by_marker(forge_env: tuple[LocalForge, Store], tmp_path: Path) -> None:
    forge, _ = forge_env
    repo = forge.create_repo("tabc12345", "trial-x", "d")
    first = forge.post_comment(repo, 2, "<!-- m --> v1", "<!-- m -->")
    second = forge.post_comment(repo, 2, "<!-- m --> v2", "<!-- m -->")
    assert first == second
    meta = forge._read_meta("trial-x")
    assert [c["body"] for c in meta["comments"]["2"]] == ["<!-- m --> v2"]


def test_hostile_names_messages_and_renames_do_not_break_collection(
        forge_env: tuple[LocalForge, Store], host_service: str, tmp_path: Path) -> None:
    from orchestrator.evidence.gitlog import commit_records

    forge, store = forge_env
    repo = forge.create_repo("tabc12345", "trial-api-keys-octocat", "demo")
    forge.push(repo, _starter(tmp_path))
    token = store.mint_token("tabc12345", "sandbox")
    clone = tmp_path / "clone"
    git("clone", "-q", _authed(f"{host_service}/git/{repo.name}.git", token), str(clone), cwd=tmp_path)
    branch = 'fix"quote'  # legal in git, fatal to hand-built JSON
    git("checkout", "-q", "-b", branch, cwd=clone)
    git("mv", "README.md", "GUIDE.md", cwd=clone)  # a rename
    message = "Rename\x1f the guide\x1e\n\nbody with \x1f separators \x1e inside"
    (tmp_path / "msg").write_text(message)
    git("-c", "user.name=O", "-c", "user.email=o@x", "commit", "-q", "-F", str(tmp_path / "msg"), cwd=clone)
    git("push", "-q", "origin", branch, cwd=clone)

    assert forge.push_events(repo)[-1]["ref"] == f"refs/heads/{branch}"
    [pr] = forge.pull_requests(repo)
    assert pr.head_ref == branch and pr.title == "Rename\x1f the guide"  # str.strip() takes \x1e as space
    assert {f["filename"]: f["status"] for f in pr.files} == {"GUIDE.md": "added", "README.md": "removed"}
    mirror = forge.fetch_all(repo, tmp_path / "mirror.git")
    records = commit_records(mirror)
    assert records[-1]["message"] == message.strip()
    assert {f["path"] for f in records[-1]["files"]} == {"GUIDE.md", "README.md"}


@pytest.fixture
def one_mib_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAL_FORGE_REPO_QUOTA_MB", "1")


def test_a_push_that_would_take_the_repo_over_its_quota_is_refused(
        one_mib_quota: None, forge_env: tuple[LocalForge, Store], host_service: str, tmp_path: Path) -> None:
    forge, store = forge_env
    repo = forge.create_repo("tabc12345", "trial-api-keys-octocat", "demo")
    forge.push(repo, _starter(tmp_path))
    token = store.mint_token("tabc12345", "sandbox")
    clone = tmp_path / "clone"
    git("clone", "-q", _authed(f"{host_service}/git/{repo.name}.git", token), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "small", cwd=clone)
    (clone / "small.bin").write_bytes(os.urandom(300 * 1024))
    git("add", ".", cwd=clone)
    git("-c", "user.name=O", "-c", "user.email=o@x", "commit", "-qm", "small", cwd=clone)
    git("push", "-q", "origin", "small", cwd=clone)

    git("checkout", "-q", "-b", "big", cwd=clone)
    (clone / "big.bin").write_bytes(os.urandom(900 * 1024))  # fits alone, not on top of the first
    git("add", ".", cwd=clone)
    git("-c", "user.name=O", "-c", "user.email=o@x", "commit", "-qm", "big", cwd=clone)
    refused = subprocess.run(["git", "push", "origin", "big"], cwd=clone, capture_output=True, text=True)
    assert refused.returncode != 0 and "over this trial's quota of 1048576 bytes" in refused.stderr
    branches = git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=forge.repo_path(repo.name))
    assert branches.split() == ["refs/heads/main", "refs/heads/small"]
    assert [e["ref"] for e in forge.push_events(repo)][-1] == "refs/heads/small"
