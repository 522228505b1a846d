"""Which conversation a span belongs to, and which mapper turns a conversation into a call.

Spans are grouped by the conversation id attribute a framework sets (Pipecat ``conversation.id``,
LiveKit job/room ids, GenAI ``gen_ai.conversation.id``), not by parentage alone: Pipecat has been seen
nesting concurrent calls under the wrong conversation span, while the turn spans still carried their
own conversation id. A span without such an attribute (an ``stt`` or ``llm`` span) takes the key of its
nearest keyed ancestor, and a trace whose keyed spans name one conversation belongs to it whole (its
root and the spans beside the keyed one too); a span whose trace names no key yet stays unresolved until
one arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from ...model import Call, Span
from .common import PriceTable
from .genai import GenAIMapper
from .livekit import LiveKitMapper
from .pipecat import PipecatMapper

__all__ = ["TRACE_PREFIX", "Mapper", "mapper_for", "resolve_keys", "root_keys", "trace_key"]

TRACE_PREFIX = "trace:"
"""Key of a trace none of whose spans names a conversation: a GenAI trace-only call."""


class Mapper(Protocol):
    """One framework's vocabulary, versioned: keys spans and assembles a conversation's spans into a call."""

    prefix: str
    version: str

    def own_key(self, span: Span) -> str | None:
        """The conversation key the span names itself (``<prefix>:<id>``), if any."""
        ...

    def is_root(self, span: Span) -> bool:
        """Whether the span is the conversation's root (it ends when the conversation does)."""
        ...

    def assemble(
        self, key: str, spans: Sequence[Span], *, started_at: datetime | None, prices: PriceTable
    ) -> Call | None:
        """The call of one conversation, or None when its spans hold nothing to make a call of."""
        ...


_FRAMEWORKS: tuple[Mapper, ...] = (PipecatMapper(), LiveKitMapper())
_GENAI = GenAIMapper()


def mapper_for(key: str) -> Mapper:
    """The mapper that owns a key; trace keys and unknown prefixes fall to the GenAI mapper."""
    prefix = key.split(":", 1)[0]
    for mapper in _FRAMEWORKS:
        if mapper.prefix == prefix:
            return mapper
    return _GENAI


def trace_key(trace_id: str) -> str:
    """The key of a trace-only conversation."""
    return f"{TRACE_PREFIX}{trace_id}"


def _framework_key(span: Span) -> str | None:
    for mapper in _FRAMEWORKS:
        key = mapper.own_key(span)
        if key is not None:
            return key
    return None


def resolve_keys(spans: Iterable[Span]) -> dict[tuple[str, str], str]:
    """(trace id, span id) → conversation key for every span whose key can be known from ``spans``.

    A stored span keeps the key it already has. Framework keys (own or inherited) win over GenAI keys,
    so an ``llm`` span inside a Pipecat turn joins the Pipecat call even if it names a GenAI conversation.
    """
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    keys: dict[tuple[str, str], str] = {}
    for ident, span in by_id.items():
        own = span.conversation_id or _framework_key(span)
        if own is not None:
            keys[ident] = own
    _inherit(by_id, keys)
    for ident, span in by_id.items():
        if ident not in keys and (own := _GENAI.own_key(span)) is not None:
            keys[ident] = own
    _inherit(by_id, keys)
    _spread_over_traces(by_id, keys)
    return keys


def _spread_over_traces(by_id: dict[tuple[str, str], Span], keys: dict[tuple[str, str], str]) -> None:
    """A trace whose keyed spans all name one conversation belongs to it whole: its unkeyed spans
    (the chain or workflow root above the LLM span, a retriever beside it) join that conversation.

    Instrumentation puts the session on whichever span it likes (OpenInference and OpenLLMetry often on
    the LLM span only), and a key inherited only downwards left the root and the RAG steps out of the
    call, and the call waiting for the idle time because its root was never seen. A trace that names
    two conversations is left as it is: which one its other spans belong to is not known.
    """
    named: dict[str, set[str]] = {}
    for (trace_id, _), key in keys.items():
        named.setdefault(trace_id, set()).add(key)
    for ident in by_id:
        found = named.get(ident[0])
        if ident not in keys and found is not None and len(found) == 1:
            keys[ident] = next(iter(found))


def _inherit(by_id: dict[tuple[str, str], Span], keys: dict[tuple[str, str], str]) -> None:
    """Give every unkeyed span the key of its nearest keyed ancestor present in ``by_id``."""
    for ident, span in by_id.items():
        if ident in keys:
            continue
        chain = [ident]
        parent = span.parent_span_id
        found: str | None = None
        while parent is not None:
            parent_ident = (span.trace_id, parent)
            if parent_ident in keys:
                found = keys[parent_ident]
                break
            parent_span = by_id.get(parent_ident)
            if parent_span is None or parent_ident in chain:
                break
            chain.append(parent_ident)
            parent = parent_span.parent_span_id
        if found is not None:
            for link in chain:
                keys[link] = found


def root_keys(spans: Iterable[Span], keys: dict[tuple[str, str], str]) -> set[str]:
    """Keys whose conversation root is among ``spans`` (the conversation has ended)."""
    ended: set[str] = set()
    for span in spans:
        key = keys.get((span.trace_id, span.span_id))
        if key is not None and mapper_for(key).is_root(span):
            ended.add(key)
    return ended
