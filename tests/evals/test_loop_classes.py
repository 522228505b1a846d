"""loop_detection v5 by failure class: slots re-asked with other nouns, reworded refusals and statuses,
prompt cycles, hint questions after a repeat; and the look-alikes that must stay negative."""

from __future__ import annotations

from convoscope.evals.rules._sentences import phrase_words
from convoscope.evals.rules.loop_concepts import SLOT_CONCEPTS, ConceptTable
from convoscope.evals.rules.loops import LoopDetection
from convoscope.model.call import Call

from .builders import make_call, run


def dialogue(*agent_then_user: str) -> Call:
    return make_call(*(("agent" if i % 2 == 0 else "user", text) for i, text in enumerate(agent_then_user)))


def flagged(call: Call, **overrides: object) -> bool:
    return run(LoopDetection.from_overrides(overrides), call).passed is False


def test_one_slot_asked_with_three_different_nouns_is_a_loop() -> None:
    address = dialogue(
        "What's the address of the property?", "The one by the park.",
        "What's the service address?", "Near the church.",
        "Where should we send the technician?", "I told you.",
    )  # fmt: skip
    result = run(LoopDetection(), address)
    assert result.passed is False and result.value == 2
    whys = [s["why"] for s in result.evidence["repeated_utterances"][0]["sentences"]]  # type: ignore[index, union-attr]
    assert whys == ["first", "slot: address", "slot: address"]
    birth = dialogue(
        "Can I take your date of birth?", "It's for my mum.",
        "When was the patient born?", "She's old.",
        "I'll need the DOB first.", "Why?",
    )  # fmt: skip
    account = dialogue(
        "What's your account number?", "No idea.",
        "Could you read me the number on your bill?", "I pay online.",
        "Do you have the customer reference from a statement?", "No.",
    )  # fmt: skip
    reason = dialogue(
        "What's the reason for your call today?", "Hello?",
        "How can I help you today?", "Is this the bank?",
        "Sure, what can I help you with?", "Hang on.",
    )  # fmt: skip
    assert flagged(birth) and flagged(account) and flagged(reason)


def test_users_extend_the_slot_table() -> None:
    workspace = dialogue(
        "Which workspace is it?", "Mine.",
        "What's the name of the team space?", "The team one.",
        "Which project area do you mean?", "The blue one.",
    )  # fmt: skip
    assert not flagged(workspace)
    extra = {"workspace": ["workspace", "team space", "project area"]}
    assert flagged(workspace, slot_concepts=extra)
    assert ConceptTable(SLOT_CONCEPTS, extra).concepts(phrase_words(("which", "project", "area"))) == {
        "workspace"
    }


def test_parallel_slots_of_one_concept_and_different_concepts_stay_apart() -> None:
    dates = dialogue(
        "What's the departure date?", "June 3rd.",
        "And the return date?", "June 10th.",
        "Which date would you like the return flight?", "The 10th, I said.",
    )  # fmt: skip
    assert not flagged(dates)  # departure / return are two sides of one concept
    names = dialogue(
        "Could you spell your last name?", "S M I T H.",
        "Could you spell your first name?", "J O E.",
        "Could you spell your street name?", "E L M.",
    )  # fmt: skip
    assert run(LoopDetection(), names).value == 0


def test_a_reworded_refusal_or_status_is_a_loop_but_refusing_different_things_is_not() -> None:
    refusal = dialogue(
        "I'm sorry, I can't do that.", "Just reverse it.",
        "Unfortunately that's not something I'm able to help with.", "You're the bank!",
        "I understand, but that's outside what I can do.", "Useless.",
    )  # fmt: skip
    result = run(LoopDetection(), refusal)
    assert result.passed is False
    assert "act: refusal" in {s["why"] for s in result.evidence["repeated_utterances"][0]["sentences"]}  # type: ignore[index, union-attr]
    status = dialogue(
        "The system is still down at the moment.", "When will it be back?",
        "Our systems are currently unavailable, I'm afraid.", "So?",
        "Sorry, we're experiencing a technical outage right now.", "A joke.",
    )  # fmt: skip
    assert flagged(status)
    different = dialogue(
        "I can't increase your credit limit today.", "Lower my interest rate then?",
        "I'm not able to change the interest rate either.", "The annual fee?",
        "I'm afraid the annual fee can't be waived on this card.", "Fine.",
    )  # fmt: skip
    assert not flagged(different)
    # the refusals name no object of their own, so no object overlap parts them
    assert flagged(refusal, min_object_words=1, act_object_overlap=1.0)


def test_two_and_three_prompt_cycles_are_loops() -> None:
    two = dialogue(
        "Can you confirm your postcode?", "SW1A 1AA.",
        "Sorry, that doesn't match. Can you confirm your date of birth?", "1st May 1980.",
        "Thanks. Can you confirm your postcode?", "SW1A 1AA!",
        "Sorry, that doesn't match. Can you confirm your date of birth?", "Again?",
        "Thank you. Can you confirm your postcode?", "What?",
    )  # fmt: skip
    result = run(LoopDetection(), two)
    assert result.passed is False and result.value == 2
    first = result.evidence["repeated_utterances"][0]  # type: ignore[index]
    assert first["run_turn_indices"] == [0, 4, 8] and first["cycle_with"] == [
        "Can you confirm your date of birth?"
    ]  # type: ignore[index]
    assert not flagged(two, cycles=False)
    three = dialogue(
        "What's your order number?", "A1234.",
        "And the email on the order?", "jo@example.com.",
        "Which item is the problem?", "The kettle.",
        "Okay. What's your order number?", "A1234.",
        "And the email on the order?", "Same.",
        "Which item is the problem?", "Kettle!",
        "Thanks. What's your order number?", "Seriously?",
    )  # fmt: skip
    assert flagged(three) and not flagged(three, cycles=False)


def test_cycle_look_alikes_stay_negative() -> None:
    twice = dialogue(
        "Can you confirm your postcode?", "LS1 4AB.",
        "Can you confirm your date of birth?", "No, wait.",
        "Can you confirm your postcode?", "LS1 4AB.",
        "Can you confirm your date of birth?", "3 May 1971.",
        "Verified. Which card would you like to cancel?", "Debit.",
    )  # fmt: skip
    assert not flagged(twice)  # each asked twice: one re-ask
    moved_on = dialogue(
        "What's the service address?", "14 Oak Lane.",
        "Is the power off in the whole house?", "Yes.",
        "Have you checked the fuse box?", "Nothing tripped.",
        "Just to be sure, where should we send the technician?", "14 Oak Lane.",
        "A technician will be there by four.", "Thanks.",
    )  # fmt: skip
    assert not flagged(moved_on)


def test_a_repeat_followed_by_a_hint_question_is_still_a_repeat() -> None:
    call = dialogue(
        "Sure. What's the patient's NHS number? Do you have it handy?", "Somewhere.",
        "No worries. What's the patient's NHS number? Is it on the letter?", "Can't find it.",
        "Thanks for looking. I do need the patient's NHS number. Can you see it anywhere?", "No.",
    )  # fmt: skip
    assert flagged(call)
    # a hint long enough to name a slot of its own is what the turn asks: new, so progress
    assert not flagged(call, min_slot_words=1)


def test_read_backs_closings_and_relisted_options_stay_negative() -> None:
    readback = dialogue(
        "So your card ends in one two three four, is that right?", "No.",
        "So your card ends in four three two one, is that right?", "No, one three two four.",
        "So your card ends in one three two four, is that right?", "Yes.",
    )  # fmt: skip
    assert not flagged(readback)
    closing = dialogue(
        "Is there anything else I can help you with today?", "No.",
        "Thanks for calling, have a great day!", "You too.",
        "Goodbye now, take care!", "Bye.",
    )  # fmt: skip
    assert not flagged(closing)
    options = dialogue(
        "Press one for billing, two for support, or three for sales.", "Say again?",
        "Press one for billing, two for support, or three for sales.", "Two.",
        "Connecting you to support now.", "Thanks.",
    )  # fmt: skip
    assert not flagged(options)
