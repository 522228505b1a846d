"""The metric framework: what a metric is, what it is judged against, and what it may read.

A metric is a small class with a name, a version, a pydantic params model and one ``evaluate`` method
that turns a call into a :class:`MetricResult`. Keeping the parameters in a model means every
threshold is validated once, echoed into every result, and documented by its JSON schema; keeping the
version on the class means a changed rule never silently mixes with old results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..model.call import Call
from ..model.enums import MetricSource, Modality
from ..model.metric import MetricResult
from ..model.modality import modality_of

if TYPE_CHECKING:
    from .llm import JudgeClient

__all__ = ["AgentProfile", "EvalContext", "Metric", "MetricKind", "NoParams", "RuleMetric"]


class MetricKind(StrEnum):
    """How a metric is computed, which decides what it needs (a recording, nothing, an LLM)."""

    AUDIO = "audio"
    DETERMINISTIC = "deterministic"
    JUDGE = "judge"


class AgentProfile(BaseModel):
    """What an agent is judged against.

    Stored per agent in the project settings under ``("agents", agent_id)`` or loaded from YAML.
    ``metrics`` maps a metric name to its parameter overrides; an empty mapping means the default set.
    ``knowledge_base`` lists text or markdown files; one that cannot be read becomes an ``error`` on the
    results that need it, never a failed evaluation of the whole call.

    ``judge_base_url`` and ``judge_model`` send this agent's judge metrics to another OpenAI-compatible
    endpoint or model than the configured one. The key is never part of a profile (profiles are stored
    in project settings and returned by the API): ``judge_api_key_env`` names the environment variable
    of the evaluating process that holds it.
    """

    model_config = ConfigDict(extra="forbid")

    agent_id: str | None = None
    system_prompt: str | None = None
    knowledge_base: list[str] = Field(default_factory=list)
    expected_outcome: str | None = None
    metrics: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    judge_base_url: str | None = Field(default=None, min_length=1, pattern=r"^https?://")
    judge_model: str | None = Field(default=None, min_length=1)
    judge_api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class EvalContext:
    """Everything a metric may read besides the call itself.

    ``judge`` is None when no LLM endpoint is configured, so judge-assisted metrics fall back to rules.
    ``scores`` holds results already stored for the call (audio turn-taking, for instance) by metric
    name. ``scenario`` carries a simulated call's expectations (expected outcome, expected tool calls).
    """

    profile: AgentProfile = field(default_factory=AgentProfile)
    judge: JudgeClient | None = None
    scores: Mapping[str, MetricResult] = field(default_factory=dict)
    scenario: Mapping[str, JsonValue] | None = None


class NoParams(BaseModel):
    """The params model of a metric that takes no parameters."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=BaseModel)


_PLAIN_VALUES = (float, bool, str, type(None))


def _plain_tree(node: object) -> bool:
    """Whether ``node`` is made only of JSON types (str keys), so it needs no validation."""
    kind = type(node)
    if kind is dict:
        return all(type(k) is str and _plain_tree(v) for k, v in node.items())  # type: ignore[attr-defined]
    if kind is list:
        return all(_plain_tree(v) for v in node)  # type: ignore[attr-defined]
    return kind in (str, int, float, bool, type(None))


def _plain(value: object, passed: object, evidence: dict[str, JsonValue]) -> bool:
    value_ok = type(value) in _PLAIN_VALUES or type(value) is int
    return value_ok and type(passed) in (bool, type(None)) and _plain_tree(evidence)


class Metric(ABC, Generic[P]):
    """One metric: subclasses set the class variables and implement :meth:`evaluate`.

    ``evaluate`` may raise; the runner turns the exception into a result carrying ``error`` so one
    broken metric never hides the others. Use :meth:`result` to build results, so name, version,
    parameters and source are always filled the same way.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[MetricKind]
    params_model: ClassVar[type[BaseModel]] = NoParams
    description: ClassVar[str]
    source: ClassVar[MetricSource] = MetricSource.TRANSCRIPT
    default: ClassVar[bool] = True
    """Whether the metric belongs to the default set of agents nobody configured."""
    modalities: ClassVar[frozenset[Modality]] = frozenset(Modality)
    """The kinds of call the metric means something on: a voice-only measure (speech rate, talk ratio)
    is not run on a text chat unless the agent's profile or the command names it."""

    def __init__(self, params: P | None = None) -> None:
        self.params: P = params if params is not None else self.params_model()  # type: ignore[assignment]
        self.chosen = False
        """Named by the agent's profile or the command (then it runs on any call)."""

    def applies_to(self, call: Call) -> bool:
        """Whether the metric runs on ``call``: it was chosen, or the call is of a modality it measures."""
        return self.chosen or modality_of(call) in self.modalities

    @cached_property
    def params_json(self) -> dict[str, JsonValue]:
        """The parameters as stored with every result (computed once: results are built per call)."""
        return self.params.model_dump(mode="json")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None) -> Metric[Any]:
        """Build the metric with parameter overrides (from settings or YAML), validated by its model."""
        params: Any = cls.params_model.model_validate(dict(overrides or {}))
        return cls(params)

    @abstractmethod
    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        """Compute this metric on one call."""

    def result(
        self,
        call: Call,
        *,
        value: float | bool | str | None,
        passed: bool | None = None,
        evidence: Mapping[str, JsonValue] | None = None,
        error: str | None = None,
    ) -> MetricResult:
        """A result of this metric on ``call``, echoing every parameter used."""
        body = dict(evidence or {})
        if _plain(value, passed, body):
            # Built by hand from values checked to be plain JSON: validating a result costs more than
            # most metrics do, and one is built per metric per call.
            return MetricResult.model_construct(
                call_id=call.id or call.external_id,
                metric=self.name,
                version=self.version,
                value=float(value) if type(value) is int else value,
                passed=passed,
                params=dict(self.params_json),
                evidence=body,
                source=self.source,
                error=error,
                evaluated_at=datetime.now(UTC),
            )
        validated = MetricResult(
            call_id=call.id or call.external_id,
            metric=self.name,
            version=self.version,
            value=value,
            passed=passed,
            evidence=body,
            source=self.source,
            error=error,
        )
        # The parameters are a JSON dump of a validated model: validating them again for every result
        # would cost more than most metrics (a say-do catalogue is a few hundred JSON nodes).
        return validated.model_copy(update={"params": dict(self.params_json)})


class RuleMetric(Metric[P]):
    """A metric computed by a fixed rule from the call and its stored results: no recording to analyse,
    no LLM to ask, and the same call always gives the same result."""

    kind: ClassVar[MetricKind] = MetricKind.DETERMINISTIC
