"""Redaction with Presidio beside the rules (the ``pii`` extra, installed with the test tools): the same
calls are stored masked in every copy, with the spoken forms only the rules know."""

from __future__ import annotations

from .conftest import REDACT_ON, Live
from .test_ingest_paths import assert_nothing_kept, canonical_call


def test_presidio_and_the_rules_together_mask_every_copy(live: Live) -> None:
    live.redact({**REDACT_ON, "engine": "both"})
    response = live.post("/api/v1/calls", json=[canonical_call("presidio-1")])
    assert response.status_code == 202, response.text
    live.process()
    (stored,) = live.calls()
    texts = [turn["text"] for turn in stored["call"]["turns"]]
    assert texts[1] == "Hi, my number is [phone] and my email is [email]."
    assert texts[2] == "The card is [card], expiring next year."
    assert texts[3] == "Again, that is [phone]."  # the spoken form comes from the rules
    assert_nothing_kept(live)
