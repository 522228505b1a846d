"""The faults the reference agent can be told to have, and how a request names them.

The agent exists to be tested: every evaluator and every connector failure path needs an agent that
fails in exactly one known way on demand. A fault is switched on for a whole server (``faults=`` of
:class:`~.server.ReferenceAgentServer`) or for one request through the model name, so one server can
play two versions of an agent in an A/B comparison::

    reference-agent                    # the well-behaved agent (plus the server's own faults)
    reference-agent+loops+leaks_pii    # the same agent with two more faults, on this request only

The faults in effect are the union of the server's and the request's: a server started with a fault
cannot be asked to drop it, which keeps a test that set it up from being silently defeated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

__all__ = [
    "BEHAVIOUR_FAULTS",
    "DEFAULT_MODEL",
    "INFRASTRUCTURE_FAULTS",
    "Fault",
    "UnknownFault",
    "model_name",
    "parse_model",
]

DEFAULT_MODEL = "reference-agent"
"""The model name of the well-behaved agent; any base name is accepted, only the ``+fault`` part counts."""

_SEPARATOR = "+"


class Fault(StrEnum):
    """One way the reference agent misbehaves; each one is what some evaluator or connector must catch."""

    SLOW_TOOL = "slow_tool"
    """The reply that follows a tool result is held back by the server's ``slow_s``."""
    WRONG_TOOL_ARGS = "wrong_tool_args"
    """``book_appointment`` is called one hour off the time the caller asked, while the agent states the
    asked time (a say/do mismatch)."""
    HALLUCINATED_PRICE = "hallucinated_price"
    """A price is quoted without calling ``get_price``, and it is not the price list's."""
    NO_DISCLOSURE = "no_disclosure"
    """The greeting has neither the AI disclosure nor the recording notice."""
    LOOPS = "loops"
    """The first question the agent asks is asked three times, even after the caller answered it."""
    LEAKS_PII = "leaks_pii"
    """Another patient's full phone number and date of birth, or a full card number, are read out."""
    OBEYS_INJECTION = "obeys_injection"
    """Told to ignore its instructions or reveal its prompt, the agent recites its system instructions."""
    NEVER_TRANSFERS = "never_transfers"
    """Asked for a person, the agent refuses and goes on; ``transfer_to_human`` is never called."""
    SILENT = "silent"
    """The server never answers: the request hangs until the client gives up."""
    HTTP_500 = "http_500"
    """The server answers HTTP 500 (a WebSocket is closed with code 1011)."""
    MALFORMED = "malformed"
    """The server answers 200 with a body that is not a reply of its protocol."""


INFRASTRUCTURE_FAULTS = frozenset({Fault.SILENT, Fault.HTTP_500, Fault.MALFORMED})
"""Faults of the transport, handled by the server before the policy runs."""
BEHAVIOUR_FAULTS = frozenset(Fault) - INFRASTRUCTURE_FAULTS
"""Faults of the conversation itself, handled by the policy (and ``slow_tool`` by the server's clock)."""


class UnknownFault(ValueError):
    """A model name asked for a fault the agent does not have."""


def parse_model(model: str | None) -> frozenset[Fault]:
    """The faults a model name asks for: ``"reference-agent+loops+leaks_pii"`` → ``{LOOPS, LEAKS_PII}``.

    The base name before the first ``+`` is free (a caller may call its versions anything); each part
    after it must name a :class:`Fault` (case-insensitive, ``-`` read as ``_``), else :class:`UnknownFault`
    says which, because a misspelt fault silently ignored would make a test pass for the wrong reason.
    A space separates like ``+`` does, because an unescaped ``+`` in a query string arrives as one.
    """
    if not model:
        return frozenset()
    _base, *parts = re.split(r"[+\s]", model.strip())
    faults: set[Fault] = set()
    for part in parts:
        name = part.strip().lower().replace("-", "_")
        if not name:
            continue
        try:
            faults.add(Fault(name))
        except ValueError:
            known = ", ".join(sorted(fault.value for fault in Fault))
            raise UnknownFault(f"unknown fault {part!r} in model {model!r} (known: {known})") from None
    return frozenset(faults)


def model_name(faults: Iterable[Fault | str] = (), *, base: str = DEFAULT_MODEL) -> str:
    """The model name that selects ``faults`` (sorted, so one set of faults has one name)."""
    names = sorted({Fault(fault).value for fault in faults})
    return _SEPARATOR.join([base, *names])
