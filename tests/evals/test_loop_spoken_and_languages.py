"""loop_detection v6 by failure class: speech-to-text run-ons, needs said as statements, re-made offers,
other languages, elliptic asks in cycles, retried tool calls; and the look-alikes that must stay clean."""

from __future__ import annotations

from convoscope.evals.rules.loop_concepts import clauses, spoken_form
from convoscope.evals.rules.loops import LoopDetection, sentences_of
from convoscope.model.call import Call

from .builders import make_call, run


def dialogue(*agent_then_user: str) -> Call:
    return make_call(*(("agent" if i % 2 == 0 else "user", text) for i, text in enumerate(agent_then_user)))


def flagged(call: Call, **overrides: object) -> bool:
    return run(LoopDetection.from_overrides(overrides), call).passed is False


def test_run_on_turns_split_into_clauses_and_fillers_dropped() -> None:
    assert clauses("right thanks for that erm could you tell me your postcode so i can find the account") == [
        "right thanks for that",
        "could you tell me your postcode",
        "so i can find the account",
    ]
    assert clauses("Thanks. Could you tell me your postcode, please?") == [
        "Thanks.",
        "Could you tell me your postcode, please?",
    ]
    assert spoken_form("ok and whats the reading on it") == "ok and what's the reading on it?"
    assert spoken_form("ill need your reference") == "i'll need your reference"
    # the sentence keeps its words as said, for the evidence
    said = sentences_of("okay thanks for that um whats your postcode please")
    assert [s.text for s in said] == ["okay thanks for that", "whats your postcode please"]
    assert said[1].asks


def test_asr_repeat_buried_in_run_on_turns_is_a_loop() -> None:
    call = dialogue(
        "hiya thanks for ringing the leisure centre um whats your membership number and ill sort the booking",
        "i want the squash court",
        "yeah no worries at all so whats your membership number then",
        "the court at six",
        "i hear you but whats your membership number because i cant book without it",
        "six pm",
    )  # fmt: skip
    assert flagged(call)


def test_asr_distinct_questions_and_new_dates_stay_clean() -> None:
    questions = dialogue(
        "okay so whats the name on the account", "lee",
        "and whats the email on the account", "lee at mail",
        "and whats the best number to call you on", "oh seven seven",
    )  # fmt: skip
    dates = dialogue(
        "i can do the ninth at ten", "no",
        "or we have the tenth at two", "no",
        "or the twelfth first thing in the morning", "yes",
    )  # fmt: skip
    assert not flagged(questions) and not flagged(dates)


def test_need_said_as_a_statement_asks_for_the_slot() -> None:
    call = dialogue(
        "I'll need your policy number.", "It's about the boiler.",
        "I need the policy number before I can book the engineer.", "It's leaking.",
        "Without the policy number I can't raise the job, so I need that first.", "Just send someone!",
    )  # fmt: skip
    different = dialogue(
        "I'll need your policy number.", "P-1.",
        "I'll also need the date the leak started.", "Monday.",
        "And I'll need a phone number for the engineer.", "0770.",
    )  # fmt: skip
    assert flagged(call) and not flagged(different)


def test_offer_made_again_after_a_yes_is_a_loop_but_new_offers_are_not() -> None:
    again = dialogue(
        "Would you like me to add parking to your stay?", "Yes.",
        "Can I add parking to your reservation for you?", "Yes, please.",
        "Shall I include parking with the room?", "I said yes!",
    )  # fmt: skip
    new = dialogue(
        "Would you like me to add parking to your stay?", "No.",
        "Would you like a late checkout?", "No.",
        "Shall I book a table at the restaurant?", "Yes.",
    )  # fmt: skip
    assert flagged(again) and not flagged(new)


def test_loops_in_other_languages() -> None:
    indonesian = dialogue(
        "Mohon maaf, sistem kami sedang gangguan.", "Kapan selesai?",
        "Sistem kami masih gangguan, Bu.", "Coba lagi.",
        "Maaf, sistemnya masih gangguan.", "Aduh.",
    )  # fmt: skip
    swedish = dialogue(
        "Kan jag få ditt bokningsnummer?", "Jag vill avboka.",
        "Förlåt, vad är ditt bokningsnummer?", "Det har jag inte.",
        "Jag behöver ditt bokningsnummer.", "Hallå?",
    )  # fmt: skip
    korean = dialogue(
        "생년월일을 말씀해 주시겠어요?", "예약 변경하려고요.",
        "죄송합니다, 생년월일을 말씀해 주시겠어요?", "다음 주로요.",
        "생년월일을 다시 말씀해 주시겠어요?", "여보세요?",
    )  # fmt: skip
    spanish = dialogue(
        "¿Me puede dar su número de cliente?", "Quiero cambiar la tarifa.",
        "¿Cuál es su número de cliente?", "No lo sé.",
        "Necesito su número de cliente, por favor.", "¿Hola?",
    )  # fmt: skip
    german = dialogue(
        "Das System ist leider gerade ausgefallen.", "Und jetzt?",
        "Das System ist noch immer ausgefallen.", "Bitte nochmal.",
        "Wie gesagt, das System ist ausgefallen.", "Unglaublich.",
    )  # fmt: skip
    french = dialogue(
        "Quel est votre numéro de dossier ?", "C'est pour la cantine.",
        "Pardon, quel est votre numéro de dossier ?", "Je ne sais pas.",
        "Quel est votre numéro de dossier, s'il vous plaît ?", "Allô ?",
    )  # fmt: skip
    for call in (indonesian, swedish, korean, spanish, german, french):
        assert flagged(call)


def test_other_language_look_alikes_stay_clean() -> None:
    swedish_offers = dialogue(
        "Jag har bokat tiden. Något mer jag kan hjälpa till med?", "Och en påminnelse?",
        "Påminnelsen är skickad. Något mer jag kan hjälpa till med?", "Och kvittot?",
        "Kvittot är mejlat. Något mer jag kan hjälpa till med?", "Nej tack.",
    )  # fmt: skip
    korean_courtesy = dialogue(
        "기다려 주셔서 감사합니다. 대출 잔액은 300만 원입니다.", "이자는요?",
        "기다려 주셔서 감사합니다. 이자율은 4퍼센트입니다.", "만기는요?",
        "기다려 주셔서 감사합니다. 만기일은 내년 3월입니다.", "네.",
    )  # fmt: skip
    indonesian_distinct = dialogue(
        "Boleh saya minta nama lengkap Anda?", "Sari.",
        "Boleh saya minta nomor polis Anda?", "P-9.",
        "Boleh saya minta alamat email Anda?", "sari@mail.",
    )  # fmt: skip
    for call in (swedish_offers, korean_courtesy, indonesian_distinct):
        assert not flagged(call)


def test_unpunctuated_cycle_of_three_with_elliptic_asks_is_a_loop() -> None:
    call = dialogue(
        "whats your first name", "amy", "and your date of birth", "may", "and the postcode", "ab1",
        "ok whats your first name", "amy", "and your date of birth", "may", "and the postcode", "ab1",
        "sorry whats your first name", "amy!",
    )  # fmt: skip
    assert flagged(call)
    assert not flagged(call, cycles=False)


def test_retried_tool_call_with_an_attempt_counter_is_one_call() -> None:
    def call_with(counts: int) -> Call:
        calls = [
            {"id": f"t{i}", "name": "lookup", "turn_index": i, "arguments": {"ref": "X1", "attempt": i + 1}}
            for i in range(counts)
        ]
        return make_call(*(("agent", "Trying again.") for _ in range(counts)), tool_calls=calls)

    assert flagged(call_with(4)) and not flagged(call_with(3))
