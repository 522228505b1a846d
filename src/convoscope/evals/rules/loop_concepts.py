"""What an agent sentence asks for or does, as a named concept, for ``loop_detection``.

A stuck agent rewords its prompt with other nouns each time ("the address of the property", "the service
address", "where should we send the technician?"; "I can't do that", "that's outside what I can do"), so
shared words cannot tell that two prompts are one. Two small tables name the concepts instead:

* ``SLOT_CONCEPTS``: what a question asks for (an address, a date of birth, the reason for the call);
* ``STATEMENT_ACTS``: what a statement does (refuse, report a system down, report something pending).

Each concept lists phrasings. A phrasing is a few words that must occur in that order in the sentence,
at most ``MAX_GAP`` words apart, compared on light stems with contractions opened ("can't" is "can not"),
so "when born" covers "when were you born" and "when was the patient born". A word written ``!word``
excludes the concept from any sentence holding that word ("how help" with "!else" is the reason for the
call, but "how else can I help?" is an offer of more help). When a phrasing's words lie inside a longer
phrasing of another concept ("address" inside "email address"), only the longer one counts. Users extend
both tables through the metric's parameters; the tables are deliberately small and general (what agents
on phone lines ask for and say), not a list of sentences.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ._sentences import ASK_OPENERS, light_stem, phrase_words

__all__ = [
    "CONTRAST_GROUPS",
    "MAX_GAP",
    "SLOT_CONCEPTS",
    "STATEMENT_ACTS",
    "ConceptTable",
    "GLOSS",
    "clauses",
    "contrasted",
    "spoken_form",
]

MAX_GAP = 4
"""Words allowed between two consecutive words of a phrasing ("what seems to be the problem")."""

SLOT_CONCEPTS: dict[str, tuple[str, ...]] = {
    "address": (
        "address", "where live", "where property", "property located", "where located", "where send",
        "send technician", "send engineer", "send someone", "location property", "which property",
        "first line",
    ),
    "reference_number": ("reference number", "reference", "ref number", "tax reference"),
    "property_value": (
        "property value", "value property", "property worth", "house worth", "home worth", "worth",
        "sell for", "valuation", "how much property", "how much house", "how much home",
    ),
    "restart": ("restart", "reboot", "turn off on", "switch off on"),
    "indicator_light": (
        "what colour", "which colour", "light doing", "lights doing", "light showing", "lights showing",
        "green or red", "red or green",
    ),
    "onset": (
        "when start", "when begin", "since when", "how long hurt", "how long pain", "how long ache",
        "been hurting", "how long symptom", "when notice", "when first notice",
    ),
    "postcode": ("postcode", "post code", "zip", "zipcode", "postal code"),
    "date_of_birth": ("date birth", "birth date", "birthdate", "birthday", "dob", "born", "d o b"),
    "account_number": (
        "account number", "account no", "number bill", "number statement", "customer number",
        "customer reference", "account reference", "account id", "customer id", "membership number",
        "member id", "member number", "number membership", "membership card", "number customer",
        "number account", "client number", "number client",
    ),
    "reason_for_call": (
        "reason call", "reason calling", "calling about", "call about", "what help", "how help",
        "how assist", "what bring", "what do for", "!else", "!anything", "!other", "!further", "!which",
        "!next", "!something",
    ),
    "problem": (
        "what problem", "what issue", "what wrong", "what going on", "what happen", "what fault",
        "describe problem", "describe issue", "describe fault", "tell problem", "tell issue",
        "explain problem", "explain issue", "what matter",
    ),
    "email": ("email", "e mail", "email address"),
    "phone_number": (
        "phone number", "contact number", "number reach", "number call", "mobile number",
        "telephone number", "callback number", "number contact", "number get hold",
    ),
    "name": (
        "full name", "your name", "name account", "who speak", "who calling", "name please",
        "holder name", "name booking", "what called", "name of", "pet name", "dog name", "cat name",
    ),
    "booking_reference": (
        "booking reference", "booking number", "booking code", "booking id", "confirmation number",
        "confirmation code", "reservation number", "reservation code", "reservation reference", "pnr",
        "number booking", "number reservation", "kode booking",
    ),
    "order_number": ("order number", "order reference", "order id", "order code"),
    "policy_number": ("policy number", "policy reference", "policy id", "number policy"),
    "current_provider": (
        "lender", "mortgage with", "which bank mortgage", "current provider", "current supplier",
        "who supplier", "who provider", "switching from",
    ),
    "registration": (
        "registration", "reg", "number plate", "licence plate", "license plate", "plate number", "matricula",
        "immatriculation", "registreringsnummer", "plat nomor",
    ),
    "preferred_date": (
        "which day", "what day", "which date", "what date", "when like", "when want", "travel date",
        "when depart", "when fly", "when travel", "when leave", "when come",
        "which day suits", "which date want", "arrival date", "when arrive", "check in date",
        "date check in", "checking in", "arriving",
        "!birth", "!born",
    ),
    "card_number": ("card number", "long number card", "number front card"),
    "pin": ("pin", "passcode", "security code", "pin number"),
    "meter_reading": ("meter reading", "read meter", "reading meter", "meter read"),
}  # fmt: skip
"""Slots agents ask for, each with the ways it is asked. Two questions that name one of these ask for
the same thing, whatever their other words; two that name different ones ask for different things."""

STATEMENT_ACTS: dict[str, tuple[str, ...]] = {
    "refusal": (
        "can not", "not able", "unable", "not allow", "not permit", "no way", "not possible",
        "not something", "outside what", "beyond what", "wish could", "not position", "will not able",
        "not authorise", "not authorize", "impossible", "not possible", "no puedo", "no podemos",
        "no es posible", "kan inte", "ne peux", "pas possible", "nicht moglich", "tidak bisa", "tidak dapat",
        "not allowed", "won't be able", "nie moge", "nie mozemy", "nie ma mozliwosci", "niemozliwe",
        "niet mogelijk", "kan niet", "nao posso", "nao podemos", "nao e possivel", "yapamam", "yapamiyoruz",
        "mumkun degil", "no se puede", "ne pouvons", "nicht weiterhelfen", "kann nicht",
    ),
    "system_down": (
        "system down", "systems down", "server down", "site down", "app down", "service down", "unavailable",
        "outage", "not work", "not respond", "technical difficult", "technical issue", "technical problem",
        "trouble connect", "problem connect", "issue connect", "not connect", "not load", "offline",
        "maintenance", "not available", "still down", "having trouble", "having problem", "having issue",
        "system is down", "caido", "no funciona", "fuera servicio", "ausgefallen", "storung", "gestort",
        "hors service", "점검", "장애", "technical issues", "technical problems", "technical difficulties",
        "having issues", "having problems", "fault area", "area fault", "known fault", "known issue",
        "engineers still", "still work on", "still not work", "ongoing", "funktioniert nicht",
        "geht nicht", "storing", "werkt niet", "awaria", "nie dziala", "calismiyor", "ariza",
        "fora do ar", "problemas tecnicos", "nao funciona", "ne fonctionne", "ne marche",
    ),
    "pending": (
        "still process", "being process", "under review", "pending", "still review", "being review",
        "in progress", "still wait", "awaiting", "no update", "not yet", "being look", "not been approve",
        "still showing", "handlaggning", "behandlas", "pendiente", "tramite", "bearbeitung", "en cours",
        "en attente", "처리", "검토", "still with", "no decision", "no outcome", "no news", "not heard back",
        "wait hear back", "not come back", "not back yet", "being assess", "being assessed", "still assessed",
        "still with underwriters", "still process",
        "still work on", "rozpatryw", "czekamy", "w toku", "in behandeling", "em analise", "sedang diproses",
        "inceleniyor", "beklemede", "wird bearbeitet", "aun no", "todavia no",
    ),
    "checking": (
        "let check", "let look", "let see", "checking", "look into", "please hold", "bear with",
        "one moment", "just moment", "hold on", "hold line", "please hold", "transfer you", "connect you",
        "on hold", "one sec", "just sec", "one second", "just second", "more moment", "un instant",
        "petit instant", "patienter", "je verifie", "chwileczke", "moment prosze", "een moment",
        "um momento", "bir dakika", "bir saniye",
        "tunggu", "sebentar", "ogonblick", "un momento", "einen moment", "un instant", "quittez", "잠시만",
    ),
}  # fmt: skip
"""Things agents say that a stuck agent rewords each time: a refusal, a system that is down, something
still pending, a "let me check" while nothing comes of it. Two statements doing the same act are the
same unless each names a different object ("I can't raise your limit" and "I can't waive the annual
fee" are two answers, not a loop)."""

CONTRAST_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(light_stem(word) for word in group.split())
    for group in (
        "first last middle maiden surname forename street company business",
        "billing delivery shipping home work service installation",
        "departure depart outbound arrival arrive return inbound",
        "sender sending recipient receiving payee",
        "old new previous current",
        "start end finish",
        "day night",
        "child pupil student parent guardian tutor",
        "dog cat rabbit horse puppy kitten",
        "router computer laptop app television tv phone console",
    )
)
"""Words that tell one slot of a concept from another ("departure date" and "return date" are two
questions about dates): two asks naming different words of one group ask for different things."""


def contrasted(one: frozenset[str], other: frozenset[str]) -> bool:
    """Whether two asks name different words of one contrast group (so different slots)."""
    for group in CONTRAST_GROUPS:
        mine, theirs = one & group, other & group
        if mine and theirs and not mine & theirs:
            return True
    return False


@dataclass(frozen=True)
class _Phrasing:
    concept: str
    words: tuple[str, ...]


class ConceptTable:
    """A table of concepts and phrasings, compiled for matching; ``extra`` adds to or extends ``base``."""

    def __init__(
        self, base: Mapping[str, Sequence[str]], extra: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        merged: dict[str, list[str]] = {name: list(phrasings) for name, phrasings in base.items()}
        for name, phrasings in (extra or {}).items():
            merged.setdefault(name, []).extend(phrasings)
        self._by_first: dict[str, list[_Phrasing]] = {}
        self._excluded: dict[str, frozenset[str]] = {}
        for name, phrasings in merged.items():
            excluded: set[str] = set()
            for phrasing in phrasings:
                raw = [_gloss(_fold_word(w)) for w in phrasing.lower().replace("-", " ").split()]
                raw = [part for w in raw for part in w.split()]
                if len(raw) == 1 and raw[0].startswith("!"):
                    excluded.update(phrase_words((raw[0][1:],)))
                    continue
                words = phrase_words(tuple(raw))
                if words:
                    self._by_first.setdefault(words[0], []).append(_Phrasing(name, words))
            self._excluded[name] = frozenset(excluded)
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}
        self.vocabulary = frozenset(w for found in self._by_first.values() for p in found for w in p.words)
        """Every word of every phrasing: what is left of a sentence without them is what it is about."""

    def concepts(self, words: tuple[str, ...]) -> frozenset[str]:
        """The concepts ``words`` (from :func:`act_words`) name, longer phrasings winning."""
        cached = self._cache.get(words)
        if cached is not None:
            return cached
        present = set(words)
        hits: list[tuple[str, frozenset[int]]] = []
        for start, word in enumerate(words):
            for phrasing in self._by_first.get(word, ()):
                if not set(phrasing.words) <= present or present & self._excluded[phrasing.concept]:
                    continue
                positions = _match_at(words, phrasing.words, start)
                if positions is not None:
                    hits.append((phrasing.concept, positions))
        found = frozenset(
            concept
            for concept, positions in hits
            if not any(other != concept and positions < wider for other, wider in hits)
        )
        if len(self._cache) < 4096:
            self._cache[words] = found
        return found


def _match_at(words: tuple[str, ...], phrasing: tuple[str, ...], start: int) -> frozenset[int] | None:
    """Positions of ``phrasing`` in ``words`` from ``start``, each next word within ``MAX_GAP`` words."""
    positions = [start]
    at = start
    for wanted in phrasing[1:]:
        for step in range(1, MAX_GAP + 2):
            if at + step < len(words) and words[at + step] == wanted:
                at += step
                positions.append(at)
                break
        else:
            return None
    return frozenset(positions)


# --- what was said, in a form the English comparison reads ------------------------------------------

FILLERS = frozenset("um umm uh uhh uhm erm er ehm hmm mm mhm ah eh em ano 음 어 저기".split())
"""Hesitation sounds speech-to-text writes out: no content, and where a run-on turn breaks."""

ASR_CONTRACTIONS: dict[str, str] = {
    "whats": "what's", "cant": "can't", "dont": "don't", "didnt": "didn't", "doesnt": "doesn't",
    "isnt": "isn't", "wasnt": "wasn't", "arent": "aren't", "wont": "won't", "couldnt": "couldn't",
    "wouldnt": "wouldn't", "havent": "haven't", "hasnt": "hasn't", "im": "i'm", "youre": "you're",
    "ive": "i've", "youve": "you've", "thats": "that's", "theres": "there's", "hows": "how's",
    "wheres": "where's", "whos": "who's", "youll": "you'll", "weve": "we've",
}  # fmt: skip
"""Contractions as speech-to-text writes them, without the apostrophe ("whats", "cant")."""

_ILL_BEFORE = frozenset(
    "need just have be check get put send take pass transfer try look see also book connect ask "
    "still first make call".split()
)
"""After these, a bare "ill" is "I'll" ("ill need your postcode"), not "ill" (sick)."""

GLOSS: dict[str, str] = {
    # Indonesian
    "saya": "i", "anda": "you", "kami": "we", "bapak": "sir", "ibu": "madam", "pak": "sir", "bu": "madam",
    "apa": "what", "apakah": "is", "berapa": "what", "kapan": "when", "siapa": "who", "dimana": "where",
    "bagaimana": "how", "boleh": "may", "bisa": "can", "dapat": "can", "minta": "please",
    "mohon": "please", "tolong": "please", "sebutkan": "tell", "maaf": "sorry", "lagi": "again",
    "sekali": "once", "yang": "that", "dan": "and", "atau": "or", "ini": "this", "itu": "that",
    "untuk": "for", "dengan": "with", "dari": "from", "ke": "to", "di": "in", "ya": "yes", "iya": "yes",
    "oke": "okay", "baik": "okay", "sudah": "already", "jadi": "so", "tidak": "not", "belum": "not",
    "masih": "still", "sedang": "currently", "ada": "is", "lain": "else", "bantu": "help",
    "perlu": "need", "butuh": "need", "terima": "thank", "kasih": "thanks", "nya": "the", "dong": "please",
    "sistem": "system", "sistemnya": "system", "nomor": "number", "tanggal": "date", "lahir": "birth",
    "nama": "name", "lengkap": "full", "telepon": "phone", "rekening": "account", "pemesanan": "booking",
    "gangguan": "down", "diproses": "processed", "membatalkan": "cancel", "sekarang": "now",
    "sampai": "until", "hari": "day", "polis": "policy", "polisnya": "policy", "asuransi": "insurance",
    "asuransinya": "insurance", "pesanan": "order", "pembatalan": "cancellation", "dibatalkan": "cancelled",
    "proses": "process", "dibuat": "made", "kue": "cake", "sebentar": "moment",
    # Swedish
    "jag": "i", "du": "you", "ditt": "your", "din": "your", "dina": "your", "er": "your", "ert": "your",
    "vi": "we", "vad": "what", "vilket": "which", "vilken": "which", "vilka": "which", "nar": "when",
    "hur": "how", "kan": "can", "kunde": "could", "fa": "get", "vill": "want",
    "skulle": "would", "forlat": "sorry", "ursakta": "sorry", "tyvarr": "unfortunately", "igen": "again",
    "och": "and", "eller": "or", "att": "to", "av": "of", "med": "with", "till": "to", "som": "that",
    "det": "it", "ett": "a", "en": "a", "ar": "is", "har": "have", "inte": "not", "fortfarande": "still",
    "nagot": "anything", "nagonting": "anything", "mer": "else", "annat": "else", "hjalpa": "help",
    "behover": "need", "kollat": "checked", "datum": "date", "dag": "day", "namn": "name",
    "kundnummer": "customer number", "medlemsnummer": "membership number", "bokningsnummer": "booking number",
    "personnummer": "id number", "kundnumret": "customer number", "bokningsnumret": "booking number",
    "arende": "case", "arendet": "case", "passar": "suits",
    "ja": "yes", "nej": "no", "tack": "thanks", "sa": "so",
    # Spanish
    "usted": "you", "su": "your", "sus": "your", "mi": "my", "el": "the", "la": "the", "los": "the",
    "las": "the", "un": "a", "una": "a", "del": "of", "que": "that", "cual": "which", "cuando": "when",
    "donde": "where", "quien": "who", "como": "how", "puede": "can", "podria": "could", "necesito": "i need",
    "necesitamos": "we need", "perdone": "sorry", "perdon": "sorry", "disculpe": "sorry", "siento": "sorry",
    "gracias": "thanks", "favor": "please", "por": "by", "para": "for", "vale": "okay", "pues": "so",
    "otra": "another", "vez": "time", "numero": "number", "cliente": "customer", "poliza": "policy",
    "fecha": "date", "nacimiento": "birth", "nombre": "name", "apellido": "surname", "reserva": "booking",
    "todavia": "still", "aun": "still", "esta": "is", "es": "is", "momento": "moment",
    "paso": "transfer", "agente": "agent", "deletrear": "spell", "dar": "give", "algo": "anything",
    "mas": "else", "ayudar": "help", "dia": "day", "quiere": "want", "y": "and", "o": "or",
    "con": "with", "lo": "it", "le": "the", "me": "me", "de": "of",
    # German
    "ich": "i", "ihr": "your", "ihre": "your", "ihren": "your", "ihnen": "you", "wir": "we", "wie": "how",
    "wann": "when", "wo": "where", "welche": "which", "welcher": "which", "welches": "which",
    "konnen": "can", "konnten": "could", "kann": "can", "bitte": "please", "leider": "unfortunately",
    "noch": "still", "nochmal": "again", "mal": "once", "brauche": "need", "brauchen": "need",
    "nicht": "not", "und": "and", "oder": "or", "der": "the", "das": "the", "den": "the", "dem": "the",
    "des": "of", "ein": "a", "eine": "a", "einen": "a", "mir": "me", "fur": "for", "mit": "with",
    "lautet": "is", "nennen": "tell", "sagen": "tell", "geben": "give", "gesagt": "said", "kennzeichen":
    "registration", "geburtsdatum": "date of birth", "kundennummer": "customer number",
    "buchungsnummer": "booking number", "vertrag": "contract", "kundigen": "cancel", "etwas": "anything",
    "sonst": "else", "helfen": "help", "guten": "good", "hier": "here", "ist": "is",
    "sind": "are", "sie": "you", "funktioniert": "work", "funktionieren": "work", "technische": "technical",
    # French
    "vous": "you", "votre": "your", "vos": "your", "je": "i", "nous": "we", "notre": "our", "quel": "which",
    "quelle": "which", "quels": "which", "quelles": "which", "quand": "when",
    "pouvez": "can", "pourriez": "could", "pardon": "sorry", "desole": "sorry", "desolee": "sorry",
    "merci": "thanks", "plait": "please", "svp": "please", "encore": "still", "toujours": "still",
    "actuellement": "currently", "systeme": "system", "panne": "down", "nom": "name", "enfant": "child",
    "dossier": "case", "et": "and", "ou": "or", "les": "the", "une": "a", "est": "is", "sont": "are",
    "pas": "not", "ne": "not", "pour": "for", "avec": "with", "autre": "else", "chose": "anything",
    "aider": "help", "besoin": "need", "il": "it", "ce": "this", "moment": "moment",
    # Portuguese
    "qual": "which", "sua": "your", "seu": "your", "voce": "you", "apolice": "policy", "preciso": "i need",
    "precisamos": "we need", "pode": "can", "informar": "tell", "sistema": "system", "continua": "still",
    "ainda": "still", "desculpe": "sorry", "nao": "not", "chegada": "arrival", "saida": "departure",
    "quantos": "how many", "hospedes": "guests", "obrigado": "thanks", "obrigada": "thanks",
    "problemas": "problems", "tecnicos": "technical", "posso": "can",
    # Dutch
    "ik": "i", "wij": "we", "uw": "your", "wat": "what", "welke": "which", "wanneer": "when",
    "hoe": "how", "kunt": "can", "mag": "may", "nog": "still", "helaas": "unfortunately", "niet": "not",
    "doen": "do", "mogelijk": "possible", "dat": "that", "daar": "there", "helpen": "help", "mee": "with",
    "herhalen": "repeat", "naam": "name", "hond": "dog", "klantnummer": "customer number",
    "geboortedatum": "date of birth", "alstublieft": "please",
    # Polish
    "nie": "not", "moge": "can", "mozemy": "can", "niestety": "unfortunately", "przykro": "sorry",
    "tego": "that", "zrobic": "do", "nadal": "still", "wciaz": "still", "jest": "is", "jak": "how",
    "jaka": "what", "jaki": "what", "ktory": "which", "pana": "your", "pani": "your",
    "urodzenia": "birth", "numer": "number", "rezerwacji": "booking", "rezerwacja": "booking",
    "anulowac": "cancel", "anulowania": "cancel", "prosze": "please", "dzien": "day", "pasuje": "suits",
    "nazwisko": "surname", "imie": "name",
    # Turkish
    "sistemimiz": "system", "sistemde": "system", "sistemi": "system", "hala": "still",
    "maalesef": "unfortunately", "numaraniz": "number", "numaranizi": "number", "numarasi": "number",
    "nedir": "what", "tekrar": "again", "lutfen": "please", "plakasi": "registration",
    "plaka": "registration",
    # Korean (a word with its particle cut off)
    "죄송합니다": "sorry", "죄송하지만": "sorry", "죄송한데": "sorry", "고객님": "sir", "다시": "again",
    "말씀해": "tell", "주시겠어": "please", "주세": "please", "알려주시겠어": "please tell",
    "알려주세": "please tell", "부탁드립니다": "please", "혹시": "perhaps", "아직": "still",
    "지금도": "still",
    "현재": "currently", "지금": "now", "시스템": "system", "예약": "booking", "번호": "number",
    "성함": "name", "이름": "name", "생년월일": "date of birth", "연락처": "phone number",
    "전화번호": "phone number", "날짜": "date", "더": "else", "도와드릴": "help", "있을까": "anything",
    "불가능합니다": "not possible", "말씀드린": "as said", "말씀드리지만": "as said", "대로": "as",
    "기다려": "waiting", "주셔서": "", "감사합니다": "thanks", "고맙습니다": "thanks", "네": "yes",
}  # fmt: skip
"""Common words of the other languages callers use (Indonesian, Swedish, Spanish, German, French,
Korean), glossed into the English words the comparison already reads: question words, pronouns,
courtesy, "still", "not", "again", and the nouns of the slots agents ask for. Not a translation: only
what tells what a sentence asks for and whether it says something new, so the stopwords, courtesy,
question openers and concept tables work unchanged. Words written the same as an English word of
another meaning ("son", "die", "war") are left out."""

PHRASE_GLOSS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\b{pattern}\b", re.IGNORECASE), replacement)
    for pattern, replacement in (
        ("mohon maaf", "maaf"), ("terima kasih", "thanks"), ("por favor", "please"), ("lo siento", "sorry"),
        ("s'il vous pla[iî]t", "please"), ("tack så mycket", "thanks"), ("vielen dank", "thanks"),
        ("wie gesagt", "as said"), ("como le dije", "as said"), ("comme je disais", "as said"),
        ("alumn[oa]", "student"),
        ("fora do ar", "down"), ("kusura bakmay[ıi]n", "sorry"), ("przykro mi", "sorry"),
        ("poliçe", "policy"),
        ("por gentileza", "please"),
    )
)  # fmt: skip
"""Phrases of other languages read as one English word before the words are glossed ("mohon maaf" is
an apology, not a request)."""

_KOREAN_PARTICLES = (
    "에서는", "으로는", "에게서", "께서는", "이라고", "에서", "으로", "에게", "께서", "한테", "까지", "부터",
    "처럼", "보다", "이나", "이랑", "은", "는", "이", "가", "을", "를", "에", "의", "도", "로", "와", "과",
    "요",
)  # fmt: skip
_KOREAN_ASK_ENDINGS = ("시겠어요", "주세요", "까요", "나요", "가요", "세요", "니까", "습니까")
_UNDECOMPOSED = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe"})
"""Letters NFKD does not take apart into a Latin letter and an accent (Turkish "ı", Polish "ł")."""
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_SENTENCE_END = re.compile(r"(?<=[.!?;:。？！])\s+|\n+")
_ELISION = re.compile(r"\b(?:qu|[ldjnmtsc])'(?=\w)")


def has_hangul(text: str) -> bool:
    """Whether ``text`` holds Korean: its words carry particles and count differently."""
    return bool(_HANGUL.search(text))


def _fold_word(word: str) -> str:
    """One word, lower case: Latin letters without accents ("número" is "numero", "ß" is "ss"), a Korean
    word without its particle, glossed (:data:`GLOSS`) when it is a word the comparison should read, and
    otherwise, for Korean, an ASCII stand-in the tokeniser keeps."""
    word = word.lower().replace("ß", "ss").replace("\u2019", "'").translate(_UNDECOMPOSED)
    if _HANGUL.search(word):
        digits = "".join(ch for ch in word if ch.isdigit())
        bare = "".join(ch for ch in word if _HANGUL.match(ch))
        if digits:
            return f"{digits} {_fold_word(bare)}".strip()
        for particle in _KOREAN_PARTICLES:
            if bare.endswith(particle) and len(bare) > len(particle):
                bare = bare[: -len(particle)]
                break
        if bare in GLOSS:
            return GLOSS[bare]
        return f"k{zlib.crc32(bare.encode()) % 100000:05d}"
    decomposed = unicodedata.normalize("NFKD", word)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain


def _gloss(word: str) -> str:
    return GLOSS.get(word, word)


_WORDISH = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]", re.UNICODE)


@lru_cache(maxsize=4096)
def spoken_form(text: str) -> str:
    """``text`` as the comparison reads it: accents folded, other languages' common words glossed,
    Korean words stood in for, hesitation sounds dropped, speech-to-text contractions restored ("whats",
    "ill need"), and a question mark added to an unpunctuated clause that opens as a question or asks in
    Korean, so "ok and whats the reading on it" asks."""
    text = _ELISION.sub("", text.replace("\u2019", "'").replace("¿", " ").replace("¡", " "))
    for pattern, replacement in PHRASE_GLOSS:
        text = pattern.sub(replacement, text)
    out: list[str] = []
    raw = _WORDISH.findall(text)
    for i, token in enumerate(raw):
        if not token[0].isalnum():
            out.append(token)
            continue
        folded = _fold_word(token)
        if folded in FILLERS or token.lower() in FILLERS:
            continue
        nxt = raw[i + 1].lower() if i + 1 < len(raw) else ""
        if folded == "ill" and nxt in _ILL_BEFORE:
            folded = "i'll"
        folded = ASR_CONTRACTIONS.get(folded, folded)
        glossed = _gloss(folded)
        if glossed:
            out.append(glossed)
    said = " ".join(out)
    said = re.sub(r"\s+([^\w\s'])", r"\1", said)
    bare = said.rstrip()
    if bare and bare[-1] not in ".!?;:":
        words = [w for w in re.findall(r"[a-z']+", bare) if w not in _LEADING_WORDS]
        korean_ask = has_hangul(text) and text.rstrip().endswith(_KOREAN_ASK_ENDINGS)
        if korean_ask or _opens_question(words):
            said = bare + "?"
    return said


_LEADING_WORDS = frozenset(
    "okay ok so and now right great thanks alright then yeah yes well sorry but lovely perfect brilliant "
    "cool cheers sure fine good hi hello hey just".split()
)
_PRONOUNS = frozenset("i you we they he she it the your his her their this that".split())
_WH_WORDS = frozenset("what which where when how who whose".split())
_AUX_WORDS = frozenset(
    "is are was were do does did can could would will should shall may might has have had what's".split()
)
_PREPOSITIONS = frozenset("since for from until by about".split())


def _opens_question(words: list[str]) -> bool:
    """Whether an unpunctuated clause's words (leading discourse words set aside) open as a question:
    an opener ("whats ..."), a need ("tell me ..."), "have you ...", or "since when ..."."""
    if not words:
        return False
    second = words[1] if len(words) > 1 else ""
    return (
        words[0] in ASK_OPENERS
        or words[0] in _NEED_OPENERS
        or (words[0] in ("have", "has") and second in _PRONOUNS)
        or (words[0] in _PREPOSITIONS and second in _WH_WORDS)
        or _late_question(words)
    )


def _late_question(words: list[str]) -> bool:
    """A question word a few words in, followed by its verb, with no subject before it ("just a ballpark
    how much would it sell for"; not "let me see what is there")."""
    for at, word in enumerate(words[:4]):
        if word in _PRONOUNS or word in ("let", "me"):
            return False
        if word in _WH_WORDS:
            return bool(_AUX_WORDS & set(words[at + 1 : at + 3]))
    return False


_NEED_OPENERS = frozenset("tell give spell confirm".split())

_BREAK_BEFORE: tuple[tuple[str, ...], ...] = tuple(
    tuple(phrase.split())
    for phrase in (
        "can i", "can you", "could i", "could you", "would you", "will you", "may i", "what is", "what's",
        "whats", "which", "where is", "where's", "when is", "when would", "how can", "how would", "do you",
        "did you", "are you", "is there", "is it", "ill need", "i'll need", "i need", "i just need",
        "we need", "i'm going to need", "so", "okay", "ok", "right", "yeah", "and then", "because",
        "but", "please hold", "bear with", "let me", "what can", "how may", "have you", "has it",
        "since when",
    )
)  # fmt: skip
"""Where an unpunctuated run-on turn breaks into clauses: before a question or need opens, and at a
discourse marker ("so", "okay", "but")."""

MIN_RUNON_WORDS = 8
"""An unpunctuated stretch at least this long is a run-on turn, split into clauses."""
MIN_CLAUSE_WORDS = 2
"""A clause break leaves at least this many words on its left."""


_NO_BREAK_AFTER = (["to"], ["i"], ["we"], ["they"])
"""A break opener just after these continues the clause ("we have you down for ...")."""


def _open_wh(current: list[str]) -> bool:
    """Whether the clause so far opens with a question word and has no verb yet ("and what days"), so
    an opener next ("would you like") completes it rather than starting a new clause."""
    bare = [re.sub(r"[^\w']", "", w.lower()) for w in current]
    while bare and bare[0] in _LEADING_WORDS:
        bare = bare[1:]
    at = next((i for i, w in enumerate(bare[:2]) if w in _WH_WORDS), None)
    return at is not None and not _AUX_WORDS & set(bare[at + 1 :])


def clauses(text: str) -> list[str]:
    """The sentences of a turn as said, each unpunctuated run-on stretch (speech-to-text output: "okay
    thanks for calling um can i get your date of birth please") split into clauses at hesitation sounds,
    before a question or need opens, and at discourse markers. Punctuated sentences stay whole."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(text.strip()):
        words = piece.split()
        if not words:
            continue
        if len(words) < MIN_RUNON_WORDS or re.search(r"[,.;:!?]\s", piece + " "):
            out.append(piece)
            continue
        bare = [re.sub(r"[^\w']", "", w.lower()) for w in words]
        current: list[str] = []
        for i, word in enumerate(words):
            if bare[i] in FILLERS:
                if current:
                    out.append(" ".join(current))
                current = []
                continue
            opens = any(tuple(bare[i : i + len(p)]) == p for p in _BREAK_BEFORE)
            if opens and bare[i - 1 : i] not in _NO_BREAK_AFTER and not _open_wh(current):
                # a conjunction or marker just before the break opens the new clause ("and whats ...")
                lead = len(current)
                while lead > 0 and re.sub(r"[^\w']", "", current[lead - 1].lower()) in _LEADING_WORDS:
                    lead -= 1
                if lead >= MIN_CLAUSE_WORDS:
                    out.append(" ".join(current[:lead]))
                    current = current[lead:]
            current.append(word)
        if current:
            out.append(" ".join(current))
    return out
