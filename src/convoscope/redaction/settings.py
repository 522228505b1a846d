"""A project's redaction setting: which personal data is masked before storage, and how.

The setting lives in the project's settings document under ``redaction`` so that the API, the CLI and
every ingest path read one place. It is a closed model (unknown fields are refused): a misspelt field
that silently did nothing would leave data unmasked while its owner believes it masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, ValidationError, field_validator

from ..errors import PayloadError
from ..evals.rules.pii import Engine, PiiKind

__all__ = [
    "DEFAULT_KINDS",
    "SETTINGS_PATH",
    "RecordingPolicy",
    "RedactionSettings",
    "parse_settings",
    "settings_of",
]

SETTINGS_PATH = ("redaction",)
"""Where the setting sits in the project settings document."""

DEFAULT_KINDS: tuple[PiiKind, ...] = tuple(kind for kind in PiiKind if kind is not PiiKind.POSTCODE)
"""The kinds masked unless the setting names others: those the PII metric looks for by default."""

RecordingPolicy = Literal["mute", "drop", "keep"]

_REPLACEMENT = r"^\s*(?:[^\s0-9@{}]|\{kind\})(?:[^0-9@{}]|\{kind\})*$"
"""Not blank, no digits, no ``@``, and no braces but the ``{kind}`` placeholder."""


class RedactionSettings(BaseModel):
    """Redaction before storage for one project."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: StrictBool = False
    """Mask personal data before anything of a call, span or event is stored."""
    kinds: list[PiiKind] = Field(default_factory=lambda: list(DEFAULT_KINDS), max_length=len(PiiKind))
    """The kinds masked: email, phone, card, bank_account, national_id, date_of_birth, postcode."""
    replacement: str = Field(default="[{kind}]", min_length=1, max_length=64, pattern=_REPLACEMENT)
    """What a masked value becomes; ``{kind}`` is replaced by the kind's name. It may hold no digits,
    no ``@`` and no other braces (a replacement must never look like data), and not be blank."""
    recordings: RecordingPolicy = "mute"
    """mute: silence the audio over masked words (the whole turn where words carry no timings; a
    recording that cannot be placed on the call clock at all is not kept); drop: keep no recordings;
    keep: store audio as received (only the text is masked)."""
    engine: Engine = Engine.RULES
    """The detectors: rules (written and spoken forms), presidio (the pii extra) or both."""
    mute_padding_s: Annotated[float, Strict()] = Field(default=0.05, ge=0.0, le=2.0)
    """Seconds of silence added on each side of a muted word (word timings are approximate)."""

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, kinds: list[PiiKind]) -> list[PiiKind]:
        return list(dict.fromkeys(kinds))

    def marker(self, kind: PiiKind) -> str:
        """The text a masked value of ``kind`` becomes."""
        return self.replacement.format(kind=kind.value)

    def markers(self) -> frozenset[str]:
        """Every text a masked value can become (what a muted word reads after masking)."""
        return frozenset(self.marker(kind) for kind in PiiKind)


def parse_settings(document: Any, *, where: str = "redaction") -> RedactionSettings:
    """A setting read from JSON; a ``PayloadError`` (422) naming each refused field otherwise."""
    try:
        return RedactionSettings.model_validate(document)
    except ValidationError as exc:
        details: list[dict[str, object]] = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in (where, *error["loc"]))
            details.append({"loc": loc, "msg": error["msg"]})
        names = ", ".join(str(detail["loc"]) for detail in details)
        raise PayloadError(f"invalid redaction setting: {names}", details) from None


def settings_of(document: Mapping[str, Any], default: RedactionSettings | None = None) -> RedactionSettings:
    """The project's setting from its settings document, else ``default`` (redaction off)."""
    stored = document.get(SETTINGS_PATH[0])
    if stored is None:
        return default or RedactionSettings()
    return parse_settings(stored)
