"""Property: every vendor adapter turns a mutated, real-shaped payload into a valid call or an input error.

Each example is a recorded payload of one vendor (or a sequence of them, as the vendor sends a call) with one
to four edits stacked: a key removed, a value of the wrong type, a number at the edge of what a JSON decoder
hands over, an enum value no vendor documents, odd Unicode, or nesting far past the model's depth bound.
The payload goes through ``orjson`` both ways first, as a webhook body does. Whatever the adapter answers
must be one of: a call that validates again from its own JSON and fits the per-call bounds, an event it
ignores by its stated rule, or an :class:`~convoscope.errors.InputError` whose message names the field.
Any other exception (``KeyError``, ``TypeError``, ``OverflowError``, ``RecursionError``...) is a bug that
would surface as a 500.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from _vendor_json import json_values, vendor_payload
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convoscope.errors import InputError, PayloadError, SignatureError
from convoscope.ingest.canonical import CallLimits
from convoscope.ingest.sources import Assembled, IgnoredEvent, get_source
from convoscope.model import Call
from convoscope.server.vendor_ingest import check_bounds
from convoscope.testing.json_paths import json_paths

RECEIVED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _load(vendor: str, name: str) -> dict[str, Any]:
    document = vendor_payload(vendor, name)
    document.pop("_comment", None)
    return document


def _bland_with_pathway(name: str) -> dict[str, Any]:
    return _load("bland", name) | {"pathway_logs": _load("bland", "pathway_events")["events"]}


SEQUENCES: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {
    "retell": [
        ("ended", [_load("retell", "call_ended")]),
        ("lifecycle", [_load("retell", n) for n in ("call_started", "call_ended", "call_analyzed")]),
        (
            "docs",
            [_load("retell", n) for n in ("docs_call_started", "docs_call_ended", "docs_call_analyzed")],
        ),
    ],
    "vapi": [
        ("report", [_load("vapi", "end_of_call_report")]),
        ("call", [_load("vapi", "call_object")]),
        ("events", [_load("vapi", "docs_end_of_call_report_events")]),
        ("status then report", [_load("vapi", "docs_status_update"), _load("vapi", "end_of_call_report")]),
    ],
    "elevenlabs": [
        ("transcription", [_load("elevenlabs", "post_call_transcription")]),
        ("both", [_load("elevenlabs", "post_call_transcription"), _load("elevenlabs", "post_call_audio")]),
        (
            "audio first",
            [_load("elevenlabs", "post_call_audio"), _load("elevenlabs", "post_call_transcription")],
        ),
        ("failure", [_load("elevenlabs", "call_initiation_failure")]),
    ],
    "bland": [
        ("immediate", [_bland_with_pathway("immediate")]),
        ("corrected", [_load("bland", "immediate"), _bland_with_pathway("corrected")]),
        ("docs", [_load("bland", "docs_immediate"), _load("bland", "docs_delayed")]),
    ],
    "webex": [("capture", [_load("webex", "capture")])],
    "generic": [("call", [_load("generic", "call")])],
}

LIMITS = CallLimits()

# What orjson hands an adapter for a number: int64, or a float (a bigger integer arrives as one).
_edge_numbers = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 1.8446744073709552e19, 1e308, -1e308, 5e-324, 0.5, -0.0]
)
_unknown_enums = st.sampled_from(
    ["", "weird_new_value", "ENDED", "ｅｎｄｅｄ", "call_ended\u0000", "x" * 2000, "null", "0", "true"]
)
_odd_text = st.one_of(
    st.sampled_from(
        [
            "\u0000",
            "\u202eevil",
            "a\u0301\u0301\u0301",
            "\ufeff",
            "\uffff",
            "\U0001f600" * 50,
            "\u200d\u200d",
            "line\r\nbreak",
            "9" * 400,
            "2026-01-05T10:00:00",
            "1e309",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=24),
)


DEEP = "(nested {depth} deep)"
"""Stands for a deeply nested value until the document is encoded: orjson's encoder stops at 255 levels, and
a body is decoded (up to 1024 levels) by the server, so the nesting is written as text (:func:`_as_body`)."""


def _nested_text(depth: int) -> bytes:
    return b'{"k":[' * (depth // 2) + (b'{"k":"leaf"}' if depth % 2 else b'"leaf"') + b"]}" * (depth // 2)


def _as_body(document: Any) -> bytes:
    """``document`` as JSON bytes, each ``DEEP`` marker replaced by its nesting."""
    body = orjson.dumps(document)
    return re.sub(rb'"\(nested (\d+) deep\)"', lambda match: _nested_text(int(match.group(1))), body)


_deep = st.sampled_from([63, 64, 65, 200, 900]).map(lambda depth: DEEP.format(depth=depth))

_replacements = st.one_of(
    json_values,
    _edge_numbers,
    _unknown_enums,
    _odd_text,
    _deep,
    st.sampled_from([[], {}, [None], [{}], {"": None}]).map(copy.deepcopy),  # fresh: edits add to them
)


@st.composite
def _edited(draw: st.DrawFn, events: list[dict[str, Any]]) -> list[Any]:
    """``events`` with one to four edits, each in a drawn event at a drawn path (paths re-read after each)."""
    result = copy.deepcopy(events)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        which = draw(st.integers(min_value=0, max_value=len(result) - 1))
        paths = json_paths(result[which])
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent = result[which]
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["remove", "replace", "replace", "add"]))
        if action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(_odd_text)] = draw(_replacements)
        else:
            parent[path[-1]] = draw(_replacements)
    # A webhook body is JSON: what the adapter sees is what orjson reads back.
    decoded: list[Any] = orjson.loads(_as_body(result))
    return decoded


@st.composite
def vendor_cases(draw: st.DrawFn) -> tuple[str, str, list[Any]]:
    vendor = draw(st.sampled_from(sorted(SEQUENCES)))
    label, events = draw(st.sampled_from(SEQUENCES[vendor]))
    return vendor, label, draw(_edited(events))


def _names_where(exc: InputError) -> None:
    """An input error says what is wrong and where: a message, and for a payload error a field path."""
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message"
    if isinstance(exc, PayloadError) and exc.errors:
        for error in exc.errors:
            assert isinstance(error.get("loc"), str) and error["loc"], exc.errors
            assert error.get("msg"), exc.errors
    elif isinstance(exc, PayloadError):
        # No structured errors: the message itself starts with the place ("data.transcript[3]: ...").
        head, sep, _ = message.partition(":")
        assert sep and head.strip(), f"payload error that names no field: {message!r}"


def _check_call(assembled: Assembled, external_ids: set[str]) -> None:
    call = assembled.call
    assert isinstance(call, Call)
    # Valid means valid from its own JSON too: what the read API returns is what the model accepts.
    again = Call.model_validate_json(call.model_dump_json())
    assert again == call
    assert call.external_id in external_ids, (call.external_id, external_ids)
    for warning in assembled.warnings:
        assert isinstance(warning, str) and warning
    for name in assembled.attachments:
        assert any(r.source_url == f"attachment:{name}" for r in call.recordings), name
    try:
        check_bounds(call, LIMITS)
    except InputError as exc:
        _names_where(exc)


def parse_or_refuse(vendor: str, events: Sequence[Any]) -> Call | None:
    """Run the events through the adapter as the webhook endpoint does; only the allowed outcomes pass."""
    source = get_source(vendor)
    kept: list[Any] = []
    external_ids: set[str] = set()
    for event in events:
        try:
            identified = source.identify(event)
        except IgnoredEvent as ignored:
            assert ignored.reason and ignored.event_type is not None
            continue
        except InputError as exc:
            _names_where(exc)
            return None
        assert isinstance(identified.external_id, str) and identified.external_id
        assert identified.event_key and isinstance(identified.event_type, str)
        external_ids.add(identified.external_id)
        kept.append(event)
    if not kept:
        return None
    try:
        assembled = source.assemble(kept, received_at=RECEIVED)
    except InputError as exc:
        _names_where(exc)
        return None
    _check_call(assembled, external_ids)
    return assembled.call


@pytest.mark.parametrize(
    ("vendor", "label"), [(v, label) for v, seqs in SEQUENCES.items() for label, _ in seqs]
)
def test_the_recorded_payloads_parse(vendor: str, label: str) -> None:
    # The seeds of the property: unmutated, every sequence makes a call (else the mutations test little).
    events = dict(SEQUENCES[vendor])[label]
    assert parse_or_refuse(vendor, events) is not None


@settings(max_examples=400, deadline=None)
@given(case=vendor_cases())
def test_mutated_vendor_payloads_parse_or_name_the_field(case: tuple[str, str, list[Any]]) -> None:
    vendor, _, events = case
    parse_or_refuse(vendor, events)


@settings(max_examples=150, deadline=None)
@given(
    vendor=st.sampled_from(sorted(SEQUENCES)),
    payload=st.one_of(json_values, _deep, _odd_text, _edge_numbers),
)
def test_any_json_document_parses_or_is_refused(vendor: str, payload: Any) -> None:
    parse_or_refuse(vendor, [orjson.loads(_as_body(payload))])


SIGNATURE_HEADERS = (
    "x-retell-signature",
    "x-signature",
    "x-timestamp",
    "x-vapi-secret",
    "elevenlabs-signature",
    "x-webhook-signature",
    "x-convoscope-signature",
)
# Header values as the server hands them over: latin-1 text, so "²" (0xb2) and "١" cannot come but
# "\xb2" can; both are drawn, the adapter must not care.
_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x6FF), max_size=24)
_header_values = st.one_of(
    _header_text,
    st.builds(
        "v={},d={}".format,
        st.one_of(_header_text, st.sampled_from(["²", "9" * 5000, "-1", "1e3"])),
        _header_text,
    ),
    st.builds("t={},v0={}".format, _header_text, _header_text),
    st.builds(
        "t={},v1={}".format,
        st.one_of(_header_text, st.sampled_from(["nan", "inf", "1e400", "-0"])),
        _header_text,
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    vendor=st.sampled_from(sorted(SEQUENCES)),
    headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), _header_values, max_size=3),
)
# Found by this property: Retell's timestamp "²" passed isdigit() and then failed int() with a ValueError.
@example(vendor="retell", headers={"x-retell-signature": "v=\xb2,d=00"})
@example(vendor="retell", headers={"x-retell-signature": "v=²,d=00"})
@example(vendor="retell", headers={"x-retell-signature": "v=" + "9" * 5000 + ",d=00"})
def test_signature_headers_verify_or_are_refused(vendor: str, headers: dict[str, str]) -> None:
    source = get_source(vendor)
    body = orjson.dumps(SEQUENCES[vendor][0][1][0])
    try:
        source.verify(headers, body, "secret", now=RECEIVED)
    except SignatureError as exc:
        assert str(exc).strip()
    else:
        # Nothing random is a valid signature; only a vendor with no signature scheme lets it through.
        assert vendor == "webex", headers
