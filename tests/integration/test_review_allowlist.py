"""Only reviewers score: `/score` lines on a GitHub PR (the fake GitHub over loopback, read by the real
GitHub forge) count from the repository's admins and maintainers; a workflow's bot, a collaborator
with write access and the candidate are listed as ignored, with the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from graders.base import GradeContext
from graders.runner import grade_bundle
from orchestrator.catalog import load_template
from orchestrator.cli.main import cli
from orchestrator.config import load_settings
from orchestrator.evidence.bundle import Bundle
from orchestrator.forge.base import RepoRef
from orchestrator.forge.github import GitHubForge
from orchestrator.report.scores import trial_scores
from orchestrator.store import Store, Trial, utcnow
from tests.fakes.github.world import CANDIDATE, ORG, REVIEWER, GitHubWorld, commit_tree
from tests.fakes.github_server import FakeGitHub
from tests.fixtures.bundle_builder import MINI_TEMPLATE, careful_session

pytestmark = pytest.mark.unit

TRIAL = "t-careful"
ACTIONS_BOT = "github-actions[bot]"
MAINTAINER = "mona"
WRITER = "wanda"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[GitHubWorld]:
    with FakeGitHub(tmp_path / "github") as fake:
        yield GitHubWorld.create(fake)
        assert fake.schema_problems() == []


def _pull_request_with_scores(world: GitHubWorld, forge: GitHubForge, tmp_path: Path) -> RepoRef:
    """A trial repo with the candidate's PR and `/score` lines from everyone who can comment on it."""
    repo = forge.create_repo(TRIAL, "trial-mini-carol", "mini")
    forge.push(repo, commit_tree(tmp_path / "starter", {"README.md": "# mini\n"}, "Starter") and
               tmp_path / "starter")
    forge.grant(repo, CANDIDATE)
    world.accept_invitations()
    fake = world.fake
    for login, role in ((MAINTAINER, "maintain"), (WRITER, "write"), (ACTIONS_BOT, "write")):
        fake.add_user(login, kind="Bot" if login.endswith("[bot]") else "User")
        fake.repo(repo.full_name).collaborators[login] = role
    clone = world.candidate_clone(repo.full_name, tmp_path / "clone")
    world.git("checkout", "-q", "-b", "feature", cwd=clone)
    (clone / "calc.py").write_text("x = 1\n")
    world.git("add", "calc.py", cwd=clone)
    world.git("commit", "-q", "-m", "Add calc", cwd=clone)
    world.git("push", "-q", "origin", "feature", cwd=clone, token=world.candidate_token)
    as_candidate = world.client(world.candidate_token).get_repo(repo.full_name)
    pr = as_candidate.create_pull(title="Add calc", body="", head="feature", base="main")
    said = [(world.candidate_token, "/score overall 4 I did great"),
            (fake.add_token(ACTIONS_BOT), "CI passed.\n/score overall 4 all checks green"),
            (fake.add_token(WRITER), "/score steering 4 looks fine to me"),
            (world.reviewer_token, "/score steering 2 missed the planted defect"),
            (fake.add_token(MAINTAINER), "/score spec 3 clear acceptance criteria")]
    for token, body in said:
        world.client(token).get_repo(repo.full_name).get_pull(pr.number).create_issue_comment(body)
    return repo


def _graded_trial(repo: RepoRef, tmp_path: Path) -> Store:
    settings = load_settings()
    store = Store.open(settings.home)
    now = utcnow()
    store.create_trial(Trial(id=TRIAL, template="mini_template", candidate=CANDIDATE, agent="claude-code",
                             state="graded", created_at=now, updated_at=now, hours=1.0, budget_usd=1.0,
                             data={"repo": repo.to_json()}))
    bundle_dir = settings.evidence_dir / TRIAL
    bundle_dir.parent.mkdir(parents=True, exist_ok=True)
    careful_session(tmp_path / "session").rename(bundle_dir)
    grade_bundle(Bundle(bundle_dir), load_template(MINI_TEMPLATE), GradeContext())
    return store


def test_only_admins_and_maintainers_score_on_github(world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.forge()
    repo = _pull_request_with_scores(world, forge, tmp_path)
    assert forge.maintainers(repo) == sorted(["trial-bot", REVIEWER, MAINTAINER])  # org owners are admins
    store = _graded_trial(repo, tmp_path)
    scores = trial_scores(load_settings(), store, TRIAL, forge)
    counted = sorted((r.by, r.key, r.score) for r in scores.rows if r.source == "reviewer")
    assert counted == [(REVIEWER, "steering", 2.0), (MAINTAINER, "spec_quality", 3.0)]
    reasons = {note.by: note.reason for note in scores.ignored}
    assert reasons == {CANDIDATE: "the candidate",
                       ACTIONS_BOT: f"a bot, not a reviewer (admins and maintainers of {repo.full_name})",
                       WRITER: f"not a reviewer (admins and maintainers of {repo.full_name})"}
    store.close()


def test_the_candidate_never_scores_even_as_an_admin(world: GitHubWorld, tmp_path: Path) -> None:
    forge = world.forge()
    repo = _pull_request_with_scores(world, forge, tmp_path)
    world.fake.repo(repo.full_name).collaborators[CANDIDATE] = "admin"
    assert CANDIDATE in forge.maintainers(repo)
    store = _graded_trial(repo, tmp_path)
    scores = trial_scores(load_settings(), store, TRIAL, forge)
    assert CANDIDATE not in {r.by for r in scores.rows}
    assert [n.reason for n in scores.ignored if n.by == CANDIDATE] == ["the candidate"]
    store.close()


def test_trial_scores_lists_the_ignored_with_reasons(world: GitHubWorld, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _pull_request_with_scores(world, world.forge(), tmp_path)
    _graded_trial(repo, tmp_path).close()
    monkeypatch.setenv("TRIAL_FORGE_KIND", "github")
    monkeypatch.setenv("TRIAL_FORGE_ORG", ORG)
    monkeypatch.setenv("TRIAL_FORGE_API_URL", world.fake.api_url)
    monkeypatch.setenv("TRIAL_FORGE_THROTTLE", "false")
    monkeypatch.setenv("GITHUB_TOKEN", world.bot_token)
    runner = CliRunner()
    result = runner.invoke(cli, ["scores", TRIAL, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [data] = json.loads(result.output)["data"]
    assert {(i["by"], i["reason"].split(" (")[0]) for i in data["ignored"]} == {
        (CANDIDATE, "the candidate"), (ACTIONS_BOT, "a bot, not a reviewer"), (WRITER, "not a reviewer")}
    assert data["reviewers"]["logins"] == sorted(["trial-bot", REVIEWER.lower(), MAINTAINER])
    text = runner.invoke(cli, ["scores", TRIAL], catch_exceptions=False).output
    assert f"ignored: {ACTIONS_BOT} (a bot, not a reviewer" in text and f"{REVIEWER}: steering 2/4" in text
    # Offline, GitHub roles cannot be read: nobody's line counts, and the output says what to do.
    offline = runner.invoke(cli, ["scores", TRIAL, "--offline", "--json"], catch_exceptions=False)
    [data] = json.loads(offline.output)["data"]
    assert not [r for r in data["rows"] if r["source"] == "reviewer"]
