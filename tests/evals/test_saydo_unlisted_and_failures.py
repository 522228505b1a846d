"""Say-do by class, continued: completed actions whose verb no catalogue lists, hyphenated re-verbs,
reassurances and failure reports that are not claims, readings of the record, and details said the way
people say them (amounts in words, a weekday with its date, a pack size, a size code)."""

from __future__ import annotations

from typing import Any

import pytest

from convoscope.evals.rules.saydo import SayDoConsistency, SayDoParams
from convoscope.model.call import Call

from .builders import make_call, run


def claims(call: Call) -> list[dict[str, Any]]:
    result = run(SayDoConsistency(SayDoParams()), call)
    return result.evidence["claims"]  # type: ignore[return-value]


def tool(name: str, success: bool = True, result: Any = None, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "turn_index": 1, "arguments": arguments, "result": result, "success": success}


def one_turn(text: str, *tools: dict[str, Any]) -> Call:
    return make_call(("user", "hello"), ("agent", text), tool_calls=list(tools))


def statuses(text: str, *tools: dict[str, Any]) -> list[str]:
    return [c["status"] for c in claims(one_turn(text, *tools))]


@pytest.mark.parametrize(
    "text",
    [
        "I've ported your landline number across from the old provider.",
        "We've earmarked the olive tree for you until Saturday.",
        "i've re-keyed your smart lock so the old fob won't work",
        "I've waitlisted Max for the Easter week.",
        "I've rolled your unit over for another month.",
        "Right, don't worry, I've frozen the card so nobody can use it.",
    ],
)
def test_completed_actions_without_a_tool_call_are_unbacked_claims(text: str) -> None:
    assert statuses(text) == ["missing"]


def test_an_unlisted_verb_is_backed_by_a_tool_sharing_its_object() -> None:
    text = "I've ported your landline number across, so it works from Monday."
    assert statuses(text, tool("port_request_create", number="0161 496 0000", kind="landline")) == ["done"]


@pytest.mark.parametrize(
    "text",
    [
        "I've checked the depot and they have it.",
        "I've looked into it and the parcel is at the depot.",
        "We've received your payment, thanks.",
        "I've noticed a second account under your name.",
    ],
)
def test_verbs_of_looking_and_finding_out_are_not_claims(text: str) -> None:
    assert statuses(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "The booking failed, so nothing's been charged.",
        "Anna's Thursday was taken, the booking came back as unavailable.",
        "I tried the transfer but it was declined by the bank.",
        "The system shows your membership was paused in November at your request.",
        "so your shed was dispatched yesterday and the courier's got it down for delivery tomorrow",
    ],
)
def test_failure_reports_and_readings_are_not_claims(text: str) -> None:
    assert statuses(text) == []


def test_a_failure_report_beside_a_backed_claim_leaves_the_claim_checked() -> None:
    text = "Thursday came back as unavailable. So instead I've booked you with her on Friday at ten."
    booked = tool("create_lesson", teacher="Anna", start="2026-01-09T10:00:00")
    assert statuses(text, booked) == ["done"]


def test_an_amount_in_words_with_and_stays_one_amount() -> None:
    text = "I've transferred two hundred and fifty pounds to the junior saver."
    assert statuses(text, tool("internal_transfer", to="junior_saver", amount_minor=25000)) == ["done"]
    assert statuses(text, tool("internal_transfer", to="junior_saver", amount_minor=5000)) == ["mismatched"]


def test_a_weekday_with_its_date_is_compared_on_the_date_too() -> None:
    text = "that's you booked in for wednesday the seventh at quarter to six"
    assert statuses(text, tool("create_lesson", start="2026-01-07T17:45:00")) == ["done"]
    assert statuses(text, tool("create_lesson", start="2026-01-14T17:45:00")) == ["mismatched"]


def test_a_count_that_names_the_pack_is_no_quantity_mismatch() -> None:
    text = "Done, I've ordered a dozen red roses for Friday's delivery."
    assert statuses(text, tool("place_order", sku="ROSE-RED-12", qty=1)) == ["done"]
    assert statuses(text, tool("place_order", sku="ROSE-RED", qty=6)) == ["mismatched"]


def test_a_size_code_matches_the_size_said() -> None:
    text = "i've put a medium sourdough aside for her for saturday morning"
    assert statuses(text, tool("hold_item", item="sourdough", size="M")) == ["done"]
    assert statuses(text, tool("hold_item", item="sourdough", size="L")) == ["mismatched"]


def test_an_extra_named_differently_from_the_tool_is_a_mismatch() -> None:
    text = "I've added the oven clean to Thursday's visit."
    assert statuses(text, tool("add_visit_extra", visit_id="V-1", extra="fridge clean")) == ["mismatched"]
    assert statuses(text, tool("add_visit_extra", visit_id="V-1", extra="oven clean")) == ["done"]


def test_an_http_error_status_in_the_result_is_a_failed_call() -> None:
    text = "I've cancelled your gym membership."
    failed = tool("cancel_membership", result={"status_code": 503, "message": "upstream down"}, member="M1")
    assert statuses(text, failed) == ["failed"]
    created = tool("cancel_membership", result={"status_code": 200, "message": "ok"}, member="M1")
    assert statuses(text, created) == ["done"]


@pytest.mark.parametrize(
    ("said", "iso"),
    [
        ("ten past nine", "09:10"),
        ("twenty to six", "17:40"),
        ("four thirty", "16:30"),
        ("half four", "16:30"),
    ],
)
def test_clock_times_in_words_are_compared(said: str, iso: str) -> None:
    text = f"i've booked you in for {said} on tuesday"
    assert statuses(text, tool("create_booking", start=f"2026-01-06T{iso}:00")) == ["done"]
    assert statuses(text, tool("create_booking", start="2026-01-06T11:00:00")) == ["mismatched"]


@pytest.mark.parametrize(
    "text",
    [
        "okay so um ive gone ahead and cancelled that for you",
        "yeah no worries thats all cancelled for you now",
        "perfect im sending the prescription over to the pharmacy now",
        "great your account has now been upgraded to the premium plan",
    ],
)
def test_speech_recognition_text_without_apostrophes_still_claims(text: str) -> None:
    assert statuses(text) == ["missing"]


def test_a_bare_future_or_refusal_without_apostrophes_is_no_claim() -> None:
    assert statuses("ill send that over tonight") == []
    assert statuses("i cant cancel that im afraid") == []
