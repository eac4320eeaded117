"""The collect steps: freeze the trial, end every access, and gather the evidence bundle.

Access ends first (sandbox stopped, candidate and sandbox credentials revoked, gateway
token revoked), so nothing can change while the evidence is read: the cutoff is real.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from orchestrator import __version__, questions
from orchestrator.agents import get_agent, transcripts
from orchestrator.deadlines import DEADLINE_REF_PREFIX, heads_at, late_pushes, repo_size
from orchestrator.errors import TrialError
from orchestrator.evidence import bundle as files
from orchestrator.evidence import signing
from orchestrator.evidence.atif import to_atif
from orchestrator.evidence.gitlog import commit_records, refs, write_bundle
from orchestrator.forge.base import RepoRef
from orchestrator.logging import get_logger
from orchestrator.services import Services
from orchestrator.steps import Step, StepContext
from orchestrator.store import Trial, iso, utcnow

log = get_logger(component="collect")


class CollectSteps:
    """The collect steps of one trial; each method is one recorded, resumable step."""

    def __init__(self, services: Services, trial: Trial, bundle_dir: Path) -> None:
        self.services = services
        self.trial = trial
        self.bundle_dir = bundle_dir
        self.agent = get_agent(trial.agent)
        self.repo = RepoRef.from_json(self.trial.data["repo"]) if trial.data.get("repo") else None

    def steps(self) -> list[Step]:
        return [
            Step("freeze", self.freeze, "stop sandbox"),
            Step("revoke_access", self.revoke_access, "revoke access"),
            Step("fetch_repo", self.fetch_repo, "fetch repository"),
            Step("pull_requests", self.pull_requests, "read pull requests"),
            Step("gateway_log", self.gateway_log, "copy gateway log"),
            Step("transcripts", self.transcripts, "copy transcripts"),
            Step("events", self.events, "build timeline"),
            Step("manifest", self.manifest, "write manifest"),
        ]

    def freeze(self, ctx: StepContext) -> dict[str, Any]:
        self.bundle_dir.mkdir(parents=True, exist_ok=True)
        self.services.sandbox.ping()
        ref = self.services.sandbox.find(self.trial.id)
        if ref is not None:
            self.services.sandbox.stop(ref)
        return {"frozen_at": iso(utcnow()), "sandbox": ref.name if ref else None}

    def revoke_access(self, ctx: StepContext) -> dict[str, Any]:
        if self.repo is not None:
            self.services.forge.revoke(self.repo, self.trial.candidate)
            self.services.forge.revoke_sandbox_access(self.repo, self.trial.data.get("deploy_key_id"))
        revoked = self.services.store.revoke_tokens(self.trial.id)
        return {"tokens_revoked": revoked}

    def fetch_repo(self, ctx: StepContext) -> dict[str, Any]:
        if self.repo is None:
            return {"refs": {}}
        with tempfile.TemporaryDirectory(prefix="trial-collect-") as tmp:
            mirror = self.services.forge.fetch_all(self.repo, Path(tmp) / "mirror.git")
            size = repo_size(mirror, self.services.settings.forge.repo_quota_mb)
            if size["over_quota"]:
                log.warning("collect.repo_over_quota", trial_id=self.trial.id, **size)
            unpinned = self._pin_deadline_heads(mirror)
            write_bundle(mirror, self.bundle_dir / files.REPO_BUNDLE)
            listing: list[str] = []
            files.write_jsonl(self.bundle_dir / files.COMMITS, commit_records(mirror, listing))
            heads = refs(mirror)
        return {"refs": heads, "at": ctx.result("freeze", "frozen_at"), "repo_size": size,
                "deadline_heads_missing": unpinned,
                "left_out": [{"what": files.COMMITS, "why": note} for note in listing]}

    def _pin_deadline_heads(self, mirror: Path) -> list[str]:
        """Keep the commits the branches held at the deadline in the bundle even when a late
        force-push left them unreachable: graders grade those, not the heads at collect."""
        if self.trial.deadline is None or self.repo is None:
            return []
        at_deadline = heads_at(self.services.forge.push_events(self.repo), self.trial.deadline)
        reachable = set(refs(mirror).values())
        wanted = {DEADLINE_REF_PREFIX + ref.removeprefix("refs/"): sha
                  for ref, sha in at_deadline.items() if sha not in reachable}
        if not wanted:
            return []
        return self.services.forge.fetch_commits(self.repo, mirror, wanted)

    def pull_requests(self, ctx: StepContext) -> dict[str, Any]:
        if self.repo is None:
            return {"pulls": []}
        pulls_dir = self.bundle_dir / files.PULLS_DIR
        shutil.rmtree(pulls_dir, ignore_errors=True)
        pulls_dir.mkdir(parents=True)
        # What cannot be read is left out and named: the repository is already in the bundle,
        # so the trial stays gradable whatever the candidate's branches hold.
        forge = self.services.forge
        left_out: list[dict[str, str]] = []
        numbers = []
        try:
            pulls = forge.pull_requests(self.repo)
        except TrialError as exc:
            pulls = []
            left_out.append({"what": "pull requests", "why": exc.one_line()})
        left_out += [{"what": "pull requests", "why": str(note)} for note in getattr(forge, "left_out", [])]
        for pr in pulls:
            (pulls_dir / f"{pr.number}.json").write_text(json.dumps(pr.to_json(), indent=2, sort_keys=True))
            try:
                diff = forge.pull_request_diff(self.repo, pr.number)
            except TrialError as exc:
                left_out.append({"what": f"pulls/{pr.number}.diff", "why": exc.one_line()})
            else:
                (pulls_dir / f"{pr.number}.diff").write_text(diff)
            numbers.append(pr.number)
        pushes = forge.push_events(self.repo)
        # Pushes after the deadline are kept and marked: shown in the report, never graded.
        late = late_pushes(pushes, self.trial.deadline)
        # Who logged each push (orchestrator.evidence.events.push_witness): the host's push log
        # (the local forge's hook, the service's git proxy for GitHub) unless the forge marks a
        # push only it saw (`witness: forge`, e.g. from the candidate's laptop straight to GitHub).
        files.write_jsonl(self.bundle_dir / files.PUSHES,
                          [{**p, "late": p in late, "witness": p.get("witness") or "host"} for p in pushes])
        # What each branch held when time ran out, even if the reaper came late.
        at_deadline = heads_at(pushes, self.trial.deadline) if self.trial.deadline else {}
        return {"pulls": numbers, "refs_at_deadline": at_deadline, "late_pushes": late, "left_out": left_out}

    def gateway_log(self, ctx: StepContext) -> dict[str, Any]:
        from orchestrator.gateway.log import log_path, verify_chain

        source = log_path(self.services.settings.home, self.trial.id)
        if not source.exists():
            return {"records": 0, "chain_ok": True}
        shutil.copyfile(source, self.bundle_dir / files.GATEWAY_LOG)
        verdict = verify_chain(self.bundle_dir / files.GATEWAY_LOG)
        if not verdict.ok:
            log.warning("collect.gateway_chain_broken", trial_id=self.trial.id, seq=verdict.first_bad_seq,
                        reason=verdict.reason)
        # The head hash goes into the manifest: records cut off the end, which the chain
        # alone cannot show, are caught by comparing it with the gateway's own log later.
        return {"records": verdict.records, "chain_ok": bool(verdict.ok), "first_bad_seq": verdict.first_bad_seq,
                "reason": verdict.reason, "head": verdict.head, "torn_tail": verdict.torn_tail}

    def transcripts(self, ctx: StepContext) -> dict[str, Any]:
        ref = self.services.sandbox.find(self.trial.id)
        shutil.rmtree(self.bundle_dir / files.TRANSCRIPTS_DIR / self.agent.name, ignore_errors=True)
        problems: list[str] = []
        raw = transcripts.collect(self.services.sandbox, ref, self.agent, problems) if ref is not None else {}
        written = set(transcripts.write_raw(self.bundle_dir, self.agent.name, raw, problems))
        base = self.bundle_dir / files.TRANSCRIPTS_DIR / self.agent.name
        kept = {rel: data for rel, data in raw.items() if (base / rel).resolve() in written}
        ctx.scratch["agent_events"] = transcripts.safe_parse(self.agent, kept, problems)
        for problem in problems:
            log.warning("collect.transcripts_left_out", trial_id=self.trial.id, problem=problem)
        return {"files": sorted(kept), "left_out": problems}

    def events(self, ctx: StepContext) -> dict[str, Any]:
        from orchestrator.evidence.events import build_events

        agent_events = ctx.scratch.get("agent_events")
        if agent_events is None:  # resumed after the transcripts step: parse the bundle's raw copies
            agent_events = transcripts.parse_raw(self.bundle_dir, self.agent, [])
        timeline = build_events(self.bundle_dir, agent_events)
        # The question channel (host log and brief-issue comments): questions.jsonl and its events.
        asked = questions.collect(self.services.settings.home, self.services.forge, self.trial, self.bundle_dir)
        if asked["questions"] or asked["answers"]:
            timeline = questions.merge_into(timeline, self.bundle_dir)
        files.write_jsonl(self.bundle_dir / files.EVENTS, timeline)
        # The same timeline in Harbor's ATIF, so existing trajectory viewers can open it.
        trajectory = to_atif(timeline, self.services.store.get_trial(self.trial.id))
        (self.bundle_dir / files.TRAJECTORY).write_text(json.dumps(trajectory, indent=2, sort_keys=True) + "\n")
        return {"events": len(timeline), "questions_left_out": asked["left_out"]}

    def manifest(self, ctx: StepContext) -> dict[str, Any]:
        current = self.services.store.get_trial(self.trial.id)
        key = signing.operator_key(self.services.settings.home)
        header = {
            "trial": {k: v for k, v in current.to_json().items() if k != "data"} | {
                "repo": current.data.get("repo"), "image": current.data.get("image"),
                "issue_url": current.data.get("issue_url")},
            "template": self.trial.template,
            "candidate": self.trial.candidate,
            "agent": self.trial.agent,
            "collected_at": iso(utcnow()),
            "frozen_at": ctx.result("freeze", "frozen_at"),
            "refs": ctx.result("fetch_repo", "refs"),
            "refs_at_deadline": ctx.results.get("pull_requests", {}).get("refs_at_deadline", {}),
            "late_pushes": ctx.results.get("pull_requests", {}).get("late_pushes", []),
            "repo_size": ctx.results.get("fetch_repo", {}).get("repo_size"),
            "cutoff": current.data.get("cutoff"),
            "gateway": ctx.results.get("gateway_log", {}),
            "times": self.times(ctx),
            "left_out": self.left_out(ctx),
            "transcripts_left_out": ctx.results.get("transcripts", {}).get("left_out", []),
            "signature": {"algorithm": signing.ALGORITHM, "key": signing.fingerprint(key.public_key()),
                          "file": signing.SIGNATURE},
            "collector": {"trial": __version__, "forge": self.services.forge.name,
                          "sandbox": self.services.sandbox.name},
        }
        written = files.write_manifest(self.bundle_dir, header)
        # Signed over the manifest's bytes, which hold every file's sha256 and the gateway
        # chain's head: `trial verify ID` then proves the whole bundle unchanged.
        signing.sign_bundle(self.bundle_dir, key)
        return {"files": len(written["files"]), "signed_by": signing.fingerprint(key.public_key())}

    def times(self, ctx: StepContext) -> dict[str, str | None]:
        """Host-witnessed moments only: the store's launch steps, the gateway log and the push log."""
        current = self.services.store.get_trial(self.trial.id)
        launch = {record.name: record for record in self.services.store.steps(self.trial.id, "launch")}
        activated = launch.get("activate")
        launched = activated.finished_at if activated and activated.finished_at else None
        bots = {self.services.settings.forge.bot_name, "trial-bot"}
        return host_times(self.bundle_dir, launched_at=iso(launched) if launched else None,
                          deadline=iso(current.deadline) if current.deadline else None,
                          frozen_at=ctx.result("freeze", "frozen_at"), bot_pushers=bots)

    def left_out(self, ctx: StepContext) -> list[dict[str, str]]:
        """Everything collection did not take, and why: the manifest's list, which the report shows."""
        notes: list[dict[str, str]] = list(ctx.results.get("fetch_repo", {}).get("left_out", []))
        notes += ctx.results.get("pull_requests", {}).get("left_out", [])
        notes += [{"what": "questions", "why": str(why)}
                  for why in ctx.results.get("events", {}).get("questions_left_out", [])]
        notes += [{"what": "transcripts", "why": str(problem)}
                  for problem in ctx.results.get("transcripts", {}).get("left_out", [])]
        gateway = ctx.results.get("gateway_log", {})
        if gateway.get("chain_ok") is False:
            notes.append({"what": "gateway log", "why": f"hash chain broken ({gateway.get('reason')}): records "
                                                        "from there on cannot be trusted"})
        return notes


def host_times(bundle_dir: Path, *, launched_at: str | None, deadline: str | None, frozen_at: str | None,
               bot_pushers: set[str]) -> dict[str, str | None]:
    """`manifest.times`: when the candidate got the sandbox, the deadline, the first request the
    gateway logged, the candidate's first and last push the forge logged, and when collect ran.
    `started_at` is `launched_at` under the name graders read."""
    from orchestrator.evidence.events import format_ts, parse_ts

    def first_last(values: list[Any]) -> tuple[str | None, str | None]:
        moments = sorted(m for m in (parse_ts(v) for v in values) if m)
        return (format_ts(moments[0]), format_ts(moments[-1])) if moments else (None, None)

    gateway_first, _ = first_last([r.get("ts") for r in files.read_jsonl_tolerant(bundle_dir / files.GATEWAY_LOG)])
    pushes = [p for p in files.read_jsonl_tolerant(bundle_dir / files.PUSHES) if p.get("pusher") not in bot_pushers]
    first_push, last_push = first_last([p.get("ts") for p in pushes])
    return {"launched_at": launched_at, "started_at": launched_at, "deadline": deadline,
            "first_gateway_request": gateway_first, "first_push": first_push, "last_push": last_push,
            "frozen_at": frozen_at, "collected_at": iso(utcnow())}


def collect_steps(services: Services, trial: Trial, bundle_dir: Path) -> list[Step]:
    return CollectSteps(services, trial, bundle_dir).steps()
