"""Launch, collect and teardown: ordered, idempotent, resumable steps over the four edges.

    launch:   validate → build image → repo, starter, brief, protection → host service →
              sandbox (token, home files, container) → start + clone → invite candidate (last) → active
    collect:  stop sandbox → revoke access → fetch refs → pull requests → gateway log →
              transcripts → events → manifest → collected
    teardown: remove containers and volumes → revoke tokens → archive or delete repo → closed

Validation happens before anything is created, so bad input leaves nothing behind; a
failure after that leaves the trial `failed` at its step, and `trial launch --resume ID`
(or `trial collect ID` again) goes on from there. `trial teardown` removes whatever exists.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from orchestrator.agents import AgentSpec, get_agent
from orchestrator.catalog import Template
from orchestrator.errors import ForgeError, PrerequisiteError, SandboxError, StateError, UsageError
from orchestrator.forge.base import RepoRef
from orchestrator.logging import get_logger
from orchestrator.sandbox.base import HOME, SSHD_DIR, WORKSPACE, SandboxRef, SandboxSpec
from orchestrator.sandbox.home import env_sh, gitconfig, home_tar, sshd_tar
from orchestrator.services import Services
from orchestrator.steps import Ahead, Step, StepContext, run_steps
from orchestrator.store import Trial, utcnow

log = get_logger(component="lifecycle")

# GitHub's rule for user names: alphanumerics and single hyphens, not at either end, ≤ 39.
LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
SSH_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")
COLLECT_STALE = timedelta(minutes=30)
"""A `collecting` trial untouched this long lost its collector (killed): another may take over.
Same span as `deadlines.STALE_CLAIM`, so `trial reap` retries it then."""
TOKEN_PURPOSE = "sandbox"  # noqa: S105 - a label, not a secret


class State:
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    EXPIRED = "expired"
    COLLECTING = "collecting"
    COLLECTED = "collected"
    GRADED = "graded"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True)
class LaunchRequest:
    template: str
    candidate: str
    hours: float | None = None
    agent: str | None = None
    budget_usd: float | None = None
    ssh_keys: tuple[str, ...] = ()
    """Extra public keys (e.g. from --ssh-key FILE), added to those the forge knows."""
    provider: str | None = None
    """Where the trial's models come from (`[gateway] provider`): flag, else template, else operator."""
    again: bool = False
    """Launch even if the candidate already has a live trial of this template (`--again`)."""
    cohort: str | None = None
    """The cohort this trial belongs to: at most one trial per (cohort, candidate), enforced by the store."""


LIVE_STATES = ("provisioning", "active", "expired", "collecting", "failed")
"""A trial in these states still holds the candidate's work or resources: a second plain launch refuses."""


@dataclass
class LaunchResult:
    trial: Trial
    repo_url: str
    issue_url: str
    ssh_command: str | None
    ssh_config: str | None
    image: str
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial.to_json(), "repo_url": self.repo_url, "issue_url": self.issue_url,
                "ssh_command": self.ssh_command, "ssh_config": self.ssh_config, "image": self.image,
                "resumed": self.resumed}


@dataclass
class CollectResult:
    trial: Trial
    bundle: Path
    files: int
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial.to_json(), "bundle": str(self.bundle), "files": self.files,
                "problems": self.problems}


def validate_login(login: str) -> str:
    if not LOGIN_RE.match(login):
        raise UsageError(f"'{login}' is not a valid GitHub login",
                         "use letters, digits and single hyphens, at most 39 characters (e.g. --candidate octocat)")
    return login


def validate_ssh_key(line: str, source: str) -> str:
    line = line.strip()
    if not SSH_KEY_RE.match(line):
        raise UsageError(f"{source}: not an SSH public key", "pass the .pub file (e.g. ~/.ssh/id_ed25519.pub)")
    return line


def repo_name(services: Services, trial: Trial) -> str:
    pattern = services.settings.forge.repo_pattern
    try:
        name = pattern.format(template=trial.template, candidate=trial.candidate.lower(),
                              short_id=trial.id[-6:], trial_id=trial.id)
    except (KeyError, IndexError) as exc:
        raise UsageError(f"forge.repo_pattern '{pattern}' uses an unknown field {exc}",
                         "fields: template, candidate, short_id, trial_id") from exc
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)[:100]


def new_trial_id() -> str:
    return "t" + secrets.token_hex(4)


# -- launch ---------------------------------------------------------------------------------

def launch(services: Services, request: LaunchRequest) -> LaunchResult:
    template = services.catalog.get(request.template)
    candidate = validate_login(request.candidate)
    agent = get_agent(request.agent or template.config.agent)
    provider = _gateway_provider(services, template, request.provider)
    services.sandbox.ping()
    _require_egress_enforced(services)
    services.forge.check()
    if not services.forge.user_exists(candidate):
        raise UsageError(f"candidate '{candidate}' does not exist on {services.forge.name}",
                         "check the spelling of --candidate")
    keys = _candidate_keys(services, candidate, request.ssh_keys)
    hours = request.hours if request.hours is not None else template.config.hours
    if hours <= 0:
        raise UsageError(f"--hours must be positive (got {hours})", "e.g. --hours 4")
    now = utcnow()
    trial = services.store.create_trial(Trial(
        id=new_trial_id(), template=template.name, candidate=candidate, agent=agent.name,
        state=State.PROVISIONING, created_at=now, updated_at=now, hours=hours,
        budget_usd=request.budget_usd if request.budget_usd is not None else template.config.budget_usd,
        data={"ssh_keys": keys, **({"gateway_provider": provider} if provider else {})}, cohort=request.cohort,
    ), unless_live=() if request.again else LIVE_STATES)
    log.info("launch.start", trial_id=trial.id, template=template.name, candidate=candidate, agent=agent.name)
    return _run_launch(services, trial, template, agent, resumed=False)


def _require_egress_enforced(services: Services) -> None:
    """An explicit `sandbox.egress = host-only` is a requirement, not a wish: refuse up front where
    this process cannot write the host filter, instead of launching an open sandbox with a warning
    (`auto` launches and says so)."""
    sandbox = services.settings.sandbox
    if sandbox.backend == "swarm" and sandbox.egress != "open" and not sandbox.swarm_service_host:
        raise PrerequisiteError("a swarm sandbox reaches the host service through its door, which needs "
                                "sandbox.swarm_service_host", "set it to the address where the nodes reach this host")
    if sandbox.egress != "host-only" or sandbox.backend != "docker":
        return
    from orchestrator.sandbox.egress import host_firewall

    reason = host_firewall()
    if isinstance(reason, str):
        raise PrerequisiteError(f"sandbox.egress = host-only cannot be enforced: {reason}",
                                "run trial as root on the engine's host, or set sandbox.egress = \"auto\" to "
                                "launch with a warning instead")


def _gateway_provider(services: Services, template: Template, flag: str | None) -> str | None:
    """The trial's model source, fixed at launch so a later change of settings does not switch it;
    a script is checked now, before anything is created, and recorded by absolute path."""
    if not (flag or template.config.gateway.provider or services.settings.gateway.provider):
        return None
    # Imported only when there is a provider: it pulls in the gateway's aiohttp stack.
    from orchestrator.gateway.scripted import resolve_provider

    if flag:
        return resolve_provider(flag, Path.cwd())
    if template.config.gateway.provider:
        return resolve_provider(template.config.gateway.provider, template.path)
    if services.settings.gateway.provider:
        return resolve_provider(services.settings.gateway.provider, Path.cwd())
    return None


def resume_launch(services: Services, trial_id: str) -> LaunchResult:
    trial = services.store.get_trial(trial_id)
    if trial.state not in (State.PROVISIONING, State.FAILED) or (
            trial.failed_step and not trial.failed_step.startswith("launch:")):
        raise StateError(f"trial {trial.id} is {trial.state}; only a launch that did not finish can resume",
                         "see `trial status ID`")
    services.sandbox.ping()
    services.store.update_trial(trial.id, state=State.PROVISIONING, failed_step=None)
    template = services.catalog.get(trial.template)
    return _run_launch(services, trial, template, get_agent(trial.agent), resumed=True)


def _candidate_keys(services: Services, candidate: str, extra: tuple[str, ...]) -> list[str]:
    keys = [validate_ssh_key(k, "--ssh-key") for k in extra]
    try:
        keys += services.forge.ssh_keys(candidate)
    except ForgeError as exc:
        raise UsageError(f"could not read {candidate}'s SSH keys: {exc.message}", exc.hint) from exc
    if not keys and services.forge.name != "local":
        raise UsageError(f"candidate '{candidate}' has no public SSH keys on {services.forge.name}",
                         "ask them to add one (https://github.com/settings/keys) or pass --ssh-key FILE")
    return list(dict.fromkeys(keys))


class LaunchSteps:
    """The launch steps of one trial; each method is one recorded, resumable step."""

    def __init__(self, services: Services, trial: Trial, template: Template, agent: AgentSpec) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.store
        self.trial = trial
        self.template = template
        self.agent = agent
        self.started: SandboxRef | None = None
        """The sandbox as this run started it (None: a resumed launch finds it as a past run left it)."""

    def steps(self) -> list[Step | Ahead]:
        # The sandbox is made and started (volumes, container, home files, the engine's start and
        # sshd: all waiting on the engine) while the forge takes the starter, the brief and the
        # protection; it needs only the repo's name. Its workspace is cloned once those are done,
        # and it is taken back if one of them fails (`discard_sandbox`). Until the launch prints
        # its port, nobody has been told where the running sandbox is.
        return [
            Step("build_image", self.build_image, "build image"),
            Step("create_repo", self.create_repo, "create repository"),
            Ahead(beside=[Step("push_starter", self.push_starter, "push starter"),
                          Step("open_brief", self.open_brief, "open brief issue"),
                          Step("protect_main", self.protect_main, "protect main")],
                  steps=[Step("host_service", self.host_service, "host service", always=True),
                         Step("create_sandbox", self.create_sandbox, "create sandbox"),
                         Step("start_sandbox", self.start_sandbox, "start sandbox")],
                  undo=self.discard_sandbox),
            Step("clone_workspace", self.clone_workspace, "clone the repository in the sandbox"),
            Step("invite_candidate", self.invite_candidate, "invite candidate"),
            Step("activate", self.activate, "activate"),
        ]

    @staticmethod
    def repo(ctx: StepContext) -> RepoRef:
        return RepoRef.from_json(ctx.result("create_repo", "repo"))

    def build_image(self, ctx: StepContext) -> dict[str, Any]:
        from orchestrator.sandbox.images import build_sandbox_image

        image = build_sandbox_image(self.services.sandbox, self.template, self.agent, self.settings,
                                    progress=self.services.progress)
        result = {"image": image.tag, "template_image": image.template_image.tag}
        self.store.merge_data(self.trial.id, result)
        return result

    def create_repo(self, ctx: StepContext) -> dict[str, Any]:
        ref = self.services.forge.create_repo(self.trial.id, repo_name(self.services, self.trial),
                                              f"{self.template.config.title} — trial {self.trial.id}")
        self.store.merge_data(self.trial.id, {"repo": ref.to_json()})
        return {"repo": ref.to_json()}

    def push_starter(self, ctx: StepContext) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="trial-starter-") as tmp:
            worktree = Path(tmp) / "starter"
            sha = _commit_starter(worktree, self.template.starter_dir, self.services, self.trial)
            pushed = self.services.forge.push(self.repo(ctx), worktree, "main")
        return {"sha": pushed or sha}

    def open_brief(self, ctx: StepContext) -> dict[str, Any]:
        repo = self.repo(ctx)
        body = self.template.brief().rstrip() + "\n\n" + self.services.forge.how_to_submit(repo)
        url = self.services.forge.open_issue(repo, self.template.config.title, body)
        self.store.merge_data(self.trial.id, {"issue_url": url})
        return {"issue_url": url}

    def protect_main(self, ctx: StepContext) -> dict[str, Any]:
        protected = self.services.forge.protect_default_branch(self.repo(ctx))
        if not protected:
            log.warning("launch.unprotected", trial_id=self.trial.id,
                        reason="the forge refused branch protection (plan limit?)")
        return {"protected": protected}

    def host_service(self, ctx: StepContext) -> dict[str, Any]:
        from orchestrator.service import daemon

        status = daemon.ensure_running(self.settings)
        return {"url": daemon.local_url(self.settings), "gateway": bool(status.get("gateway"))}

    def create_sandbox(self, ctx: StepContext) -> dict[str, Any]:
        from orchestrator.service import daemon

        trial, sandbox, store = self.trial, self.services.sandbox, self.store
        # A retry starts clean: the earlier attempt's container and token are unusable
        # (the token's plaintext was never stored), so both are replaced.
        existing = sandbox.find(trial.id)
        if existing:
            sandbox.remove(existing, volumes=True)
        store.revoke_tokens(trial.id, TOKEN_PURPOSE)
        # Expires on its own even if the launch never finishes; `activate` sets the real deadline.
        token = store.mint_token(trial.id, TOKEN_PURPOSE, utcnow() + timedelta(hours=trial.hours + 1))
        access = self.services.forge.sandbox_access(self.repo(ctx), token)
        base = daemon.sandbox_url(self.settings)
        env = {"TRIAL_ID": trial.id, "TRIAL_GATEWAY_URL": base, "TRIAL_TOKEN": token,
               **self.agent.env(base, token), **access.env}
        keys = store.get_trial(trial.id).data["ssh_keys"]
        name, email = self.services.forge.git_identity(trial.candidate)
        git_config = {"user.name": name, "user.email": email, "init.defaultBranch": "main", "pull.rebase": "false",
                      **access.git_config}
        files: dict[str, tuple[str, int]] = {
            ".trial/env.sh": (env_sh(env), 0o600),
            # Written with the other files: a `git config --global` each inside the sandbox cost a process apiece.
            ".gitconfig": (gitconfig(git_config), 0o644),
            **access.files,
            **self.agent.home_files(base, token),
        }
        limits = self.settings.sandbox
        spec = SandboxSpec(
            trial_id=trial.id, image=ctx.result("build_image", "image"), role="sandbox",
            env={"TRIAL_ID": trial.id, "LANG": "C.UTF-8"},
            memory=limits.memory, cpus=limits.cpus, pids=limits.pids,
            volumes={"workspace": WORKSPACE, "home": HOME, "sshd": SSHD_DIR}, publish_ssh=True,
            **self.egress(),
        )
        ref = sandbox.create(spec)
        # Two volumes, two independent uploads that each wait on the engine: both at once.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="copy-in") as pool:
            copies = [pool.submit(sandbox.copy_in, ref, HOME, home_tar(files)),
                      # Root-owned: the candidate can neither add a key nor change a session's environment.
                      pool.submit(sandbox.copy_in, ref, SSHD_DIR, sshd_tar(keys, env))]
            for copy in copies:
                copy.result()
        store.merge_data(trial.id, {"sandbox": {"id": ref.id, "name": ref.name},
                                    "clone_url": access.clone_url, "deploy_key_id": access.key_id})
        return {"container": ref.id, "name": ref.name, "clone_url": access.clone_url, "key_id": access.key_id,
                "git_config": access.git_config, "gitconfig_written": True}

    def discard_sandbox(self, ctx: StepContext) -> None:
        """Take back a sandbox made ahead of a forge step that failed: a failed launch leaves nothing
        past its failed step, and the resume makes the sandbox again (with a new token)."""
        existing = self.services.sandbox.find(self.trial.id)
        if existing is not None:
            self.services.sandbox.remove(existing, volumes=True)
        self.store.revoke_tokens(self.trial.id, TOKEN_PURPOSE)

    def egress(self) -> dict[str, Any]:
        """The sandbox's network: host-only (the host service's port and nothing else) unless the
        operator opted out, which is said at every launch."""
        from orchestrator.sandbox import sandbox_network

        if self.settings.sandbox.egress == "open":
            log.warning("launch.egress.open", trial_id=self.trial.id,
                        reason="sandbox.egress=open: the sandbox reaches the internet, the host and other "
                               "sandboxes directly, and the gateway cannot see a model called that way")
            return {}
        return {"network": sandbox_network(self.settings), "host_ports": (self.settings.service.port,)}

    def start_sandbox(self, ctx: StepContext) -> dict[str, Any]:
        trial, sandbox = self.trial, self.services.sandbox
        ref = sandbox.find(trial.id)
        if ref is None:
            # A failed start removes its container (the backend cleans up after itself): make it again.
            ctx.results["create_sandbox"] = self.create_sandbox(ctx)
            ref = sandbox.find(trial.id)
            if ref is None:
                raise SandboxError(f"the sandbox of trial {trial.id} could not be created again",
                                   f"see `trial status {trial.id}`")
        ref = self.started = sandbox.start(ref)
        self.store.merge_data(trial.id, {"ssh_port": ref.ssh_port, "ssh_host": ref.host})
        return {"ssh_port": ref.ssh_port, "ssh_host": ref.host}

    def clone_workspace(self, ctx: StepContext) -> dict[str, Any]:
        """The starter, cloned over the sandbox's own git access: it also proves the sandbox reaches
        the host service, before the candidate is invited."""
        trial, ref = self.trial, self.started
        if ref is None:
            # A resumed launch finds the sandbox as the run that failed left it, and the host may
            # have restarted since (stopped) or `trial gc` removed it: started again (a no-op on a
            # running one), made again if gone.
            ctx.results["start_sandbox"] = self.start_sandbox(ctx)
            ref = self.started
            assert ref is not None  # noqa: S101 - start_sandbox sets it or raises
        script = "set -e\n"
        if not ctx.results["create_sandbox"].get("gitconfig_written"):
            # A sandbox created before ~/.gitconfig came with the home files (a launch resumed across
            # an upgrade): set git up here, as it was then.
            name, email = self.services.forge.git_identity(trial.candidate)
            git_config = {"user.name": name, "user.email": email,
                          "init.defaultBranch": "main", "pull.rebase": "false",
                          **ctx.result("create_sandbox", "git_config")}
            script += "".join(f"git config --global {shlex.quote(k)} {shlex.quote(v)}\n"
                              for k, v in git_config.items())
        # One exec for the whole setup: each exec costs a round trip to the engine.
        clone_url = shlex.quote(ctx.result("create_sandbox", "clone_url"))
        script += f"test -d {WORKSPACE}/.git || git clone --quiet {clone_url} {WORKSPACE}\n"
        _exec_ok(self.services, ref, ["sh", "-c", script], "git setup and clone inside the sandbox", timeout_s=300)
        return {"cloned": True}

    def invite_candidate(self, ctx: StepContext) -> dict[str, Any]:
        return {"invitation": self.services.forge.grant(self.repo(ctx), self.trial.candidate)}

    def activate(self, ctx: StepContext) -> dict[str, Any]:
        deadline = utcnow() + timedelta(hours=self.trial.hours)
        self.store.update_trial(self.trial.id, state=State.ACTIVE, deadline=deadline, failed_step=None)
        self.store.set_token_expiry(self.trial.id, deadline)
        return {"deadline": deadline.isoformat()}


def _run_launch(services: Services, trial: Trial, template: Template, agent: AgentSpec,
                resumed: bool) -> LaunchResult:
    steps = LaunchSteps(services, trial, template, agent).steps()
    # A step record lost with the host only makes that step run again: no fsync per record, one at the end.
    with services.store.deferred_sync():
        ctx = run_steps(services.store, trial.id, "launch", steps, progress=services.progress)
    final = services.store.get_trial(trial.id)
    port, host = ctx.results["start_sandbox"].get("ssh_port"), ctx.results["start_sandbox"].get("ssh_host")
    return LaunchResult(
        trial=final, repo_url=LaunchSteps.repo(ctx).web_url,
        issue_url=ctx.result("open_brief", "issue_url"), ssh_command=ssh_command(services, port, host),
        ssh_config=ssh_config_entry(services, final, port, host), image=ctx.result("build_image", "image"),
        resumed=resumed,
    )


def _commit_starter(repo: Path, starter: Path, services: Services, trial: Trial) -> str:
    """One commit by the bot of the template's starter files, dated at the trial's creation: a rerun
    makes the same SHA. The files are committed where they lie (`--work-tree`), not copied first;
    `repo` gets only the `.git` the forge pushes from."""
    forge_cfg = services.settings.forge
    date = trial.created_at.isoformat()
    env = {"GIT_AUTHOR_NAME": forge_cfg.bot_name, "GIT_AUTHOR_EMAIL": forge_cfg.bot_email,
           "GIT_COMMITTER_NAME": forge_cfg.bot_name, "GIT_COMMITTER_EMAIL": forge_cfg.bot_email,
           "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "PATH": _path()}
    repo.mkdir(parents=True)
    tree = f"--work-tree={starter}"
    for argv in (["git", "init", "--quiet", "--template=", "--initial-branch=main"], ["git", tree, "add", "--all"],
                 ["git", tree, "commit", "--quiet", "--no-gpg-sign", "-m", f"Starter for {trial.template}"]):
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)
    # A fresh repository's branch is a loose ref: read it rather than start `git rev-parse`.
    return (repo / ".git" / "refs" / "heads" / "main").read_text().strip()


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")


def _exec_ok(services: Services, ref: SandboxRef, argv: list[str], what: str, timeout_s: int = 60) -> None:
    result = services.sandbox.exec(ref, argv, timeout_s=timeout_s)
    if not result.ok:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.exit_code}"]
        raise SandboxError(f"{what} failed: {detail[0]}", "see `trial status ID` and the service log")


def ssh_command(services: Services, port: int | None, host: str | None = None) -> str | None:
    """`host`: the machine publishing the port when it is not this one (a swarm node)."""
    if not port:
        return None
    return f"ssh -p {port} candidate@{host or services.settings.service.public_host}"


def ssh_config_entry(services: Services, trial: Trial, port: int | None, host: str | None = None) -> str | None:
    if not port:
        return None
    return (f"Host trial-{trial.id}\n  HostName {host or services.settings.service.public_host}\n  Port {port}\n"
            f"  User candidate\n  # then: ssh trial-{trial.id} (work in {WORKSPACE}; sshd forwards nothing,\n"
            f"  # so editors that need port or socket forwarding, such as VS Code Remote-SSH, cannot attach)\n")


# -- collect --------------------------------------------------------------------------------

def collect(services: Services, trial_id: str) -> CollectResult:
    from orchestrator.evidence.collect import collect_steps

    store = services.store
    trial = store.get_trial(trial_id)
    allowed = (State.ACTIVE, State.EXPIRED, State.COLLECTING, State.COLLECTED, State.GRADED)
    resumable_failure = trial.state == State.FAILED and (trial.failed_step or "").startswith("collect:")
    if trial.state not in allowed and not resumable_failure:
        raise StateError(f"trial {trial.id} is {trial.state}; only an active or expired trial can be collected",
                         "see `trial status ID`")
    bundle_dir = services.settings.evidence_dir / trial.id
    if trial.state in (State.COLLECTED, State.GRADED):
        from orchestrator.evidence.bundle import Bundle

        bundle = Bundle(bundle_dir)
        return CollectResult(trial, bundle_dir, len(bundle.manifest()["files"]), bundle.verify())
    # Claim the trial (compare-and-set), so a manual collect and `trial reap` never run at once.
    claimable: tuple[str, ...] = (trial.state,)
    if trial.state == State.COLLECTING and utcnow() - trial.updated_at < COLLECT_STALE:
        raise StateError(f"trial {trial.id} is being collected since {trial.updated_at:%H:%M} UTC",
                         f"wait for that collect; if it was killed, run this again after "
                         f"{COLLECT_STALE.seconds // 60} minutes")
    if store.update_trial_if(trial.id, claimable, state=State.COLLECTING, failed_step=None) is None:
        raise StateError(f"trial {trial.id} changed state while collect started", "see `trial status ID`")
    ctx = run_steps(store, trial.id, "collect", collect_steps(services, trial, bundle_dir),
                    progress=services.progress)
    final = store.update_trial(trial.id, state=State.COLLECTED)
    return CollectResult(final, bundle_dir, int(ctx.result("manifest", "files")))


# -- teardown -------------------------------------------------------------------------------

@dataclass
class TeardownResult:
    trial_id: str
    removed: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "removed": self.removed}


def teardown(services: Services, trial_id: str, *, repo_action: str | None = None) -> TeardownResult:
    """Remove everything the trial holds: containers, volumes, tokens, the repo (archived or deleted).

    The evidence bundle is kept. Safe to run in any state and more than once.
    """
    store = services.store
    trial = store.get_trial(trial_id)
    removed: list[str] = []
    # Access first: if Docker is down, the candidate is still cut off before the error.
    if store.revoke_tokens(trial.id):
        removed.append("gateway token")
    repo_data = trial.data.get("repo")
    if repo_data:
        repo = RepoRef.from_json(repo_data)
        action = repo_action or services.settings.forge.on_teardown
        if services.forge.repo_exists(repo):
            services.forge.revoke(repo, trial.candidate)
            if action == "delete":
                services.forge.delete(repo)
            else:
                services.forge.archive(repo)  # last: an archived repo refuses every write
            removed.append(f"repo {repo.full_name} ({action}d)")
    from orchestrator.forge.state_files import remove_trial_files  # the git proxy's push log and quota

    removed += [f"file {path.name}" for path in remove_trial_files(services.settings.forge_dir, trial.id)]
    services.sandbox.ping()
    for role in ("sandbox", "verifier", "service"):  # service: a service template's program under test
        ref = services.sandbox.find(trial.id, role)
        if ref is not None:
            services.sandbox.remove(ref, volumes=True)
            removed.append(f"container {ref.name}")
    for resource in services.sandbox.list_managed(frozenset({"container", "volume"})):
        if resource.trial_id == trial.id:
            services.sandbox.remove_resource(resource)
            removed.append(f"{resource.kind} {resource.name}")
    # The data dir's sandbox network goes with its last sandbox: each bridge takes one of Docker's
    # few address pools. The next launch makes it again.
    from orchestrator.sandbox import instance_id, sandbox_network

    removed += [f"{item.kind} {item.name}" for item in _unused_networks(
        services, instance_id(services.settings), True, only=sandbox_network(services.settings))]
    store.update_trial(trial.id, state=State.CLOSED)
    store.add_event(trial.id, "trial.teardown", {"removed": removed})
    return TeardownResult(trial.id, removed)


# -- gc -------------------------------------------------------------------------------------

@dataclass
class Leftover:
    kind: str
    name: str
    trial_id: str | None
    reason: str
    removed: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def gc(services: Services, *, remove: bool = True, unknown_repos: bool = False) -> list[Leftover]:
    """Containers, volumes and repos labelled as ours whose trial is unknown or closed, the GitHub
    git proxy's files of such trials, and containers our interrupted image builds left.

    Repos of trials this store does not know are removed only on the local forge (its repos
    live in this data dir) or when `unknown_repos` says so: a GitHub org can be shared by
    several operators, each with their own store.
    """
    store = services.store
    known = {trial.id: trial for trial in store.list_trials()}
    leftovers: list[Leftover] = []

    def reason_for(trial_id: str | None) -> str | None:
        if trial_id is None or trial_id not in known:
            return "no such trial in the store"
        if known[trial_id].state == State.CLOSED:
            return "trial is closed"
        return None

    from orchestrator.sandbox import instance_id

    ours = instance_id(services.settings)
    services.sandbox.ping()
    for resource in services.sandbox.list_managed():
        if resource.kind in ("image", "network", "firewall"):
            continue  # images are a cache shared by trials, not a leftover; networks come last
        if resource.instance not in (None, ours):
            continue  # made by another data dir on the same engine: its own gc decides
        reason = resource.status if resource.kind == "build-container" else reason_for(resource.trial_id)
        if reason:
            item = Leftover(resource.kind, resource.name, resource.trial_id, reason)
            if remove:
                services.sandbox.remove_resource(resource)
                item.removed = True
            leftovers.append(item)
    # Listed again now that leftover containers are gone: a network they held may be free.
    leftovers += _unused_networks(services, ours, remove)
    own_repos = services.forge.name == "local" or unknown_repos
    for repo in services.forge.list_managed():
        reason = reason_for(repo.trial_id)
        if reason and not (repo.trial_id in known and known[repo.trial_id].state == State.CLOSED):
            item = Leftover("repo", repo.full_name, repo.trial_id, reason)
            if remove and own_repos:
                services.forge.delete(repo)
                item.removed = True
            elif not own_repos:
                item.reason += " (may belong to another operator: remove with `trial gc --unknown-repos`)"
            leftovers.append(item)
    leftovers += _forge_file_leftovers(services, reason_for, remove)
    for trial in known.values():
        if trial.state == State.FAILED:
            leftovers.append(Leftover("trial", trial.id, trial.id,
                                      f"failed at {trial.failed_step}: resume it or run `trial teardown {trial.id}`"))
    return leftovers


def _forge_file_leftovers(services: Services, reason_for: Callable[[str | None], str | None],
                          remove: bool) -> list[Leftover]:
    """The GitHub git proxy's push logs and quota files of trials that are gone or closed."""
    from orchestrator.forge.state_files import state_files

    found: list[Leftover] = []
    for state in state_files(services.settings.forge_dir):
        reason = reason_for(state.trial_id)
        if reason:
            item = Leftover("forge-file", state.path.name, state.trial_id, reason)
            if remove:
                state.path.unlink(missing_ok=True)
                item.removed = True
            found.append(item)
    return found


def _unused_networks(services: Services, ours: str, remove: bool, *, only: str | None = None) -> list[Leftover]:
    """This data dir's networks that no container uses (with their host firewall rules), and rules
    whose network is gone. A network without our instance label is left alone: another data dir
    (or a test) may be about to attach its first container to it."""
    found: list[Leftover] = []
    for resource in services.sandbox.list_managed():
        if resource.status != "unused" or resource.kind not in ("network", "firewall"):
            continue
        if resource.kind == "network" and resource.instance != ours:
            continue
        if only is not None and resource.name != only:
            continue
        item = Leftover(resource.kind, resource.name, resource.trial_id, "no sandbox uses it")
        if remove:
            services.sandbox.remove_resource(resource)
            item.removed = True
        found.append(item)
    return found


# -- restart --------------------------------------------------------------------------------

@dataclass
class RestartResult:
    trial: Trial
    restarted: list[str]
    ssh_command: str | None

    def to_json(self) -> dict[str, Any]:
        return {"trial": self.trial.to_json(), "restarted": self.restarted, "ssh_command": self.ssh_command}


def restart(services: Services, trial_id: str) -> RestartResult:
    """Bring an active trial back after a host or engine restart: the host service, then the sandbox.

    The sandbox's volumes hold the candidate's work, so starting the same container loses
    nothing. Docker may publish SSH on a new host port: the result says which.
    """
    from orchestrator.service import daemon

    trial = services.store.get_trial(trial_id)
    if trial.state != State.ACTIVE:
        raise StateError(f"trial {trial.id} is {trial.state}; only an active trial can be restarted",
                         "see `trial status ID`")
    if trial.deadline is not None and trial.deadline <= utcnow():
        # The host service stopped it at the deadline: starting it again would reopen the home folder.
        raise StateError(f"the deadline of trial {trial.id} has passed: its sandbox stays stopped",
                         f"collect it with `trial collect {trial.id}` (or let `trial reap` do it)")
    restarted: list[str] = []
    if daemon.health(services.settings) is None:
        daemon.ensure_running(services.settings)
        restarted.append("host service")
    services.sandbox.ping()
    ref = services.sandbox.find(trial.id)
    if ref is None:
        raise StateError(f"the sandbox of trial {trial.id} is gone (its volumes may remain)",
                         f"collect what is in the repo with `trial collect {trial.id}`")
    if services.sandbox.status(ref) != "running":
        ref = services.sandbox.start(ref)
        restarted.append(f"sandbox {ref.name}")
        services.store.merge_data(trial.id, {"ssh_port": ref.ssh_port, "ssh_host": ref.host})
        services.store.add_event(trial.id, "trial.restarted", {"ssh_port": ref.ssh_port})
    trial = services.store.get_trial(trial.id)
    return RestartResult(trial, restarted,
                         ssh_command(services, trial.data.get("ssh_port"), trial.data.get("ssh_host")))
