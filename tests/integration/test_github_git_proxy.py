"""Git through the host service on the GitHub forge: the real aiohttp app on loopback, the fake
GitHub behind it, real git clients in front. The sandbox's credential is the trial token;
the operator's GitHub token stays in the service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from orchestrator.config import Settings
from orchestrator.forge import pushlog
from orchestrator.forge.base import RepoRef
from orchestrator.forge.github import GitHubForge, TokenCredentials
from orchestrator.service.app import create_app
from orchestrator.store import Store, Trial, utcnow
from tests.conftest import REPO_ROOT, free_port
from tests.fakes.github import gitops
from tests.fakes.github.world import CANDIDATE, GitHubWorld, commit_tree
from tests.fakes.github_server import FakeGitHub

pytestmark = pytest.mark.unit

GIT_ID = {"GIT_AUTHOR_NAME": "Octo", "GIT_AUTHOR_EMAIL": "o@x", "GIT_COMMITTER_NAME": "Octo",
          "GIT_COMMITTER_EMAIL": "o@x", "GIT_TERMINAL_PROMPT": "0"}


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """The app on a loopback port in a thread of its own (its own event loop), as `trial serve` runs it."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    port = free_port()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(20)
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(f"{url}/healthz", timeout=5).close()
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(20)


@dataclass
class Proxied:
    world: GitHubWorld
    forge: GitHubForge
    store: Store
    settings: Settings
    url: str

    def launch(self, trial_id: str, name: str, tmp: Path, *, hours: float = 4) -> tuple[RepoRef, str]:
        """A trial as launch leaves it: repo with the starter, main protected, token, active."""
        repo = self.forge.create_repo(trial_id, name, "API keys")
        work = tmp / f"starter-{trial_id}"
        commit_tree(work, {"README.md": "# keys\n"}, "Starter")
        self.forge.push(repo, work)
        self.forge.protect_default_branch(repo)
        now = utcnow()
        self.store.create_trial(Trial(trial_id, "api-keys", CANDIDATE, "none", "active", now, now, hours, 10,
                                      deadline=now + timedelta(hours=hours), data={"repo": repo.to_json()}))
        token = self.store.mint_token(trial_id, "sandbox", now + timedelta(hours=hours))
        return repo, token

    def git_url(self, repo: RepoRef, token: str | None = None) -> str:
        base = f"{self.url}/git/{repo.name}.git"
        return base.replace("http://", f"http://trial:{token}@") if token else base


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ID})
    assert not check or done.returncode == 0, done.stderr
    return done


class NoSandbox:
    def find(self, trial_id: str, role: str = "sandbox") -> Any:
        return None

    def stop(self, ref: Any, timeout_s: int = 10) -> None:
        raise AssertionError("no sandbox to stop")


def proxied(tmp_path: Path, quota_mb: float = 500.0, watch: bool = False) -> Iterator[Proxied]:
    with FakeGitHub(tmp_path / "github") as fake:
        world = GitHubWorld.create(fake)
        home = tmp_path / "home"
        settings = Settings(home=home, templates_dir=REPO_ROOT / "trial_templates",
                            forge=world.settings(repo_quota_mb=quota_mb))
        store = Store.open(home)
        forge = GitHubForge(settings.forge, TokenCredentials(world.bot_token), service=settings.service,
                            state_dir=settings.forge_dir / "github")
        app = create_app(settings, store, forge=lambda: forge, sandbox=NoSandbox, watch_deadlines=watch)
        with serving(app) as url:
            yield Proxied(world, forge, store, settings, url)
        store.close()
        assert fake.schema_problems() == []


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxied]:
    yield from proxied(tmp_path)


def test_the_sandbox_clones_and_pushes_through_the_host_with_the_trial_token_only(
        proxy: Proxied, tmp_path: Path) -> None:
    repo, token = proxy.launch("tgh000001", "trial-api-keys-octocat", tmp_path)
    access = proxy.forge.sandbox_access(repo, token)
    assert access.clone_url == f"http://host.docker.internal:{proxy.settings.service.port}/git/{repo.name}.git"
    assert access.key_id is None and set(access.files) == {".trial/token"}
    assert proxy.world.bot_token not in repr(access)
    assert proxy.world.fake.repo(repo.full_name).keys == {}  # no deploy key any more

    clone = tmp_path / "clone"
    git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "feature/hash-keys", cwd=clone)
    (clone / "keys.py").write_text("import hashlib\n")
    # Incompressible and over git's 1 MiB http.postBuffer: the push streams chunked through the proxy.
    (clone / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git("add", ".", cwd=clone)
    git("commit", "-qm", "Hash keys", cwd=clone)
    git("push", "-q", "origin", "feature/hash-keys", cwd=clone)
    head = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    held = proxy.world.fake.repo(repo.full_name)
    assert gitops.rev(held.path, "refs/heads/feature/hash-keys") == head

    # The push is in the host's push log (the local forge's format), and GitHub's copy agrees.
    log_path = proxy.forge.push_log_path(repo)
    assert log_path is not None
    (logged,) = pushlog.read(log_path)
    assert (logged["ref"], logged["after"], logged["pusher"]) == ("refs/heads/feature/hash-keys", head,
                                                                  "trial:tgh000001")
    events = proxy.forge.push_events(repo)
    assert {e["ref"]: e["witness"] for e in events} == {"refs/heads/main": "forge",  # the bot's starter
                                                       "refs/heads/feature/hash-keys": "host"}
    (through,) = [e for e in events if e["witness"] == "host"]
    assert through["ts"] == logged["ts"] and through["kind"] == "branch_creation"

    # Upstream the proxy pushes as the bot, whom protection lets change main: the proxy refuses
    # it (and deleting main, and refs outside branches and tags) before GitHub sees a byte.
    main_before = gitops.rev(held.path, "refs/heads/main")
    (clone / "README.md").write_text("straight to main\n")
    git("commit", "-qam", "direct", cwd=clone)
    for refspec, reason in (("HEAD:main", "main is protected"), (":main", "main is protected"),
                            ("HEAD:refs/pull/1/head", "only branches and tags"),
                            ("HEAD:refs/notes/x", "only branches and tags")):
        refused = git("push", "origin", refspec, cwd=clone, check=False)
        assert refused.returncode != 0 and "[remote rejected]" in refused.stderr, refspec
        assert reason in refused.stderr, refused.stderr
    # Refused whole: the allowed ref of a mixed push does not land either.
    mixed = git("push", "origin", "HEAD:main", "HEAD:refs/heads/sneaky", cwd=clone, check=False)
    assert mixed.returncode != 0 and gitops.rev(held.path, "refs/heads/sneaky") is None
    assert gitops.rev(held.path, "refs/heads/main") == main_before
    assert len(pushlog.read(log_path)) == 1
    git("reset", "-q", "--hard", "HEAD~1", cwd=clone)

    # A forced push is logged by the host and marked forced from GitHub's activity.
    git("commit", "-q", "--amend", "-m", "Hash keys (amended)", cwd=clone)
    git("push", "-q", "--force", "origin", "HEAD:feature/hash-keys", cwd=clone)
    last = [e for e in proxy.forge.push_events(repo) if e["ref"] == "refs/heads/feature/hash-keys"][-1]
    assert (last["witness"], last["forced"]) == ("host", True)


def test_the_proxy_serves_the_trials_own_repo_and_nothing_else(proxy: Proxied, tmp_path: Path) -> None:
    mine, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
    other, other_token = proxy.launch("tgh000002", "trial-other", tmp_path)
    proxy.world.client(proxy.world.bot_token).get_organization("acme").create_repo("handmade", private=True)

    attempts = {
        "another trial's repo with my token": proxy.git_url(other, token),
        "my repo with another trial's token": proxy.git_url(mine, other_token),
        "a repo of the org that is no trial's": f"{proxy.url.replace('http://', f'http://trial:{token}@')}"
                                                "/git/handmade.git",
        "no token": proxy.git_url(mine),
        "the bot's own GitHub token": proxy.git_url(mine, proxy.world.bot_token),
    }
    for what, url in attempts.items():
        done = git("ls-remote", url, cwd=tmp_path, check=False)
        assert done.returncode != 0, what
        assert "refs/heads/main" not in done.stdout, what
    assert git("ls-remote", proxy.git_url(mine, token), cwd=tmp_path).stdout.count("refs/heads/main") == 1

    # Only git's smart routes: no dumb HTTP, no path out of the repo.
    for path in (f"/git/{mine.name}.git/HEAD", f"/git/{mine.name}.git/objects/info/packs",
                 f"/git/{mine.name}.git/info/refs",
                 "/git/..%2Facme%2Ftrial-other.git/info/refs?service=git-upload-pack"):
        request = urllib.request.Request(f"{proxy.url}{path}", headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404, path


def test_git_access_ends_at_the_deadline_and_at_collect(proxy: Proxied, tmp_path: Path) -> None:
    repo, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
    clone = tmp_path / "clone"
    git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "work", cwd=clone)
    git("commit", "-q", "--allow-empty", "-m", "in time", cwd=clone)
    git("push", "-q", "origin", "work", cwd=clone)

    # The deadline passes (the token's expiry is left alone: the service checks the deadline itself).
    proxy.store.update_trial("tgh000001", deadline=utcnow() - timedelta(seconds=1))
    git("commit", "-q", "--allow-empty", "-m", "too late", cwd=clone)
    late = git("push", "origin", "work", cwd=clone, check=False)
    assert late.returncode != 0 and "403" in late.stderr
    assert git("ls-remote", "origin", cwd=clone, check=False).returncode != 0

    # Collected: the trial is closed to git whatever its deadline says.
    proxy.store.update_trial("tgh000001", deadline=utcnow() + timedelta(hours=1), state="collected")
    assert git("push", "origin", "work", cwd=clone, check=False).returncode != 0
    held = proxy.world.fake.repo(repo.full_name)
    assert gitops.git("log", "-1", "--format=%s", "refs/heads/work", cwd=held.path).strip() == "in time"


def test_a_push_over_the_repository_quota_is_cut_off_before_it_lands(tmp_path: Path) -> None:
    for proxy in proxied(tmp_path, quota_mb=1.0):
        repo, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
        clone = tmp_path / "clone"
        git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
        git("checkout", "-q", "-b", "small", cwd=clone)
        (clone / "small.bin").write_bytes(os.urandom(300 * 1024))
        git("add", ".", cwd=clone)
        git("commit", "-qm", "small", cwd=clone)
        git("push", "-q", "origin", "small", cwd=clone)

        git("checkout", "-q", "-b", "big", cwd=clone)
        (clone / "big.bin").write_bytes(os.urandom(900 * 1024))  # fits alone, not on top of the first
        git("add", ".", cwd=clone)
        git("commit", "-qm", "big", cwd=clone)
        refused = git("push", "origin", "big", cwd=clone, check=False)
        assert refused.returncode != 0 and "[remote rejected]" in refused.stderr
        assert "repository size quota" in refused.stderr
        held = proxy.world.fake.repo(repo.full_name)
        assert gitops.rev(held.path, "refs/heads/big") is None
        assert gitops.rev(held.path, "refs/heads/small") is not None


def test_as_a_github_app_the_proxy_keeps_one_installation_token_while_it_lasts(tmp_path: Path) -> None:
    with FakeGitHub(tmp_path / "github") as fake:
        world = GitHubWorld.create(fake)
        home = tmp_path / "home"
        settings = Settings(home=home, templates_dir=REPO_ROOT / "trial_templates", forge=world.settings())
        store = Store.open(home)
        forge = world.app_forge()
        forge = GitHubForge(forge.settings, forge.credentials, service=settings.service,
                            state_dir=settings.forge_dir / "github")
        app = create_app(settings, store, forge=lambda: forge, sandbox=NoSandbox, watch_deadlines=False)
        with serving(app) as url:
            proxy = Proxied(world, forge, store, settings, url)
            repo, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
            minted = fake.minted_installation_tokens
            clone = tmp_path / "clone"
            git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
            for n in range(3):
                git("commit", "-q", "--allow-empty", "-m", f"work {n}", cwd=clone)
                git("push", "-q", "origin", f"HEAD:refs/heads/work-{n}", cwd=clone)
            assert fake.minted_installation_tokens == minted + 1  # eight requests, one token
            held = fake.repo(repo.full_name)
            assert [e["actor"] for e in gitops.activity(held.path)][-1] == "trial-app[bot]"
        store.close()


def test_a_push_only_github_saw_after_the_deadline_is_late_and_the_forges_word(
        proxy: Proxied, tmp_path: Path) -> None:
    from orchestrator.deadlines import heads_at, late_pushes

    repo, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
    proxy.forge.grant(repo, CANDIDATE)
    proxy.world.accept_invitations()
    clone = tmp_path / "clone"
    git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "work", cwd=clone)
    git("commit", "-q", "--allow-empty", "-m", "in time", cwd=clone)
    git("push", "-q", "origin", "work", cwd=clone)
    in_time = git("rev-parse", "HEAD", cwd=clone).stdout.strip()

    deadline = utcnow()
    time.sleep(1.1)  # push logs keep whole seconds
    git("commit", "-q", "--allow-empty", "-m", "from the laptop, late", cwd=clone)
    direct = proxy.world.git("push", "-q", proxy.world.clone_url(repo.full_name), "HEAD:refs/heads/work",
                             cwd=clone, token=proxy.world.candidate_token)
    assert direct.returncode == 0
    events = proxy.forge.push_events(repo)
    (late,) = late_pushes(events, deadline)
    assert (late["ref"], late["witness"], late["pusher"]) == ("refs/heads/work", "forge", CANDIDATE)
    assert heads_at(events, deadline)["refs/heads/work"] == in_time


def _raw_push(clone: Path, ref: str, caps: str) -> tuple[bytes, bytes]:
    """A receive-pack request body as a hand-written client (curl) would send it: the command
    (with `caps`) and the pack of HEAD over main, split into its two halves."""
    head = git("rev-parse", "HEAD", cwd=clone).stdout.strip()
    pack = subprocess.run(["git", "pack-objects", "--revs", "--stdout", "-q"], cwd=clone, input=b"HEAD\n^origin/main\n",
                          capture_output=True, check=True).stdout
    line = f"{'0' * 40} {head} {ref}\0{caps}\n".encode()
    body = f"{len(line) + 4:04x}".encode() + line + b"0000" + pack
    half = len(body) // 2
    return body[:half], body[half:]


class RawPush:
    """One receive-pack POST to the proxy over a socket of its own, sent in parts at the test's pace."""

    def __init__(self, url: str, repo: RepoRef, token: str) -> None:
        import base64
        import http.client

        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.conn.putrequest("POST", f"/git/{repo.name}.git/git-receive-pack")
        self.conn.putheader("Authorization", "Basic " + base64.b64encode(f"trial:{token}".encode()).decode())
        self.conn.putheader("Content-Type", "application/x-git-receive-pack-request")
        self.conn.putheader("Transfer-Encoding", "chunked")
        self.conn.endheaders()

    def send(self, data: bytes, *, last: bool = False) -> None:
        self.conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" + (b"0\r\n\r\n" if last else b""))

    def answer(self) -> tuple[int, bytes]:
        response = self.conn.getresponse()
        try:
            return response.status, response.read()
        finally:
            self.conn.close()


def _branch_with_blob(clone: Path, branch: str, size: int) -> None:
    git("checkout", "-q", "-B", branch, "origin/main", cwd=clone)
    (clone / f"{branch}.bin").write_bytes(os.urandom(size))
    git("add", ".", cwd=clone)
    git("commit", "-qm", branch, cwd=clone)


def test_a_push_without_report_status_is_refused_so_it_cannot_skip_the_quota(tmp_path: Path) -> None:
    """Without report-status GitHub answers nothing the proxy can read: such a push would land
    uncounted, and push after push would fill the repository past its quota."""
    for proxy in proxied(tmp_path, quota_mb=1.0):
        repo, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
        clone = tmp_path / "clone"
        git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
        _branch_with_blob(clone, "quiet", 300 * 1024)
        first, rest = _raw_push(clone, "refs/heads/quiet", "side-band-64k quiet agent=curl/8")
        push = RawPush(proxy.url, repo, token)
        push.send(first)
        push.send(rest, last=True)
        status, body = push.answer()
        assert status == 403 and b"report-status" in body, (status, body)
        held = proxy.world.fake.repo(repo.full_name)
        assert gitops.rev(held.path, "refs/heads/quiet") is None

        # A real git client asks for report-status and is let through as before.
        git("push", "-q", "origin", "quiet", cwd=clone)
        assert gitops.rev(held.path, "refs/heads/quiet") is not None


def test_two_parallel_pushes_over_the_quota_together_cannot_both_land(tmp_path: Path) -> None:
    """Each push alone fits in what is left; both in flight at once must not each use the whole remainder."""
    for proxy in proxied(tmp_path, quota_mb=1.0):
        repo, token = proxy.launch("tgh000001", "trial-mine", tmp_path)
        clone = tmp_path / "clone"
        git("clone", "-q", proxy.git_url(repo, token), str(clone), cwd=tmp_path)
        bodies = {}
        for branch in ("left", "right"):
            _branch_with_blob(clone, branch, 600 * 1024)
            bodies[branch] = _raw_push(clone, f"refs/heads/{branch}", "report-status side-band-64k agent=git/2")
        pushes = {branch: RawPush(proxy.url, repo, token) for branch in bodies}
        for branch, push in pushes.items():
            push.send(bodies[branch][0])
        time.sleep(0.5)  # both halves are through the proxy before either push ends
        for branch, push in pushes.items():
            push.send(bodies[branch][1], last=True)
        answers = {branch: push.answer() for branch, push in pushes.items()}
        held = proxy.world.fake.repo(repo.full_name)
        landed = {branch for branch in bodies if gitops.rev(held.path, f"refs/heads/{branch}") is not None}
        assert len(landed) == 1, (landed, answers)
        (cut,) = set(bodies) - landed
        assert b"repository size quota" in answers[cut][1], answers[cut]
