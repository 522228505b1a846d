"""Vendor REST clients that page through past calls for ``convoscope pull``.

Each vendor module turns its list API into :class:`~convoscope.ingest.pull.base.Page` s of events shaped
exactly like that vendor's webhooks, so a pulled call goes through the same adapter and the same durable
ingest path as a pushed one. The clients only page; they take an injected ``httpx.Client`` (base URL and
the vendor's auth header already set) and never store anything.
"""

from __future__ import annotations

from .base import PULLERS, Page, Puller, PullerSpec, get_puller, parse_since

__all__ = ["PULLERS", "Page", "Puller", "PullerSpec", "get_puller", "parse_since"]
