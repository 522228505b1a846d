"""Every vendor adapter is found under its own name."""

from __future__ import annotations

import pytest

from convoscope.ingest import bland, elevenlabs, generic, retell, vapi, webex
from convoscope.ingest.sources import Source, get_source


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("bland", bland.SOURCE),
        ("elevenlabs", elevenlabs.SOURCE),
        ("generic", generic.SOURCE),
        ("retell", retell.SOURCE),
        ("vapi", vapi.SOURCE),
        ("webex", webex.SOURCE),
    ],
)
def test_registered_under_its_name(name: str, source: Source) -> None:
    assert get_source(name) is source
