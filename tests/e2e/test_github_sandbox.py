"""A real sandbox on the GitHub forge (the fake GitHub on loopback): git goes through the host
service, the operator's GitHub token is nowhere in the sandbox, another trial's repo is
refused, and at the deadline the service itself removes the candidate from the repo, stops
the sandbox and refuses the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.config import load_settings
from orchestrator.forge.base import RepoRef
from orchestrator.forge.github import GitHubForge, TokenCredentials
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.store import Store, Trial, utcnow
from tests.fakes.github import gitops
from tests.fakes.github.world import CANDIDATE, ORG, GitHubWorld
from tests.fakes.github_server import FakeGitHub

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["token", "app"])
def github(request: pytest.FixtureRequest, trial_home: Path, service_port: int, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubWorld]:
    """The operator's GitHub as a PAT or as a GitHub App (installation tokens minted on the host)."""
    with FakeGitHub(tmp_path / "github") as fake:
        world = GitHubWorld.create(fake)
        env = {"TRIAL_FORGE_KIND": "github", "TRIAL_FORGE_ORG": ORG, "TRIAL_FORGE_API_URL": fake.api_url,
               "TRIAL_FORGE_THROTTLE": "false"}
        if request.param == "app":
            world.app_forge()
            assert world.app is not None
            env |= {"TRIAL_GITHUB_APP_ID": str(world.app.app_id),
                    "TRIAL_GITHUB_APP_INSTALLATION_ID": str(world.app.installation_id),
                    "TRIAL_GITHUB_APP_PRIVATE_KEY": world.app.private_key}
            monkeypatch.delenv("GITHUB_TOKEN", raising=False)
        else:
            env["GITHUB_TOKEN"] = world.bot_token
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield world


def operator_secrets(world: GitHubWorld) -> list[str]:
    """Every token the fake GitHub ever issued (the bot's PAT, each installation token the host
    minted) and the App's private key."""
    secrets = list(world.fake.tokens)
    if world.app is not None:
        secrets.append(world.app.private_key.strip().splitlines()[1])
    return secrets


def trial(*args: str, ok: bool = True) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args, "--json"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    envelope: dict[str, Any] = json.loads(done.stdout)
    return envelope


def _holds(blob: bytes, secrets: list[str]) -> bool:
    return any(secret.encode() in blob for secret in secrets)


def test_the_sandbox_pushes_to_github_through_the_host_and_holds_no_github_credential(
        github: GitHubWorld, service_port: int, tmp_path: Path) -> None:
    launched = trial("launch", "api-keys", "--candidate", CANDIDATE, "--agent", "none", "--hours", "1")
    trial_id = launched["data"]["trial"]["id"]
    try:
        repo = launched["data"]["trial"]["data"]["repo"]
        held = github.fake.repo(repo["full_name"])
        assert held.keys == {}  # no deploy key
        assert github.accept_invitations() == 1

        pushed = trial("candidate-push", trial_id, "--branch", "feature/hash-keys", "--message", "Hash keys")["data"]
        assert gitops.rev(held.path, "refs/heads/feature/hash-keys") == pushed["sha"]
        events = GitHubForge.from_settings(load_settings()).push_events(RepoRef.from_json(repo))
        assert [(e["ref"], e["witness"]) for e in events][-1] == ("refs/heads/feature/hash-keys", "host")

        backend = DockerBackend(load_settings().sandbox)
        ref = backend.find(trial_id)
        assert ref is not None
        token = backend.exec(ref, ["cat", "/home/candidate/.trial/token"]).stdout.strip()
        secret = operator_secrets(github)
        # The bot's, the candidate's and the reviewer's PATs, or those and the App's key and installation tokens.
        assert len(secret) >= (5 if github.app is not None else 3)

        # Nowhere in the sandbox: its environment, its files (container layer and both volumes),
        # the image's config and history, git's config.
        client = docker.from_env()
        container = client.containers.get(ref.id)
        assert not _holds(json.dumps(container.attrs).encode(), secret)
        image = client.images.get(container.image.id)
        assert not _holds(json.dumps(image.attrs).encode(), secret)
        assert not _holds(json.dumps(image.history()).encode(), secret)
        process_env = backend.exec(ref, ["sh", "-c", "cat /proc/1/environ; env; git config --global --list"])
        assert process_env.ok and not _holds(process_env.stdout.encode(), secret)
        for path in ("/home/candidate", "/workspace"):
            assert not _holds(backend.copy_out(ref, path), secret), path
        exported = b"".join(container.export(chunk_size=1 << 20))
        assert len(exported) > 1 << 20 and not _holds(exported, secret)
        client.close()

        # Another trial's repo, even with this trial's token, is refused from inside the sandbox.
        settings = load_settings()
        forge = GitHubForge(settings.forge, TokenCredentials(github.bot_token))
        other = forge.create_repo("tother0001", "trial-other", "another trial")
        store = Store.open(settings.home)
        store.create_trial(Trial("tother0001", "api-keys", "mallory", "none", "active", utcnow(), utcnow(), 1, 10,
                                 deadline=utcnow() + timedelta(hours=1), data={"repo": other.to_json()}))
        base = f"http://trial:{token}@host.docker.internal:{service_port}/git"
        probe = backend.exec(ref, ["sh", "-c", f"git -c credential.helper= ls-remote {base}/{other.name}.git; "
                                   f"git -c credential.helper= ls-remote {base}/handmade.git"])
        assert not probe.ok and "refs/heads" not in probe.stdout

        # The deadline: the host service alone (no reap) ends the candidate's access on GitHub,
        # stops the sandbox and refuses the token.
        store.update_trial(trial_id, deadline=utcnow())
        limit = time.monotonic() + 15
        while time.monotonic() < limit and backend.status(ref) == "running":
            time.sleep(0.5)
        assert backend.status(ref) != "running"
        assert CANDIDATE not in held.collaborators
        late = subprocess.run(["git", "ls-remote", f"http://trial:{token}@127.0.0.1:{service_port}/git/"
                               f"{repo['name']}.git"], capture_output=True, text=True,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        assert late.returncode != 0 and "token refused" in late.stderr
        store.close()
    finally:
        trial("teardown", trial_id, "--delete-repo", "--yes")
        subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "serve", "--stop"], capture_output=True,
                       env=os.environ.copy(), timeout=60)

