"""Trial templates: `trial_templates/<name>/` folders, validated into `Template` objects.

A template folder holds `template.toml` (validated by `TemplateConfig`, extra keys
refused), `brief.md` (the issue the candidate gets), `starter/` (pushed to the repo),
`hidden_tests/` and `reference/` (never pushed, never in the candidate's image) and a
`Dockerfile` that takes `ARG BASE_IMAGE`. Errors name the file and the field.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import NotFoundError, TemplateError

TEMPLATE_FILE = "template.toml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Strict):
    command: str = Field(min_length=1)
    """Starts the candidate's program from /workspace, as the test uid; it must listen on `port`
    on all interfaces. The hidden tests reach it at $TRIAL_SERVICE_URL."""
    port: int = Field(gt=0, lt=65536)
    """The port the program listens on."""
    ready_timeout_s: int = Field(default=30, gt=0)
    """How long the program may take to accept connections before the tests run anyway."""


class TestsConfig(_Strict):
    __test__ = False  # not a pytest class

    shape: Literal["library", "service"] = "library"
    """How the hidden tests meet the candidate's code. `service`: the program runs in its own
    container and the tests reach it over a private network, so its code never runs in the
    tests' process (prefer this). `library`: the tests import the code, so they run beside it,
    under per-run canary tests that detect blanket forgery of the results."""
    service: ServiceConfig | None = None
    """[tests.service]: required with shape = "service", refused otherwise."""
    starter: str
    """Command that runs the starter's own tests in /workspace (must pass on the starter)."""
    hidden: str
    """Command that runs the hidden tests; `{junit}` is replaced by the JUnit XML path to write."""
    hidden_dir: str = "hidden_tests"
    """Where, relative to /workspace, the hidden tests are copied before they run."""
    fail_to_pass: tuple[str, ...] = ()
    """Hidden test ids that fail on the starter and must pass on a solution."""
    pass_to_pass: tuple[str, ...] = ()
    """Test ids that pass on the starter and must keep passing."""
    timeout_s: int = Field(default=600, gt=0)
    """Wall-clock limit for one test run."""


class RubricEntry(_Strict):
    grader: str
    """Name of a grader registered under the `trial.graders` entry point group."""
    weight: float = Field(default=1.0, ge=0)
    """Relative weight of this grader in the overall score."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Grader-specific options."""


Track = Literal["builder", "specialist", "design"]
"""builder: ship a feature end to end; specialist: depth (concurrency, performance, security);
design: the brief leaves the decisions open and a reviewer plays the user."""


class DefectConfig(_Strict):
    """[defect]: the subtle flaw planted in or around the agent's natural path (reviewers only)."""

    description: str = Field(min_length=1)
    """What is wrong and where, for reviewers; never shown to the candidate."""
    tests: tuple[str, ...] = Field(min_length=1)
    """Hidden test ids that catch it; each must be in tests.fail_to_pass."""
    note: str = Field(min_length=1)
    """Why a reviewer should care (what it costs in production, why an agent copies it)."""
    keywords: tuple[str, ...] = ()
    """Regular expressions that recognise someone naming the defect (the steering grader's
    `defect.keywords`; it gets this table unless its rubric options set their own)."""


class TemplateGatewayConfig(_Strict):
    provider: str | None = Field(default=None, pattern=r"^(anthropic|openai|script:.+)$")
    """Where this template's trials get models: `anthropic`/`openai` (the real provider) or
    `script:FILE` (a scripted model, FILE relative to the template folder; for template proofs
    and demos). None: the operator's `[gateway] provider`."""


class TemplateConfig(_Strict):
    title: str = Field(min_length=1)
    """One-line title shown to operators and used as the brief issue's title."""
    summary: str = Field(min_length=1)
    """A paragraph on what the trial asks for."""
    language: str = Field(min_length=1)
    """Main language of the starter codebase."""
    track: Track | None = None
    """builder, specialist or design; `trial launch --track` picks a template by it. Bundled
    templates must say (`require_complete`); None only for test fixtures."""
    hours: float = Field(default=4.0, gt=0)
    """Default length of a trial of this template."""
    agent: str = "none"
    """Default coding agent in the sandbox (claude-code, codex, aider or none)."""
    budget_usd: float = Field(default=20.0, ge=0)
    """Default LLM spend cap for one trial."""
    scope: tuple[str, ...] = ()
    """Glob patterns of paths the brief expects the candidate to change (empty: anything)."""
    allow_remote_tools: bool = False
    """Let the agent use provider-side tools that reach the internet (web search and fetch, MCP
    servers, remote file search); by default the gateway strips them from every request."""
    tests: TestsConfig
    rubric: tuple[RubricEntry, ...] = (RubricEntry(grader="hidden_tests"),)
    gateway: TemplateGatewayConfig = TemplateGatewayConfig()
    defect: DefectConfig | None = None
    """[defect]: the planted defect. Bundled templates must declare one (`require_complete`)."""


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    config: TemplateConfig

    @property
    def brief_path(self) -> Path:
        return self.path / "brief.md"

    @property
    def starter_dir(self) -> Path:
        return self.path / "starter"

    @property
    def hidden_tests_dir(self) -> Path:
        return self.path / "hidden_tests"

    @property
    def reference_dir(self) -> Path:
        return self.path / "reference"

    @property
    def reference_patch(self) -> Path:
        return self.reference_dir / "solution.patch"

    @property
    def defect_patch(self) -> Path:
        """A patch against the reference tree that puts the planted defect back."""
        return self.reference_dir / "defect.patch"

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def image_dir(self) -> Path:
        """Extra files the Dockerfile may COPY (the build context holds only these)."""
        return self.path / "image"

    def brief(self) -> str:
        return self.brief_path.read_text()


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / TEMPLATE_FILE).is_file())

    def get(self, name: str) -> Template:
        if not NAME_RE.match(name):
            raise TemplateError(f"'{name}' is not a template name (lowercase letters, digits and '-')",
                                "list templates with `trial templates list`")
        path = self.root / name
        if not (path / TEMPLATE_FILE).is_file():
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(f"unknown template '{name}' in {self.root}", f"known templates: {known}")
        return load_template(path)

    def all(self) -> list[Template]:
        return [self.get(name) for name in self.names()]


def load_template(path: Path) -> Template:
    toml_path = path / TEMPLATE_FILE
    try:
        raw = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{toml_path}: not valid TOML ({exc})", "fix the syntax") from exc
    try:
        config = TemplateConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        value = first.get("input")
        shown = "" if isinstance(value, dict) or first["type"] == "missing" else f" (got {value!r})"
        raise TemplateError(f"{toml_path}: field '{field}': {first['msg']}{shown}",
                            "see TemplateConfig in orchestrator/catalog.py") from exc
    _check_shape(toml_path, config.tests)
    config = _with_defect(toml_path, config)
    template = Template(name=path.name, path=path, config=config)
    for required, kind in ((template.brief_path, "file"), (template.starter_dir, "folder"),
                           (template.dockerfile, "file"), (template.hidden_tests_dir, "folder")):
        if not required.exists():
            raise TemplateError(f"{path}: missing {kind} '{required.name}'",
                                "a template needs brief.md, starter/, hidden_tests/ and a Dockerfile")
    if "ARG BASE_IMAGE" not in template.dockerfile.read_text():
        raise TemplateError(f"{template.dockerfile}: has no 'ARG BASE_IMAGE'",
                            "start it with `ARG BASE_IMAGE=debian:bookworm` and `FROM ${BASE_IMAGE}`")
    return template


def _with_defect(toml_path: Path, config: TemplateConfig) -> TemplateConfig:
    """Check [defect] against the tests, and hand it to the steering grader as its `defect` option."""
    defect = config.defect
    if defect is None:
        return config
    unknown = [t for t in defect.tests if t not in config.tests.fail_to_pass]
    if unknown:
        raise TemplateError(f"{toml_path}: field 'defect.tests': {unknown[0]!r} is not in tests.fail_to_pass",
                            "the defect's tests must fail on the starter: list them in fail_to_pass too")
    for index, entry in enumerate(config.rubric):
        if entry.grader == "steering" and "defect" in entry.options:
            raise TemplateError(f"{toml_path}: field 'rubric.{index}.options.defect': duplicates [defect]",
                                "keep the planted defect in [defect] only (the steering grader gets it from there)")
    shared = {"description": defect.description, "keywords": list(defect.keywords), "tests": list(defect.tests)}
    rubric = tuple(entry.model_copy(update={"options": {**entry.options, "defect": shared}})
                   if entry.grader == "steering" else entry for entry in config.rubric)
    return config.model_copy(update={"rubric": rubric})


def require_complete(template: Template) -> None:
    """What every bundled template declares beyond what loading needs: a track, a planted defect,
    FAIL_TO_PASS ids and a reference solution (test fixtures may leave these out)."""
    toml_path = template.path / TEMPLATE_FILE
    config = template.config
    if config.track is None:
        raise TemplateError(f"{toml_path}: field 'track': required for a bundled template",
                            'add `track = "builder"` (or "specialist", "design")')
    if config.defect is None:
        raise TemplateError(f"{toml_path}: field 'defect': required for a bundled template",
                            "add a [defect] table with description, tests and note")
    if not config.tests.fail_to_pass:
        raise TemplateError(f"{toml_path}: field 'tests.fail_to_pass': required for a bundled template",
                            "list the hidden test ids that fail on the starter")
    if not template.reference_patch.is_file():
        raise TemplateError(f"{template.reference_patch} is missing",
                            "a template needs a reference solution as a patch against starter/")


# Pytest options that stop or narrow a run: per-run canaries would be cut or deselected with them.
_NARROWING = ("-x", "--exitfirst", "--maxfail", "-k", "-m", "--deselect", "--lf", "--last-failed", "--sw",
              "--stepwise")


def _check_shape(toml_path: Path, tests: TestsConfig) -> None:
    if tests.shape == "service" and tests.service is None:
        raise TemplateError(f"{toml_path}: field 'tests.service': required when tests.shape is \"service\"",
                            "add a [tests.service] table with `command` (starts the program) and `port`")
    if tests.shape == "library" and tests.service is not None:
        raise TemplateError(f"{toml_path}: field 'tests.service': only for tests.shape = \"service\"",
                            "set `shape = \"service\"` in [tests], or remove [tests.service]")
    if tests.shape == "library":
        try:
            words = shlex.split(tests.hidden)
        except ValueError as exc:
            raise TemplateError(f"{toml_path}: field 'tests.hidden': not a valid command ({exc})",
                                "fix the quoting") from exc
        # Only what follows the runner: `python3 -m pytest` has a -m of its own.
        runner = next((i for i, w in enumerate(words) if w.rsplit("/", 1)[-1] in ("pytest", "py.test")), len(words))
        narrowing = [w for w in words[runner + 1:] if w.split("=", 1)[0] in _NARROWING or w.startswith("--maxfail")]
        if narrowing:
            raise TemplateError(f"{toml_path}: field 'tests.hidden': {' '.join(narrowing)} stops or narrows the run",
                                "library templates run every hidden test beside per-run canaries (some "
                                "written to fail); drop the option")
