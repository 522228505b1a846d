"""The stored shape of a run's result: what ``RunReport.to_json`` writes and the API accepts back.

A run may be executed anywhere (a developer's laptop, a CI job) and kept by the server, so the result
travels as JSON; this model is its contract, strict like every model at the edge: bounded sizes, known
verdicts, real timestamps. The per-conversation detail is what A/B comparisons are computed from.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from ..model.bounds import MAX_SHORT_TEXT, Flag, Number, integral
from ..runtime.params import Timestamp
from .definitions import SLUG_PATTERN

__all__ = ["MAX_CONVERSATIONS", "RUN_ID_PATTERN", "RunCell", "RunConversation", "RunResult", "RunStatus"]

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_CONVERSATIONS = 100_000
"""The most conversations one kept run may hold (a suite of 1,000 × 100 iterations)."""

_STRICT = ConfigDict(frozen=True, extra="forbid")
Text = Annotated[str, Field(max_length=MAX_SHORT_TEXT)]


# The bounds come first: after a validator, pydantic writes them as unknown ``ge``/``le`` keys instead of
# JSON Schema's ``minimum``/``maximum``, and a client reading the document would not see them.
Count = Annotated[int, Field(ge=0, le=10_000_000), Strict(), BeforeValidator(integral)]
Ordinal = Annotated[int, Field(ge=1, le=10_000_000), Strict(), BeforeValidator(integral)]
Verdict = Literal["passed", "failed", "errored"]
RunStatus = Literal["running", "done", "failed"]


class RunCell(BaseModel):
    """One (scenario, persona) pair's counts."""

    model_config = _STRICT

    scenario: Text
    persona: Text
    passed: Count
    failed: Count
    errored: Count
    pass_rate: Annotated[Number, Field(ge=0.0, le=1.0)] | None


class RunConversation(BaseModel):
    """One conversation's verdict and the pass/fail of each metric scored on it."""

    model_config = _STRICT

    call_id: Text | None
    external_id: Text
    scenario: Text
    persona: Text
    iteration: Ordinal
    verdict: Verdict
    reasons: list[Annotated[str, Field(max_length=16_384)]] = Field(max_length=1_000)
    turns: Count
    scores: dict[Text, Flag | None] = Field(max_length=1_000)


class RunResult(BaseModel):
    """A whole run's result."""

    model_config = _STRICT

    run_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)]
    # Suite and agent ids are the definitions' slugs: a kept run names what a client can then look up.
    suite: Annotated[str, Field(min_length=1, max_length=128, pattern=SLUG_PATTERN)]
    agent: Annotated[str, Field(min_length=1, max_length=128, pattern=SLUG_PATTERN)]
    agent_version: Annotated[str, Field(max_length=128)]
    started_at: Timestamp
    finished_at: Timestamp | None
    totals: dict[Verdict, Count]
    cells: list[RunCell] = Field(max_length=MAX_CONVERSATIONS)
    conversations: list[RunConversation] = Field(max_length=MAX_CONVERSATIONS)
    status: RunStatus | None = None
    """Where a run the server executes stands (``running`` while its conversations go on, with the counts
    so far; ``failed`` when it stopped early, with ``error``); None for a run kept after it ran elsewhere,
    which is done by definition."""
    error: Annotated[str, Field(max_length=16_384)] | None = None
    """Why a ``failed`` run stopped."""
    planned: Count | None = None
    """How many conversations the run holds in all (a running run's progress is ``len(conversations)``
    of it)."""
