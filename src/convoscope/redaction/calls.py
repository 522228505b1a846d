"""A call with its personal values masked in every field that carries what people said or typed.

Turns (their text, their words, the documents a RAG step gave them), tool arguments and results, the
vendor's analysis, metadata, tags and the vendor's raw end reason are masked; identity, times, costs
and links are not (they name no person, and the platform needs them to replace, order and fetch).

A turn's words are masked apart from its text: the detectors run on the words joined, so each word
that is part of a value is known and becomes the marker itself, keeping its timing. That is what lets
the recording be muted over exactly those words later, even when the call is stored again after its
text was already masked (a recording fetched later), since the markers stay on the words.
"""

from __future__ import annotations

from typing import Any

from ..model import Call, ToolCall, Turn, Word
from ..model.document import Document
from .locate import Hit, Masker, mask_text
from .values import mask_value

__all__ = ["redact_call", "redact_words"]


def redact_words(words: list[Word], masker: Masker, hits: list[Hit] | None = None) -> list[Word]:
    """The words with each one that is part of a personal value replaced by its kind's marker.

    ``hits`` are those of the words joined by spaces when already known (the turn's text is often
    exactly that), else the words are read again.
    """
    if not words:
        return words
    if hits is None:
        hits = masker.hits(" ".join([word.word for word in words]))
    if not hits:
        return words
    offsets: list[tuple[int, int]] = []
    at = 0
    for word in words:
        offsets.append((at, at + len(word.word)))
        at += len(word.word) + 1
    masked: list[Word] = []
    for word, (start, end) in zip(words, offsets, strict=True):
        hit = next((h for h in hits if h.start < end and start < h.end), None)
        masked.append(word if hit is None else word.model_copy(update={"word": masker.render(hit.kind)}))
    return masked


def _document(document: Document, masker: Masker) -> Document:
    update: dict[str, Any] = {"content": masker.text(document.content)}
    if document.metadata is not None:
        update["metadata"] = mask_value(document.metadata, masker)
    return document.model_copy(update=update)


def _turn(turn: Turn, masker: Masker) -> Turn:
    update: dict[str, Any] = {}
    hits = masker.hits(turn.text)
    if hits:
        update["text"] = mask_text(turn.text, hits, masker.render)
    if turn.words:
        same = " ".join([word.word for word in turn.words]) == turn.text
        words = redact_words(turn.words, masker, hits if same else None)
        if words is not turn.words:
            update["words"] = words
    if turn.documents:
        update["documents"] = [_document(document, masker) for document in turn.documents]
    return turn.model_copy(update=update) if update else turn


def _tool_call(tool_call: ToolCall, masker: Masker) -> ToolCall:
    return tool_call.model_copy(
        update={
            "arguments": mask_value(tool_call.arguments, masker, "arguments"),
            "result": mask_value(tool_call.result, masker, "result"),
        }
    )


def redact_call(call: Call, masker: Masker) -> Call:
    """``call`` with every personal value of the masker's kinds masked (recordings are not touched)."""
    update: dict[str, Any] = {
        "turns": [_turn(turn, masker) for turn in call.turns],
        "tool_calls": [_tool_call(tool_call, masker) for tool_call in call.tool_calls],
        "metadata": mask_value(call.metadata, masker),
        "vendor_analysis": mask_value(call.vendor_analysis, masker),
        "tags": [masker.text(tag) for tag in call.tags],
    }
    if call.end_reason_raw:
        update["end_reason_raw"] = masker.text(call.end_reason_raw)
    return call.model_copy(update=update)
