"""Custom judge metrics defined in YAML: a name, a rubric and an output type, no Python.

::

    name: confirms_appointment
    rubric: |
      The agent reads back the appointment's date and time and the caller confirms them.
    output: binary            # binary | score (1-5) | enum
    # score: min_score: 4     # enum: values: [...], pass_values: [...]
    context: [agent_instructions]   # also sent: agent_instructions, expected_outcome, knowledge_base

A definition becomes a judge metric class registered under its name, so it runs, is configured per
agent and is calibrated like a built-in one. Its version is the written ``version`` plus a hash of the
definition, so results of an edited rubric never mix with results of the old one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import InputError
from ..model.call import Call
from .base import EvalContext, Metric
from .judges.base import (
    BOOLEAN,
    DATA_PREAMBLE,
    QUOTES,
    STRING,
    JudgeMetric,
    JudgeParams,
    NotScorable,
    Outcome,
    cited_evidence,
    enum_of,
    object_schema,
    read_knowledge_base,
    score_schema,
    tagged,
)
from .registry import all_metrics, register, replace

__all__ = [
    "CustomJudgeMetric",
    "CustomMetricSpec",
    "CustomOutput",
    "define_custom_metric",
    "load_custom_metrics",
    "parse_custom_metrics",
    "project_custom_metrics",
]

SCORE_RANGE = (1, 5)
SETTINGS_KEY = "custom_metrics"
"""Where a project's custom metric definitions live in its settings document (name → definition)."""

ContextPart = Literal["agent_instructions", "expected_outcome", "knowledge_base"]


class CustomOutput(StrEnum):
    """What a custom rubric answers."""

    BINARY = "binary"
    SCORE = "score"
    ENUM = "enum"


class CustomMetricSpec(BaseModel):
    """One custom metric as written in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", description="Registry name (lowercase).")
    rubric: str = Field(min_length=1, description="What the judge checks, in plain words.")
    output: CustomOutput = Field(description="binary, score (1–5) or enum.")
    values: list[str] | None = Field(default=None, description="The labels of an enum output.")
    pass_values: list[str] | None = Field(default=None, description="Enum labels that pass.")
    min_score: int | None = Field(
        default=None, ge=SCORE_RANGE[0], le=SCORE_RANGE[1], description="Lowest passing score."
    )
    description: str | None = None
    version: str = "1"
    context: list[ContextPart] = Field(default_factory=list, description="What else the judge is shown.")
    turn_level: bool = Field(default=False, description="Ask the judge to judge and cite each turn.")
    default: bool = Field(default=False, description="Run for agents that configured no metric set.")

    @model_validator(mode="after")
    def _fits_output(self) -> CustomMetricSpec:
        if self.output is CustomOutput.ENUM:
            if not self.values or len(set(self.values)) < 2:
                raise ValueError("an enum output needs `values` with at least two distinct labels")
            unknown = set(self.pass_values or []) - set(self.values)
            if unknown:
                raise ValueError(f"pass_values {sorted(unknown)} are not among values {self.values}")
        elif self.values is not None or self.pass_values is not None:
            raise ValueError("`values` and `pass_values` belong to an enum output")
        if self.min_score is not None and self.output is not CustomOutput.SCORE:
            raise ValueError("`min_score` belongs to a score output")
        return self

    def fingerprint(self) -> str:
        """A short hash of the definition, part of the metric's version."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]


class CustomJudgeMetric(JudgeMetric[JudgeParams]):
    """The judge metric behind every custom definition; each definition is a subclass with its spec."""

    spec: ClassVar[CustomMetricSpec]

    def rubric(self) -> str:
        spec = self.spec
        answer = {
            CustomOutput.BINARY: "Answer `passed`: true when the conversation meets the rubric, else false.",
            CustomOutput.SCORE: (
                f"Answer `score` from {SCORE_RANGE[0]} (does not meet the rubric at all) to "
                f"{SCORE_RANGE[1]} (meets it fully)."
            ),
            CustomOutput.ENUM: f"Answer `label`: the one of {spec.values} that fits best.",
        }[spec.output]
        turns = (
            "Judge turn by turn and quote every turn that decides your answer. "
            if spec.turn_level
            else "Judge the whole conversation. "
        )
        return (
            "You evaluate a recorded phone conversation between a voice agent and a caller against a "
            f"rubric.\n\nRubric:\n{spec.rubric.strip()}\n\n{answer}\n{turns}Give a short reasoning and "
            "quotes, each with the number of the turn it is from (in square brackets).\n\n"
            f"{DATA_PREAMBLE}"
        )

    def data(self, call: Call, context: EvalContext) -> str:
        parts: dict[str, str] = {}
        profile = context.profile
        for part in self.spec.context:
            if part == "agent_instructions":
                if not profile.system_prompt:
                    raise NotScorable("the rubric needs the agent's system prompt, and the profile has none")
                parts[part] = profile.system_prompt
            elif part == "expected_outcome":
                scenario = context.scenario.get("expected_outcome") if context.scenario else None
                expected = scenario if isinstance(scenario, str) and scenario else profile.expected_outcome
                if not expected:
                    raise NotScorable("the rubric needs an expected outcome, and none is set")
                parts[part] = expected
            else:
                if not profile.knowledge_base:
                    raise NotScorable("the rubric needs the agent's knowledge base, and the profile has none")
                parts[part] = read_knowledge_base(profile.knowledge_base)
        parts["transcript"] = self.transcript(call)
        return tagged(**parts)

    def interpret(self, reply: Mapping[str, Any], call: Call) -> Outcome:
        spec = self.spec
        evidence = cited_evidence(call, reply, "quotes", reasoning=reply["reasoning"])
        if spec.output is CustomOutput.BINARY:
            passed = bool(reply["passed"])
            return Outcome(value=passed, passed=passed, evidence=evidence)
        if spec.output is CustomOutput.SCORE:
            score = int(reply["score"])
            verdict = None if spec.min_score is None else score >= spec.min_score
            return Outcome(value=score, passed=verdict, evidence=evidence)
        label = str(reply["label"])
        verdict = None if spec.pass_values is None else label in spec.pass_values
        return Outcome(value=label, passed=verdict, evidence=evidence)


def _reply_schema(spec: CustomMetricSpec) -> dict[str, Any]:
    answer: dict[str, Any] = {
        CustomOutput.BINARY: {"passed": BOOLEAN},
        CustomOutput.SCORE: {"score": score_schema(*SCORE_RANGE)},
        CustomOutput.ENUM: {"label": enum_of(*(spec.values or []))},
    }[spec.output]
    return object_schema(**answer, reasoning=STRING, quotes=QUOTES)


_defined: dict[str, type[CustomJudgeMetric]] = {}
_lock = threading.Lock()


def define_custom_metric(spec: CustomMetricSpec) -> type[CustomJudgeMetric]:
    """The registered metric class of ``spec``.

    Defining the same spec again returns the same class; an edited definition (a changed rubric, output
    or context) replaces the old class under the same name, with a new version since the version
    hashes the definition, so old and new results never mix. A name taken by a built-in metric is an
    :class:`~convoscope.errors.InputError`.
    """
    with _lock:
        existing = _defined.get(spec.name)
        if existing is not None and existing.spec == spec:
            return existing
        if existing is None and spec.name in all_metrics():
            raise InputError(f"custom metric {spec.name!r} would shadow the built-in metric of that name")
        attributes: dict[str, Any] = {
            "name": spec.name,
            "version": f"{spec.version}.{spec.fingerprint()}",
            "description": spec.description or spec.rubric.strip().splitlines()[0],
            "instructions": spec.rubric,
            "reply_schema": _reply_schema(spec),
            "turn_level": spec.turn_level,
            "default": spec.default,
            "spec": spec,
            "__doc__": f"Custom metric {spec.name!r} defined in YAML.",
        }
        cls = type(f"Custom_{spec.name}", (CustomJudgeMetric,), attributes)
        if existing is None:
            register(cls)
        else:
            replace(existing, cls)
        _defined[spec.name] = cls
        return cls


def _validate(entry: Any, where: str) -> CustomMetricSpec:
    if not isinstance(entry, Mapping):
        raise InputError(f"{where}: a custom metric must be a mapping with name, rubric and output")
    name = entry.get("name", "(unnamed)")
    if "rubric" in entry and not entry.get("output"):
        raise InputError(
            f"{where}: custom metric {name!r} has a rubric but no output type; "
            "set output to binary, score or enum"
        )
    try:
        return CustomMetricSpec.model_validate(dict(entry))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(metric)'}: {err['msg']}" for err in exc.errors()
        )
        raise InputError(f"{where}: custom metric {name!r} is invalid: {problems}") from None


def parse_custom_metrics(document: Any, *, where: str = "custom metrics") -> list[CustomMetricSpec]:
    """The definitions in a parsed YAML document: one mapping, a list, or ``metrics: [...]``."""
    if isinstance(document, Mapping) and "metrics" in document and "rubric" not in document:
        document = document["metrics"]
    entries = document if isinstance(document, list) else [document]
    specs = [_validate(entry, f"{where} (metric {number})") for number, entry in enumerate(entries, 1)]
    names = [spec.name for spec in specs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise InputError(f"{where}: custom metric names used twice: {duplicated}")
    return specs


def project_custom_metrics(settings: Mapping[str, Any]) -> dict[str, type[Metric[Any]] | str]:
    """Each custom metric kept in a project's settings: its registered class, or why it was refused.

    Entries live under ``custom_metrics`` as name → definition (the name may be left out of the
    definition). One bad definition never stops the others: its reason is returned under its name, so
    the evaluation records it as that metric's ``error`` and computes every other metric.
    """
    stored = settings.get(SETTINGS_KEY)
    if stored is None:
        return {}
    if not isinstance(stored, Mapping):
        raise InputError(f"project settings {SETTINGS_KEY}: expected a mapping of name to definition")
    found: dict[str, type[Metric[Any]] | str] = {}
    for key, entry in stored.items():
        where = f"project settings {SETTINGS_KEY}.{key}"
        named = {"name": key, **entry} if isinstance(entry, Mapping) else entry
        try:
            (spec,) = parse_custom_metrics([named], where=where)
            found[spec.name] = define_custom_metric(spec)
        except InputError as exc:
            if not _is_builtin(str(key)):  # a refused definition never stands in for a built-in metric
                found[str(key)] = str(exc)
    return found


def _is_builtin(name: str) -> bool:
    cls = all_metrics().get(name)
    return cls is not None and not issubclass(cls, CustomJudgeMetric)


def load_custom_metrics(source: Path | str | Mapping[str, Any]) -> list[type[Metric[Any]]]:
    """Define and register the custom metrics of a YAML file (or of a project's settings entry).

    A file that cannot be read or parsed, or a definition that is invalid (a rubric with no output
    type, an enum with no values), raises :class:`~convoscope.errors.InputError` naming the file.
    """
    if isinstance(source, Mapping):
        specs = parse_custom_metrics(list(source.values()), where=f"project settings {SETTINGS_KEY}")
    else:
        path = Path(source)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML: {exc}") from None
        specs = parse_custom_metrics(document, where=str(path))
    return [define_custom_metric(spec) for spec in specs]
