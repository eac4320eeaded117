"""The calibration corpus: sessions of known, ordered quality, played through the real product.

Each session (calibration/sessions/NAME.toml) is a scripted model (`[[step]]`) and a scripted
candidate (`[[candidate]]`) in the format of orchestrator/gateway/scripted.py and
orchestrator/candidate_script.py. calibration/manifest.toml gives every session its rank in
the known order (1 = best; equal ranks are ties), its agent and whether it is held out.

Playing a session is what an operator and a candidate would do: `lifecycle.launch` with the
agent on `script:SESSION`, `candidate_script.play` (prompts through the agent's own CLI
inside the sandbox, shell commands as the candidate), `lifecycle.collect`,
`grading.grade`, `lifecycle.teardown`. The agent's file contents come from the template's
reference solution and from variants of it (calibration/variants.toml: a wrong primitive, a
missed defect), laid out beside a copy of the session as the scripted model expects.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
TEMPLATE = "api-keys"
GRADERS = ("hidden_tests", "spec_quality", "steering", "pull_request", "commits")


@dataclass(frozen=True)
class Entry:
    name: str
    rank: float
    agent: str
    held_out: bool
    archetype: str

    @property
    def path(self) -> Path:
        return ROOT / "sessions" / f"{self.name}.toml"


@dataclass
class Played:
    entry: Entry
    trial_id: str
    bundle: Path
    scores: dict[str, float | None]
    """'total' and each grader's fraction (None: not scored)."""
    judged: dict[str, float | None] = field(default_factory=dict)
    """The same with the LLM judge (through the scripted model), when it ran."""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"session": self.entry.name, "rank": self.entry.rank, "agent": self.entry.agent,
                "held_out": self.entry.held_out, "trial_id": self.trial_id, "bundle": str(self.bundle),
                "scores": self.scores, "judged": self.judged, "seconds": round(self.seconds, 1)}


def load_manifest(path: Path = ROOT / "manifest.toml") -> list[Entry]:
    raw = tomllib.loads(path.read_text())
    entries = [Entry(name=s["name"], rank=float(s["rank"]), agent=s.get("agent", "claude-code"),
                     held_out=bool(s.get("held_out", False)), archetype=s.get("archetype", ""))
               for s in raw["session"]]
    missing = [e.name for e in entries if not e.path.is_file()]
    if missing:
        raise SystemExit(f"calibration manifest names sessions with no file: {', '.join(missing)}")
    return entries


def prepare(entry: Entry, workdir: Path) -> Path:
    """A copy of the session beside `solution/` (the reference) and one folder per variant."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    session = workdir / "session.toml"
    shutil.copy(entry.path, session)
    template = REPO / "trial_templates" / TEMPLATE
    reference = workdir / "solution"
    shutil.copytree(template / "starter", reference)
    # A repository of its own, so that git apply is not confused by an enclosing one.
    subprocess.run(["git", "init", "-q"], cwd=reference, check=True)
    subprocess.run(["git", "apply", "--whitespace=nowarn", str(template / "reference" / "solution.patch")],
                   cwd=reference, check=True)
    shutil.rmtree(reference / ".git")
    variants = tomllib.loads((ROOT / "variants.toml").read_text()).get("variant", {})
    for name, spec in variants.items():
        target = workdir / name
        shutil.copytree(reference, target)
        for change in spec.get("replace", []):
            file = target / change["file"]
            text = file.read_text()
            if change["old"] not in text:
                raise SystemExit(f"variant {name}: {change['file']} has no {change['old'][:60]!r}")
            file.write_text(text.replace(change["old"], change["new"], 1))
    return session


def fraction(report: dict[str, Any], grader: str) -> float | None:
    if grader == "total":
        value = (report.get("overall") or {}).get("fraction")
        return float(value) if isinstance(value, int | float) else None
    for result in report.get("graders", []):
        if result.get("grader") == grader:
            if result.get("status") != "ok":
                return None
            value = result.get("fraction")
            return float(value) if isinstance(value, int | float) else None
    return None


def scores_of(report: dict[str, Any]) -> dict[str, float | None]:
    return {name: fraction(report, name) for name in ("total", *GRADERS)}


def play(services: Any, entry: Entry, workdir: Path, say: Callable[[str], None] = print) -> Played:
    """Launch, play, collect, grade (without the judge) and tear down one session."""
    from orchestrator import grading, lifecycle
    from orchestrator.candidate_script import play as play_candidate

    started = time.monotonic()
    session = prepare(entry, workdir)
    launched = lifecycle.launch(services, lifecycle.LaunchRequest(
        template=TEMPLATE, candidate="cal-" + entry.name.replace("_", "-")[:30], hours=2, agent=entry.agent,
        provider=f"script:{session}"))
    trial_id = launched.trial.id
    say(f"  {entry.name}: trial {trial_id} ({entry.agent})")
    try:
        play_candidate(services, trial_id, session, lambda line: say(f"    {line}"))
        lifecycle.collect(services, trial_id)
        outcome = grading.grade(services, trial_id)
    finally:
        _teardown(services, trial_id, say)
    played = Played(entry, trial_id, outcome.bundle, scores_of(outcome.report))
    # Beside the prepared session, not in the bundle: a bundle holds only what its manifest lists.
    (workdir / "report.rules.json").write_text(json.dumps(outcome.report, indent=2, default=str))
    played.seconds = time.monotonic() - started
    return played


def _teardown(services: Any, trial_id: str, say: Callable[[str], None]) -> None:
    """Tear down, once more if Docker trips over a container another process removed meanwhile
    (listing races with removals on a shared engine); the graded bundle is kept either way."""
    from orchestrator import lifecycle
    from orchestrator.errors import TrialError

    for attempt in (1, 2):
        try:
            lifecycle.teardown(services, trial_id, repo_action="delete")
            return
        except TrialError as exc:
            say(f"  teardown of {trial_id}, attempt {attempt}: {exc.one_line()}")
            time.sleep(2)
    say(f"  {trial_id} left behind: `trial teardown {trial_id} --yes` or `trial gc` removes it")


# ---- Kendall's tau-b ----------------------------------------------------------------------------

def kendall_tau_b(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Kendall's tau-b of two paired sequences (ties in either count as in the textbook formula).

    None when either side is constant (the coefficient is undefined).
    """
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return None if denominator == 0 else (concordant - discordant) / denominator


def tau_against_order(played: Sequence[Played], grader: str, *, judged: bool = False) -> float | None:
    """τ-b between the known order (rank 1 best, so negated) and a grader's scores (missing = 0)."""
    pairs = [(-p.entry.rank, (p.judged if judged else p.scores).get(grader)) for p in played]
    if len(pairs) < 2:
        return None
    return kendall_tau_b([a for a, _ in pairs], [float(b or 0.0) for _, b in pairs])
