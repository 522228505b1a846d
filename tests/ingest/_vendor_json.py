"""Hypothesis strategies and the recorded vendor payloads shared by the vendor adapter tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from convoscope.errors import PayloadError
from convoscope.ingest.sources import IgnoredEvent, Source

json_values: st.SearchStrategy[Any] = st.recursive(
    # What a JSON parser hands over (orjson keeps integers to 64 bits).
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
"""Arbitrary JSON documents."""


FIXTURES = Path(__file__).parent / "fixtures"


def vendor_payload(vendor: str, name: str) -> dict[str, Any]:
    """The recorded payload ``fixtures/<vendor>/<name>.json``, fresh on every call (tests mutate it)."""
    document: dict[str, Any] = json.loads((FIXTURES / vendor / f"{name}.json").read_text())
    return document


def only_payload_errors(source: Source, *events: Any, earlier: Sequence[Any] = ()) -> None:
    """Identify each event and assemble them after ``earlier``: bad input may only raise ``PayloadError``.

    ``IgnoredEvent`` (an event acknowledged and not kept, by the adapter's rule) is an answer too.
    """
    try:
        for event in events:
            source.identify(event)
        source.assemble([*earlier, *events])
    except (PayloadError, IgnoredEvent):
        pass
