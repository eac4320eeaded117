"""Reviewers' scores, gathered from the PR, beside the automatic ones.

Reviewers grade in GitHub: in any comment or review on the candidate's PR, a line

    /score <key> <value>[/<max>] [reason]

scores one rubric line, where <key> is a grader name from the report (`steering`,
`spec_quality`, …), `overall`, or a short form (`spec`, `tests`, `pr`); <max> defaults to 4.
A reviewer's latest score for a key wins.

Only reviewers score: the logins in `[review] reviewers`, or by default the repository's
admins and maintainers on GitHub (read from GitHub when the scores are gathered) and the
operator on the local forge. Anyone else who can comment (the candidate, a workflow
commenting as `github-actions[bot]`, an outside contributor) is listed as ignored with the
reason, and so are unknown keys and values above their maximum, so a typo is visible. Our
own report comment is skipped.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from orchestrator.config import Settings
from orchestrator.errors import StateError
from orchestrator.evidence.bundle import Bundle
from orchestrator.forge.base import Forge, RepoRef
from orchestrator.report.model import MARKER
from orchestrator.report.views import REVIEWER_ALIASES
from orchestrator.store import Store

DEFAULT_MAX = 4.0
SCORE_LINE = re.compile(r"^[ \t>]*/score[ \t]+(?P<key>[A-Za-z][\w.-]*)[ \t]+(?P<value>\d+(?:\.\d+)?)"
                        r"(?:[ \t]*/[ \t]*(?P<max>\d+(?:\.\d+)?))?(?:[ \t]+(?P<reason>[^\n]*?))?[ \t]*$", re.M)
CSV_FIELDS = ("trial_id", "candidate", "template", "source", "by", "key", "score", "max", "fraction", "reason",
              "at", "url")


@dataclass(frozen=True)
class ScoreRow:
    trial_id: str
    candidate: str
    template: str
    source: Literal["auto", "reviewer"]
    by: str
    """The reviewer's login, or `trial` for automatic scores."""
    key: str
    score: float
    max: float
    reason: str = ""
    at: str = ""
    url: str = ""

    @property
    def fraction(self) -> float:
        return self.score / self.max if self.max else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "fraction": round(self.fraction, 4)}


@dataclass(frozen=True)
class Reviewers:
    """Who may score a trial, and where that list came from (shown beside every refusal)."""

    logins: frozenset[str] | None
    """Lower-cased logins; None when they could not be known (GitHub roles, offline)."""
    source: str
    explicit: bool = False
    """Named in the settings: then even a `…[bot]` login counts, as the operator said so."""

    @classmethod
    def named(cls, logins: list[str] | tuple[str, ...] | set[str], source: str, *,
              explicit: bool = False) -> Reviewers:
        return cls(frozenset(login.strip().lower() for login in logins if login.strip()), source, explicit)

    def refusal(self, login: str) -> str | None:
        """Why this login's scores do not count, or None when they do."""
        if self.logins is None:
            return f"reviewer rights unknown: {self.source}"
        if login.lower().endswith("[bot]") and not self.explicit:
            return f"a bot, not a reviewer ({self.source})"
        if login.lower() not in self.logins:
            return f"not a reviewer ({self.source})"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "logins": sorted(self.logins) if self.logins is not None else None}


@dataclass(frozen=True)
class Ignored:
    by: str
    reason: str
    line: str
    url: str = ""

    def __str__(self) -> str:
        return f"{self.by} ({self.reason}): {self.line}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialScores:
    trial_id: str
    candidate: str
    template: str
    rows: list[ScoreRow] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    reviewers: Reviewers | None = None

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per key: the automatic fraction, the reviewers' mean fraction and how many scored it."""
        keys = list(dict.fromkeys(row.key for row in self.rows))
        table: dict[str, dict[str, Any]] = {}
        for key in keys:
            auto = next((r.fraction for r in self.rows if r.key == key and r.source == "auto"), None)
            human = [r.fraction for r in self.rows if r.key == key and r.source == "reviewer"]
            table[key] = {"auto": round(auto, 4) if auto is not None else None,
                          "reviewers": round(sum(human) / len(human), 4) if human else None,
                          "reviewer_count": len(human)}
        return table

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "candidate": self.candidate, "template": self.template,
                "summary": self.summary(), "rows": [r.to_json() for r in self.rows],
                "ignored": [i.to_json() for i in self.ignored],
                "reviewers": self.reviewers.to_json() if self.reviewers else None}


def automatic_rows(report: dict[str, Any]) -> list[ScoreRow]:
    trial = report.get("trial") or {}
    ident = (str(trial.get("id", "")), str(trial.get("candidate", "")), str(trial.get("template", "")))
    rows = [ScoreRow(*ident, source="auto", by="trial", key=str(g["grader"]), score=float(g.get("score", 0)),
                     max=float(g.get("max", 0)), reason=str(g.get("summary", ""))[:300])
            for g in report.get("graders") or [] if g.get("status") == "ok" and g.get("max")]
    overall = (report.get("overall") or {}).get("fraction")
    if isinstance(overall, int | float):
        rows.append(ScoreRow(*ident, source="auto", by="trial", key="overall", score=round(float(overall), 4),
                             max=1.0, reason="weighted rubric"))
    return rows


def _items(pull: dict[str, Any]) -> list[dict[str, Any]]:
    """Every comment-like thing on a PR with who wrote it, when, and where."""
    found = []
    for kind in ("comments", "review_comments", "reviews"):
        for item in pull.get(kind) or []:
            found.append({"author": str(item.get("author") or ""), "body": str(item.get("body") or ""),
                          "at": str(item.get("updated_at") or item.get("submitted_at") or item.get("created_at") or ""),
                          "url": str(item.get("url") or pull.get("url") or "")})
    return sorted(found, key=lambda item: item["at"])


def reviewer_rows(report: dict[str, Any], pulls: list[dict[str, Any]], candidate: str,
                  reviewers: Reviewers) -> tuple[list[ScoreRow], list[Ignored]]:
    trial = report.get("trial") or {}
    ident = (str(trial.get("id", "")), candidate, str(trial.get("template", "")))
    keys = {str(g["grader"]) for g in report.get("graders") or []} | {"overall"}
    latest: dict[tuple[str, str], ScoreRow] = {}
    ignored: list[Ignored] = []
    for pull in pulls:
        for item in _items(pull):
            author = item["author"]
            if MARKER in item["body"] or not author:
                continue
            for match in SCORE_LINE.finditer(item["body"]):
                line = match.group(0).strip()
                # The candidate never scores their own trial, whatever the settings or their role say.
                refusal = "the candidate" if author.lower() == candidate.lower() else reviewers.refusal(author)
                if refusal:
                    ignored.append(Ignored(author, refusal, line, item["url"]))
                    continue
                key = REVIEWER_ALIASES.get(match.group("key"), match.group("key"))
                value = float(match.group("value"))
                maximum = float(match.group("max") or DEFAULT_MAX)
                if key not in keys:
                    ignored.append(Ignored(author, f"unknown key '{match.group('key')}'", line, item["url"]))
                elif maximum <= 0 or value > maximum:
                    ignored.append(Ignored(author, f"{value:g} is above the maximum {maximum:g}", line, item["url"]))
                else:
                    latest[(author, key)] = ScoreRow(*ident, source="reviewer", by=author, key=key, score=value,
                                                     max=maximum, reason=(match.group("reason") or "").strip(),
                                                     at=item["at"], url=item["url"])
    return sorted(latest.values(), key=lambda r: (r.key, r.by)), ignored


def gather(report: dict[str, Any], pulls: list[dict[str, Any]], reviewers: Reviewers,
           candidate: str | None = None) -> TrialScores:
    trial = report.get("trial") or {}
    who = candidate or str(trial.get("candidate", ""))
    human, ignored = reviewer_rows(report, pulls, who, reviewers)
    return TrialScores(str(trial.get("id", "")), who, str(trial.get("template", "")),
                       automatic_rows(report) + human, ignored, reviewers)


def reviewers_for(settings: Settings, repo: dict[str, Any] | None, forge: Forge | None) -> Reviewers:
    """The allowlist: `[review] reviewers`, else GitHub's admins and maintainers, else the local operator."""
    if settings.review.reviewers:
        return Reviewers.named(settings.review.reviewers, "[review] reviewers in the settings", explicit=True)
    if isinstance(repo, dict) and repo.get("forge") == "github":
        full_name = str(repo.get("full_name", ""))
        lookup = getattr(forge, "maintainers", None) if forge is not None else None
        if not callable(lookup):
            return Reviewers(None, f"the admins and maintainers of {full_name} are read from GitHub, not "
                                   "offline; drop --offline or set [review] reviewers")
        return Reviewers.named(lookup(RepoRef.from_json(repo)), f"admins and maintainers of {full_name}")
    operator = settings.review.operator or _os_user()
    return Reviewers.named([operator], f"the operator '{operator}' on the local forge; others: [review] reviewers")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER and no passwd entry (a bare container)
        return "operator"


def trial_scores(settings: Settings, store: Store, trial_id: str, forge: Forge | None) -> TrialScores:
    """Scores of one graded trial; PR comments fresh from the forge, or from the bundle when forge is None."""
    trial = store.get_trial(trial_id)
    bundle = Bundle(settings.evidence_dir / trial.id)
    path = bundle.path / "report.json"
    if not path.is_file():
        raise StateError(f"trial {trial.id} has no report.json yet", f"run `trial grade {trial.id}` first")
    report = json.loads(path.read_text())
    repo = trial.data.get("repo")
    if forge is not None and isinstance(repo, dict):
        pulls = [pull.to_json() for pull in forge.pull_requests(RepoRef.from_json(repo))]
    else:
        pulls = bundle.pulls()
    return gather(report, pulls, reviewers_for(settings, repo, forge), trial.candidate)


def graded_trial_ids(settings: Settings, store: Store) -> list[str]:
    return [t.id for t in store.list_trials() if (settings.evidence_dir / t.id / "report.json").is_file()]


def to_csv(all_scores: list[TrialScores]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for scores in all_scores:
        for row in scores.rows:
            data = row.to_json()
            writer.writerow({name: data[name] for name in CSV_FIELDS})
    return buffer.getvalue()
