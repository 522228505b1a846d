"""Built-in pattern families for disclosure kinds: an AI disclosure and a recording notice.

A required disclosure is met by what it says, not by one wording: "I'm an AI assistant", "you're speaking
with an automated agent", "soy un asistente virtual" and "ich bin ein KI-Assistent" all disclose an AI,
and "calls are recorded for training" is a recording notice. Each kind is recognised by the shape of the
sentence, built from small word families:

* AI disclosure: a declarative self-reference ("I'm", "this is", "you're talking to", "soy", "je suis",
  "ich bin", "sou", "sono"...) followed within a few words by an AI term (AI, bot, robot, machine,
  software, or an agent noun with a virtual/digital/automated adjective), or the agent saying it is not a
  person. A negation between them ("I'm not a bot", "no soy un robot") cancels it; a question ("are you a
  bot?") has no declarative self-reference, so it never counts.
* Recording notice: the call (call, conversation, line, llamada, appel, Gespräch...) followed within a few
  words by a recorded/monitored participle, or a record verb followed by the call ("we're recording this
  conversation"); a negation ("we don't record these calls") cancels it, and a recording of something
  else ("a recording of our rules", "I'll record your meter reading") does not name the call.

Text is folded to lower-case ASCII first (accents dropped), so patterns need one spelling per word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from pydantic import JsonValue

from ...model.call import Call
from ...model.enums import Role
from ._sentences import split_sentences
from ._text import TEXT_CACHE, PhraseHit, find_phrase, quote, turns_of

__all__ = [
    "DisclosureKind",
    "KindHit",
    "affirmed_phrase",
    "find_disclosure",
    "find_kind",
    "folded_words",
    "negated",
]


class DisclosureKind(StrEnum):
    """What a required disclosure must say."""

    PHRASE = "phrase"
    """One of the configured phrases, verbatim or near-verbatim (the documented phrase matching)."""
    AI_DISCLOSURE = "ai_disclosure"
    """That the caller is talking to an AI, in any ordinary phrasing or language."""
    RECORDING_NOTICE = "recording_notice"
    """That the call is recorded or monitored, in any ordinary phrasing or language."""


_INTERJECTION = re.compile(r"\b(?:no|non|nein|nao|não)\s*[,.!;:]")
"""A "No," that answers a question ("No, I'm an AI assistant") is not a negation of what follows."""
_ELISION = re.compile(r"\b([a-z]+)'(?!(?:re|m|s|t|ve|ll|d)\b)(?=[a-z])")
"""Romance elisions ("l'IA", "c'est", "un'intelligenza") become two words, so the article is not glued
to the noun; English contractions ("I'm", "you're", "don't", "desk's") stay whole."""
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@lru_cache(maxsize=TEXT_CACHE)
def folded_words(text: str) -> tuple[str, ...]:
    """Lower-case ASCII words of ``text``: accents dropped, curly apostrophes straightened, elisions split."""
    lowered = _INTERJECTION.sub(" ", text.replace("\u2019", "'").lower())
    decomposed = unicodedata.normalize("NFKD", lowered)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return tuple(_WORD.findall(_ELISION.sub(r"\1 ", ascii_text)))


def _alt(words: str) -> str:
    """A regex alternation of space-separated options; ``_`` stands for a space inside one option."""
    options = sorted((w.replace("_", " ") for w in words.split()), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(o) for o in options) + ")"


NEGATIONS = frozenset(
    "not no never don't doesn't didn't won't isn't aren't wasn't cannot can't ne pas nicht kein keine "
    "keinen keiner nie nao nem non nunca jamais mai ni".split()
)
"""Words that cancel a disclosure between its two halves or just before it, in the six languages."""

_SELF = _alt(
    "i'm i_am im i_m this_is it's it_is you're_speaking_with you're_speaking_to you're_talking_to "
    "you're_talking_with you_are_speaking_with you_are_speaking_to you_are_talking_to you_are_talking_with "
    "you're_chatting_with you've_reached you_have_reached you're_through_to you're_connected_to "
    "call_is_handled_by call_is_answered_by call_is_being_handled_by line_is_handled_by line_is_answered_by "
    "soy esta_hablando_con estas_hablando_con esta_usted_hablando_con le_atiende te_atiende habla_con "
    "je_suis je_ne_suis vous_parlez_a vous_parlez_avec tu_parles_a tu_parles_avec c_est "
    "ich_bin sie_sprechen_mit du_sprichst_mit hier_spricht das_ist hier_ist "
    "sou esta_falando_com voce_esta_falando_com fala_com aqui_e "
    "sono sta_parlando_con stai_parlando_con parla_con qui_e questo_e"
)
"""Declarative ways an agent refers to itself or tells the caller whom they are speaking to."""

_STANDALONE = _alt(
    "ai a_i artificial_intelligence bot chatbot chat_bot voicebot robot robotic machine computer software "
    "language_model llm voice_assistant "
    "ia inteligencia_artificial maquina "
    "intelligence_artificielle "
    "ki kunstliche_intelligenz roboter maschine sprachassistent sprachassistentin "
    "robo "
    "intelligenza_artificiale macchina"
)
"""Terms that say AI on their own."""

_AI_ADJECTIVE = _alt(
    "virtual digital automated automatic synthetic "
    "automatico automatica automatizado automatizada "
    "virtuel virtuelle automatise automatisee numerique "
    "virtueller virtuelle virtuellen virtuelles digitaler digitale digitalen automatisierter automatisierte "
    "automatisierten automatisiertes automatischer automatische automatischen "
    "virtuale digitale automatizzato automatizzata "
)
"""Adjectives that make an agent noun an AI ("virtual assistant", "asistente virtual")."""

_AGENT_NOUN = _alt(
    "assistant agent system voice receptionist attendant operator representative rep service line helper "
    "host concierge "
    "asistente agente sistema voz recepcionista operador operadora servicio "
    "assistante systeme voix standardiste "
    "assistent assistenten assistentin agenten agentin stimme "
    "assistente atendente "
    "voce operatore operatrice"
)
"""Nouns for whoever answers a call."""

_AI_TERM = rf"(?:{_STANDALONE}|{_AI_ADJECTIVE}(?: \S+)? {_AGENT_NOUN}|{_AGENT_NOUN}(?: \S+)? {_AI_ADJECTIVE})"

_HUMAN = _alt(
    "person human human_being people persona humano humana ser_humano personne humain humaine etre_humain "
    "mensch menschen pessoa essere_umano umano umana"
)
_NOT_HUMAN = (
    r"(?:not|no|pas|kein|keine|nicht|nao|non)"
    r"(?: (?:a|an|one|una|un|une|uma|um|einem|einer|echter|echte|real|live|actual|vraie|vrai))*"
    rf" {_HUMAN}"
)
"""The agent saying it is not a person ("not a real person", "je ne suis pas un humain", "kein Mensch")."""
_NOT_HUMAN_BEFORE = (
    r"(?:no|nao|non) (?:soy|es|sou|e|sono)"
    r"(?: (?:una|un|uma|um|real|reale|de verdad|de verdade|vera))*"
    rf" {_HUMAN}"
)
"""The Romance form, negation first: "no soy una persona", "não sou humano", "non sono una persona"."""

_GAP_BLOCKERS = frozenset(
    "at on in from with to for about into through via over of sorry afraid happy glad sure able unable "
    "going calling looking checking transferring connecting sending putting passing".split()
)
"""Words that show the self-reference is about something else ("I'm sorry, the AI...", "I'm sending you to
the virtual assistant"), so no AI term after them is the agent's own description."""

_CALL_NOUN = _alt(
    "call calls conversation conversations line chat session phone_call "
    "llamada llamadas conversacion conversaciones "
    "appel appels communication communications "
    "gesprach gesprache anruf anrufe telefonat telefonate "
    "chamada chamadas ligacao ligacoes conversa conversas "
    "chiamata chiamate telefonata telefonate conversazione conversazioni"
)
_RECORDED = _alt(
    "recorded monitored taped "
    "grabada grabadas grabado grabados "
    "enregistre enregistree enregistres enregistrees "
    "aufgezeichnet mitgeschnitten "
    "gravada gravadas gravado gravados "
    "registrata registrate registrato registrati"
)
_RECORDING = _alt(
    "record recording records monitor monitoring tape taping "
    "grabamos grabando graba "
    "enregistrons enregistre enregistrer "
    "zeichnen aufzeichnen "
    "gravamos gravando grava "
    "registriamo registrando registra"
)
_OTHER_THING = frozenset("of about".split())
"""A record verb followed by "of" records something else ("a recording of our rules")."""


@dataclass(frozen=True)
class KindHit:
    """Where a kind's pattern matched."""

    matched: str
    """The matched words, for evidence."""


def negated(words: tuple[str, ...], start: int, end: int) -> bool:
    """Whether a negation sits inside ``words[start:end]`` or in the word just before it."""
    return any(w in NEGATIONS for w in words[max(0, start - 1) : end])


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\S){pattern}(?!\S)")


def _self_then(term: str, max_gap: int) -> re.Pattern[str]:
    return _compile(rf"(?P<self>{_SELF})(?P<gap>(?: \S+){{0,{max_gap}}}?) (?P<term>{term})")


@lru_cache(maxsize=16)
def _patterns(kind: DisclosureKind, max_gap: int) -> tuple[tuple[re.Pattern[str], bool], ...]:
    """The kind's patterns, each with whether a negation cancels it (not for "I'm not a person")."""
    gap = rf"(?P<gap>(?: \S+){{0,{max_gap}}}?)"
    if kind is DisclosureKind.AI_DISCLOSURE:
        return (
            (_compile(rf"(?P<self>{_SELF}){gap} (?P<term>{_NOT_HUMAN})"), False),
            (_compile(rf"(?P<self>){gap}(?P<term>{_NOT_HUMAN_BEFORE})"), False),
            (_compile(rf"(?P<self>{_SELF}){gap} (?P<term>{_AI_TERM})"), True),
        )
    if kind is DisclosureKind.RECORDING_NOTICE:
        return (
            (_compile(rf"(?P<self>{_CALL_NOUN}){gap} (?P<term>{_RECORDED})"), True),
            (_compile(rf"(?P<self>{_RECORDING}){gap} (?P<term>{_CALL_NOUN})"), True),
        )
    return ()


def find_kind(kind: DisclosureKind, sentence: str, *, max_gap: int) -> KindHit | None:
    """The first match of the kind's patterns in one sentence, or None.

    A match is rejected when a negation sits between its halves or just before it (except the
    not-a-person family, whose negation is the disclosure), or when a word between them shows the
    self-reference is about something else ("I'm sorry...", "I'm putting you through to...", "a
    recording of...").
    """
    words = folded_words(sentence)
    joined = " ".join(words)
    blockers = _GAP_BLOCKERS if kind is DisclosureKind.AI_DISCLOSURE else _OTHER_THING
    for pattern, negatable in _patterns(kind, max_gap):
        for match in pattern.finditer(joined):
            gap = match.group("gap").split()
            if any(w in blockers or (w.endswith("ing") and blockers is _GAP_BLOCKERS) for w in gap):
                continue
            first = joined.count(" ", 0, match.start())
            last = joined.count(" ", 0, match.start("term"))
            if negatable and negated(words, first, last):
                continue
            return KindHit(match.group(0).strip())
    return None


ELSEWHERE = re.compile(
    r"\b(?:website|web|online|app|chat|whatsapp|portal)(?:'s)? (?:\w+ )?"
    r"(?:virtual|ai|digital|automated|chat) ?(?:assistant|agent|bot)\b"
    r"|\brecorded (?:from|at|in|during|on) (?:your|the|our|a|an) (?:earlier|previous|last|prior|first)\b"
    r"|\b(?:record|film|take) (?:a|the|your|some) (?:video|photo|picture|reading|clip|voice note)"
)
"""Sentences whose near-verbatim phrasing names something else: another channel's assistant ("our website's
virtual assistant"), notes recorded on an earlier call, a video the caller should record."""


def affirmed_phrase(phrase: str, sentence: str, *, min_similarity: float) -> PhraseHit | None:
    """A configured phrasing found near-verbatim in a sentence, unless a negation the phrase lacks is in it.

    "This call may be recorded" must not be met by "We don't record these calls", which shares its
    content words.
    """
    hit = find_phrase(phrase, sentence, min_similarity=min_similarity)
    if hit is None or ELSEWHERE.search(sentence.lower()):
        return None
    own = set(folded_words(phrase))
    if any(w in NEGATIONS and w not in own for w in folded_words(sentence)):
        return None
    return hit


def find_disclosure(
    call: Call,
    kind: DisclosureKind,
    phrases: Sequence[str],
    *,
    max_gap: int,
    min_similarity: float,
    by_agent_turn: int | None,
    agent_turn_numbers: Mapping[int, int],
) -> dict[str, JsonValue]:
    """Where the agent first made a disclosure of ``kind`` (or said one of ``phrases``), as evidence.

    Only the agent's turns are searched, sentence by sentence, so a caller asking "is this a bot?" or
    quoting a notice never meets a requirement.
    """
    for turn in turns_of(call, [Role.AGENT]):
        for sentence in split_sentences(turn.text):
            via: dict[str, JsonValue] | None = None
            pattern_hit = find_kind(kind, sentence.text, max_gap=max_gap)
            if pattern_hit is not None:
                via = {"via": "pattern", "matched": pattern_hit.matched}
            else:
                for phrase in phrases:
                    hit = affirmed_phrase(phrase, sentence.text, min_similarity=min_similarity)
                    if hit is not None:
                        via = {
                            "via": "phrase",
                            "phrase": phrase,
                            "matched": hit.window,
                            "similarity": hit.similarity,
                        }
                        break
            if via is None:
                continue
            said_at = agent_turn_numbers.get(turn.index)
            late = by_agent_turn is not None and (said_at is None or said_at > by_agent_turn)
            return {
                "kind": kind.value,
                "found": True,
                "turn_index": turn.index,
                "agent_turn": said_at,
                "start_s": turn.start_s,
                "late": late,
                "sentence": quote(sentence.text),
                **via,
            }
    return {"kind": kind.value, "found": False}
