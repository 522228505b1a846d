"""loop_detection v7 by failure class: reworded statuses, refusals and holds, short holds, acts inside
longer turns, hedged and narrowed slots, choice questions, stuck greetings, wider concept tables and more
languages; and the look-alikes that must stay clean."""

from __future__ import annotations

from convoscope.evals.rules.loop_concepts import clauses, spoken_form
from convoscope.evals.rules.loops import LoopDetection
from convoscope.model.call import Call

from .builders import make_call, run


def dialogue(*agent_then_user: str) -> Call:
    return make_call(*(("agent" if i % 2 == 0 else "user", text) for i, text in enumerate(agent_then_user)))


def flagged(call: Call, **overrides: object) -> bool:
    return run(LoopDetection.from_overrides(overrides), call).passed is False


def test_version() -> None:
    assert LoopDetection.version == "7"


def test_status_reworded_with_no_shared_words_is_a_loop() -> None:
    assert flagged(
        dialogue(
            "Your claim is still being assessed.", "It's been six weeks.",
            "It's still with the claims team, there's no outcome yet.", "Can you escalate it?",
            "I'm afraid there's still no decision on the claim.", "That's what you said last week.",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "so your application is still with the underwriters at the moment", "any idea when",
            "yeah were still waiting to hear back from underwriting on that one", "can you chase them",
            "theres no decision yet im afraid its still pending with them", "youve said that three times",
        )
    )  # fmt: skip


def test_status_that_moves_on_is_progress() -> None:
    assert not flagged(
        dialogue(
            "your order is being prepared now", "ok how long",
            "its still in the oven about ten more minutes", "right",
            "ok its out and ready for collection at the front counter", "brilliant",
        )
    )  # fmt: skip


def test_refusal_object_set_aside_where_it_is_done() -> None:
    assert flagged(
        dialogue(
            "yeah so i cant backdate the discount im afraid", "but i was living alone since january",
            "thats not something were able to do over the phone", "so who can do it",
            "no unfortunately backdating it isnt possible", "this is a joke",
        )
    )  # fmt: skip


def test_refusal_with_new_information_after_but_is_progress() -> None:
    assert not flagged(
        dialogue(
            "Unfortunately I can't see the engineer's notes. The visit is booked for Monday morning.",
            "Okay, will he bring a router?",
            "I'm not able to see that either, but engineers always carry a spare router.",
            "And will I get a reminder?",
            "I can't check that from here, but you'll get a text an hour before the visit.",
            "Great, thanks.",
        )
    )


def test_short_holds_count() -> None:
    assert flagged(
        dialogue(
            "bear with me one moment", "ok", "just checking that for you now", "hello",
            "still checking sorry", "are you there", "one moment please", "hello",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "One moment please.", "Sure.",
            "I've found your booking for the fourth.", "Great, can you move it to the fifth?",
            "One moment please.", "Okay.",
            "That's moved to the fifth. One moment while I send the confirmation.", "Thanks.",
            "Confirmation sent to your email.", "Perfect.",
        )
    )  # fmt: skip


def test_status_after_a_subject_clause_is_what_the_turn_says() -> None:
    assert flagged(
        dialogue(
            "so the blood results for bella um theyre still with the lab at the moment", "ok when",
            "yeah uh were still waiting on the lab for those results", "can you ring them",
            "honestly the results havent come back yet theyre still pending", "youre going round in circles",
        )
    )  # fmt: skip


def test_stuck_greeting_is_a_loop_and_offer_of_more_help_is_not() -> None:
    assert flagged(
        dialogue(
            "hi thanks for calling rosies bakery how can i help", "hi i wanted to ask about a cake",
            "hello youre through to rosies bakery what can i do for you", "a birthday cake for saturday",
            "thanks for calling rosies how can i help you today", "are you a robot",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "Your late checkout is added. What can I do for you next?", "Add parking.",
            "Parking is added. What can I do for you next?", "A cot please.",
            "The cot is booked. What can I do for you next?", "Nothing, thanks.",
        )
    )  # fmt: skip


def test_wider_slot_concepts() -> None:
    assert flagged(
        dialogue(
            "whats the property value roughly", "not sure",
            "ok and roughly what do you think the house is worth", "i really dont know",
            "just a ballpark how much would the home sell for", "i said i dont know",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "What date are you checking in?", "Sometime in July.", "And your arrival date?", "July.",
            "When are you arriving?", "I just told you, July.",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "so when did the pain start", "its really bad", "ok and how long has the tooth been hurting for",
            "its throbbing", "right and since when have you had the toothache", "i dont know",
        )
    )  # fmt: skip


def test_contrasted_owners_and_devices_stay_apart() -> None:
    assert not flagged(
        dialogue(
            "Can I take your name please?", "Tom Reed.", "And what's your dog's name?", "Biscuit.",
            "And what's the cat called, the one booked in with him?", "Pepper.",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "Can you restart the router for me?", "Done.", "Now could you restart the laptop?", "Done.",
            "And finally restart the TV box app on the television.", "Done, it works now!",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "How long have you been a patient with us?", "About five years.",
            "And when did the pain start?", "Sunday night.",
            "How long has it been since your last check-up?", "Maybe a year.",
        )
    )  # fmt: skip


def test_troubleshooting_cycle_reworded() -> None:
    assert flagged(
        dialogue(
            "ok first thing have you tried restarting the router", "yeah",
            "and whats the light on the front doing", "its orange",
            "right can you turn the hub off and on again for me", "ive done that",
            "ok and what colour is the light showing", "still orange",
            "ok could you reboot the router for me", "ive done it three times now",
        )
    )  # fmt: skip


def test_hedged_slots_and_choice_questions_cycle() -> None:
    assert flagged(
        dialogue(
            "so whats your budget roughly", "about fifteen grand", "and are you after new or used", "used",
            "and petrol diesel or electric", "petrol", "ok and what sort of budget are we talking", "fifteen",
            "new or used", "used mate", "and fuel type petrol or electric", "petrol",
            "lovely whats your budget", "are you serious",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "would you like white or wholemeal", "white", "sliced or unsliced", "sliced",
            "and is that for collection or delivery", "collection",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "For the outbound flight, is that economy or business?", "Economy.",
            "And for the return flight, economy or business?", "Business.",
            "Single trip or annual cover?", "Single trip.",
        )
    )  # fmt: skip


def test_narrowed_slot_in_a_cycle() -> None:
    assert flagged(
        dialogue(
            "whats the serial number on the meter", "e one two three", "ok and whats the reading on it",
            "four five six", "sorry whats the serial number on the meter", "e one two three",
            "and whats the reading on the meter", "four five six", "whats the serial number on the meter",
            "why",
        )
    )  # fmt: skip


def test_run_on_clause_rules() -> None:
    assert clauses("and what days would you like her to come in") == [
        "and what days would you like her to come in"
    ]
    assert clauses("hello youre through to rosies bakery what can i do for you") == [
        "hello youre through to rosies bakery",
        "what can i do for you",
    ]
    assert clauses("so we have you down for the check up on tuesday at ten") == [
        "so we have you down for the check up on tuesday at ten"
    ]
    assert spoken_form("ok first thing").endswith("thing")
    assert spoken_form("have you tried restarting the router").endswith("?")
    assert spoken_form("right and since when have you had the toothache").endswith("?")
    assert spoken_form("just a ballpark how much would the home sell for").endswith("?")
    assert not spoken_form("let me see what is available").endswith("?")


def test_more_languages() -> None:
    assert flagged(
        dialogue(
            "Niestety nie mogę anulować tej rezerwacji.", "Ale to był błąd.",
            "Przykro mi, nie mogę tego zrobić.", "To proszę o zwrot.",
            "Nie ma możliwości anulowania tej rezerwacji.", "To jest skandal.",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "Sistemimiz şu anda çalışmıyor.", "Ne zaman düzelir?", "Maalesef sistemde bir arıza var.",
            "Hattımı kontrol edebilir misiniz?", "Sistem hâlâ çalışmıyor, kusura bakmayın.", "Hep aynı.",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "Qual é o número da sua apólice?", "Não sei.", "Preciso do número da apólice, por favor.",
            "Não tenho aqui.", "Pode me informar o número da apólice?", "Já disse que não tenho.",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "Dat kan ik helaas niet doen.", "Waarom niet?", "Dat is helaas niet mogelijk.", "Maar toch.",
            "Daar kan ik u niet mee helpen.", "Belachelijk.",
        )
    )  # fmt: skip
    assert flagged(
        dialogue(
            "Boleh saya minta nomor polis Anda?", "Sebentar.", "Nomor polisnya berapa, Pak?", "Belum ketemu.",
            "Mohon sebutkan nomor polis asuransinya.", "Saya bilang belum ketemu!",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "Wat is de naam van uw hond?", "Bolt.", "Hoe oud is hij?", "Zes jaar.",
            "En wat zijn de klachten?", "Hij eet niet goed.",
        )
    )  # fmt: skip
    assert not flagged(
        dialogue(
            "Jak się pan nazywa?", "Jan Kowalski.", "Jaka jest pana data urodzenia?", "Piąty maja.",
            "Który dzień panu pasuje?", "Wtorek.",
        )
    )  # fmt: skip
