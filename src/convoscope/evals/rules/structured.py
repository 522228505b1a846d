"""Structured-output metric: do the call's structured values conform to a JSON schema?

Agents emit structured data in three places: tool-call arguments, tool results, and the platform's
post-call analysis (``vendor_analysis``) or ``metadata``. The metric validates every instance it finds
at the configured target and reports each violation with its JSON path.
"""

from __future__ import annotations

import json
from enum import StrEnum

import jsonschema
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from ...model.call import Call
from ...model.enums import Role
from ...model.metric import MetricResult
from ..base import EvalContext, RuleMetric
from ..registry import register
from ._text import turns_of

__all__ = ["JsonSchema", "JsonSchemaParams", "SchemaTarget"]

MAX_ERRORS = 20
"""Violations listed per instance; the count covers them all."""


class SchemaTarget(StrEnum):
    """Where the structured values are read from."""

    TOOL_ARGUMENTS = "tool_arguments"
    TOOL_RESULTS = "tool_results"
    VENDOR_ANALYSIS = "vendor_analysis"
    METADATA = "metadata"
    AGENT_TURNS = "agent_turns"
    """Each agent turn's text parsed as JSON (text agents answering in JSON)."""


class JsonSchemaParams(BaseModel):
    """The schema and where to apply it."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, serialize_by_alias=True, use_attribute_docstrings=True
    )

    json_schema: dict[str, JsonValue] | None = Field(default=None, alias="schema")
    """The JSON schema the values must satisfy."""
    target: SchemaTarget = SchemaTarget.TOOL_ARGUMENTS
    """Where the values are read from."""
    tool_name: str | None = None
    """With a tool target: only calls of this tool."""
    key: str | None = None
    """With vendor_analysis or metadata: the key holding the value (None: the whole mapping)."""

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None:
            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return value


def _instances(call: Call, params: JsonSchemaParams) -> list[tuple[str, JsonValue]]:
    """(where, value) for every value the target designates."""
    target = params.target
    if target in (SchemaTarget.TOOL_ARGUMENTS, SchemaTarget.TOOL_RESULTS):
        return [
            (
                f"tool_calls[{tc.id}].{'arguments' if target is SchemaTarget.TOOL_ARGUMENTS else 'result'}",
                tc.arguments if target is SchemaTarget.TOOL_ARGUMENTS else tc.result,
            )
            for tc in call.tool_calls
            if params.tool_name is None or tc.name == params.tool_name
        ]
    if target is SchemaTarget.AGENT_TURNS:
        found: list[tuple[str, JsonValue]] = []
        for turn in turns_of(call, [Role.AGENT]):
            try:
                found.append((f"turns[{turn.index}]", json.loads(turn.text)))
            except json.JSONDecodeError as exc:
                found.append((f"turns[{turn.index}]", {"__invalid_json__": str(exc)}))
        return found
    mapping = call.vendor_analysis if target is SchemaTarget.VENDOR_ANALYSIS else call.metadata
    if params.key is None:
        return [(target.value, dict(mapping))] if mapping else []
    return [(f"{target.value}.{params.key}", mapping[params.key])] if params.key in mapping else []


@register
class JsonSchema(RuleMetric[JsonSchemaParams]):
    """Share of structured values that validate against a JSON schema."""

    name = "json_schema"
    version = "1"
    params_model = JsonSchemaParams
    description = (
        "Share of the structured values at the target (tool arguments or results, post-call analysis, "
        "metadata, JSON agent turns) that validate against the schema; passes when all do."
    )
    default = False

    def evaluate(self, call: Call, context: EvalContext) -> MetricResult:
        schema = self.params.json_schema
        if schema is None:
            return self.result(call, value=None, evidence={"not_scorable": "no schema configured"})
        instances = _instances(call, self.params)
        if not instances:
            reason = f"no values at {self.params.target}"
            return self.result(call, value=None, evidence={"not_scorable": reason})
        validator = jsonschema.validators.validator_for(schema)(schema)
        invalid: list[JsonValue] = []
        for where, value in instances:
            if isinstance(value, dict) and "__invalid_json__" in value:
                invalid.append({"where": where, "errors": [f"not JSON: {value['__invalid_json__']}"]})
                continue
            errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
            if errors:
                invalid.append(
                    {
                        "where": where,
                        "count": len(errors),
                        "errors": [f"{e.json_path}: {e.message}" for e in errors[:MAX_ERRORS]],
                    }
                )
        value = round(1.0 - len(invalid) / len(instances), 6)
        evidence: dict[str, JsonValue] = {"instances": len(instances), "invalid": invalid}
        return self.result(call, value=value, passed=not invalid, evidence=evidence)
