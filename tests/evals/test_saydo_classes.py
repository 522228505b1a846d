"""Say-do consistency by failing class: verbs beyond the old catalogue, compound claims checked half by
half, details that disagree with the tool call, and sentences that are not claims."""

from __future__ import annotations

from typing import Any

from convoscope.evals.rules.saydo import SayDoConsistency, SayDoParams
from convoscope.evals.rules.saydo_details import spoken_digits
from convoscope.evals.rules.saydo_taxonomy import tool_actions
from convoscope.model.call import Call

from .builders import make_call, run


def claims(call: Call, params: SayDoParams | None = None) -> list[dict[str, Any]]:
    result = run(SayDoConsistency(params or SayDoParams()), call)
    return result.evidence["claims"]  # type: ignore[return-value]


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "turn_index": 1, "arguments": arguments, "success": True}


def one_turn(text: str, *tools: dict[str, Any]) -> Call:
    return make_call(("user", "hello"), ("agent", text), tool_calls=list(tools))


def test_verbs_outside_the_old_catalogue_are_claims() -> None:
    for text, action in [
        ("I've reconnected your broadband line.", "unlock"),
        ("We just froze the debit card.", "block"),
        ("Your direct debit has been suspended.", "block"),
        ("I went ahead and renewed your parking permit.", "renew"),
        ("I've lodged a formal complaint with the depot.", "ticket"),
        ("I've raised your overdraft limit.", "limit"),
        ("I've downgraded you to the basic tariff.", "upgrade"),
    ]:
        found = claims(one_turn(text))
        assert [(c["action"], c["status"]) for c in found][:1] == [(action, "missing")], text


def test_backed_by_a_tool_named_in_any_style() -> None:
    call = one_turn("I've reconnected your broadband line.", tool("restoreService"))
    assert [c["status"] for c in claims(call)] == ["done"]
    assert tool_actions("createBooking") == {"book"} and tool_actions("get-booking") == {"lookup"}
    assert tool_actions("cancel_appointment") == {"cancel"}


def test_compound_claim_with_one_half_unbacked() -> None:
    call = one_turn(
        "I've refunded the delivery fee and texted you the tracking link.", tool("refund_payment", amount=4)
    )
    found = claims(call)
    assert [(c["action"], c["status"]) for c in found] == [("refund", "done"), ("send", "missing")]
    both = one_turn(
        "I've refunded the delivery fee and texted you the tracking link.",
        tool("refund_payment"),
        tool("sendSms"),
    )
    assert [c["status"] for c in claims(both)] == ["done", "done"]


def test_detail_mismatches_name_both_values() -> None:
    time = one_turn(
        "Your haircut is booked for three thirty pm.", tool("book_slot", start="2026-03-02T16:30")
    )
    (claim,) = claims(time)
    assert claim["status"] == "mismatched" and claim["mismatches"] == [
        {"kind": "time", "said": "15:30", "tool": "16:30"}
    ]
    amount = one_turn("I've credited two hundred dollars to your account.", tool("apply_credit", amount=20))
    assert claims(amount)[0]["mismatches"] == [{"kind": "amount", "said": "200", "tool": "20"}]
    seat = one_turn("I've moved you to seat 3F.", tool("change_seat", seat="30F"))
    assert claims(seat)[0]["detail"] == "said seat 3F, tool got 30F"
    same = one_turn("I've moved you to seat 3F at half ten.", tool("change_seat", seat="3F", time="10:30"))
    assert claims(same)[0]["status"] == "done" and claims(same)[0]["matched"] == "t0"


def test_detail_kinds_and_tolerances_are_parameters() -> None:
    call = one_turn("Your haircut is booked for three thirty pm.", tool("book_slot", start="15:40"))
    assert claims(call)[0]["status"] == "mismatched"
    assert claims(call, SayDoParams(time_tolerance_min=15))[0]["status"] == "done"
    assert claims(call, SayDoParams(details=["amount"]))[0]["status"] == "done"
    result = run(SayDoConsistency(SayDoParams(time_tolerance_min=15)), call)
    assert result.params["time_tolerance_min"] == 15


def test_offers_negations_futures_and_the_callers_actions_are_not_claims() -> None:
    for text in (
        "Shall I freeze the card for you?",
        "I can reconnect the line if you like.",
        "I couldn't waive the charge, the system refused.",
        "I'll email the invoice tonight.",
        "Once I've verified your identity we can continue.",
        "You've already paid the balance, so nothing is due.",
        "You can renew the permit online.",
        "I can see your refund was issued on the fifth.",
    ):
        assert claims(one_turn(text)) == [], text


def test_spoken_numbers_become_digits() -> None:
    assert spoken_digits("Two hundred dollars at three thirty pm") == "200 dollars at 3 30 pm"
    assert spoken_digits("the twenty first of May") == "the 21st of may"


def test_claims_without_a_listed_verb_form() -> None:
    """Version 3: a "re" prefix means the verb again, idioms of completion ("you're all set for", "went
    through", "done, ... is now") claim what their nouns name, and "on file" is not a record being read."""
    for text, action in [
        ("Your account has been reactivated.", "activate"),
        ("You're all set for Thursday at 3 pm.", "book"),
        ("Your payment of sixty dollars went through.", "payment"),
        ("Done, your seat is now 14C.", "assign"),
        ("I've charged forty pounds to the card on file.", "payment"),
        ("That's been taken care of, the refund is on its way.", "refund"),
    ]:
        found = claims(one_turn(text))
        assert [(c["action"], c["status"]) for c in found][:1] == [(action, "missing")], (text, found)


def test_conditions_and_readings_around_idioms_are_not_claims() -> None:
    for text in [
        "I'll cancel that as soon as I've verified your identity.",
        "Let me see whether your payment went through.",
        "You've been added to the account by the primary holder back in May.",
    ]:
        assert claims(one_turn(text)) == [], text


def test_one_call_backs_one_action_of_a_compound_claim() -> None:
    """An unlock call does not also back the reset claimed beside it, though an unlock may follow a reset;
    a call whose name says both actions backs both."""
    text = "Your password has been reset and your account is unlocked."
    statuses = [c["status"] for c in claims(one_turn(text, tool("auth_unlock_user", user="u1")))]
    assert sorted(statuses) == ["done", "missing"]
    both = one_turn("I've cancelled the order and refunded you.", tool("cancel_and_refund_order", id="A1"))
    assert [c["status"] for c in claims(both)] == ["done", "done"]


def test_results_reporting_failure_and_details_beyond_times() -> None:
    failed = {**tool("shopify_cancel_order", order="1042"), "result": {"status": "error"}}
    assert [c["status"] for c in claims(one_turn("Your order has been cancelled.", failed))] == ["failed"]
    cases = [
        ("I've updated your address to 44 Mill Lane.", tool("crm_update_contact", address="14 Mill Lane")),
        ("I've texted you the code.", tool("send_email", template="code")),
        ("I've added three packs of batteries.", tool("cart_add", sku="BAT", quantity=2)),
        ("I've sent the receipt to anna.k@example.com.", tool("send_email", to="ana.k@example.com")),
    ]
    for text, call_made in cases:
        assert [c["status"] for c in claims(one_turn(text, call_made))] == ["mismatched"], text
    same = one_turn("I've updated your address to 44 Mill Lane.", tool("update_address", line1="44 Mill Ln"))
    party = one_turn("I've booked your table for 7:30 pm.", tool("reserve", time="19:30", party_size=2))
    assert [c["status"] for c in claims(same)] == ["done"]
    assert [c["status"] for c in claims(party)] == ["done"]


def test_claims_in_other_languages_are_checked_against_the_same_tools() -> None:
    for text, action in [
        ("Listo, he cancelado su pedido.", "cancel"),
        ("J'ai annulé votre réservation pour ce soir.", "cancel"),
        ("Ho prenotato il tavolo per le otto.", "book"),
        ("Ich habe Ihre Buchung für Montag storniert.", "cancel"),
    ]:
        assert [(c["action"], c["status"]) for c in claims(one_turn(text))] == [(action, "missing")], text
    backed = one_turn("He cancelado su pedido.", tool("cancel_order", order="A1"))
    assert [c["status"] for c in claims(backed)] == ["done"]
    for text in [
        "No he podido cancelar su pedido.",
        "Je n'ai pas annulé la réservation.",
        "¿He cancelado algo?",
    ]:
        assert claims(one_turn(text)) == [], text


def status_of(text: str, *tools: dict[str, Any]) -> list[str]:
    return [c["status"] for c in claims(one_turn(text, *tools))]


def test_worded_numbers_dates_and_amounts_match_their_digits() -> None:
    assert spoken_digits("seat twenty-two c, the twenty-third of may") == "seat 22 c, the 23rd of may"
    assert status_of("You're booked for the twenty-third of May.", tool("book", date="2025-05-23")) == [
        "done"
    ]
    assert status_of("You're booked for the twenty-third of May.", tool("book", date="2025-05-24")) == [
        "mismatched"
    ]
    for text, name, amount in [
        ("I've taken a payment of forty-two fifty.", "take_payment", 42.5),
        ("I've credited twelve pounds fifty to your account.", "apply_credit", 12.5),
        ("I've refunded nineteen ninety-nine to your card.", "issue_refund", 19.99),
    ]:
        assert status_of(text, tool(name, amount=amount)) == ["done"], text
        assert status_of(text, tool(name, amount=amount + 3)) == ["mismatched"], text


def test_time_windows_are_compared_as_windows() -> None:
    said = "I've booked the engineer for between 8 and 12 on Monday."
    assert status_of(said, tool("book_engineer", slot="08:00-12:00")) == ["done"]
    assert status_of(said, tool("book_engineer", slot="10:00")) == ["done"]
    assert status_of(said, tool("book_engineer", slot="14:00-18:00")) == ["mismatched"]
    afternoon = "The plumber is scheduled to arrive between one and three."
    assert status_of(afternoon, tool("schedule_visit", start="13:00", end="15:00")) == ["done"]
    assert status_of(afternoon, tool("schedule_visit", start="09:00", end="11:00")) == ["mismatched"]


def test_items_seats_addresses_and_counts() -> None:
    assert status_of("You're booked in for a beard trim at 2 pm.", tool("book", service="Colour")) == [
        "mismatched"
    ]
    assert status_of("You're booked in with Dr Patel at 2 pm.", tool("book", service="Check-up")) == ["done"]
    assert status_of("I've reserved row F seats 10 and 11.", tool("reserve", row="G", seats=["10"])) == [
        "mismatched"
    ]
    assert status_of("I've moved you to seat twenty-two C.", tool("change_seat", seat="22C")) == ["done"]
    parcel = "I've redirected the parcel to twelve Harbour Street."
    assert status_of(parcel, tool("redirect", address={"number": "21", "street": "Harbour Street"})) == [
        "mismatched"
    ]
    assert status_of(parcel, tool("redirect", address={"number": "12", "street": "Harbour St"})) == ["done"]
    assert status_of("I've booked a pair of tickets.", tool("book_tickets", count=3)) == ["mismatched"]
    assert status_of("I've ordered half a dozen boxes.", tool("create_order", quantity=6)) == ["done"]


def test_declined_results_state_claims_and_verbless_claims() -> None:
    declined = tool("charge_card", amount=5)
    declined["result"] = {"payment_status": "DECLINED"}
    assert status_of("All done, the payment was successful.", declined) == ["failed"]
    approved = tool("charge_card", amount=5)
    approved["result"] = {"approved": False}
    assert status_of("That's been charged to your card.", approved) == ["failed"]
    assert status_of("Your plan is now premium.") == ["missing"]
    assert status_of("Your plan is now premium.", tool("change_plan", plan="premium")) == ["done"]
    assert status_of("Your plan is premium right now.") == []
    assert status_of("You're now eligible for a discount.") == []
    assert status_of("No onions, noted.") == ["missing"]
    assert status_of("No onions, noted.", tool("add_order_note", note="no onions")) == ["done"]
    assert status_of("Okay, noted.") == []
    assert status_of("I tried to book it but the system rejected it.") == []


def test_a_bare_all_set_closes_the_booking_it_follows_and_is_no_claim_of_its_own() -> None:
    from datetime import UTC, datetime

    from convoscope.evals.base import EvalContext
    from convoscope.evals.rules.saydo import SayDoConsistency
    from convoscope.model import Call, CallSource, Role, ToolCall, Turn

    def score(text: str, tools: list[ToolCall]) -> tuple[bool | None, list[str]]:
        call = Call(
            source=CallSource.GENERIC,
            external_id="all-set",
            started_at=datetime(2026, 12, 7, tzinfo=UTC),
            turns=[Turn(index=0, role=Role.AGENT, text=text, start_s=0, end_s=1)],
            tool_calls=tools,
        )
        result = SayDoConsistency().evaluate(call, EvalContext())
        return result.passed, [c["action"] for c in result.evidence["claims"]]

    booked = ToolCall(
        id="t1", turn_index=0, name="book_appointment", arguments={"time": "15:00"}, success=True
    )
    assert score("You're all set, Dana. You're booked for 3 PM.", [booked]) == (True, ["book"])
    assert score("You're all set!", []) == (True, [])
    assert score("You're all set for Tuesday at 3 PM.", [])[0] is False  # still a booking claim
