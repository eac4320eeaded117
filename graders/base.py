"""The Grader protocol: a pure function of an evidence bundle (plus options) to a result.

Graders depend on the bundle only, never on Docker or the forge, except the hidden-tests
grader, which asks the sandbox backend in the context for a fresh verifier container.
An infrastructure failure is reported with status `infra_error` and never scored as the
candidate's fault.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from orchestrator.catalog import Template
    from orchestrator.evidence.bundle import Bundle
    from orchestrator.sandbox.base import SandboxBackend


@dataclass
class Criterion:
    id: str
    title: str
    score: float
    max: float
    rationale: str
    evidence_refs: list[str] = field(default_factory=list)
    """Each ref is `commit:<sha>`, `pr:<n>`, `comment:<url>`, `event:<index>` or `test:<id>`."""


@dataclass
class GraderResult:
    grader: str
    status: Literal["ok", "infra_error", "skipped"] = "ok"
    criteria: list[Criterion] = field(default_factory=list)
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(c.score for c in self.criteria)

    @property
    def max(self) -> float:
        return sum(c.max for c in self.criteria)

    @property
    def fraction(self) -> float | None:
        return None if self.status != "ok" or not self.max else self.score / self.max

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(score=self.score, max=self.max, fraction=self.fraction)
        return data


@dataclass
class GradeContext:
    """What a grader may use besides the bundle."""

    template: Template | None = None
    sandbox: SandboxBackend | None = None
    image: str | None = None
    """Template image tag for verifier containers."""
    results: dict[str, GraderResult] = field(default_factory=dict)
    """Results of the graders that ran before this one in the rubric (hidden_tests comes first),
    so a grader can check a claim against what was verified."""


@runtime_checkable
class Grader(Protocol):
    name: str

    def grade(self, bundle: Bundle, options: dict[str, Any], context: GradeContext) -> GraderResult: ...
