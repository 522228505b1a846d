"""The outbound-connection guard of recording fetches (SSRF guard), now shared from
:mod:`convoscope.runtime.egress` so the alert notifiers use the same one; re-exported here for the
recordings capability and its callers."""

from __future__ import annotations

from ..runtime.egress import AddressRefused, GuardedTransport, Network, refusal

__all__ = ["AddressRefused", "GuardedTransport", "Network", "refusal"]
