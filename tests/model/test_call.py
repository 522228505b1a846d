"""The canonical model: round trips, validation that names the field, and stable ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from convoscope.model import Call, EndReason, Role, call_id_for
from convoscope.testing import call_payload, make_call


def test_json_round_trip_is_exact() -> None:
    call = make_call(
        tags=["vip"],
        metadata={"campaign": "spring", "nested": {"a": [1, 2.5, None]}},
        vendor_analysis={"summary": "booked", "call_successful": True},
    )
    assert Call.model_validate_json(call.model_dump_json()) == call


def test_turn_indices_default_to_position() -> None:
    payload = call_payload()
    for turn in payload["turns"]:
        turn.pop("index", None)
    call = Call.model_validate(payload)
    assert [t.index for t in call.turns] == list(range(len(call.turns)))


def test_times_are_normalised_to_utc_and_naive_times_rejected() -> None:
    paris = timezone(timedelta(hours=1))
    call = Call.model_validate(
        call_payload(started_at=datetime(2026, 11, 24, 10, 0, tzinfo=paris).isoformat())
    )
    assert call.started_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC) and call.started_at.tzinfo is UTC
    with pytest.raises(ValidationError) as info:
        Call.model_validate(call_payload(started_at="2026-11-24T10:00:00"))
    assert info.value.errors()[0]["loc"] == ("started_at",)


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda p: p["turns"][1].update(role="bot"), ("turns", 1, "role")),
        (lambda p: p["turns"][0].update(start_s=-1.0), ("turns", 0, "start_s")),
        (lambda p: p.update(end_reason="exploded"), ("end_reason",)),
        (lambda p: p.pop("external_id"), ("external_id",)),
        (lambda p: p.update(unknown_field=1), ("unknown_field",)),
    ],
)
def test_validation_errors_name_the_field(mutate: object, loc: tuple[object, ...]) -> None:
    payload = call_payload()
    mutate(payload)  # type: ignore[operator]
    with pytest.raises(ValidationError) as info:
        Call.model_validate(payload)
    assert loc in [err["loc"] for err in info.value.errors()]


def test_turn_that_ends_before_it_starts_is_rejected() -> None:
    payload = call_payload()
    payload["turns"][0].update(start_s=5.0, end_s=4.0)
    with pytest.raises(ValidationError, match="before start_s"):
        Call.model_validate(payload)


def test_duplicate_turn_indices_and_backwards_end_are_rejected() -> None:
    payload = call_payload()
    payload["turns"][1]["index"] = payload["turns"][0]["index"] = 0
    with pytest.raises(ValidationError, match="unique"):
        Call.model_validate(payload)
    with pytest.raises(ValidationError, match="ended_at"):
        Call.model_validate(call_payload(ended_at="2020-01-01T00:00:00Z"))


def test_effective_duration_and_cost_totals() -> None:
    call = make_call(
        duration_s=None,
        cost=[{"product": "llm", "amount": 0.5}, {"product": "tts", "amount": 12, "currency": "credits"}],
    )
    assert call.effective_duration_s == max(t.end_s for t in call.turns)
    assert call.cost_total() == 0.5 and call.cost_total("credits") == 12
    assert make_call(end_reason="voicemail").end_reason is EndReason.VOICEMAIL
    assert make_call().turns[0].role in (Role.USER, Role.AGENT)


@given(
    project=st.text(min_size=1, max_size=20),
    external=st.text(min_size=1, max_size=40),
    millis=st.integers(min_value=0, max_value=2**47),
)
def test_call_ids_are_stable_uuid7_ordered_by_start(project: str, external: str, millis: int) -> None:
    started = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    first = call_id_for(project, "vapi", external, started)
    assert first == call_id_for(project, "vapi", external, started)
    parsed = uuid.UUID(first)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == millis
    assert call_id_for(project, "retell", external, started) != first
    later = call_id_for(project, "vapi", external, started + timedelta(seconds=1))
    assert later > first


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_s", False),
        ("duration_s", "12.5"),
        ("usage", {"llm_prompt_tokens": True}),
        ("usage", {"llm_prompt_tokens": "12"}),
        ("turns", [{"role": "agent", "start_s": 0, "end_s": 1, "interrupted": 1}]),
        ("turns", [{"role": "agent", "start_s": 0, "end_s": True}]),
        ("tool_calls", [{"id": "t", "name": "f", "success": "yes"}]),
    ],
)
def test_numbers_and_booleans_are_what_the_schema_says_never_coerced(field: str, value: object) -> None:
    """The published schema says number, integer or boolean; a lax parser's ``false`` as 0.0 or ``"yes"``
    as true would store something the sender did not write."""
    body = {"source": "generic", "external_id": "x", "started_at": "2026-01-01T00:00:00Z", field: value}
    with pytest.raises(ValidationError):
        Call.model_validate(body)
