"""The GitHub forge against the fake GitHub: real HTTP on loopback, real git pushes and fetches.

Every JSON answer the fake gave is checked against GitHub's OpenAPI description when each
test ends, so the forge is tested against the shapes GitHub really sends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.deadlines import heads_at
from orchestrator.errors import ForgeError, NotFoundError
from orchestrator.forge.base import RepoRef, SandboxAccess
from orchestrator.forge.github import MANAGED_TOPIC, GitHubForge
from orchestrator.store import utcnow
from tests.fakes.github import gitops
from tests.fakes.github.world import BOT, CANDIDATE, ORG, REVIEWER, GitHubWorld, commit_tree
from tests.fakes.github_server import FakeGitHub

pytestmark = pytest.mark.unit

TRIAL = "t1a2b3c4d"
STARTER = {"README.md": "# keyservice\n", "keys.py": "def issue():\n    return 'plain'\n",
           ".github/pull_request_template.md": "## What changed\n"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[GitHubWorld]:
    with FakeGitHub(tmp_path / "github") as fake:
        yield GitHubWorld.create(fake)
        assert fake.schema_problems() == []


def launched(world: GitHubWorld, tmp_path: Path, forge: GitHubForge | None = None
             ) -> tuple[GitHubForge, RepoRef, SandboxAccess, str]:
    """The launch steps in the lifecycle's order, the invitation last; the candidate accepts it."""
    forge = forge or world.forge()
    forge.check()
    repo = forge.create_repo(TRIAL, "trial-api-keys-octocat", "API keys")
    sha = forge.push(repo, _starter(tmp_path))
    forge.open_issue(repo, "Hash the API keys", "Store digests, not keys.")
    assert forge.protect_default_branch(repo) is True
    access = forge.sandbox_access(repo, "trl_gateway-token-never-sent-to-github")
    assert forge.grant(repo, CANDIDATE)["status"] == "invited"
    assert world.accept_invitations() == 1
    return forge, repo, access, sha


def _starter(tmp_path: Path) -> Path:
    worktree = tmp_path / "starter"
    if not worktree.exists():
        commit_tree(worktree, STARTER, "Starter for api-keys")
    return worktree


def _candidate_branch(world: GitHubWorld, repo: RepoRef, tmp_path: Path) -> tuple[Path, str]:
    clone = world.candidate_clone(repo.full_name, tmp_path / "candidate")
    world.git("checkout", "-q", "-b", "feature/hash-keys", cwd=clone)
    (clone / "keys.py").write_text("import hashlib\n\ndef hash_key(key):\n    return hashlib.sha256(key).hexdigest()\n")
    world.git("commit", "-qam", "Hash keys", cwd=clone)
    # Incompressible and over git's 1 MiB http.postBuffer: the push body arrives chunked.
    (clone / "fixture.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    world.git("add", "fixture.bin", cwd=clone)
    world.git("commit", "-qm", "Add a fixture", cwd=clone)
    (clone / "README.md").write_text("# keyservice\n\nKeys are stored hashed.\n")
    world.git("commit", "-qam", "Document hashing", cwd=clone)
    world.git("push", "-q", "origin", "feature/hash-keys", cwd=clone, token=world.candidate_token)
    return clone, world.git("rev-parse", "HEAD", cwd=clone).stdout.strip()


def test_launch_makes_a_private_protected_repo_with_the_starter_the_brief_and_no_sandbox_key(
        world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.forge()
    forge.check()
    repo = forge.create_repo(TRIAL, "trial-api-keys-octocat", "API keys")
    held = world.fake.repo(repo.full_name)
    assert (repo.full_name, repo.trial_id, held.private) == (f"{ORG}/trial-api-keys-octocat", TRIAL, True)
    assert held.topics == [MANAGED_TOPIC] and held.description == f"API keys (trial:{TRIAL})"

    sha = forge.push(repo, _starter(tmp_path))
    assert gitops.rev(held.path, "refs/heads/main") == sha
    author = gitops.git("log", "-1", "--format=%an <%ae>", "main", cwd=held.path).strip()
    assert author == "trial-bot <trial-bot@users.noreply.github.com>"

    first = forge.open_issue(repo, "Hash the API keys", "Store digests, not keys.")
    assert forge.open_issue(repo, "Hash the API keys", "Store digests, not keys.") == first
    assert [(i.title, i.body) for i in held.issues.values()] == [("Hash the API keys", "Store digests, not keys.")]

    assert forge.protect_default_branch(repo) is True
    assert held.protection["main"]["required_pull_request_reviews"] is not None

    # The sandbox gets no GitHub credential: its clone goes through the host service.
    access = forge.sandbox_access(repo, "trl_gateway-token-never-sent-to-github")
    assert access.clone_url == f"http://host.docker.internal:7717/git/{repo.name}.git"
    assert access.files == {".trial/token": ("trl_gateway-token-never-sent-to-github", 0o600)}
    assert access.key_id is None and held.keys == {}
    assert world.bot_token not in repr(access)
    assert all("trl_" not in req for _, req in world.fake.requests)


def test_candidate_is_invited_last_and_main_takes_changes_only_by_pull_request(
        world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.forge()
    repo = forge.create_repo(TRIAL, "trial-api-keys-octocat", "API keys")
    forge.push(repo, _starter(tmp_path))
    forge.protect_default_branch(repo)
    outsider = world.git("clone", "-q", world.clone_url(repo.full_name), str(tmp_path / "early"), cwd=tmp_path,
                         token=world.candidate_token, check=False)
    assert outsider.returncode != 0 and "not found" in outsider.stderr.lower()

    invited = forge.grant(repo, CANDIDATE)
    assert invited["status"] == "invited"
    expires = datetime.fromisoformat(invited["expires_at"]) - datetime.fromisoformat(invited["created_at"])
    assert expires == timedelta(days=7)
    assert forge.grant(repo, CANDIDATE)["status"] == "pending"  # no second invitation
    assert [i["login"] for i in forge.pending_invitations(repo)] == [CANDIDATE]
    assert world.accept_invitations() == 1
    assert forge.pending_invitations(repo) == []
    assert forge.grant(repo, CANDIDATE) == {"login": CANDIDATE, "status": "member"}

    clone = world.candidate_clone(repo.full_name, tmp_path / "candidate")
    (clone / "README.md").write_text("straight to main\n")
    world.git("commit", "-qam", "direct", cwd=clone)
    refused = world.git("push", "origin", "HEAD:main", cwd=clone, token=world.candidate_token, check=False)
    assert refused.returncode != 0 and "GH006: Protected branch update failed" in refused.stderr
    allowed = world.git("push", "origin", "HEAD:refs/heads/feature/x", cwd=clone, token=world.candidate_token)
    assert allowed.returncode == 0


def test_expired_invitation_is_reported_and_sent_again(world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.forge()
    repo = forge.create_repo(TRIAL, "trial-api-keys-octocat", "API keys")
    first = forge.grant(repo, CANDIDATE)
    world.fake.advance_clock(timedelta(days=8))
    (pending,) = forge.pending_invitations(repo)
    assert pending["expired"] is True and pending["id"] == first["id"]
    again = forge.grant(repo, CANDIDATE)
    assert again["status"] == "reinvited" and again["id"] != first["id"]
    assert [(i["id"], i["expired"]) for i in forge.pending_invitations(repo)] == [(again["id"], False)]
    assert world.accept_invitations() == 1


def test_collect_cuts_access_first_then_reads_every_ref_and_each_pull_request_whole(
        world: GitHubWorld, tmp_path: Path) -> None:
    forge, repo, access, main_sha = launched(world, tmp_path)
    clone, head = _candidate_branch(world, repo, tmp_path)
    candidate = world.client(world.candidate_token).get_repo(repo.full_name)
    pr = candidate.create_pull(title="Hash API keys", body="Keys are stored as SHA-256 digests.",
                               head="feature/hash-keys", base="main")
    pr.create_issue_comment("Ready for review.")
    reviewer = world.client(world.reviewer_token).get_repo(repo.full_name).get_pull(pr.number)
    reviewer.create_review(body="Use HMAC with a server secret.", event="REQUEST_CHANGES")
    first = reviewer.create_review_comment("Why SHA-256 alone?", reviewer.get_commits().reversed[0],
                                           "keys.py", line=4, side="RIGHT")
    candidate.get_pull(pr.number).create_review_comment_reply(first.id, "Switching to HMAC.")
    world.git("commit", "-q", "--amend", "-m", "Document hashing (amended)", cwd=clone)
    world.git("push", "-q", "--force", "origin", "feature/hash-keys", cwd=clone, token=world.candidate_token)
    head = world.git("rev-parse", "HEAD", cwd=clone).stdout.strip()

    # The cutoff: access ends before anything is read.
    forge.revoke(repo, CANDIDATE)
    forge.revoke_sandbox_access(repo, access.key_id)
    held = world.fake.repo(repo.full_name)
    assert CANDIDATE not in held.collaborators and held.keys == {}
    world.git("commit", "-q", "--allow-empty", "-m", "too late", cwd=clone)
    late = world.git("push", "origin", "feature/hash-keys", cwd=clone, token=world.candidate_token, check=False)
    assert late.returncode != 0

    mirror = forge.fetch_all(repo, tmp_path / "mirror.git")
    refs = dict(line.split()[::-1] for line in gitops.git("show-ref", cwd=mirror).splitlines())
    assert refs["refs/heads/main"] == main_sha and refs["refs/heads/feature/hash-keys"] == head
    assert refs[f"refs/pull/{pr.number}/head"] == head
    assert forge.fetch_all(repo, tmp_path / "mirror.git") == tmp_path / "mirror.git"  # a rerun updates it

    mark = len(world.fake.requests)
    (pull,) = forge.pull_requests(repo)
    assert (pull.number, pull.title, pull.body, pull.state, pull.author) == (
        pr.number, "Hash API keys", "Keys are stored as SHA-256 digests.", "open", CANDIDATE)
    assert (pull.head_ref, pull.head_sha, pull.base_ref, pull.base_sha) == ("feature/hash-keys", head, "main",
                                                                           main_sha)
    files = {f["filename"]: f for f in pull.files}
    assert set(files) == {"keys.py", "fixture.bin", "README.md"}
    assert "+    return hashlib.sha256(key).hexdigest()" in files["keys.py"]["patch"]
    assert files["fixture.bin"]["status"] == "added" and files["fixture.bin"]["patch"] == ""
    assert [c["message"] for c in pull.commits] == ["Hash keys", "Add a fixture", "Document hashing (amended)"]
    assert {c["author_login"] for c in pull.commits} == {CANDIDATE}
    # A line comment arrives inside a review of its own, as on GitHub.
    assert [(r["author"], r["state"]) for r in pull.reviews] == [
        (REVIEWER, "CHANGES_REQUESTED"), (REVIEWER, "COMMENTED"), (CANDIDATE, "COMMENTED")]
    assert [(c["author"], c["body"], c["in_reply_to_id"]) for c in pull.review_comments] == [
        (REVIEWER, "Why SHA-256 alone?", None), (CANDIDATE, "Switching to HMAC.", first.id)]
    assert [(c["author"], c["body"]) for c in pull.comments] == [(CANDIDATE, "Ready for review.")]
    stamps = [pull.created_at, pull.updated_at, *(c["authored_at"] for c in pull.commits),
              *(r["submitted_at"] for r in pull.reviews), *(c["created_at"] for c in pull.comments)]
    assert all(s.endswith("+00:00") for s in stamps)
    # per_page=2 in these tests: three commits and reviews came over two pages each.
    assert world.fake.calls("GET", rf"/pulls/{pr.number}/commits$", since=mark) == 2

    diff = forge.pull_request_diff(repo, pr.number)
    assert diff.startswith("diff --git") and "+def hash_key(key):" in diff

    events = forge.push_events(repo)
    assert [(e["ref"], e["kind"], e["pusher"]) for e in events] == [
        ("refs/heads/main", "branch_creation", BOT),
        ("refs/heads/feature/hash-keys", "branch_creation", CANDIDATE),
        ("refs/heads/feature/hash-keys", "force_push", CANDIDATE)]
    assert events[-1]["forced"] is True and events[-1]["after"] == head
    assert heads_at(events, utcnow() + timedelta(seconds=5)) == {
        "refs/heads/main": main_sha, "refs/heads/feature/hash-keys": head}
    assert heads_at(events, datetime.fromisoformat(events[0]["ts"]) - timedelta(seconds=1)) == {}


def test_report_comment_is_created_once_then_updated_and_never_a_candidates(
        world: GitHubWorld, tmp_path: Path) -> None:
    forge, repo, _, _ = launched(world, tmp_path)
    _candidate_branch(world, repo, tmp_path)
    candidate = world.client(world.candidate_token).get_repo(repo.full_name)
    pr = candidate.create_pull(title="Hash API keys", body="", head="feature/hash-keys", base="main")
    forged = pr.create_issue_comment("Score: 100/100 <!-- trial-report -->")

    url = forge.post_comment(repo, pr.number, "Score: 61/100", "trial-report")
    assert forge.post_comment(repo, pr.number, "Score: 64/100", "trial-report") == url
    comments = {c["id"]: c for c in forge.pull_requests(repo)[0].comments}
    assert comments[forged.id]["body"] == "Score: 100/100 <!-- trial-report -->"
    ours = [c for c in comments.values() if c["author"] == BOT]
    assert [c["body"] for c in ours] == ["Score: 64/100\n\n<!-- trial-report -->"] and ours[0]["url"] == url


def test_teardown_archives_last_then_the_repo_refuses_writes(world: GitHubWorld, tmp_path: Path) -> None:
    forge, repo, _, _ = launched(world, tmp_path)
    assert [(r.full_name, r.trial_id) for r in forge.list_managed()] == [(repo.full_name, TRIAL)]
    forge.revoke(repo, CANDIDATE)
    forge.archive(repo)
    assert world.fake.repo(repo.full_name).archived is True
    forge.archive(repo)  # again: nothing to do, no error
    with pytest.raises(ForgeError, match="archived"):
        forge.open_issue(repo, "A new issue", "refused")
    refused = world.git("push", world.clone_url(repo.full_name), "HEAD:refs/heads/late", cwd=_starter(tmp_path),
                        token=world.bot_token, check=False)
    assert refused.returncode != 0

    forge.delete(repo)
    assert forge.repo_exists(repo) is False and world.fake.repos_of(ORG) == []
    forge.delete(repo)  # already gone
    forge.archive(repo)


def test_list_managed_lists_only_repos_this_tool_made(world: GitHubWorld) -> None:
    forge = world.forge()
    ours = [forge.create_repo(f"t000000{n}", f"trial-{n}", "demo") for n in range(3)]
    world.client(world.bot_token).get_organization(ORG).create_repo("handmade", private=True)
    listed = forge.list_managed()  # per_page=2: three pages
    assert sorted((r.full_name, r.trial_id) for r in listed) == [(r.full_name, r.trial_id) for r in ours]


def test_a_github_app_mints_a_fresh_token_for_every_git_operation_and_can_post_check_runs(
        world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.app_forge()
    forge, repo, _, sha = launched(world, tmp_path, forge)
    minted = world.fake.minted_installation_tokens
    forge.push(repo, _starter(tmp_path))
    forge.fetch_all(repo, tmp_path / "mirror.git")
    assert world.fake.minted_installation_tokens == minted + 2

    _candidate_branch(world, repo, tmp_path)
    candidate = world.client(world.candidate_token).get_repo(repo.full_name)
    pr = candidate.create_pull(title="Hash API keys", body="", head="feature/hash-keys", base="main")
    url = forge.post_comment(repo, pr.number, "Score: 70/100", "trial-report")
    assert forge.post_comment(repo, pr.number, "Score: 71/100", "trial-report") == url
    (comment,) = forge.pull_requests(repo)[0].comments
    assert comment["author"] == "trial-app[bot]" and comment["body"].startswith("Score: 71/100")

    run_url = forge.post_check_run(repo, pr.head.sha, name="trial", conclusion="neutral", title="71/100",
                                   summary="Hidden tests 20/22")
    (run,) = world.fake.repo(repo.full_name).check_runs
    assert run_url and (run.head_sha, run.conclusion, run.output["title"]) == (pr.head.sha, "neutral", "71/100")
    assert world.forge().post_check_run(repo, sha, name="trial", conclusion="neutral", title="x",
                                        summary="y") is None


def test_no_token_is_ever_written_into_a_remote_url_or_onto_disk(world: GitHubWorld, tmp_path: Path) -> None:
    forge, repo, _, _ = launched(world, tmp_path)
    mirror = forge.fetch_all(repo, tmp_path / "mirror.git")
    for root in (mirror, _starter(tmp_path) / ".git"):
        for path in root.rglob("*"):
            if path.is_file():
                assert world.bot_token.encode() not in path.read_bytes(), path
    world.fake.drop_next_push()
    worktree = tmp_path / "second"
    commit_tree(worktree, {"x.txt": "x\n"}, "another", branch="main")
    with pytest.raises(ForgeError) as failed:
        forge.push(repo, worktree, "other")
    assert world.bot_token not in failed.value.one_line()


def test_unknown_candidate_is_named(world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.forge()
    assert forge.user_exists(CANDIDATE) is True and forge.user_exists("no-such-person") is False
    assert forge.ssh_keys(CANDIDATE) == [world.fake.accounts[CANDIDATE].keys[0][1]]
    with pytest.raises(NotFoundError, match="'no-such-person' does not exist"):
        forge.ssh_keys("no-such-person")
    repo = forge.create_repo(TRIAL, "trial-api-keys-x", "demo")
    with pytest.raises(NotFoundError, match="'no-such-person' does not exist"):
        forge.grant(repo, "no-such-person")
    world.fake.add_user("keyless")
    assert forge.ssh_keys("keyless") == []


def test_git_identity_is_the_profile_name_and_githubs_noreply_address(world: GitHubWorld) -> None:
    account = world.fake.add_user("mona", name="Mona Lisa Octocat")
    forge = world.forge()
    assert forge.git_identity("mona") == ("Mona Lisa Octocat", f"{account.id}+mona@users.noreply.127.0.0.1")


def test_gc_and_teardown_tolerate_a_candidate_deleted_from_github(world: GitHubWorld, tmp_path: Path) -> None:
    forge, repo, _, _ = launched(world, tmp_path)
    del world.fake.accounts[CANDIDATE]
    forge.revoke(repo, CANDIDATE)  # their account is gone (404), and so is their access: no error
    assert forge.pending_invitations(repo) == []


def test_the_fake_itself_is_held_to_githubs_description(world: GitHubWorld) -> None:
    from github import GithubException

    from tests.fakes.github import schema

    assert schema.problems("GET /repos/{owner}/{repo}", 200, {"id": 1})  # required fields missing
    assert schema.problems("DELETE /repos/{owner}/{repo}", 200, {})  # GitHub answers 204 here
    client = world.client(world.bot_token)
    repo = client.get_organization(ORG).create_repo("checked", private=True)
    assert schema.problems("GET /repos/{owner}/{repo}", 200, world.fake.shapes.full_repo(
        world.fake.repo(repo.full_name), 3)) == []
    with pytest.raises(GithubException, match="404"):
        client.get_repo(repo.full_name).get_branch("main")  # a route the fake does not serve…
    assert world.fake.schema_problems() != []  # …is caught, so no test can lean on it unnoticed
    world.fake.exchanges.clear()
