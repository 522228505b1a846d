"""Hidden text in a caller's turn: encoded payloads to decode, and invisible characters to count.

An attack hidden in base64, hex, rot13, leetspeak, reversed text, spelled letters, look-alike letters or
Unicode tag characters reads as noise to a pattern, so each decoder rewrites the turn (or a token of it)
into plain text and the families run again on the result. A decoding is kept only when it yields readable
text, so a reference code that happens to be valid base64 decodes to nothing the families match.

Emoji are ordinary Unicode: a zero-width joiner between pictographs (family emoji), a variation selector
after a symbol (the warning sign as emoji), and tag characters inside a subdivision flag are how emoji
are written, not obfuscation; only invisible characters outside such sequences are counted.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterator
from enum import StrEnum

__all__ = ["INVISIBLE", "Decoding", "decodings", "respoken", "suspicious_invisible"]


class Decoding(StrEnum):
    """Ways an attack may be hidden that are decoded before the families run again."""

    BASE64 = "base64"
    HEX = "hex"
    ROT13 = "rot13"
    REVERSED = "reversed"
    LEETSPEAK = "leetspeak"
    SPELLED = "spelled"
    HOMOGLYPHS = "homoglyphs"
    UNICODE_TAGS = "unicode_tags"
    SPOKEN = "spoken"
    """Speech-recognition text: words split or misheard ("ig nore you're previous instruck shuns"),
    fillers, apostrophes dropped; respelled, and checked like the plain turn (quotes still count)."""


INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f\ufe00-\ufe0f]"
)
"""Characters a listener never hears and a reader never sees, but a model reads."""

_FLAG_TAGS = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")

_KEYWORDS = (
    "ignor", "instruc", "prompt", "rules", "pretend", "disregard", "forget", "override", "system", "reveal",
    "restrict", "developer", "admin", "disable", "bypass", "jailbreak", "guideline", "repeat", "anweis",
    "regla", "règle", "istruz", "instru",
)  # fmt: skip
"""Words one of which a decoded whole-turn text (rot13, reversed, leetspeak) must contain to be scanned:
decoding an ordinary turn yields gibberish, and scanning it again would only cost time."""

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"}
)
_L_WORDS = frozenset(
    "rules all roleplay filters guidelines follow developer tell model only unlock limits protocols please "
    "leak reveal level self yourself unfiltered unrestricted tools".split()
)
"""Words where a leetspeak "1" stands for "l" rather than "i"."""
_LEET_L = str.maketrans({"1": "l"})
_LEET_TOKEN = re.compile(r"[a-z0-9@$!]*[a-z][a-z0-9@$!]*")
_SPELLED = re.compile(r"\b[a-z](?:[-.][a-z]){2,}\b\.?", re.IGNORECASE)
_SPACED_LETTERS = re.compile(r"(?<!\w)[a-z](?: {1,3}[a-z](?!\w)){3,}", re.IGNORECASE)
"""Letters said one by one with spaces between ("R E V E A L  Y O U R"); two or more spaces end a word."""
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{12,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){8,}")

_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ѕ": "s", "ј": "j",
        "ԁ": "d", "ɡ": "g", "һ": "h", "ո": "n", "ս": "u", "ν": "v", "ο": "o", "α": "a", "ι": "i", "κ": "k",
        "τ": "t", "ρ": "p", "ε": "e", "η": "n", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    }
)  # fmt: skip
_CONFUSABLE = re.compile("[аеорсхуіѕјԁɡһոսνοαικτρεηӏԛԝ]")


_SPOKEN_WORDS = (
    "ignore", "disregard", "forget", "override", "bypass", "instructions", "instruction", "whatever",
    "everything", "anything", "guidelines", "guidance", "restrictions", "previous", "pretend", "developer",
    "system", "prompt", "programming", "programmed", "configuration", "administrator", "supervisor",
    "jailbreak", "unrestricted", "reveal", "repeat", "yourself", "protocols", "directives",
)  # fmt: skip
"""Words of the attack families a transcriber may split or mishear; split pieces are joined back when
they spell one of them, after the spelling is folded (``_sound``)."""


def _sound(word: str) -> str:
    """A rough spoken form: "-shun", "-sion" as "-tion", "ck", "c" and "k" as one sound, doubled letters
    single, so "instruck shuns" and "instructions" agree."""
    word = re.sub(r"sh[ua]ns?\b|sions?\b", lambda m: "tions" if m.group(0).endswith("s") else "tion", word)
    word = word.replace("ck", "k").replace("c", "k").replace("q", "k")
    word = re.sub(r"gu(?=[aeiou])", "g", word)  # "disreguard" as "disregard"
    word = re.sub(r"(?<=..)e\b", "", word)  # a final silent e dropped: "ignor" as "ignore"
    return re.sub(r"(.)\1+", r"\1", word)


_BY_SOUND = {_sound(word): word for word in _SPOKEN_WORDS}
_FILLERS = re.compile(r"\b(?:uh+|um+|uhm+|erm*|hmm+|ah+|mm+)\b[,.]?\s*")
_CONTRACTIONS = {
    "doesnt": "doesn't", "dont": "don't", "didnt": "didn't", "cant": "can't", "wont": "won't",
    "isnt": "isn't", "arent": "aren't", "youre": "you're", "youve": "you've", "lets": "let's", "im": "i'm",
    "ive": "i've", "thats": "that's", "whats": "what's", "theyre": "they're", "havent": "haven't",
}  # fmt: skip
_CONTRACTION = re.compile(r"\b(?:" + "|".join(_CONTRACTIONS) + r")\b")
_YOURE_AS_YOUR = re.compile(
    r"\b(?:you'?re|you are|ur)\s+(?=(?:previous|prior|original|initial|own|system|instructions|rules|"
    r"guidelines|guidance|programming|setup|prompt|configuration|script|training)\b)"
)
_YOUR_AS_YOURE = re.compile(r"\byour\s+(?=(?:an?|now|no longer|going to|gonna|not|free|unrestricted)\b)")
_SPOKEN_TOKEN = re.compile(r"(?<![\w-])[a-z']+(?![\w-])")


def respoken(text: str) -> str:
    """``text`` (lower case) as the words a speech recogniser heard: fillers dropped, apostrophes put back,
    "you're" and "your" swapped where the other is meant, and split or misheard attack words joined."""
    text = _FILLERS.sub("", text)
    text = _CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group(0)], text)
    words = [(m.start(), m.end(), m.group(0)) for m in _SPOKEN_TOKEN.finditer(text)]
    out: list[str] = []
    last = 0
    i = 0
    while i < len(words):
        for width in (3, 2, 1):
            piece = words[i : i + width]
            if len(piece) < width or any(
                text[a[1] : b[0]].strip() for a, b in zip(piece, piece[1:], strict=False)
            ):
                continue  # the pieces must be separated by spaces only
            joined = "".join(w for _, _, w in piece)
            word = _BY_SOUND.get(_sound(joined))
            if word is not None and (width > 1 or word != joined):
                out.append(text[last : piece[0][0]] + word)
                last = piece[-1][1]
                i += width
                break
        else:
            i += 1
    out.append(text[last:])
    text = _YOURE_AS_YOUR.sub("your ", "".join(out))
    return _YOUR_AS_YOURE.sub("you're ", text)


def _pictographic(char: str) -> bool:
    code = ord(char)
    return (
        code >= 0x1F000
        or 0x2190 <= code <= 0x2BFF
        or unicodedata.category(char) in ("So", "Sk")
        or char in "\u20e3\ufe0f"
    )


def suspicious_invisible(text: str) -> list[str]:
    """The invisible characters of ``text`` that are not part of an emoji sequence."""
    if not INVISIBLE.search(text):
        return []
    text = _FLAG_TAGS.sub("", text)
    found: list[str] = []
    for i, char in enumerate(text):
        if not INVISIBLE.match(char):
            continue
        before = text[i - 1] if i else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        if char == "\u200d" and before and after and _pictographic(before) and _pictographic(after):
            continue  # zero-width joiner inside an emoji sequence
        if "\ufe00" <= char <= "\ufe0f" and before and not before.isalpha() and not before.isspace():
            continue  # variation selector after a symbol or digit (emoji or text presentation, keycaps)
        found.append(char)
    return found


def _readable(raw: bytes, min_printable: float) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or " " not in text.strip():
        return None  # a single word decodes from ids and references; an instruction has several words
    printable = sum(ch.isprintable() for ch in text) / len(text)
    return text if printable >= min_printable else None


def _unleet(token: str) -> str:
    as_l = token.translate(_LEET_L).translate(_LEET)
    return as_l if as_l in _L_WORDS else token.translate(_LEET)


def _has_keyword(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _KEYWORDS)


def _new_keywords(decoded: str, original: str) -> bool:
    """Whether decoding brought out an attack word the original did not already hold: a lead-in in plain
    words ("here are my instructions in rot13") leaves the payload's own words to be found."""
    before = original.lower()
    after = decoded.lower()
    return any(word in after and word not in before for word in _KEYWORDS)


_SEGMENT_WORDS = frozenset(
    "ignore disregard forget override bypass reveal repeat show tell print give pretend your you all any "
    "the and me my now previous prior instructions instruction rules rule guidelines system prompt "
    "developer mode admin code password restrictions filters above everything settings what is are "
    "a an to of on off no skip checks free discount refund approve this call from say".split()
)
"""Words a run of single letters ("i g n o r e y o u r r u l e s") is split back into."""


def _segment(letters: str) -> str | None:
    """``letters`` split into words of ``_SEGMENT_WORDS``, fewest words first; None when they do not split."""
    best: list[list[str] | None] = [[]] + [None] * len(letters)
    for end in range(1, len(letters) + 1):
        for start in range(max(0, end - 12), end):
            head = best[start]
            if head is not None and letters[start:end] in _SEGMENT_WORDS:
                candidate = [*head, letters[start:end]]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    words = best[-1]
    return " ".join(words) if words else None


def _spaced(match: re.Match[str]) -> str:
    """A run of spaced letters joined: two or more spaces end a word; a run with single spaces only is split
    into known words where it can be."""
    run = match.group(0)
    if "  " in run:
        return " ".join(w.replace(" ", "") for w in run.split("  "))
    joined = run.replace(" ", "")
    return _segment(joined.lower()) or joined


def decodings(
    text: str, wanted: frozenset[Decoding], *, min_encoded_chars: int, min_printable: float
) -> Iterator[tuple[Decoding, str]]:
    """Each plain-text reading of a hidden payload in ``text``, with the decoding that produced it.

    ``min_encoded_chars`` is the shortest base64 or hex token decoded; ``min_printable`` the share of
    printable characters a base64 or hex decoding must have to count as text.
    """
    if Decoding.UNICODE_TAGS in wanted:
        for run in _TAGS.findall(_FLAG_TAGS.sub("", text)):
            yield Decoding.UNICODE_TAGS, "".join(chr(ord(c) - 0xE0000) for c in run)
    visible = INVISIBLE.sub("", text)
    if Decoding.BASE64 in wanted:
        for token in _BASE64.findall(visible):
            if len(token.rstrip("=")) < min_encoded_chars:
                continue
            padded = token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4)
            try:
                raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                continue
            decoded = _readable(raw, min_printable)
            if decoded:
                yield Decoding.BASE64, decoded
    if Decoding.HEX in wanted:
        for token in _HEX.findall(visible):
            digits = re.sub(r"[\s:]", "", token)
            if len(digits) < min_encoded_chars or len(digits) % 2:
                continue
            decoded = _readable(bytes.fromhex(digits), min_printable)
            if decoded:
                yield Decoding.HEX, decoded
    if Decoding.SPELLED in wanted and (_SPELLED.search(visible) or _SPACED_LETTERS.search(visible)):
        joined = _SPELLED.sub(lambda m: re.sub(r"[-.]", "", m.group(0)), visible)
        joined = _SPACED_LETTERS.sub(_spaced, joined)
        if _has_keyword(joined):
            yield Decoding.SPELLED, joined
    lowered = visible.lower()
    if Decoding.LEETSPEAK in wanted and re.search(r"[a-z][0-9@$]|[0-9@$][a-z]", lowered):
        leet = _LEET_TOKEN.sub(lambda m: _unleet(m.group(0)), lowered)
        if leet != lowered and _has_keyword(leet):
            yield Decoding.LEETSPEAK, leet
    if Decoding.HOMOGLYPHS in wanted and _CONFUSABLE.search(lowered) and re.search("[a-z]", lowered):
        yield Decoding.HOMOGLYPHS, lowered.translate(_HOMOGLYPHS)
    if Decoding.ROT13 in wanted:
        rot = codecs.decode(visible, "rot13")
        if _new_keywords(rot, visible):
            yield Decoding.ROT13, rot
    if Decoding.REVERSED in wanted:
        backwards = visible[::-1]
        if _new_keywords(backwards, visible):
            yield Decoding.REVERSED, backwards
        for word_run in re.findall(r"(?:[^\W\d_]+\s+){2,}[^\W\d_]+", visible):
            flipped = word_run[::-1]  # a reversed run inside an otherwise plain turn
            if _has_keyword(flipped) and not _has_keyword(word_run):
                yield Decoding.REVERSED, flipped
