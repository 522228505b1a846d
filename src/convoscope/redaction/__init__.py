"""Redaction before storage: personal data masked on every ingest path, before any copy is written.

A project that turns redaction on (``settings.py``) has the PII kinds it chose masked by the same
detectors the PII metric uses (``evals.rules.pii``: written and spoken forms, spelled identifiers;
Presidio through the ``pii`` extra) in every stored copy: turns and their words (``calls.py``), tool
arguments and results, metadata and raw vendor events (``values.py``), span attributes and OTLP log
records (``traces.py``), and the outbox rows once processed (``service.py``). Recordings are muted over
the masked words (``recordings.py``, ``audio.py``) or not kept. Evaluators read what is stored, so they
see the masked text too.
"""

from __future__ import annotations

from .policy import Policies, masker_for
from .service import Redactor
from .settings import SETTINGS_PATH, RedactionSettings, parse_settings

__all__ = ["SETTINGS_PATH", "Policies", "RedactionSettings", "Redactor", "masker_for", "parse_settings"]
