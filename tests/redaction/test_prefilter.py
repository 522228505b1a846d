"""The scan that lets most sentences skip the detectors never lets a value through.

The property behind it: every text in which the detectors find anything passes the scan. It is checked
on texts built from the pieces values are made of (digits, number and spelling words, single letters,
"at" and "dot"), mixed with ordinary words, and on arbitrary Unicode.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.evals.rules.pii import PiiParams, locate_pii
from convoscope.redaction.locate import find_hits, may_hold_value

PIECES = [
    *"abcdexyz",
    "I",
    "O",
    "İ",
    "one",
    "two",
    "oh",
    "nine",
    "zero",
    "double",
    "alpha",
    "bravo",
    "dot",
    "at",
    "com",
    "uno",
    "dos",
    "drei",
    "my",
    "number",
    "is",
    "card",
    "email",
    "hello",
    "thanks",
    "7",
    "42",
    "555",
    "@",
]
SEPARATORS = [" ", ", ", "-", ". ", " and then ", "_", "'"]


@st.composite
def sentences(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(PIECES), max_size=14))
    out = []
    for part in parts:
        out.append(part)
        out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


@settings(max_examples=400, deadline=None)
@given(sentences() | st.text(max_size=40))
def test_no_text_the_detectors_read_a_value_in_fails_the_scan(text: str) -> None:
    if not may_hold_value(text):
        assert locate_pii(text, PiiParams()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks for calling, how can I help you today?", False),
        ("That is all booked, is there anything else?", False),
        ("It is five five five, one two three.", True),
        ("my code is a b c", True),  # letters spelled one by one
        ("a lot of things", False),  # one single letter alone is a word
        ("call 555 0100", True),
        ("write to me at ana@example.com", True),
        ("ana dot lopez at example dot com", True),
        ("a cat and a dog", False),  # single letters apart: words, not a spelling
        ("x, y", True),
    ],
)
def test_the_scan_on_plain_cases(text: str, expected: bool) -> None:
    assert may_hold_value(text) is expected
    if not expected:
        assert find_hits(text, PiiParams()) == []
