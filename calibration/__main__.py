"""`make calibrate`: play every corpus session through the real product, then report Kendall's τ-b.

    python -m calibration [--only NAME ...] [--no-judge] [--json FILE]

Every session is launched (real Docker, the real agent on the scripted model), played as the
candidate inside the sandbox, collected, graded without the LLM judge, then its spec quality
and steering graded again with the judge reached through the scripted model
(calibration/judge/NAME.toml), and torn down. Prints, for the total and each grader, τ-b
against the known order (calibration/manifest.toml) over all sessions and over the held-out
third, a table of the sessions, and the targets with ok/MISS; exits 1 when a target is missed.
State lives in ./.calibrate-home unless TRIAL_HOME says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from calibration.corpus import GRADERS, REPO, ROOT, Entry, Played, load_manifest, play, scores_of, tau_against_order
from calibration.judge import judge_pass

TARGETS = {"total": 0.8, "spec_quality": 0.6, "steering": 0.6}
CAREFUL = ("careful",)
"""Archetype words of the sessions nothing dishonest may outscore."""
DISHONEST = ("keyword-stuffed", "test-weakening")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="Play only these sessions (names).")
    parser.add_argument("--no-judge", action="store_true", help="Skip the pass with the LLM judge.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--regrade", type=Path, metavar="RESULTS",
                        help="Do not play: grade again the bundles of an earlier run's --json file "
                             "(after a grader change; the same data dir).")
    args = parser.parse_args(argv)

    os.environ.setdefault("TRIAL_HOME", str(REPO / ".calibrate-home"))
    os.environ.setdefault("TRIAL_TEMPLATES_DIR", str(REPO / "trial_templates"))
    os.environ.setdefault("TRIAL_SANDBOX_BASE_IMAGE", os.environ.get("TRIAL_BASE_IMAGE", "trial-base:bookworm"))
    for name in ("TRIAL_JUDGE_URL", "TRIAL_JUDGE_TOKEN"):
        os.environ.pop(name, None)  # the first grading is the rules alone
    entries = load_manifest()
    if args.only:
        unknown = sorted(set(args.only) - {e.name for e in entries})
        if unknown:
            print(f"calibrate: no session named {', '.join(unknown)} in calibration/manifest.toml", file=sys.stderr)
            return 2
        entries = [e for e in entries if e.name in args.only]

    earlier = None
    if args.regrade is not None:
        earlier = {s["session"]: s["trial_id"] for s in json.loads(args.regrade.read_text())["sessions"]}
        entries = [e for e in entries if e.name in earlier]

    started = time.monotonic()
    played, failed = run(entries, earlier, judge=not args.no_judge)
    wall = time.monotonic() - started
    lines, missed = summary(played, judged=not args.no_judge)
    print("\n".join(lines))
    print(f"\nwall time {wall / 60:.1f} min for {len(played)} session(s)")
    if args.json:
        args.json.write_text(json.dumps({"sessions": [p.to_json() for p in played], "failed": failed,
                                         "missed": missed, "wall_s": round(wall)}, indent=2))
    for line in failed:
        print(f"MISS session did not play: {line}")
    return 1 if missed or failed else 0


def run(entries: list[Entry], earlier: dict[str, str] | None, *, judge: bool) -> tuple[list[Played], list[str]]:
    """Play (or regrade) each session; a session that fails is named, and the others go on."""
    from orchestrator.config import load_settings
    from orchestrator.service import daemon
    from orchestrator.services import Services

    services = Services.from_settings(load_settings())
    work = Path(os.environ["TRIAL_HOME"]) / "calibration"
    played: list[Played] = []
    failed: list[str] = []
    try:
        for entry in entries:
            print(f"== {entry.name} (rank {entry.rank:g}, {entry.agent}{', held out' if entry.held_out else ''})",
                  flush=True)
            try:
                if earlier is not None:
                    result = regrade(services, entry, earlier[entry.name], work / entry.name)
                else:
                    result = play(services, entry, work / entry.name, lambda line: print(line, flush=True))
                if judge:
                    result.judged = judge_pass(services, entry, result.bundle, work / entry.name)
            except Exception as exc:  # one broken session must not hide the others' figures
                failed.append(f"{entry.name}: {type(exc).__name__}: {exc}")
                print(f"  FAILED: {exc}", flush=True)
                continue
            print(f"  {entry.name}: " + ", ".join(f"{k} {_cell(v)}" for k, v in result.scores.items())
                  + f" ({result.seconds:.0f}s)", flush=True)
            played.append(result)
    finally:
        daemon.stop(services.settings)
        services.close()
    return played, failed


def regrade(services: Any, entry: Entry, trial_id: str, workdir: Path) -> Played:
    from orchestrator import grading

    started = time.monotonic()
    outcome = grading.grade(services, trial_id)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "report.rules.json").write_text(json.dumps(outcome.report, indent=2, default=str))
    return Played(entry, trial_id, outcome.bundle, scores_of(outcome.report), seconds=time.monotonic() - started)


def _cell(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.2f}"


def _tau(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:+.3f}"


def summary(played: list[Played], *, judged: bool) -> tuple[list[str], list[str]]:
    """The session table, τ-b per grader (all / held out, rules / with judge) and the targets."""
    columns = ("total", *GRADERS)
    lines = ["", "sessions (best first; fractions of each grader's maximum, rules alone):",
             f"{'session':34} {'rank':>4} {'agent':11} {'held':4} " + " ".join(f"{c[:11]:>11}" for c in columns)]
    for p in sorted(played, key=lambda p: (p.entry.rank, p.entry.name)):
        lines.append(f"{p.entry.name:34} {p.entry.rank:>4g} {p.entry.agent:11} {'yes' if p.entry.held_out else '':4} "
                     + " ".join(f"{_cell(p.scores.get(c)):>11}" for c in columns))
    held = [p for p in played if p.entry.held_out]
    lines += ["", "Kendall's tau-b against the known order:",
              f"{'grader':14} {'all':>7} {'held out':>9} {'all+judge':>10} {'held+judge':>11}"]
    for column in columns:
        row = [tau_against_order(played, column), tau_against_order(held, column)]
        if judged:
            row += [tau_against_order(played, column, judged=True), tau_against_order(held, column, judged=True)]
        lines.append(f"{column:14} {_tau(row[0]):>7} {_tau(row[1]):>9}"
                     + (f" {_tau(row[2]):>10} {_tau(row[3]):>11}" if judged else ""))
    lines += ["", "targets:"]
    missed: list[str] = []
    for column, goal in TARGETS.items():
        for label, group in (("all", played), ("held out", held)):
            for with_judge in ((False, True) if judged else (False,)):
                tau = tau_against_order(group, column, judged=with_judge)
                name = f"tau({column}, {label}{', judge' if with_judge else ''}) >= {goal}"
                ok = tau is not None and tau >= goal
                lines.append(f"  {'ok  ' if ok else 'MISS'} {name}: {_tau(tau)}")
                if not ok:
                    missed.append(name)
    careful = [p for p in played if any(w in p.entry.archetype for w in CAREFUL)]
    for p in played:
        if not any(w in p.entry.archetype for w in DISHONEST):
            continue
        for with_judge in ((False, True) if judged else (False,)):
            def total(s: Played, judge: bool = with_judge) -> float:
                return float((s.judged if judge else s.scores).get("total") or 0.0)

            above = [c.entry.name for c in careful if total(p) > total(c)]
            name = f"{p.entry.name} ({p.entry.archetype}) above no careful session{' (judge)' if with_judge else ''}"
            verdict = "MISS" if above else "ok  "
            lines.append(f"  {verdict} {name}" + (f": above {', '.join(above)}" if above else ""))
            if above:
                missed.append(name)
    return lines, missed


def entries_for_test() -> list[Entry]:
    return load_manifest(ROOT / "manifest.toml")


if __name__ == "__main__":
    sys.exit(main())
