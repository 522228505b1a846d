"""The streaming split of an event's base64 audio: fed in pieces cut anywhere, it gives exactly what a full
parse gives (the envelope with ``null`` in the audio's place, and the decoded bytes), and it refuses what
strict base64 decoding refuses."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convoscope.errors import PayloadTooLarge
from convoscope.ingest.inline_audio import Base64Stream, FieldSplitter

PATH = ("data", "full_audio")

_keys = st.text(min_size=1, max_size=8).filter(lambda key: key not in ("data", "full_audio"))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_keys | st.just("full_audio"), inner, max_size=4)
    ),
    max_leaves=12,
)


def _split(
    body: bytes, cuts: list[int], *, max_envelope: int = 1 << 20
) -> tuple[bytes, bytes, str | None, int]:
    out = bytearray()
    decoder = Base64Stream(out.extend)
    splitter = FieldSplitter(PATH, decoder.feed, max_envelope=max_envelope)
    edges = sorted({0, len(body), *(min(cut, len(body)) for cut in cuts)})
    for start, end in zip(edges, edges[1:], strict=False):
        splitter.feed(body[start:end])
    decoder.close()
    return splitter.envelope(), bytes(out), decoder.error, splitter.found


@settings(max_examples=300, deadline=None)
@given(
    before=st.dictionaries(_keys, _json, max_size=3),
    after=st.dictionaries(_keys, _json, max_size=3),
    data_extra=st.dictionaries(_keys, _json, max_size=3),
    audio=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    escape_slashes=st.booleans(),
)
def test_any_cut_gives_what_a_full_parse_gives(
    before: dict[str, Any],
    after: dict[str, Any],
    data_extra: dict[str, Any],
    audio: bytes,
    cuts: list[int],
    escape_slashes: bool,
) -> None:
    encoded = base64.b64encode(audio).decode()
    document = {**before, "data": {**data_extra, "full_audio": encoded}, **after}
    body = orjson.dumps(document)
    if escape_slashes:  # some encoders write "/" as "\/" inside strings
        body = body.replace(b"/", b"\\/")
    envelope, decoded, error, found = _split(body, cuts)
    assert error is None and found == 1
    assert decoded == audio
    expected = {**before, "data": {**data_extra, "full_audio": None}, **after}
    assert orjson.loads(envelope) == orjson.loads(orjson.dumps(expected))


@settings(max_examples=200, deadline=None)
@given(document=_json, cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=8))
def test_a_document_without_the_field_at_its_path_is_copied_unchanged(document: Any, cuts: list[int]) -> None:
    body = orjson.dumps({"type": "x", "data": {"nested": document}, "full_audio": "QUFB"})
    envelope, decoded, error, found = _split(body, cuts)
    assert envelope == body and decoded == b"" and error is None and found == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"QUFB!UFB", "character 4: b'!' is not base64"),
        (b"QUFBQQ==QUFB", "character 6: padding followed by more characters"),
        (b"QUFBQQ=A", "character 6: padding followed by more characters"),
        (b"QUFBQ", "5 characters, not a multiple of 4"),
        (b"QUFB\\nQUFB", "character 4: b'\\\\' is not base64"),
        (b"QU\x01B", "character 2: b'\\x01' is not base64"),
    ],
)
def test_bad_base64_is_named_with_its_position(text: bytes, message: str) -> None:
    body = b'{"data":{"full_audio":"' + text + b'"}}'
    for cuts in ([], [3], list(range(len(body)))):
        _, _, error, _ = _split(body, cuts)
        assert error is not None and message in error, error


def test_the_envelope_is_bounded_but_the_audio_is_not() -> None:
    audio = bytes(range(256)) * 64
    body = orjson.dumps({"type": "post_call_audio", "data": {"full_audio": base64.b64encode(audio).decode()}})
    envelope, decoded, error, _ = _split(body, [100, 5000], max_envelope=64)
    assert decoded == audio and error is None and len(envelope) < 64
    with pytest.raises(PayloadTooLarge, match="data.full_audio"):
        _split(orjson.dumps({"data": {"other": "x" * 100}}), [], max_envelope=64)


def test_the_field_given_twice_is_counted_and_only_the_first_decoded() -> None:
    body = b'{"data":{"full_audio":"QUFB","full_audio":"QkJC"}}'
    envelope, decoded, error, found = _split(body, [20])
    assert found == 2 and decoded == b"AAA" and error is None
    assert envelope == b'{"data":{"full_audio":null,"full_audio":null}}'
