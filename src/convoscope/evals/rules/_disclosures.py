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

Text is folded to lower-case ASCII first (accents dropped; Greek keeps its letters without tonos), so
patterns need one spelling per word; words a speech recogniser split ("vir tual") or misspelt ("recordid",
"youre") are repaired, and fillers ("um", "uh") are ordinary gap words. The same families cover Swedish,
Indonesian, Vietnamese, Greek and romanised Hindi ("main ek virtual assistant hoon", "yeh call record ki
ja sakti hai"). Hindi in Devanagari, Arabic and Korean are matched by shape on the folded text instead
(:data:`_SCRIPT_RULES`), with their negations ("नहीं", "لست", "아닙니다") cancelling.
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
    "sentence_texts",
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
_WORD = re.compile(r"[a-z0-9α-ω]+(?:'[a-z]+)?")
"""Latin (folded to ASCII) and Greek (tonos dropped) words; other scripts go to :data:`_SCRIPT_RULES`."""
_UNDECOMPOSED = str.maketrans({"\u0111": "d", "\u00df": "ss", "\u00f8": "o", "\u00e6": "ae", "\u0142": "l"})
"""Letters NFKD leaves whole: Vietnamese d-bar ("\u0111i\u1ec7n"), German sharp s, Nordic o-slash and ae."""

_ASR_SPLITS = {
    ("vir", "tual"): "virtual",
    ("virt", "ual"): "virtual",
    ("auto", "mated"): "automated",
    ("auto", "matic"): "automatic",
    ("ro", "bot"): "robot",
    ("assis", "tant"): "assistant",
    ("re", "corded"): "recorded",
    ("re", "cording"): "recording",
    ("moni", "tored"): "monitored",
    ("chat", "bot"): "chatbot",
    ("robo", "tic"): "robotic",
}
"""Words a speech recogniser split in two ("vir tual assistant"), joined back."""
_ASR_SPELLINGS = dict(
    pair.split(":")
    for pair in (
        "youre:you're im:i'm virtul:virtual vertual:virtual virtural:virtual virtuel:virtuel "
        "automted:automated automatted:automated autometed:automated otomated:automated "
        "asistant:assistant assisstant:assistant asisstant:assistant assistan:assistant "
        "artifical:artificial artficial:artificial recordid:recorded recordit:recorded recored:recorded "
        "recordered:recorded recordet:recorded monitered:monitored moniterd:monitored monitared:monitored "
        "monitord:monitored"
    ).split()
)
"""Misspellings a speech recogniser writes for the words the kinds need ("recordid", "asistant")."""


def _repair(words: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(words):
        joined = _ASR_SPLITS.get((words[i], words[i + 1])) if i + 1 < len(words) else None
        if joined is not None:
            out.append(joined)
            i += 2
            continue
        out.append(_ASR_SPELLINGS.get(words[i], words[i]))
        i += 1
    return tuple(out)


@lru_cache(maxsize=TEXT_CACHE)
def folded_words(text: str) -> tuple[str, ...]:
    """Lower-case ASCII (and Greek) words of ``text``: accents dropped, curly apostrophes straightened,
    elisions split, words a speech recogniser split or misspelt repaired."""
    lowered = _INTERJECTION.sub(" ", text.replace("\u2019", "'").lower()).translate(_UNDECOMPOSED)
    decomposed = unicodedata.normalize("NFKD", lowered)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _repair(_WORD.findall(_ELISION.sub(r"\1 ", ascii_text)))


def _alt(words: str) -> str:
    """A regex alternation of space-separated options; ``_`` stands for a space inside one option."""
    options = sorted((w.replace("_", " ") for w in words.split()), key=len, reverse=True)
    return "(?:" + "|".join(re.escape(o) for o in options) + ")"


NEGATIONS = frozenset(
    "not no never don't doesn't didn't won't isn't aren't wasn't cannot can't dont doesnt didnt wont isnt "
    "arent wasnt cant ne pas nicht kein keine keinen keiner nie nao nem non nunca jamais mai ni "
    "inte ingen inget aldrig tidak tak bukan khong chang δεν μην "
    "οχι".split()
)
"""Words that cancel a disclosure between its two halves or just before it (English, Spanish, French,
German, Portuguese, Italian, Swedish, Indonesian, Vietnamese, Greek)."""
POST_NEGATIONS = frozenset("nahi nahin nahee nehi".split())
"""Romanised Hindi puts the negation after what it negates ("main robot nahi hoon")."""

_SELF_WORDS = _alt(
    "i'm i_am i_m this_is it's it_is you're_speaking_with you're_speaking_to you're_talking_to "
    "you're_talking_with you_are_speaking_with you_are_speaking_to you_are_talking_to you_are_talking_with "
    "you're_chatting_with you've_reached you_have_reached you're_through_to you're_connected_to "
    "call_is_handled_by call_is_answered_by call_is_being_handled_by line_is_handled_by line_is_answered_by "
    "soy esta_hablando_con estas_hablando_con esta_usted_hablando_con le_atiende te_atiende habla_con "
    "je_suis je_ne_suis vous_parlez_a vous_parlez_avec tu_parles_a tu_parles_avec c_est "
    "ich_bin sie_sprechen_mit du_sprichst_mit hier_spricht das_ist hier_ist "
    "sou esta_falando_com voce_esta_falando_com fala_com aqui_e "
    "sono sta_parlando_con stai_parlando_con parla_con parli_con qui_e questo_e "
    "jag_ar du_pratar_med du_talar_med ni_pratar_med ni_talar_med det_har_ar detta_ar "
    "saya saya_adalah aku ini_adalah anda_berbicara_dengan anda_sedang_berbicara_dengan "
    "anda_terhubung_dengan anda_sedang_terhubung_dengan "
    "toi_la em_la minh_la day_la dang_noi_chuyen_voi dang_tro_chuyen_voi dang_duoc_ho_tro_boi "
    "ειμαι μιλατε_με "
    "μιλας_με εδω_ειναι"
)
_SELF = (
    rf"(?:{_SELF_WORDS}"
    r"|(?:you're|your|you are|you re) (?:speaking|talking|chatting|connected|through) (?:with|to))"
)
"""Declarative ways an agent refers to itself or tells the caller whom they are speaking to ("your
speaking with" is how a speech recogniser often writes "you're speaking with")."""

_STANDALONE = _alt(
    "ai a_i artificial_intelligence bot chatbot chat_bot voicebot robot robotic machine computer software "
    "language_model llm voice_assistant "
    "ia inteligencia_artificial maquina "
    "intelligence_artificielle "
    "ki kunstliche_intelligenz roboter maschine sprachassistent sprachassistentin "
    "robo "
    "intelligenza_artificiale macchina "
    "artificiell_intelligens maskin dator datorrost datorgenererad "
    "kecerdasan_buatan mesin "
    "tro_ly_ao tro_ly_so tro_ly_tu_dong tong_dai_vien_ao tong_dai_tu_dong he_thong_tu_dong nhan_vien_ao "
    "tri_tue_nhan_tao nguoi_may giong_noi_tu_dong may_tra_loi_tu_dong "
    "ρομποτ μποτ τεχνητη_νοημοσυνη τεχνητης_νοημοσυνης"
)
"""Terms that say AI on their own."""

_AI_ADJECTIVE = _alt(
    "virtual digital automated automatic synthetic "
    "automatico automatica automatizado automatizada "
    "virtuel virtuelle automatise automatisee numerique "
    "virtueller virtuelle virtuellen virtuelles digitaler digitale digitalen automatisierter automatisierte "
    "automatisierten automatisiertes automatischer automatische automatischen "
    "virtuale digitale automatizzato automatizzata "
    "virtuell virtuella virtuellt digitala digitalt automatisk automatiska automatiskt automatiserad "
    "automatiserade automatiserat "
    "otomatis "
    "ψηφιακος ψηφιακη ψηφιακο ψηφιακου ψηφιακης εικονικος εικονικη εικονικο εικονικου εικονικης "
    "αυτοματοποιημενος αυτοματοποιημενη αυτοματοποιημενο αυτοματοποιημενου αυτοματοποιημενης "
    "αυτοματος αυτοματη αυτοματο"
)
"""Adjectives that make an agent noun an AI ("virtual assistant", "asistente virtual")."""

_AGENT_NOUN = _alt(
    "assistant agent system voice receptionist attendant operator representative rep service line helper "
    "host concierge "
    "asistente agente sistema voz recepcionista operador operadora servicio "
    "assistante systeme voix standardiste "
    "assistent assistenten assistentin agenten agentin stimme "
    "assistente atendente "
    "voce operatore operatrice sahayak sahayika "
    "assistenten systemet rost rosten receptionisten telefonist telefonisten tjanst "
    "asisten agen sistem suara resepsionis petugas layanan "
    "βοηθος βοηθο βοηθου βοηθη συστημα φωνη πρακτορας πρακτορα υπαλληλος υπαλληλο τηλεφωνητης τηλεφωνητη"
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
    "going calling looking checking transferring connecting sending putting passing "
    "ke untuk menghubungkan menyambungkan mengalihkan akan sedang lihat melihat cek periksa memeriksa coba "
    "till".split()
)
"""Words that show the self-reference is about something else ("I'm sorry, the AI...", "I'm sending you to
the virtual assistant"), so no AI term after them is the agent's own description."""

_CALL_NOUN = _alt(
    "call calls conversation conversations line chat session phone_call "
    "llamada llamadas conversacion conversaciones "
    "appel appels communication communications "
    "gesprach gesprache anruf anrufe telefonat telefonate baatchit batchit "
    "chamada chamadas ligacao ligacoes conversa conversas "
    "chiamata chiamate telefonata telefonate conversazione conversazioni "
    "samtal samtalet samtalen panggilan percakapan pembicaraan cuoc_goi cuoc_tro_chuyen cuoc_hoi_thoai "
    "κληση κλησεις συνομιλια συνομιλιες τηλεφωνημα τηλεφωνηματα συνδιαλεξη"
)
_RECORDED = _alt(
    "recorded monitored taped "
    "grabada grabadas grabado grabados "
    "enregistre enregistree enregistres enregistrees "
    "aufgezeichnet mitgeschnitten "
    "gravada gravadas gravado gravados "
    "registrata registrate registrato registrati "
    "monitoreada monitoreadas monitoreado monitoreados monitorizada monitorizado supervisada supervisado "
    "surveille surveillee uberwacht monitorada monitorado monitorata monitorato "
    "spelas_in inspelat inspelad inspelade inspelas avlyssnas overvakas "
    "direkam dipantau dimonitor ghi_am ghi_lai giam_sat "
    "καταγραφεται καταγραφονται καταγραφει καταγραφουν ηχογραφειται ηχογραφουνται ηχογραφηθει "
    "παρακολουθειται παρακολουθουνται"
)
_RECORDING = _alt(
    "record recording records monitor monitoring tape taping "
    "grabamos grabando graba "
    "enregistrons enregistre enregistrer "
    "zeichnen aufzeichnen "
    "gravamos gravando grava "
    "registriamo registrando registra "
    "spelar_in merekam memantau ghi_am καταγραφουμε ηχογραφουμε"
)
_ABOUT = frozenset({"about"})
"""A word that shows the record verb is about something else ("a recording about our rules")."""
_PAST = frozenset("previous earlier last prior yesterday former pichli pichle".split())
"""Words that put the recorded call in the past ("a recording of your previous call"): no notice."""
_CALLED = frozenset("you me him her them us back".split())
"""After "call", a word that makes it the verb ("I'll call you back once I've recorded the fault")."""
_HINDI_AUX = _alt("ki kiya kiye ho hoti hota hogi hoga ja jati jata jayegi kar karte karti")
"""Romanised Hindi light verbs after "record" ("call record ki ja sakti hai", "record ho rahi hai")."""


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


class _Family(StrEnum):
    """How a pattern's gap is checked."""

    AI = "ai"
    """Self-reference, then an AI term: a blocker word in the gap means it is about something else."""
    AI_NOT_HUMAN = "ai_not_human"
    """The agent saying it is not a person: its negation is the disclosure."""
    CALL_FIRST = "call_first"
    """The call, then recorded: "of"/"about" in the gap names something else."""
    VERB_FIRST = "verb_first"
    """A record verb, then the call: "of" is allowed only just before the call ("a recording of this
    call"), "about" never."""


@lru_cache(maxsize=16)
def _patterns(kind: DisclosureKind, max_gap: int) -> tuple[tuple[re.Pattern[str], _Family], ...]:
    """The kind's patterns, each with the family that says how its gap and negations are checked."""
    gap = rf"(?P<gap>(?: \S+){{0,{max_gap}}}?)"
    if kind is DisclosureKind.AI_DISCLOSURE:
        return (
            (_compile(rf"(?P<self>{_SELF}){gap} (?P<term>{_NOT_HUMAN})"), _Family.AI_NOT_HUMAN),
            (_compile(rf"(?P<self>){gap}(?P<term>{_NOT_HUMAN_BEFORE})"), _Family.AI_NOT_HUMAN),
            (_compile(rf"(?P<self>{_SELF}){gap} (?P<term>{_AI_TERM})"), _Family.AI),
            # romanised Hindi: "main (ek) virtual assistant hoon", "aap ek AI agent se baat kar rahe hain"
            (
                _compile(rf"(?P<self>main|mai){gap} (?P<term>{_AI_TERM})(?: \S+){{0,2}} (?:hoon|hun|hu|hoo)"),
                _Family.AI,
            ),
            (_compile(rf"(?P<self>aap|ap){gap} (?P<term>{_AI_TERM})(?: \S+)? se (?:baat|bat)"), _Family.AI),
        )
    if kind is DisclosureKind.RECORDING_NOTICE:
        return (
            (_compile(rf"(?P<self>{_CALL_NOUN}){gap} (?P<term>{_RECORDED})"), _Family.CALL_FIRST),
            (_compile(rf"(?P<self>{_RECORDING}){gap} (?P<term>{_CALL_NOUN})"), _Family.VERB_FIRST),
            (
                _compile(
                    rf"(?P<self>{_CALL_NOUN}){gap} (?P<term>record|recording|rikord|monitor) {_HINDI_AUX}"
                ),
                _Family.CALL_FIRST,
            ),
        )
    return ()


def _gap_blocked(family: _Family, gap: list[str]) -> bool:
    """Whether a word in the gap shows the match is about something else."""
    if family is _Family.AI:
        return any(w in _GAP_BLOCKERS or w.endswith("ing") for w in gap)
    if family is _Family.CALL_FIRST:
        called = bool(gap) and gap[0] in _CALLED
        return called or any(w in _ABOUT or w == "of" for w in gap)
    if family is _Family.VERB_FIRST:
        return any(w in _ABOUT or (w == "of" and i < len(gap) - 2) for i, w in enumerate(gap))
    return False


def _rejected(family: _Family, words: tuple[str, ...], first: int, term: int, end: int) -> bool:
    """Whether a negation cancels the match, or (for a recording) it names a call in the past."""
    if any(w in POST_NEGATIONS for w in words[max(0, first - 1) : end + 2]):
        return True
    if family is _Family.AI_NOT_HUMAN:
        return False
    if negated(words, first, term):
        return True
    if family in (_Family.CALL_FIRST, _Family.VERB_FIRST):
        return any(w in _PAST for w in words[max(0, first - 1) : end + 2])
    return False


def find_kind(kind: DisclosureKind, sentence: str, *, max_gap: int) -> KindHit | None:
    """The first match of the kind's patterns in one sentence, or None.

    A match is rejected when a negation sits between its halves or just before it (except the
    not-a-person family, whose negation is the disclosure; a romanised Hindi negation may also follow),
    when a word between them shows the self-reference is about something else ("I'm sorry...", "I'm
    putting you through to...", "a recording about..."), or when the recorded call is a past one ("the
    recording of your previous call"). Matches may overlap, so a rejected one does not hide a later one
    ("this is Brightsmile calling, I'm an automated assistant"). Text in Devanagari, Arabic or Hangul
    goes to :func:`find_script`.
    """
    words = folded_words(sentence)
    joined = " ".join(words)
    for pattern, family in _patterns(kind, max_gap):
        pos = 0
        while (match := pattern.search(joined, pos)) is not None:
            pos = match.start() + 1
            if _gap_blocked(family, match.group("gap").split()):
                continue
            first = joined.count(" ", 0, match.start())
            term = joined.count(" ", 0, match.start("term"))
            end = joined.count(" ", 0, match.end())
            if _rejected(family, words, first, term, end):
                continue
            return KindHit(match.group(0).strip())
    return find_script(kind, sentence)


_SCRIPT_MARKS = re.compile("[\u064b-\u065f\u0670\u0640\u093c]")
"""Arabic short vowels, tatweel and the Devanagari nukta: written or not, the word is the same."""
_SCRIPT_LETTERS = str.maketrans(
    {"\u0623": "\u0627", "\u0625": "\u0627", "\u0622": "\u0627", "\u0629": "\u0647", "\u0901": "\u0902"}
)
"""Arabic alef with hamza or madda to bare alef, ta marbuta to ha; Devanagari candrabindu to anusvara."""


def _script_letters(text: str) -> str:
    return _SCRIPT_MARKS.sub("", unicodedata.normalize("NFC", text)).translate(_SCRIPT_LETTERS)


def _script_fold(text: str) -> str:
    """Text in scripts without word-by-word folding (Devanagari, Arabic, Hangul), spelled one way."""
    return _script_letters(text.lower())


@dataclass(frozen=True)
class _ScriptRule:
    """A disclosure shape in one script: where it is, what cancels it, what shows it names something else."""

    found: re.Pattern[str]
    cancel: re.Pattern[str]
    """A negation in the match or just around it."""
    elsewhere: re.Pattern[str]
    """A word in or around the match that shows it names another thing (a transfer, an app, a past call)."""


def _rule(found: str, cancel: str, elsewhere: str) -> _ScriptRule:
    """A rule from patterns written as the words are spelled (their letters folded as the text's are)."""
    return _ScriptRule(
        re.compile(_script_letters(found)),
        re.compile(_script_letters(cancel)),
        re.compile(_script_letters(elsewhere)),
    )


_HI_AI_TERM = (
    r"(?:एआई|ए\.?\s?आई|(?<![a-z])a\.?\s?i\.?(?![a-z])|रोबोट|बॉट|बोट|चैटबॉट|कृत्रिम\s*बुद्धि|आर्टिफिशियल"
    r"|(?:वर्चुअल|डिजिटल|स्वचालित|ऑटोमेटेड|ऑटोमैटिक|आभासी|कंप्यूटर|कम्प्यूटर)\s+(?:\S+\s+)?"
    r"(?:असिस्टेंट|सहायक|सहायिका|एजेंट|सिस्टम|आवाज|रिसेप्शनिस्ट|ऑपरेटर|प्रणाली|सेवा))"
)
_KO_AI_TERM = (
    r"(?:(?:가상|자동화된|자동|디지털|컴퓨터|인공\s?지능|ai|에이아이)\s?"
    r"(?:상담원|상담사|비서|어시스턴트|안내원|시스템|직원|봇|음성|에이전트|응답\s?시스템)|인공\s?지능|ai|챗봇|로봇)"
)
_AR_AI_TERM = (
    r"(?:(?:ال)?(?:مساعد|مساعده|وكيل|نظام|موظف|صوت|مجيب|رد)\s+(?:ال)?"
    r"(?:افتراضي|افتراضيه|الي|اليه|رقمي|رقميه|ذكي|ذكيه|مؤتمت|مؤتمته|تلقائي|تلقائيه|الكتروني|الكترونيه)"
    r"|(?:ال)?روبوت|(?:ال)?بوت|(?:ال)?ذكاء\s+(?:ال)?اصطناعي|(?<![a-z])ai(?![a-z]))"
)
_AR_CALL = r"(?:ال)?(?:مكالمه|مكالمات|محادثه|محادثات|اتصال|اتصالات)"
_AR_RECORD = r"(?:مسجل|مسجله|تسجيل|تسجيلها|يسجل|تسجل|نسجل|مراقب|مراقبه|مراقبتها|يراقب|تراقب)"
_AR_NEGATION = r"(?<!\S)(?:لا|لن|لم|غير|ليس|ليست|لست|لسنا|ما|مو|مش)(?!\S)"

_SCRIPT_RULES: dict[DisclosureKind, tuple[_ScriptRule, ...]] = {
    DisclosureKind.AI_DISCLOSURE: (
        # Hindi: "मैं एक वर्चुअल असिस्टेंट हूँ", "आप एक एआई एजेंट से बात कर रहे हैं"
        _rule(
            rf"(?:मैं|मै|यह|ये|आप)[^।.!?]{{0,40}}?{_HI_AI_TERM}[^।.!?]{{0,30}}?(?:हूं|हू|है|हैं|से\s+बात)",
            r"नहीं|नही|(?<!\S)न(?!\S)",
            r"जोड|ट्रांसफर|कनेक्ट|भेज|ऐप|वेबसाइट",
        ),
        # Korean: "저는 AI 상담원입니다", "지금 가상 비서와 통화하고 계십니다"
        _rule(
            rf"{_KO_AI_TERM}\s?(?:입니다|이에요|예요|이며|이고|이자|(?:와|과|랑|이랑)\s?(?:통화|대화)"
            r"|(?:가|이)\s?(?:안내|응대))",
            r"아닙|아니|않",
            r"연결|넘겨|돌려|앱|웹사이트|홈페이지|겠습니까|시겠어요|할까요|원하시",
        ),
        # Arabic: "أنا مساعد افتراضي", "أنت تتحدث مع وكيل آلي"
        _rule(
            r"(?<!\S)(?:انا|معك|تتحدث\s+مع|تتحدثين\s+مع|تتكلم\s+مع|تتحدثون\s+مع|هذا|هذه)(?!\S)"
            rf"[^.،!؟?]{{0,40}}?{_AR_AI_TERM}",
            _AR_NEGATION,
            r"الى|حول|تطبيق|موقع",
        ),
    ),
    DisclosureKind.RECORDING_NOTICE: (
        # Hindi: "यह कॉल रिकॉर्ड की जा सकती है", "कॉल की निगरानी की जाती है"
        _rule(
            r"(?:कॉल|काल|बातचीत|बात-चीत|call)[^।.!?]{0,30}?(?:रिकॉर्ड|रिकार्ड|रेकॉर्ड|record|निगरानी|मॉनिटर)",
            r"नहीं|नही",
            r"पिछली|पिछले|पिछला",
        ),
        # Korean: "이 통화는 녹음됩니다", "통화 내용이 녹음될 수 있습니다"
        _rule(
            r"(?:통화|대화|상담|전화)[^.!?]{0,20}?(?:녹음|녹취|모니터링)",
            r"되지\s?않|하지\s?않|안\s?(?:됩|합|해|돼)|없습",
            r"이전|지난",
        ),
        # Arabic: "هذه المكالمة مسجلة", "قد يتم تسجيل هذه المكالمة"
        _rule(
            rf"{_AR_CALL}[^.،!؟?]{{0,30}}?{_AR_RECORD}|{_AR_RECORD}[^.،!؟?]{{0,20}}?{_AR_CALL}",
            _AR_NEGATION,
            r"السابق|الماضي|الاخير|قراءه",
        ),
    ),
}
"""Per kind, its shapes in Devanagari (Hindi), Hangul (Korean) and Arabic, matched on the folded text
rather than word by word (Korean particles join the noun; Devanagari vowel signs are not letters)."""

_AROUND = (12, 15)
"""Characters before and after a script match searched for a negation or a sign of something else."""


def find_script(kind: DisclosureKind, sentence: str) -> KindHit | None:
    """The first match of the kind's Devanagari, Hangul or Arabic shapes in one sentence, or None."""
    rules = _SCRIPT_RULES.get(kind, ())
    if not rules or sentence.isascii():
        return None
    text = _script_fold(sentence)
    for rule in rules:
        for match in rule.found.finditer(text):
            window = text[max(0, match.start() - _AROUND[0]) : match.end() + _AROUND[1]]
            if rule.cancel.search(window) or rule.elsewhere.search(window):
                continue
            return KindHit(match.group(0).strip())
    return None


ELSEWHERE = re.compile(
    r"\b(?:website|web|online|app|chat|whatsapp|portal)(?:'s)? (?:\w+ )?"
    r"(?:virtual|ai|digital|automated|chat) ?(?:assistant|agent|bot)\b"
    r"|\brecorded (?:from|at|in|during|on) (?:your|the|our|a|an) (?:earlier|previous|last|prior|first)\b"
    r"|\brecording of (?:your|the|our|a|an|that) (?:earlier|previous|last|prior|first)\b"
    r"|\b(?:transferring|transfer|connecting|connect|putting|put|passing|pass|sending|send)(?: you)?"
    r"(?: through| over| back)? to\b"
    r"|\b(?:record|film|take) (?:a|the|your|some) (?:video|photo|picture|reading|clip|voice note)"
)
"""Sentences whose near-verbatim phrasing names something else: another channel's assistant ("our website's
virtual assistant"), notes recorded on (or a recording of) an earlier call, a transfer to the assistant ("I'm
transferring you to our virtual assistant"), a video the caller should record."""


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


_BOUNDARY = re.compile(r"(?<=[.!?;:\u0964\u061f\u3002])\s+|\n+")
"""A sentence ends at terminal punctuation (with the Devanagari danda and the Arabic question mark) and
space."""


def sentence_texts(text: str) -> tuple[str, ...]:
    """The sentences of a turn: as :func:`split_sentences` cuts them, and, where it keeps nothing (text
    with no Latin word, such as Hindi, Arabic, Korean or Greek), the piece itself."""
    out: list[str] = []
    for piece in _BOUNDARY.split(text):
        found = split_sentences(piece)
        if found:
            out.extend(sentence.text for sentence in found)
        elif piece.strip():
            out.append(piece.strip())
    return tuple(out)


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
        for text in sentence_texts(turn.text):
            via: dict[str, JsonValue] | None = None
            pattern_hit = find_kind(kind, text, max_gap=max_gap)
            if pattern_hit is not None:
                via = {"via": "pattern", "matched": pattern_hit.matched}
            else:
                for phrase in phrases:
                    hit = affirmed_phrase(phrase, text, min_similarity=min_similarity)
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
                "sentence": quote(text),
                **via,
            }
    return {"kind": kind.value, "found": False}
