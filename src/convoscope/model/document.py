"""Documents a RAG step retrieved or re-ranked, kept with the turn they fed.

A wrong answer from a RAG app is most often a retrieval problem (stale, missing or badly ranked
context), so the documents are part of the call, next to the answer, not only raw span attributes. Each
says which step produced it (``stage``) and from which span, so the retrieved list and the re-ranked list
of one request can be told apart.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from .bounds import BoundedJson, Integer, Number, ShortText

__all__ = ["MAX_DOCUMENTS", "MAX_DOCUMENT_CHARS", "Document", "DocumentStage"]

MAX_DOCUMENT_CHARS = 1_048_576
"""The longest document content a call may hold (the OTLP receiver cuts earlier, at a setting)."""
MAX_DOCUMENTS = 1024
"""Documents one turn or one span may hold."""


class DocumentStage(StrEnum):
    """Which step of the pipeline a document list comes from."""

    RETRIEVED = "retrieved"
    RERANK_INPUT = "rerank_input"
    """What a re-ranker was given (usually the retrieved list again)."""
    RERANKED = "reranked"


class Document(BaseModel):
    """One retrieved document: its id, relevance score, content and metadata as the retriever gave them.

    ``content_chars`` is the content's full length when the receiver kept only its start (``content`` is
    then a prefix), so a reader knows the text is partial.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ShortText | None = None
    content: str = Field(default="", max_length=MAX_DOCUMENT_CHARS)
    score: Number | None = Field(default=None, allow_inf_nan=False)
    distance: Number | None = Field(default=None, allow_inf_nan=False)
    """A vector store's distance, when it reports one instead of (or beside) a score."""
    metadata: BoundedJson = None
    stage: DocumentStage = DocumentStage.RETRIEVED
    span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    """The span that produced the list (a retriever or re-ranker span), when it came from a trace."""
    content_chars: Integer | None = Field(default=None, ge=0)
