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


@pytest.mark.parametrize(
    "text",
    [
        "yeah no problem so thats a table for six booked at half seven in the restaurant",
        "right thats your bulky waste collection booked for friday for the sofa",
        "All booked, we'll see you Tuesday at ten for your check-up.",
        "Ja, ich habe den Termin auf Freitag um 16 Uhr verschoben und Ihnen eine Bestätigung geschickt.",
    ],
)
def test_more_ways_of_saying_it_is_done(text: str) -> None:
    assert "missing" in statuses(text)


def test_a_german_compound_claim_checks_both_participles() -> None:
    text = "Ja, ich habe den Termin auf Freitag verschoben und Ihnen eine Bestätigung per E-Mail geschickt."
    moved = tool("viewings.reschedule", viewing="VW-1", start="2026-01-09T16:00")
    assert sorted(statuses(text, moved)) == ["done", "missing"]


def test_a_consequence_of_a_condition_is_no_claim() -> None:
    text = "yeah ill sort the freeze out once the direct debit clears and then youre paused till february"
    assert statuses(text) == []


def test_a_released_slot_is_no_refund() -> None:
    text = "I've moved you to Monday the twelfth at ten past nine, and the old one's been released."
    moved = tool("appointments.reschedule", appointment="A-1", new_start="2026-01-12T09:10:00")
    assert statuses(text, moved) == ["done"]


def test_route_named_tools_and_ticket_purchases_back_bookings() -> None:
    text = "You're booked in from Friday for two nights in a king room."
    assert statuses(text, tool("POST /v2/bookings", room="king", check_in="2026-01-09", nights=2)) == ["done"]
    tickets = "okay so thats four tickets booked for saturdays matinee in row h"
    assert statuses(tickets, tool("tickets.purchase", quantity=4, row="H")) == ["done"]
    assert statuses(tickets, tool("tickets.purchase", quantity=3, row="H")) == ["mismatched"]


def test_a_house_number_after_at_is_no_clock_time() -> None:
    text = "Okay, I've booked the engineer at 14 Harcourt Road for Thursday morning."
    booked = tool("jobs.create", address="14 Harcourt Rd", date="2026-01-08", slot="AM")
    assert statuses(text, booked) == ["done"]


@pytest.mark.parametrize(
    ("text", "name", "arguments"),
    [
        (
            "okay so ive booked the team in between eight and ten on thursday",
            "schedule_visit",
            {"date": "2026-01-08", "window_start": "10:00", "window_end": "12:00"},
        ),
        (
            "I've moved you onto the Green Fixed 24 tariff, starting in February.",
            "switchTariff",
            {"tariff": "Green Fixed 12"},
        ),
        (
            "Done, that's the standing order moved to the fifteenth of each month.",
            "standingOrders.update",
            {"so_id": "SO-1", "day_of_month": 25},
        ),
        ("lovely so ive upgraded you to platinum from today", "memberships.upgrade", {"tier": "gold"}),
        (
            "I've redirected the parcel to the locker at Morrisons on Station Road.",
            "redirectParcel",
            {"tracking": "JD1", "locker_site": "Asda Kingsway"},
        ),
    ],
)
def test_details_the_tool_contradicts(text: str, name: str, arguments: dict[str, Any]) -> None:
    assert statuses(text, tool(name, **arguments)) == ["mismatched"]


def test_a_call_that_changed_nothing_is_a_failed_call() -> None:
    text = "I've extended your storage until the end of March."
    nothing = tool(
        "extend_storage", result={"updated": 0, "message": "no matching contract"}, until="2026-03-31"
    )
    assert statuses(text, nothing) == ["failed"]
