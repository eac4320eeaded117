"""Steering: how the candidate directed the agent, scored from outcomes the evidence proves.

Scores come from `graders.outcomes` on the witnessed timeline (gateway, host and forge
events; transcript-only lines are listed, marked, and never scored): agent mistakes caught
(a failing run after an agent edit, and what the candidate did next), agent success claims
checked against the runs, who named the template's planted defect first, whether each
push was tested after the last edit (weighed by the change's risk), whether out-of-scope
agent writes were stopped or shipped, and whether the agent's code was reviewed (rejected,
sent back, or edited) before it shipped, and what the direction delivered (the hidden-test
result on the shipped tree, in the share of it the agent wrote; halved by pushback that broke
passing tests, void over weakened tests). A pass that came only after the tests that failed
were weakened (`outcomes.silenced_passes`) backs no claim and catches no mistake. A criterion
with nothing to measure (no mistake surfaced, no claim made) is left out rather than scored.

Words label, never score: every candidate turn is still labelled with the "Programming by
Chat" intents (graders.intents) and the pushback episodes of "How Coding Agents Fail Their
Users" (graders.pushback) are listed, with the raw measures, for reviewers. The LLM judge,
when configured, reads the same material with a fixed rubric and moves each criterion by
at most a quarter of its range; its quotes must be found verbatim in the material.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

from graders.base import Criterion, GradeContext, GraderResult
from graders.commits import weakened_tests
from graders.intents import TAXONOMY, TurnLabels, classify, name, profile
from graders.judge import configured, consult, judge_moves, not_done
from graders.outcomes import (
    Finding,
    Timeline,
    claims,
    defect_named,
    mistakes,
    pushes_verified,
    rework_rounds,
    scope_held,
    silenced_passes,
    weakens_tests,
)
from graders.provenance import build_provenance
from graders.pushback import find_episodes, forbidden_paths
from graders.repo import open_repo
from graders.spec_quality import SPEC_FILE
from graders.timeline import (
    Event,
    commit_times,
    file_writes,
    idle_pushes,
    is_revert_command,
    push_paths,
    results_by_tool_use,
    test_runs,
    tool_use_id,
    transcript_only,
    unverifiable,
    without_agent,
    witnessed,
    witnessed_view,
    words,
)
from orchestrator.errors import ConfigError, EvidenceError
from orchestrator.evidence.bundle import Bundle
from orchestrator.evidence.events import parse_ts

_MAX_REFS = 20
TRUSTS = ("Gateway-witnessed prompts, answers, tool calls, results and rejections; host-witnessed commits and "
          "push times; forge-witnessed pushes and the PR. Transcript-only events are listed and never scored.")


_COSTLY = ("regressed", "weakened", "stripped")
"""Corrections that made the work worse: broke tests that had passed, or took out checks that held."""


def _refs(indexes: list[int]) -> list[str]:
    return [f"event:{i}" for i in sorted({i for i in indexes if i >= 0})][:_MAX_REFS]


def _share(findings: list[Finding]) -> float:
    return sum(f.credit for f in findings) / len(findings) if findings else 0.0


def _listing(findings: list[Finding], limit: int = 5) -> str:
    return "; ".join(f"event {f.index}: {f.outcome.replace('_', ' ')}" + (f" ({f.note})" if f.note else "")
                     for f in findings[:limit])


class SteeringGrader:
    name = "steering"

    def grade(self, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult:
        skipped = without_agent(bundle, self.name, "nothing to steer")
        if skipped:
            return skipped
        events = bundle.events()
        view = witnessed_view(events)
        prompt_indexes = [i for i, e in enumerate(view) if e["kind"] == "user_prompt"]
        excluded = [i for i, e in enumerate(events) if e["kind"] == "user_prompt" and not witnessed(e)]
        if excluded and not bundle.gateway_records():
            return GraderResult(self.name, status="infra_error", details={"excluded_prompts": excluded},
                                summary=unverifiable(len(excluded)))
        turns = [TurnLabels(i, classify(events[i]["text"])) for i in prompt_indexes]
        details: dict[str, Any] = {"trusts": TRUSTS}
        timeline = Timeline.of(view)
        idle = idle_pushes(bundle, events)
        timeline.pushes = [p for p in timeline.pushes if p not in idle]
        lines, shipped_paths, weakened, spec_texts = self._repo_facts(bundle, events, view, details)
        findings = self._findings(bundle, options, context, timeline, spec_texts, shipped_paths, weakened)
        findings["changed_to_pass"] = _changed_to_pass(context)
        criteria = self._criteria(timeline, findings, lines, options)
        delivered = self._delivered(context, findings, lines, weakened)
        if delivered is not None:
            criteria.append(delivered)
        turns = self._judge(options, events, timeline, turns, criteria, details)
        episodes = find_episodes(view, turns)
        measures = self._measures(bundle, view, turns, lines)
        details.update(measures=measures, profile=profile(turns), excluded_prompts=excluded,
                       findings={kind: [f.to_json() for f in found] for kind, found in findings.items()},
                       transcript_only=transcript_only(events),
                       turns=[{"index": t.index, "labels": list(t.labels), "names": [name(c) for c in t.labels],
                               "source": t.source, "words": words(events[t.index]["text"]),
                               "text": events[t.index]["text"][:300]} for t in turns],
                       episodes=[episode.to_json() for episode in episodes])
        summary = self._summary(turns, findings, measures, excluded)
        return GraderResult(self.name, criteria=criteria, summary=summary, details=details)

    # ----- evidence from the repo ---------------------------------------------------------------
    def _repo_facts(self, bundle: Bundle, events: list[Event], view: list[Event],
                    details: dict[str, Any]) -> tuple[dict[str, int] | None, set[str], frozenset[str],
                                                      list[tuple[str, str]]]:
        """Provenance line counts, the paths the graded revision changed, the test files it
        weakens, and (commit, text) of each spec or design file the candidate's commits added."""
        try:
            with open_repo(bundle) as repo:
                provenance = build_provenance(bundle, repo, events)
                revision = provenance.revision
                shipped = {path for _, path in repo.changes(revision.base_sha, revision.sha)}
                weakened = frozenset(path for path, _ in weakened_tests(repo, revision.base_sha, revision.sha))
                paths = {str(c.get("sha")): [str(f.get("path")) for f in c.get("files") or []]
                         for c in bundle.commits()}
                specs = [(sha, repo.show(sha, path) or "") for sha in repo.rev_list(revision.base_sha, revision.sha)
                         for path in paths.get(sha, []) if SPEC_FILE.search(path)]
        except EvidenceError as exc:
            details["provenance_error"] = exc.one_line()
            return None, set(), frozenset(), []
        lines: dict[str, int] = provenance.to_json()["lines"]
        return lines, shipped, weakened, specs

    # ----- findings -----------------------------------------------------------------------------
    def _findings(self, bundle: Bundle, options: dict[str, Any], context: GradeContext, timeline: Timeline,
                  spec_texts: list[tuple[str, str]], shipped_paths: set[str],
                  weakened: frozenset[str]) -> dict[str, list[Finding]]:
        pushed = push_paths(bundle, timeline.events)
        risk_globs = tuple(str(g) for g in options.get("risk_paths") or ())
        # A tree whose tests were weakened proves nothing by passing; known for the final push.
        final = timeline.shipped()[-1:] if timeline.shipped() else []
        weakened_at = dict.fromkeys(final, bool(weakened))
        hollow = silenced_passes(timeline)
        first_weakening = min([w.index for w in timeline.writes if weakens_tests(w)] + [f.index for f in hollow],
                              default=None)
        if first_weakening is not None:
            weakened_at.update(dict.fromkeys((p for p in timeline.shipped() if p > first_weakening), True))
        scope = tuple(context.template.config.scope) if context.template else tuple(options.get("scope") or ())
        forbidden: set[str] = set()
        for index in timeline.prompts:
            forbidden |= forbidden_paths(timeline.events[index]["text"])
        # Stopped by the candidate: a witnessed rejection, not an edit that merely failed to apply.
        outcomes = results_by_tool_use(timeline.events)
        rejected = [w for w in file_writes(timeline.events) if not w.applied
                    and timeline.events[outcomes.get(tool_use_id(timeline.events[w.index]), w.index)]["kind"]
                    == "tool_rejected"]
        rework = self._stripped_costs(rework_rounds(timeline), context)
        found: dict[str, list[Finding]] = {
            "mistakes": mistakes(timeline, weakened),
            "claims": claims(timeline),
            "pushes": pushes_verified(timeline, pushed, risk_globs, weakened_at),
            "scope": scope_held(timeline, scope, forbidden, shipped_paths, rejected),
            "rework": rework,
            "weakened": hollow,
        }
        # A pass after a correction took checks out says nothing of what they checked, until a run
        # checks as much as before again (the candidate had them put back).
        for push in found["pushes"]:
            stripped = min((f.index for f in rework if f.outcome == "stripped" and f.index < push.index
                            and (f.until is None or f.until > push.index)), default=None)
            if stripped is not None and push.outcome == "tested":
                push.outcome, push.credit = "checks_stripped", 0.0
                push.evidence = sorted({*push.evidence, stripped})
        defect = options.get("defect")
        if isinstance(defect, dict) and defect.get("keywords"):
            found["defect"] = [self._defect(bundle, defect, timeline, context, spec_texts)]
        return found

    @staticmethod
    def _stripped_costs(rework: list[Finding], context: GradeContext) -> list[Finding]:
        """A correction that took passing checks out costs unless the hidden tests pass in full on
        the shipped tree: then what it removed was nothing the brief needs (a feature cut to scope)."""
        hidden = context.results.get("hidden_tests")
        if hidden is None or hidden.status != "ok" or hidden.fraction is None or hidden.fraction < 1.0:
            return rework
        for finding in rework:
            if finding.outcome == "stripped":
                finding.outcome, finding.credit = "cut_to_scope", 0.25
                finding.note += "; the hidden tests pass in full, so nothing the brief needs was lost"
        return rework

    def _defect(self, bundle: Bundle, defect: dict[str, Any], timeline: Timeline, context: GradeContext,
                spec_texts: list[tuple[str, str]]) -> Finding:
        try:
            keywords = [re.compile(str(k), re.I) for k in defect.get("keywords") or []]
        except re.error as exc:
            raise ConfigError(f"rubric option steering.defect.keywords: {exc.pattern!r} is not a regular "
                              f"expression ({exc})", "fix the pattern in template.toml") from exc
        times = commit_times(bundle)  # when the host saw each spec, never the commit's own date
        spec_times = [(times[sha], text) for sha, text in spec_texts if sha in times]
        first_agent = next((parse_ts(e.get("ts")) for e in timeline.events
                            if e["kind"] in ("assistant_message", "tool_call")), None)
        finding = defect_named(timeline, keywords, spec_times, first_agent)
        hidden = context.results.get("hidden_tests")
        tests = [str(t) for t in defect.get("tests") or []]
        if hidden is not None and hidden.status == "ok" and tests:
            outcomes = (hidden.details.get("fail_to_pass") or {}).get("outcomes") or {}
            fixed = all(outcomes.get(t) == "passed" for t in tests)
            finding.note += "; the defect's hidden tests pass" if fixed else "; the defect's hidden tests fail"
            if not fixed:
                # Shipped anyway: the outcome is what counts. Having named it first is worth a
                # quarter; following up what the agent said (even to have the fix taken out) or
                # leaving it to the agent is worth nothing.
                finding.credit = 0.25 if finding.outcome == "candidate_first" else 0.0
            elif finding.outcome == "nobody":
                finding.credit = 0.25  # fixed, but nothing shows anyone saw it
        return finding

    # ----- criteria -----------------------------------------------------------------------------
    def _criteria(self, timeline: Timeline, findings: dict[str, list[Finding]], lines: dict[str, int] | None,
                  options: dict[str, Any]) -> list[Criterion]:
        criteria: list[Criterion] = []
        counted = [f for f in findings["mistakes"] if f.outcome != "self_fixed"]
        if counted:
            criteria.append(Criterion(
                "mistakes_caught", "Caught the agent's mistakes", round(4.0 * _share(counted), 2), 4.0,
                f"{len(counted)} agent mistake(s) shown by failing test runs: {_listing(counted)}.",
                _refs([i for f in counted for i in f.evidence])))
        claim_findings = findings["claims"]
        if claim_findings:
            accepted = [f for f in claim_findings if f.outcome == "accepted" and f.kind == "false_claim"]
            why = f"{len(claim_findings)} success claim(s) not backed by a passing run: {_listing(claim_findings)}."
            if accepted:
                why += f" {len(accepted)} accepted against a failing run."
            criteria.append(Criterion("claims_checked", "Checked the agent's claims against the tests",
                                      round(4.0 * _share(claim_findings), 2), 4.0, why,
                                      _refs([i for f in claim_findings for i in f.evidence])))
        for defect in findings.get("defect", []):
            criteria.append(Criterion("defect", "Found the planted defect", round(4.0 * defect.credit, 2), 4.0,
                                      f"{defect.outcome.replace('_', ' ')}: {defect.note}.", _refs(defect.evidence)))
        pushes = findings["pushes"]
        if pushes:
            weights = [2.0 if i == len(pushes) - 1 else 1.0 for i in range(len(pushes))]
            score = 4.0 * sum(f.credit * w for f, w in zip(pushes, weights, strict=True)) / sum(weights)
            criteria.append(Criterion("verification", "Tested what was pushed, as the risk required",
                                      round(score, 2), 4.0, f"{len(pushes)} push(es): {_listing(pushes)}.",
                                      _refs([i for f in pushes for i in f.evidence])))
        else:
            criteria.append(Criterion("verification", "Tested what was pushed, as the risk required", 0.0, 4.0,
                                      "No code was pushed.", []))
        scope = findings["scope"]
        if scope:
            criteria.append(Criterion("scope", "Kept the agent within scope", round(2.0 * _share(scope), 2), 2.0,
                                      f"{len(scope)} agent write(s) outside the brief's scope or the candidate's "
                                      f"limits: {_listing(scope)}.", _refs([f.index for f in scope])))
        criteria.append(self._review(timeline, findings["rework"], lines, findings["changed_to_pass"]))
        return criteria

    def _delivered(self, context: GradeContext, findings: dict[str, list[Finding]], lines: dict[str, int] | None,
                   weakened: frozenset[str]) -> Criterion | None:
        """What the direction led to: the host's hidden-test result on the shipped tree, in the share
        of its lines the agent wrote (the candidate steered the agent; pasted code is not steering).
        Pushback that broke tests that had passed (or stripped them) halves it each time; weakened tests void it, since
        the pass the candidate steered toward was a hidden failure. Accepting everything earns what
        the agent delivered unaided, careful steering more through the other criteria, shipping
        nothing or no agent code nothing. Left out when the hidden tests did not run."""
        title = "Led the agent to working code"
        hidden = context.results.get("hidden_tests")
        counts = lines or {}
        agent = int(counts.get("agent_unchanged", 0)) + int(counts.get("agent_edited", 0))
        total = agent + sum(int(counts.get(k, 0)) for k in ("own", "no_logged_origin", "agent_unverified"))
        hollow = findings.get("weakened", []) + [f for f in findings["mistakes"] if f.outcome == "silenced"] + [
            f for f in findings["pushes"] if f.outcome == "tests_weakened"]
        if hidden is None or hidden.status != "ok" or hidden.fraction is None:
            return None  # nothing shows what the direction led to: left out, not scored
        if not agent or not total:
            return Criterion("delivered", title, 0.0, 2.0, "None of the shipped lines is the agent's work.", [])
        if hollow or weakened:
            return Criterion("delivered", title, 0.0, 2.0, "The tests were weakened to get a pass: what the agent "
                             "delivered is not what the passing run claimed.",
                             _refs([i for f in hollow for i in f.evidence]))
        rewritten = findings.get("changed_to_pass", [])
        if rewritten:
            return Criterion("delivered", title, 0.0, 2.0, "Tests were changed to pass: the agent's own version "
                             f"fails on the shipped code and the shipped one passes ({_listing(rewritten, 2)}).",
                             _refs([i for f in rewritten for i in f.evidence]))
        # Pushback answered by breaking tests that had passed, or by stripping them with the code they checked.
        regressed = [f for f in findings["rework"] if f.outcome in _COSTLY]
        share = agent / total
        score = 2.0 * float(hidden.fraction) * share * 0.5 ** len(regressed)
        why = (f"Hidden tests {float(hidden.fraction):.0%} on the shipped tree; {share:.0%} of its lines are the "
               f"agent's" + (f"; {len(regressed)} pushback(s) broke or stripped tests that had passed (halved each)"
                             if regressed else "") + ".")
        refs = _refs([i for f in regressed for i in f.evidence])
        return Criterion("delivered", title, round(score, 2), 2.0, why, refs)

    def _review(self, timeline: Timeline, rework: list[Finding], lines: dict[str, int] | None,
                changed_to_pass: list[Finding] | None = None) -> Criterion:
        title = "Reviewed the agent's code before it shipped"
        lines = lines or {}
        shipped = int(lines.get("agent_unchanged", 0)) + int(lines.get("agent_edited", 0))
        if not timeline.writes and not shipped:
            return Criterion("review", title, 0.0, 4.0, "The agent wrote no code: nothing was reviewed.", [])
        rejected = list(timeline.rejections)
        validated = [f for f in rework if f.outcome == "validated"]
        unvalidated = [f for f in rework if f.outcome == "unvalidated"]
        regressed = [f for f in rework if f.outcome in _COSTLY]
        # Agent lines edited into tests changed to pass are the weakening, not a review of the code.
        edited = 0 if changed_to_pass else int(lines.get("agent_edited", 0))
        score = max(0.0, min(4.0, 1.5 * min(len(rejected), 2) + 1.5 * min(len(validated), 2)
                             + 0.5 * min(len(unvalidated), 2) + (1.0 if edited else 0.0)) - 1.5 * len(regressed))
        why = (f"{len(rejected)} agent tool use(s) rejected or interrupted (gateway-witnessed); "
               f"{len(rework)} time(s) the candidate sent the agent back to its code "
               f"({len(validated)} followed by a passing run"
               + (f", {len(regressed)} broke tests that had passed" if regressed else "")
               + f"); {edited} agent line(s) edited before shipping, "
               f"{lines.get('agent_unchanged', 0)} shipped as written.")
        return Criterion("review", title, round(score, 2), 4.0, why,
                         _refs(rejected + [i for f in rework for i in f.evidence]))

    # ----- the judge ----------------------------------------------------------------------------
    def _judge(self, options: dict[str, Any], events: list[Event], timeline: Timeline, turns: list[TurnLabels],
               criteria: list[Criterion], details: dict[str, Any]) -> list[TurnLabels]:
        config = configured(options, details)
        if config is None:
            if "judge" not in details:
                details["judge"] = not_done()
            return turns
        if not timeline.prompts:
            details["judge"] = {"status": "not_done", "note": "No witnessed prompt: nothing for the judge to read."}
            return turns
        material = _material(timeline)
        consulted = consult(config, JUDGE_SYSTEM, f"## Session\n\n{material or '(nothing)'}", details)
        if consulted is None:
            return turns
        answer, usage = consulted
        labelled = answer.get("labels") if isinstance(answer.get("labels"), dict) else {}
        relabelled: list[TurnLabels] = []
        for turn in turns:
            raw = labelled.get(str(turn.index)) if isinstance(labelled, dict) else None
            codes = tuple(code for code in (raw or []) if isinstance(code, str) and code in TAXONOMY)
            relabelled.append(TurnLabels(turn.index, codes, "llm") if codes else turn)
        details["judge"] = {"status": "ok", "model": config.model, "usage": usage.to_json(),
                            "summary": str(answer.get("summary", ""))[:500],
                            "rule_labels": {str(t.index): list(t.labels) for t in turns},
                            **judge_moves(criteria, answer, material)}
        return relabelled

    # ----- measures (shown, not scored) --------------------------------------------------------
    def _measures(self, bundle: Bundle, view: list[Event], turns: list[TurnLabels],
                  lines: dict[str, int] | None) -> dict[str, Any]:
        sizes = [words(view[t.index]["text"]) for t in turns]
        sessions = {str(e["session"]) for e in view if e.get("session") and e["source"] not in ("git", "forge")}
        runs = test_runs(view)
        writes = file_writes(view)
        rejected_edits = [w.index for w in writes if not w.applied]
        revert_commits = [i for i, e in enumerate(view)
                          if e["kind"] == "commit" and str(e["text"]).lower().startswith("revert")]
        first_prompt = None
        started = parse_ts((bundle.manifest().get("times") or {}).get("started_at"))
        if turns and started:
            moment = parse_ts(view[turns[0].index]["ts"])
            first_prompt = round((moment - started).total_seconds()) if moment else None
        failed = {run.result for run in runs if run.failed and run.result is not None}
        corrections = [t.index for t in turns if any(f is not None and f < t.index for f in failed)
                       and {"1.3", "2.1", "2.2", "2.3"} & set(t.labels)]
        records = bundle.gateway_records()
        costs = [float(r["cost_usd"]) for r in records if isinstance(r.get("cost_usd"), int | float)]
        return {
            "sessions": len(sessions),
            "user_turns": len(turns),
            "prompt_words": {"median": statistics.median(sizes) if sizes else 0, "max": max(sizes, default=0),
                             "total": sum(sizes)},
            "time_to_first_prompt_s": first_prompt,
            "interrupts": [i for i, e in enumerate(view) if e["kind"] == "interrupt"],
            "rejected_tool_uses": [i for i, e in enumerate(view) if e["kind"] == "tool_rejected"],
            "rejected_edits": rejected_edits,
            "test_runs": {"total": len(runs), "failed": sum(1 for r in runs if r.failed),
                          "passed": sum(1 for r in runs if r.failed is False)},
            "corrections_after_failure": corrections,
            "reverts": sorted({*rejected_edits, *revert_commits,
                               *(i for i, e in enumerate(view) if is_revert_command(e))}),
            "lines": lines,
            "gateway_exchanges": len(records),
            "cost_usd": round(sum(costs), 6),
            "tokens": {"input": sum(int((r.get("usage") or {}).get("input_tokens", 0) or 0) for r in records),
                       "output": sum(int((r.get("usage") or {}).get("output_tokens", 0) or 0) for r in records)},
        }

    def _summary(self, turns: list[TurnLabels], findings: dict[str, list[Finding]], measures: dict[str, Any],
                 excluded: list[int]) -> str:
        counted = [f for f in findings["mistakes"] if f.outcome != "self_fixed"]
        caught = sum(1 for f in counted if f.outcome == "caught")
        accepted = sum(1 for f in findings["claims"] if f.outcome == "accepted")
        tested = sum(1 for f in findings["pushes"] if f.credit >= 1.0)
        parts = [f"{len(turns)} prompt(s)", f"{caught} of {len(counted)} agent mistake(s) caught",
                 f"{accepted} unbacked success claim(s) accepted",
                 f"{tested} of {len(findings['pushes'])} push(es) tested or low-risk"]
        for defect in findings.get("defect", []):
            parts.append(f"planted defect: {defect.outcome.replace('_', ' ')}")
        parts.append(f"cost ${measures['cost_usd']:.2f}")
        if excluded:
            parts.append(f"{len(excluded)} transcript prompt(s) missing from the gateway log ignored")
        return "; ".join(parts) + "."


def _changed_to_pass(context: GradeContext) -> list[Finding]:
    """Test files changed to pass, proven by the hidden-tests grader's runs (graders.rewritten_tests):
    the agent's version fails on the shipped code, the shipped version passes, and the agent's version
    passes on the template's reference solution (`weakened`: the agent expected what the brief
    specifies). Without a reference run, its alerts count when the hidden tests do not pass in full
    (when they do, the agent's expectations were the wrong ones)."""
    hidden = context.results.get("hidden_tests")
    if hidden is None or hidden.status != "ok":
        return []
    details = hidden.details.get("rewritten_tests") or {}
    proofs = [(w.get("event"), str(w.get("path", "a test file"))) for w in details.get("weakened") or []
              if isinstance(w, dict)]
    if not proofs and "reference" not in details and hidden.fraction is not None and hidden.fraction < 1.0:
        alerts = [a["evidence"] for a in details.get("alerts") or []
                  if isinstance(a, dict) and a.get("kind") == "tests_changed_to_pass"
                  and isinstance(a.get("evidence"), dict)]
        proofs = [(e.get("agent_write"), str(e.get("path", "a test file"))) for e in alerts]
    found: list[Finding] = []
    for event, path in proofs:
        index = event if isinstance(event, int) else -1
        found.append(Finding("weakened", index, "changed_to_pass", [index] if index >= 0 else [],
                             f"{path} as the agent wrote it fails on the shipped code and passes as shipped", 0.0))
    return found


def _material(timeline: Timeline, limit: int = 60_000) -> str:
    """The witnessed session as the judge reads it: numbered prompts, answers, calls and results."""
    parts: list[str] = []
    for index, event in enumerate(timeline.events):
        kind = event["kind"]
        if kind in ("user_prompt", "assistant_message", "tool_rejected", "interrupt", "push", "pr_opened"):
            parts.append(f"[{index}] {kind}: {event['text'][:1500]}")
        elif kind in ("tool_call", "tool_result"):
            parts.append(f"[{index}] {kind}: {event['text'][:400]}")
    return "\n".join(parts)[:limit]


JUDGE_SYSTEM = """You review how a software engineer steered an AI coding agent, from the session log.
Read what happened, not how it was worded: politeness, length and rubric words prove nothing.
Score each dimension from 0 (absent) to 4 (thorough):
- mistakes_caught: when the agent's work was wrong (failing tests, wrong approach, insecure code), did the
  engineer notice and get it corrected, or let it through? Pushback on code that was correct is not credit.
- claims_checked: did the engineer check the agent's claims ("tests pass", "done") against the evidence?
- review: did the engineer read and question the agent's code before shipping it?
For every score above 0 quote, verbatim, at least one passage of 3 or more words from the log.
Also label each user_prompt with the intent codes of the "Programming by Chat" codebook (1.1 new implementation;
1.2 iterative modification; 1.3 alignment correction; 2.1 log paste; 2.2 symptom description; 2.3 error
persistence; 3.1 planning; 3.2 project comprehension; 3.3 general knowledge; 4.1 information injection;
4.2 behavior specification; 5.1 code review; 5.2 runtime inspection; 6.1 documentation; 6.2 toolchain operation;
7.1 confirmation; 7.2 continuation; 7.3 deferred debugging; 7.4 deferred implementation; 7.5 sentiment; 8.1 others).
Answer with one JSON object only:
{"mistakes_caught": {"score": 0, "quotes": []}, "claims_checked": {"score": 0, "quotes": []},
 "review": {"score": 0, "quotes": []}, "labels": {"<event number>": ["1.1"]}, "summary": "one sentence"}"""

