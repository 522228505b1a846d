"""Vendor names the CLI's help text lists.

Typer reads every command's help when the CLI starts, and the packages that define these names
(``ingest.sources``, ``ingest.pull``) load HTTP clients and pydantic models on import; copying the two
short tuples here keeps ``convoscope --help`` fast. ``tests/integration/test_cli_startup.py`` checks they
match the packages' own lists.
"""

from __future__ import annotations

__all__ = ["PULL_VENDORS", "WEBHOOK_SOURCES"]

WEBHOOK_SOURCES: tuple[str, ...] = ("retell", "vapi", "elevenlabs", "bland", "webex", "generic")
"""``convoscope.ingest.sources.SOURCE_NAMES``."""

PULL_VENDORS: tuple[str, ...] = ("vapi", "retell", "elevenlabs", "bland")
"""``convoscope.ingest.pull.PULLERS``."""
