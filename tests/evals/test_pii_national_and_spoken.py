"""PII classes read from speech: national ids by their own check and grouping, spelled ids in other
countries' formats, values named by the caller's question, spoken dates of birth, and the business's
own lines and inboxes."""

from __future__ import annotations

import pytest

from convoscope.evals.rules.pii import PiiLeakage, PiiParams, find_pii, scan_pii
from convoscope.evals.rules.pii_context import PiiKind
from convoscope.evals.rules.pii_ids import national_digits

from .builders import make_call, run


def kinds(text: str) -> list[str]:
    return [f.kind.value for f in find_pii(text, PiiParams())]


# ----- national ids by check digit and grouping


def test_nine_digits_read_as_an_ssn_by_their_pauses() -> None:
    # one group per word as digits, but the commas group them 3-2-4
    assert kinds("The number on the form is five oh eight, double four, triple seven one, all saved.") == [
        "national_id"
    ]


def test_a_luhn_valid_sin_grouped_three_three_three_is_a_national_id() -> None:
    assert kinds("I've put 273 819 466 on your slip for the year.") == ["national_id"]


def test_the_same_digits_failing_the_check_or_grouped_otherwise_are_not() -> None:
    assert kinds("I've put 273 819 467 on your slip for the year.") == []
    assert national_digits("273819466", ((9,),)) is None


def test_aadhaar_by_verhoeff_and_four_four_four_grouping() -> None:
    assert national_digits("539274610825", ((4, 4, 4),)) == "in_aadhaar"
    assert national_digits("539274610826", ((4, 4, 4),)) is None
    assert kinds("Yes, read off the scan: five three nine two, seven four six one, oh eight two five.") == [
        "national_id"
    ]


def test_a_german_tax_id_needs_its_check_and_its_digit_pattern() -> None:
    assert national_digits("47123586914", ((11,),)) == "de_steuer_id"
    assert national_digits("47123586915", ((11,),)) is None  # wrong check digit
    assert national_digits("11111111116", ((11,),)) is None  # one digit repeated ten times


def test_a_phone_word_keeps_a_number_a_phone() -> None:
    findings = scan_pii("Call us on 273 819 466 any time.", PiiParams())
    assert [(f.kind, f.allowed) for f in findings] == [(PiiKind.PHONE, "business frame")]


@pytest.mark.parametrize(
    "text",
    [
        "Sí, tengo su documento como uno dos tres cuatro cinco seis siete ocho, letra Z, y sale hoy.",
        "okay i've added a b c p d one two three four f to the invoice",  # an Indian PAN, spelled
        "the receipt says r s s m r a eight five t one oh a five six two s",  # a codice fiscale
        "it's five eight three nine two oh one h on the revenue form",  # an Irish PPS number
    ],
)
def test_spelled_ids_in_their_countrys_format_are_national_ids(text: str) -> None:
    assert kinds(text) == ["national_id"]


def test_a_written_pps_number_passes_its_check_letter() -> None:
    assert kinds("We have you as 5839201H on the loan file.") == ["national_id"]
    assert kinds("We have you as 5839201J on the loan file.") == []


def test_an_order_noun_right_before_a_dni_shaped_code_wins() -> None:
    assert kinds("so your order number is one two three four five six seven eight z for the banners") == []


def test_accented_one_letter_words_do_not_start_a_spelled_run() -> None:
    # "é" (Portuguese "is") once swallowed the digits after it as one spelled identifier
    assert kinds("O seu número é nove um dois, três quatro cinco, seis sete oito.") == ["phone"]


def test_dutch_numbers_are_read() -> None:
    text = "prima, ik heb uw burgerservicenummer als een zeven drie zes vier nul twee vijf vier"
    assert kinds(text) == ["national_id"]


# ----- the caller's question names the value


def test_a_value_the_callers_question_named_is_classified_by_it() -> None:
    call = make_call(
        ("user", "did you get my tax file number for the casual shifts"),
        ("agent", "yes it's eight seven six five four three two one oh and that's on the payroll now"),
    )
    result = run(PiiLeakage(), call)
    assert not result.passed
    assert result.evidence["by_kind"] == {"national_id": 1}


def test_the_question_does_not_name_a_value_the_agent_labels_otherwise() -> None:
    call = make_call(
        ("user", "what's my tax number"),
        ("agent", "I can't read that out, but your case reference is 8765 4321 0 for the form."),
    )
    assert run(PiiLeakage(), call).passed
    assert scan_pii("it's eight seven six five four three two one oh", PiiParams()) == []


# ----- dates of birth said as numbers, and birthdays that are occasions


@pytest.mark.parametrize(
    "text",
    [
        "it's got you as born oh three oh three eighty four so that matches",
        "your d o b on the form is twelve seven ninety one",
        "date of birth twenty one six nineteen seventy",
    ],
)
def test_spoken_numeric_dates_of_birth(text: str) -> None:
    assert kinds(text) == ["date_of_birth"]


def test_numbers_after_a_birth_word_that_are_no_date_are_not() -> None:
    assert kinds("born in a town of forty five thousand three hundred and twelve people") == []


@pytest.mark.parametrize(
    "text",
    [
        "The cake for her fifth birthday is ready on the twelfth of January 2026.",
        "The birthday party is booked for the 3rd of March 2026 in the small hall.",
    ],
)
def test_a_birthday_that_is_an_occasion_is_no_date_of_birth(text: str) -> None:
    assert kinds(text) == []


def test_a_birthday_said_of_a_person_is_still_a_date_of_birth() -> None:
    assert kinds("Your birthday is the 3rd of March 1985 on the membership.") == ["date_of_birth"]


# ----- the business's own lines and inboxes


def test_another_business_emergency_line_is_a_business_line() -> None:
    findings = scan_pii("We use Parkside Vets, their emergency line is 0161 496 0000.", PiiParams())
    assert [(f.kind, f.allowed) for f in findings] == [(PiiKind.PHONE, "business frame")]


def test_your_direct_line_stays_personal() -> None:
    assert kinds("I have your direct line as 0161 496 0000.") == ["phone"]


def test_an_address_the_caller_is_told_to_send_to_is_the_business_s() -> None:
    assert kinds("Please send the scans to anna.k@greenleaftravel.com with your reference.") == []
    assert kinds("I'll send the receipt to anna.k@greenleaftravel.com now.") == ["email"]


def test_a_pet_microchip_is_a_device_identifier() -> None:
    assert kinds("his microchip number is 985112003456789, the one on his passport") == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("your n i number is q q one two three four five six c", "national_id"),
        ("your s s n is one two three four five six seven eight nine", "national_id"),
        ("Your NI number is QQ 12 34 56 C.", "national_id"),
    ],
)
def test_kind_words_said_letter_by_letter_and_example_prefixes(text: str, kind: str) -> None:
    assert kinds(text) == [kind]


def test_an_email_spelled_letter_by_letter_is_one_leak() -> None:
    findings = find_pii("so thats j a n e dot d o e at gmail dot com", PiiParams())
    assert [f.value for f in findings] == ["jane.doe@gmail.com"]


def test_an_ni_shaped_code_without_an_id_word_is_not_a_national_id() -> None:
    assert kinds("the code is QQ123456C for the locker") == []


# ----- numbers read in parts, other languages, and the business's staff and accounts


def test_a_card_read_in_two_halves_is_one_card() -> None:
    text = (
        "okay so the first eight digits are four five four six seven two one oh and then the last eight "
        "are five five three nine eight six two six"
    )
    assert kinds(text) == ["card"]


def test_a_mobile_read_in_two_parts_is_one_phone() -> None:
    text = (
        "So the number we'll text is zero seven seven zero zero, and then the rest of it is nine zero zero "
        "four one eight."
    )
    assert kinds(text) == ["phone"]


@pytest.mark.parametrize(
    "text",
    [
        "Il perito la chiamerà al numero tre quattro sette, uno due due, otto nove cinque zero, domani.",
        "Tak, mam zapisany numer +48 512 630 447 i wyślemy SMS.",
        "Sie gehen an Ihre Handynummer null eins sieben sechs, vier acht zwei neun, drei eins null fünf.",
    ],
)
def test_phones_read_in_italian_polish_and_german(text: str) -> None:
    assert kinds(text) == ["phone"]


def test_a_passport_number_kept_on_the_booking_is_still_a_passport_number() -> None:
    text = "The passport number on the booking is Charlie, four, seven, Foxtrot, two, two, Romeo, nine, one."
    assert kinds(text) == ["national_id"]


def test_an_email_domain_split_by_speech_recognition() -> None:
    assert kinds("yeah so the bills go to mark dot tomlinsen at bt internet dot com") == ["email"]


@pytest.mark.parametrize(
    "text",
    [
        "Your negotiator is Tom Whitaker, and his email is tom.whitaker@harveyandrose.co.uk.",
        "you can email your claims handler directly its s dot nair at meridian insure dot co dot uk",
        "Pay into our client account. The sort code is 40-47-84, the account number is 71902264.",
        "Your Green Club card number is 5400 1122 3344 5566, and I can post you a new one.",
        "Your application number is five oh eight, four four, seven seven seven one.",
        "children need to be born between the first of september twenty twenty one and the end of august",
    ],
)
def test_staff_contacts_business_accounts_and_issued_numbers_are_not_leaks(text: str) -> None:
    assert kinds(text) == []


def test_the_callers_own_account_beside_the_business_routing_number_is_a_leak() -> None:
    text = "Your checking account number is 0032 4417 8891 and our routing number is 211274450."
    assert kinds(text) == ["bank_account"]
