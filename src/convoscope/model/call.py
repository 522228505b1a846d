"""The canonical call: the one shape every source becomes and every consumer reads.

Times inside a call are seconds from call start (float); wall-clock times are timezone-aware UTC.
Models are frozen and reject unknown fields, so a typo in a producer fails loudly at the edge instead of
vanishing silently. Free-form data belongs in ``metadata``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from .bounds import (
    MAX_TAGS,
    MAX_URL_TEXT,
    UINT32_MAX,
    BoundedJson,
    Flag,
    Integer,
    JsonObject,
    Number,
    ShortText,
    check_time,
)
from .document import MAX_DOCUMENTS, Document
from .enums import CallSource, Direction, EndReason, Role

__all__ = [
    "Call",
    "CostLine",
    "LatencyStats",
    "Recording",
    "SimulationRef",
    "ToolCall",
    "Turn",
    "Usage",
    "Word",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_Seconds = Field(ge=0.0, allow_inf_nan=False)


class Word(BaseModel):
    """One recognised word with its timing, when the source gives word-level timestamps."""

    model_config = _FROZEN

    word: str
    start_s: Number = _Seconds
    end_s: Number = _Seconds
    confidence: Number | None = Field(default=None, ge=0.0, le=1.0)


def _index_optional_on_input(schema: dict[str, Any]) -> None:
    """Sent turns may leave ``index`` out (the call numbers them by position), so the schema says so."""
    schema["required"] = [name for name in schema.get("required", []) if name != "index"]


class Turn(BaseModel):
    """One utterance of one party.

    The latency components are what the platform or framework reported for this turn (the time to its
    agent speech); ``e2e_s`` is their end-to-end figure. Audio-truth gaps are measured separately.
    ``index`` may be left out of a sent call: a turn's position in the list is then its index.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_index_optional_on_input)

    index: Integer = Field(ge=0, le=UINT32_MAX)
    role: Role
    text: str = ""
    start_s: Number = _Seconds
    end_s: Number = _Seconds
    words: list[Word] | None = None
    interrupted: Flag = False
    e2e_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    eou_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    stt_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    llm_ttft_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    tts_ttfb_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    documents: list[Document] | None = Field(default=None, max_length=MAX_DOCUMENTS)
    """What a RAG step retrieved (and re-ranked) for this turn's answer, in the order given."""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Turn:
        if self.end_s < self.start_s:
            raise ValueError(f"end_s ({self.end_s}) is before start_s ({self.start_s})")
        return self


class ToolCall(BaseModel):
    """A tool (function) the agent invoked, linked to its result."""

    model_config = _FROZEN

    id: ShortText
    turn_index: Integer | None = Field(default=None, ge=0, le=UINT32_MAX)
    name: ShortText
    arguments: BoundedJson = None
    result: BoundedJson = None
    success: Flag | None = None
    start_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    end_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)


class Recording(BaseModel):
    """Audio of the call.

    ``channel_map`` maps a channel number (0 = left) to the role heard on it. It is never assumed: the
    adapter sets it from the vendor's documented convention or the user sets it; empty means unknown, and
    overlap metrics then report "not scorable". ``vantage`` and ``offset_s`` say where the audio was
    captured and how its clock relates to the call's, because a framework's recording is not wall-clock
    truth.
    """

    model_config = _FROZEN

    uri: str | None = Field(default=None, max_length=MAX_URL_TEXT)
    source_url: str | None = Field(default=None, max_length=MAX_URL_TEXT)
    format: ShortText | None = None
    sample_rate: Integer | None = Field(default=None, gt=0)
    channels: Integer | None = Field(default=None, ge=1)
    channel_map: dict[int, Role] = Field(default_factory=dict)
    duration_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    vantage: ShortText | None = None
    offset_s: Number = Field(default=0.0, allow_inf_nan=False)


class CostLine(BaseModel):
    """One cost item in its true unit (``currency`` may be ``USD``, ``credits``, ...), never converted."""

    model_config = _FROZEN

    product: ShortText
    amount: Number = Field(allow_inf_nan=False)
    currency: ShortText = "USD"
    quantity: Number | None = None
    unit: ShortText | None = None
    unit_price: Number | None = None


class Usage(BaseModel):
    """What the call consumed; ``extra`` carries vendor-specific counters."""

    model_config = _FROZEN

    llm_prompt_tokens: Integer | None = Field(default=None, ge=0)
    llm_completion_tokens: Integer | None = Field(default=None, ge=0)
    tts_characters: Integer | None = Field(default=None, ge=0)
    stt_audio_s: Number | None = Field(default=None, ge=0.0)
    audio_s: Number | None = Field(default=None, ge=0.0)
    extra: dict[str, Number] = Field(default_factory=dict)


class LatencyStats(BaseModel):
    """A vendor's summary of one latency component over a call, in seconds."""

    model_config = _FROZEN

    p50_s: Number | None = None
    p90_s: Number | None = None
    p95_s: Number | None = None
    p99_s: Number | None = None
    min_s: Number | None = None
    max_s: Number | None = None
    count: Integer | None = Field(default=None, ge=0)
    values_s: list[Number] | None = None


class SimulationRef(BaseModel):
    """Links a simulated call to the run, scenario and persona that produced it."""

    model_config = _FROZEN

    run_id: ShortText
    scenario_id: ShortText | None = None
    persona_id: ShortText | None = None


class Call(BaseModel):
    """A conversation with an agent, from any source.

    ``(project_id, source, external_id)`` identifies a call: ingesting the same key again replaces it.
    ``id`` and ``project_id`` are assigned by the server (the API key decides the project); on input they
    may be left out. ``cost`` lines stay in their own currencies; ``vendor_analysis`` keeps the platform's
    own verdicts apart from ours.
    """

    model_config = _FROZEN

    id: str | None = None
    project_id: str | None = None
    source: CallSource
    external_id: str = Field(min_length=1, max_length=512)
    agent_id: ShortText | None = None
    agent_version: ShortText | None = None
    direction: Direction = Direction.UNKNOWN
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    duration_s: Number | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    end_reason: EndReason = EndReason.UNKNOWN
    end_reason_raw: ShortText | None = None
    turns: list[Turn] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    recordings: list[Recording] = Field(default_factory=list)
    vendor_latency: dict[str, LatencyStats] = Field(default_factory=dict)
    cost: list[CostLine] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    vendor_analysis: JsonObject = Field(default_factory=dict)
    tags: list[ShortText] = Field(default_factory=list, max_length=MAX_TAGS)
    metadata: JsonObject = Field(default_factory=dict)
    simulation: SimulationRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _number_turns(cls, data: Any) -> Any:
        """Turns may omit ``index``: their position in the list is the index."""
        if isinstance(data, dict) and isinstance(data.get("turns"), list):
            turns = data["turns"]
            if any(isinstance(t, dict) and "index" not in t for t in turns):
                data = dict(data)
                data["turns"] = [
                    {**t, "index": i} if isinstance(t, dict) and "index" not in t else t
                    for i, t in enumerate(turns)
                ]
        return data

    @field_validator("started_at", "ended_at", mode="before")
    @classmethod
    def _date_time_text(cls, value: Any) -> Any:
        """A date-time is RFC 3339 text (or a datetime in Python), never a number read as epoch seconds."""
        if isinstance(value, int | float):
            raise ValueError("must be an RFC 3339 date-time string, e.g. 2026-11-24T09:30:00Z")
        return value

    @field_validator("started_at", "ended_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return check_time(value.astimezone(UTC) if value is not None else None)

    @model_validator(mode="after")
    def _consistent(self) -> Call:
        indices = [turn.index for turn in self.turns]
        if len(set(indices)) != len(indices):
            raise ValueError("turn indices must be unique")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self

    @property
    def effective_duration_s(self) -> float:
        """The call's length: as given, else from the end time, else from the last turn."""
        if self.duration_s is not None:
            return self.duration_s
        if self.ended_at is not None:
            return (self.ended_at - self.started_at).total_seconds()
        return max((turn.end_s for turn in self.turns), default=0.0)

    def cost_total(self, currency: str = "USD") -> float:
        """Sum of the cost lines in one currency (lines in other units are not converted)."""
        return sum(line.amount for line in self.cost if line.currency == currency)
