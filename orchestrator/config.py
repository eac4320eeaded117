"""Operator settings: defaults < ./trial.toml < TRIAL_* environment < command-line flags.

Read when a command runs, never at import. Every value has one home in the `Settings`
model; environment variables are named after it (`TRIAL_<FIELD>` at the top level,
`TRIAL_<SECTION>_<FIELD>` inside a section, e.g. `TRIAL_SERVICE_PORT=7800`), so the
names need no table of their own. Secrets (provider keys, GitHub credentials) are never
settings: they are read from the environment by the component that uses them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import ConfigError

CONFIG_FILE_NAME = "trial.toml"
ENV_PREFIX = "TRIAL_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForgeSettings(_Section):
    kind: Literal["local", "github"] = "local"
    """Where candidate repositories live: `local` bare repos under the data dir, or GitHub."""
    org: str | None = None
    """GitHub organisation that owns the trial repositories (github only)."""
    api_url: str = "https://api.github.com"
    """GitHub REST base URL; GitHub Enterprise Server uses https://HOST/api/v3."""
    repo_pattern: str = "trial-{template}-{candidate}-{short_id}"
    """Name of each candidate repository; fields: template, candidate, short_id, trial_id."""
    on_teardown: Literal["archive", "delete"] = "archive"
    """What teardown does to the candidate repository."""
    bot_name: str = "trial-bot"
    """Author name of the starter commit."""
    bot_email: str = "trial-bot@users.noreply.github.com"
    """Author email of the starter commit."""
    per_page: int = Field(default=100, ge=1, le=100)
    """Page size of GitHub list calls (GitHub's maximum is 100)."""
    throttle: bool = True
    """Space GitHub calls as GitHub asks (0.25 s apart, writes 1 s apart); off only against a test server."""
    request_timeout_s: int = Field(default=30, ge=1)
    """How long one GitHub API call may take."""
    ready_timeout_s: float = Field(default=30.0, gt=0)
    """How long to wait for a just-created repository to answer ("repository is being created")."""
    max_rate_limit_wait_s: float = Field(default=900.0, ge=0)
    """Longest wait for a GitHub rate limit to reset before the step fails (and can be rerun)."""
    repo_quota_mb: float = Field(default=500.0, ge=0)
    """Per-trial repository size limit in MiB (0: none): a pre-receive hook on the local forge, the
    host service's git proxy on GitHub (refuses a pack over what is left), checked again at collect."""


class ServiceSettings(_Section):
    port: int = Field(default=7717, ge=1, le=65535)
    """Port of the host service (LLM gateway and the local forge's git endpoint)."""
    bind: tuple[str, ...] = ()
    """Addresses to listen on; empty means loopback plus the Docker bridge gateway."""
    sandbox_host: str = "host.docker.internal"
    """Name under which sandboxes reach the host service (mapped to the host gateway)."""
    public_host: str = "127.0.0.1"
    """Host name or address that candidates use to SSH into their sandbox."""


class GatewaySettings(_Section):
    anthropic_base_url: str = "https://api.anthropic.com"
    """Upstream for /anthropic/… routes."""
    openai_base_url: str = "https://api.openai.com"
    """Upstream for /openai/… routes."""
    price_table: Path | None = None
    """JSON price table overriding the packaged one."""
    upstream_timeout_s: float = Field(default=600.0, gt=0)
    """How long one upstream exchange may take."""
    provider: str | None = Field(default=None, pattern=r"^(anthropic|openai|script:.+)$")
    """Where models come from for trials that do not say: `anthropic` or `openai` (the real provider
    behind each route, the default) or `script:FILE`, a scripted model (orchestrator/gateway/scripted.py)."""
    max_request_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Largest request body relayed; larger ones get 413 (orchestrator/gateway/limits.py)."""
    max_in_flight_per_trial: int = Field(default=16, ge=1)
    """Requests one trial may have in flight at once; more get a retryable 429."""
    log_quota_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)
    """Size of one trial's gateway log beyond which its requests are refused."""


class SandboxSettings(_Section):
    memory: str = "2g"
    """Memory limit of a sandbox container (Docker syntax: 512m, 2g)."""
    cpus: float = Field(default=1.0, gt=0)
    """CPU limit of a sandbox container."""
    pids: int = Field(default=512, ge=16)
    """Process limit of a sandbox container."""
    base_image: str | None = None
    """BASE_IMAGE build argument for template images (None: each Dockerfile's default)."""
    egress: Literal["auto", "host-only", "open"] = "auto"
    """What a sandbox reaches: `host-only` (the host service's port: LLM gateway and git, nothing
    else; enforced with iptables where trial runs as root on the engine's host, said at launch where
    it cannot be), `auto` (the same, on every forge), `open` (anything the host reaches, other
    sandboxes included; an opt-out that every launch warns about)."""
    ssh_port_range: tuple[int, int] = (0, 0)
    """Host port for sandbox sshd; (0, 0) lets Docker choose a free one."""
    backend: Literal["docker", "swarm"] = "docker"
    """Where sandboxes run: one Docker Engine, or a Docker Swarm (`orchestrator.sandbox.swarm`)."""
    swarm_manager: str | None = None
    """With backend `swarm`: a manager's engine URL (unix://, tcp://, ssh://)."""
    swarm_nodes: dict[str, str] = Field(default_factory=dict)
    """With backend `swarm`: every node's own engine URL, by node id or hostname (volumes, exec, files)."""
    swarm_service_host: str | None = None
    """With backend `swarm`: the address where the nodes reach the host service (at service.port; put
    it in service.bind). Each host-only sandbox reaches the service through a door relaying there."""
    volume_quota_mb: float = Field(default=10240.0, ge=0)
    """Disk limit of each of a trial's volumes (workspace, home) in MiB (0: none). Docker cannot
    enforce it on overlay2/ext4, so it is watched (`orchestrator.sandbox.quota`) and alerted."""


class DefaultSettings(_Section):
    hours: float = Field(default=4.0, gt=0)
    """Trial length when neither the flag nor the template says."""
    budget_usd: float = Field(default=20.0, ge=0)
    """Per-trial LLM spend cap when the template does not say."""


class ReviewSettings(_Section):
    reviewers: tuple[str, ...] = ()
    """Logins whose `/score` lines count. Empty: the repository's admins and maintainers on GitHub,
    the operator on the local forge. The candidate never counts, whatever this says."""
    operator: str | None = None
    """The operator's name on the local forge (who may score there); None: the user running trial."""
    report_base_url: str | None = None
    """Where reviewers reach the host service's report pages (e.g. https://trial.example.com behind a
    proxy). None: http://<service.public_host>:<service.port> on the local forge, and no link on GitHub."""
    report_links: bool = True
    """Link the PR comment to report.html, served read-only by the host service under a per-trial link."""


class TemplateSettings(_Section):
    default_for_track: dict[Literal["builder", "specialist", "design"], str] = Field(default_factory=dict)
    """The team's template for each track: `trial launch --track specialist` launches
    default_for_track.specialist (e.g. `{specialist = "systems", builder = "api-keys"}`)."""


class Settings(_Section):
    home: Path
    """Data directory: store, forge repos, logs, evidence (env TRIAL_HOME)."""
    templates_dir: Path
    """Folder holding one sub-folder per trial template."""
    log_format: Literal["console", "json"] = "console"
    """How logs are written: console for people, json for machines."""
    forge: ForgeSettings = ForgeSettings()
    service: ServiceSettings = ServiceSettings()
    gateway: GatewaySettings = GatewaySettings()
    sandbox: SandboxSettings = SandboxSettings()
    defaults: DefaultSettings = DefaultSettings()
    review: ReviewSettings = ReviewSettings()
    templates: TemplateSettings = TemplateSettings()

    @property
    def db_path(self) -> Path:
        return self.home / "trial.db"

    @property
    def evidence_dir(self) -> Path:
        return self.home / "evidence"

    @property
    def forge_dir(self) -> Path:
        return self.home / "forge"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def secret_path(self) -> Path:
        return self.home / "secret.key"


def default_home(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "trial"


def default_templates_dir(cwd: Path) -> Path:
    here = cwd / "trial_templates"
    if here.is_dir():
        return here
    # A source checkout (or editable install) keeps the templates beside the package.
    return Path(__file__).resolve().parent.parent / "trial_templates"


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Merge defaults, trial.toml, TRIAL_* env and flag overrides (dotted keys) into Settings."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    merged: dict[str, Any] = {}

    config_path = Path(env["TRIAL_CONFIG"]) if env.get("TRIAL_CONFIG") else cwd / CONFIG_FILE_NAME
    if config_path.is_file():
        try:
            file_values = tomllib.loads(config_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML ({exc})", "fix the syntax") from exc
        _validate_partial(file_values, str(config_path))
        _deep_merge(merged, file_values)
    elif env.get("TRIAL_CONFIG"):
        raise ConfigError(f"TRIAL_CONFIG points at {config_path}, which does not exist",
                          "unset TRIAL_CONFIG or create the file")

    env_values = _from_env(env)
    for source, (key, value) in env_values:
        probe: dict[str, Any] = {}
        _set_dotted(probe, key, value)
        _validate_partial(probe, source)
        _set_dotted(merged, key, value)

    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(merged, key, value)

    merged.setdefault("home", str(default_home(env)))
    merged.setdefault("templates_dir", str(default_templates_dir(cwd)))
    return _validate(merged, "settings")


def _validate(values: dict[str, Any], source: str) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(*_describe(exc, source)) from exc


def _validate_partial(values: dict[str, Any], source: str) -> None:
    """Validate one source alone so that an error names the file or variable it came from."""
    probe = {"home": "/", "templates_dir": "/", **values}
    try:
        Settings.model_validate(probe)
    except ValidationError as exc:
        raise ConfigError(*_describe(exc, source)) from exc


def _describe(exc: ValidationError, source: str) -> tuple[str, str]:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    value = first.get("input")
    shown = "" if isinstance(value, dict) else f" (got {value!r})"
    return (f"{source}: field '{field}': {first['msg']}{shown}",
            "see the Settings fields in orchestrator/config.py for allowed values")


def _from_env(env: Mapping[str, str]) -> list[tuple[str, tuple[str, Any]]]:
    found: list[tuple[str, tuple[str, Any]]] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub_name, sub_field in annotation.model_fields.items():
                var = f"{ENV_PREFIX}{name}_{sub_name}".upper()
                if var in env:
                    found.append((var, (f"{name}.{sub_name}", _env_value(env[var], sub_field.annotation))))
        else:
            var = f"{ENV_PREFIX}{name}".upper()
            if var in env:
                found.append((var, (name, env[var])))
    return found


def _env_value(raw: str, annotation: Any) -> Any:
    origin = getattr(annotation, "__origin__", None)
    if origin is tuple:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value
