"""Retrieved and re-ranked documents, read out of a span at the edge and placed on the turn they fed.

A RAG app's retriever span can carry tens of documents of several kilobytes each, far past the
attribute caps (one value, one span's total), which would cut the very context a reader needs to see
why an answer went wrong. So documents are taken out of the attributes (and out of the events that carry
them) before the caps apply, kept in ``Span.documents`` under their own bounds (content length and count
per span, both settings), and every cut is reported back to the exporter as an OTLP partial-success
warning.

Conventions read:

* OpenInference: ``retrieval.documents.N.document.{id,content,score,metadata}`` on RETRIEVER spans,
  ``reranker.input_documents.N.document.*`` and ``reranker.output_documents.N.document.*`` on RERANKER
  spans (flat keys, or one list-valued attribute of objects);
* OpenTelemetry GenAI: ``gen_ai.retrieval.documents`` (JSON text or a list of objects with ``id``,
  ``score``, ``content``, ``metadata``);
* OpenLLMetry's vector-database instrumentations: one ``db.query.result`` span event per result, with
  ``db.query.result.{id,score,distance,document,metadata}``.

At assembly each turn receives the documents of the spans that ran just before its answer: the first
agent turn that starts at or after the retrieving span began.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import JsonValue

from ...model import Document, DocumentStage, Role, Span, Turn
from ...model.bounds import MAX_JSON_DEPTH, MAX_SHORT_TEXT, json_depth_exceeds
from ...model.document import MAX_DOCUMENTS
from .common import offset_s
from .limits import SpanLimits
from .trusted import trusted_document

__all__ = ["DOCUMENT_PREFIXES", "ExtractedDocuments", "extract_documents", "place_documents"]

_LISTS: Mapping[str, DocumentStage] = {
    "retrieval.documents": DocumentStage.RETRIEVED,
    "reranker.input_documents": DocumentStage.RERANK_INPUT,
    "reranker.output_documents": DocumentStage.RERANKED,
    "gen_ai.retrieval.documents": DocumentStage.RETRIEVED,
}
DOCUMENT_PREFIXES = tuple(_LISTS)
"""Attribute names (and prefixes of flattened ones) that hold documents."""
_FLAT = re.compile(
    r"^(retrieval\.documents|reranker\.input_documents|reranker\.output_documents)\.(\d+)\.(.+)$"
)
_RESULT_EVENT = "db.query.result"
_RESULT_PREFIX = "db.query.result."

Warn = Callable[[str], None]
RawEvent = tuple[str, int, dict[str, JsonValue]]


@dataclass(frozen=True, slots=True)
class ExtractedDocuments:
    """A span's attributes and events without the documents, and the documents within their bounds."""

    attributes: dict[str, JsonValue]
    events: list[RawEvent]
    documents: list[Document]


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _metadata(value: JsonValue) -> JsonValue:
    """Metadata as exported: JSON text is parsed (OpenInference writes it so), anything else kept; a
    value nested past what the store holds is kept as its JSON text."""
    if isinstance(value, str):
        try:
            parsed: JsonValue = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        return value if json_depth_exceeds(parsed, MAX_JSON_DEPTH) else parsed
    if json_depth_exceeds(value, MAX_JSON_DEPTH):
        return orjson.dumps(value).decode()
    return value


class _Builder:
    """Documents of one span, with the span's bounds applied and every cut reported."""

    def __init__(self, span_id: str, limits: SpanLimits, warn: Warn) -> None:
        self._span_id = span_id
        self._limits = limits
        self._warn = warn
        self.documents: list[Document] = []
        self.left_out = 0

    def add(self, fields: Mapping[str, JsonValue], stage: DocumentStage, where: str) -> None:
        """One document from its fields (``document.`` prefixes already taken off); ``where`` names it
        in a warning."""
        if len(self.documents) >= self._limits.max_documents:
            self.left_out += 1
            return
        content = fields.get("content")
        if content is None:
            content = fields.get("document")
        text = (
            "" if content is None else content if isinstance(content, str) else orjson.dumps(content).decode()
        )
        cut: int | None = None
        if len(text) > self._limits.max_document_chars:
            cut = len(text)
            text = text[: self._limits.max_document_chars]
            self._warn(
                f"span {self._span_id}: {where} content cut to {self._limits.max_document_chars} "
                f"of {cut} chars"
            )
        identifier = fields.get("id")
        metadata = fields.get("metadata")
        if metadata is not None:
            metadata = _metadata(metadata)
        # Every field is checked here (text cut to its bounds, numbers finite, metadata within the JSON
        # depth), so the model is built without a second validation pass.
        self.documents.append(
            trusted_document(
                {
                    "id": None if identifier is None else str(identifier)[:MAX_SHORT_TEXT],
                    "content": text,
                    "score": _number(fields.get("score")),
                    "distance": _number(fields.get("distance")),
                    "metadata": metadata,
                    "stage": stage,
                    "span_id": self._span_id,
                    "content_chars": cut,
                }
            )
        )

    def finish(self) -> list[Document]:
        if self.left_out:
            self._warn(
                f"span {self._span_id}: {self.left_out} documents left out "
                f"(at most {self._limits.max_documents} are kept per span)"
            )
        return self.documents


def _listed(value: JsonValue) -> list[JsonValue] | None:
    """A list-valued documents attribute (a list, or JSON text of one)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value if isinstance(value, list) else None


def _holds_documents(attributes: Mapping[str, JsonValue], events: Sequence[RawEvent]) -> bool:
    return any(key.startswith(DOCUMENT_PREFIXES) for key in attributes) or any(
        event[0] == _RESULT_EVENT for event in events
    )


def extract_documents(
    span_id: str,
    attributes: dict[str, JsonValue],
    events: list[RawEvent],
    limits: SpanLimits,
    warn: Warn,
) -> ExtractedDocuments:
    """The span's documents, and its attributes and events without them (unchanged when it has none).

    A documents attribute that cannot be read as documents (not a list, malformed JSON) stays an
    attribute, so nothing exported is lost.
    """
    if not _holds_documents(attributes, events):
        return ExtractedDocuments(attributes, events, [])
    builder = _Builder(span_id, limits, warn)
    flat: dict[tuple[str, int], dict[str, JsonValue]] = {}
    kept: dict[str, JsonValue] = {}
    for key, value in attributes.items():
        match = _FLAT.match(key)
        if match is not None:
            flat.setdefault((match[1], int(match[2])), {})[match[3].removeprefix("document.")] = value
            continue
        stage = _LISTS.get(key)
        listed = None if stage is None else _listed(value)
        if stage is None or listed is None:
            kept[key] = value
            continue
        for i, item in enumerate(listed):
            if isinstance(item, dict):
                fields = {k.removeprefix("document."): v for k, v in item.items()}
                builder.add(fields, stage, f"{key}[{i}]")
    for (name, position), fields in sorted(flat.items()):
        builder.add(fields, _LISTS[name], f"{name}.{position}")
    results = [event for event in events if event[0] == _RESULT_EVENT]
    for i, (_, _, fields) in enumerate(results):
        builder.add(
            {k.removeprefix(_RESULT_PREFIX): v for k, v in fields.items()},
            DocumentStage.RETRIEVED,
            f"event {_RESULT_EVENT}[{i}]",
        )
    other_events = [event for event in events if event[0] != _RESULT_EVENT] if results else events
    return ExtractedDocuments(kept, other_events, builder.finish())


def _fed(turns: Sequence[Turn], at_s: float) -> int | None:
    """The position of the first agent turn starting at or after ``at_s``, else of the last turn."""
    for position, turn in enumerate(turns):
        if turn.role == Role.AGENT and turn.start_s >= at_s:
            return position
    return len(turns) - 1 if turns else None


def place_documents(turns: Sequence[Turn], spans: Iterable[Span], start: datetime) -> list[Turn]:
    """The turns, each with the documents retrieved for its answer (in the order the spans ran).

    A re-ranker's input list repeats what the retriever returned, so it is placed only on a turn that
    received no retrieved list of its own.
    """
    placed: dict[int, list[Document]] = {}
    for span in sorted((s for s in spans if s.documents), key=lambda s: (s.start, s.span_id)):
        position = _fed(turns, offset_s(span.start, start))
        if position is not None:
            placed.setdefault(position, []).extend(span.documents)
    if not placed:
        return list(turns)
    out = list(turns)
    for position, documents in placed.items():
        if any(d.stage == DocumentStage.RETRIEVED for d in documents):
            documents = [d for d in documents if d.stage != DocumentStage.RERANK_INPUT]
        out[position] = out[position].model_copy(update={"documents": documents[:MAX_DOCUMENTS]})
    return out
