"""Finding the actions an agent reports as done, one claim per action, by grammar rather than phrasing.

A sentence is a claim when a taxonomy verb is in a completed form with the agent as subject ("I've
reconnected", "we just froze", "I went ahead and waived"), in the passive ("your card has been
frozen", "the voucher's been applied", "you're booked"), in the present progressive with the agent as
subject ("I'm transferring you"), or continues such a claim after a conjunction ("... and emailed you the
label"). Compound sentences are split on commas, conjunctions and sentence ends so each action is checked
on its own. Not claims: questions, offers and conditions ("would you like me to", "once I've"), negations
("I couldn't reset"), futures ("I'll send it" is a promise, not a report), the caller's own actions
("you've paid"), instructions ("you can reset it online") and states read from a record ("your refund was
issued on the third"). The one future kept is an immediate transfer ("I'll transfer you now"), which the
caller experiences at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...model.call import Turn
from .saydo_taxonomy import VerbSense, ing_senses, noun_actions, verb_senses

__all__ = ["Claim", "find_claims"]

_SUBJECTS = frozenset({"i", "we", "i've", "we've"})
_ADVERBS = frozenset(
    "just now already successfully also then quickly finally actually both all fully officially since "
    "gone went ahead and managed to".split()
)
"""Words allowed between the subject (or auxiliary) and the verb: "I've just now gone ahead and …"."""
_BE = frozenset({"is", "are", "was", "were", "been"})
_PERFECT = frozenset({"has", "have"})
_STATE = frozenset({"live", "active"})
"""Adjectives that report an activation when said of an add-on with "now" ("the pack is now live")."""
_COMBINING = frozenset({"add", "book"})
"""Actions whose object also names what was done ("booked a callback", "added a credit")."""

NEGATIONS = re.compile(
    r"\b(?:not|n't|never|unable|cannot|can't|couldn't|won't|wasn't|haven't|hasn't|didn't|no longer|"
    r"before|once|as soon as|until|if|when|would you like|do you want|shall i|should i|can i|could i|"
    r"after)\b|\w+n't\b",
    re.IGNORECASE,
)
"""Words that, shortly before a claim, turn it into something else (a negation, condition or offer)."""
REPORTS = re.compile(
    r"\b(?:i can see|i see|i can tell|it looks like|looks like|it shows|shows that|according to|records? "
    r"show|our records|the system says|it says|you said|you mentioned|you told|(?:system|account|record|"
    r"screen|file|history) (?:shows|says)|it's showing|it is showing|showing (?:that|as)|on (?:file|record) "
    r"(?:as|it)|i've got (?:a note|it noted|it on file))\b"
)
"""Phrases that make the rest of a sentence a reading of the record, not something the agent did."""
_PAST_REF = re.compile(
    r"\b(?:yesterday|ago|last|earlier|previously|already|back in|on the \d+(?:st|nd|rd|th)|"
    r"on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|in (?:january|february|march|april|"
    r"may|june|july|august|september|october|november|december|(?:19|20)\d\d))\b"
)
_SENTENCE = re.compile(r"(?:[^.!?;]|[.!?;](?=[^\s.!?;]))+(?:[.!?;]+|$)")
"""A sentence ends at terminal punctuation followed by a space or the end, so an email address or an amount
("anna.k@example.com", "£12.50") stays inside its sentence."""
_CLAUSE = re.compile(r",|(?<!ahead)\s+(?:and then|and also|and|then|plus|but|so|also)\s+|\s[-–—]\s")
_BETWEEN = re.compile(
    r"\bbetween [a-z0-9:.']+(?: [ap]\.?m\.?| o'clock)? and [a-z0-9]|\b(?:hundred|thousand) and [a-z]"
)
"""A time window ("between 8 and 12", "between one pm and three") or an amount in words ("two hundred
and fifty pounds"), kept in one clause."""
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[£$€%]")
_SUBORDINATE = frozenset("once if when whenever after before until unless soon".split())
"""Words that, just before the claim's subject, make it a condition ("as soon as I've verified you")."""
_PERFECT_PAST = re.compile(
    r"\b(?:yesterday|ago|last (?:week|month|year|time)|back in|previously|earlier this)\b"
)
"""Times that make a present-perfect passive a reading of the record ("you've been added ... back in May")."""
_DONE_STATE = re.compile(
    r"\b(?:went|gone|has gone|have gone|is|are|'s|'re) through\b|\bis (?:complete|completed|confirmed|done)\b"
    r"|\b(?:was|is|were|are|has been|have been) "
    r"(?:successful|approved|accepted|processed|complete|completed)\b"
)
"""A thing said to have gone through or succeeded ("your payment went through", "the payment was successful"):
the passive of whatever its noun names."""
_ALL_SET = re.compile(
    r"\b(?:you're|you are|we're|we are|that's|it's|you've been) (?:all )?set(?: (for|with|up))?\b"
)
"""The idiom "you're all set (for Thursday)": a completion; what was done is named by its object."""
_DONE = re.compile(
    r"^(?:ok(?:ay)?,? |great,? |right,? )?(?:done|all done|all sorted|sorted|there you go|there we go)\b"
)
"""A sentence opened by "done": what follows reports the new state as the result of the agent's action."""
_NOW_STATE = re.compile(
    r"^(?:(?:ok(?:ay)?|great|perfect|right|lovely|brilliant|excellent) )?"
    r"(?:your ((?:[a-z]+ ){0,2}?[a-z]+)(?:'s| is| are)|(you're|you are)) now (?!being\b|[a-z]+ing\b)"
    r"(?:(?:on|in|at|set to|with)\b)?"
)
"""A new state the agent announces ("your plan is now premium", "you're now on annual billing"): a report
that something was changed, backed like an update. A reading has no "now" ("your plan is premium")."""
STATE_NOUNS = frozenset(
    "plan tariff package bundle subscription membership tier limit seat address email number phone billing "
    "method preference preferences setting settings contract rate pin password name appointment booking "
    "reservation delivery slot cover policy".split()
)
"""Things a caller can have changed; "your <one of these> is now ..." reports the change."""
_NOW_SKIP = frozenset("eligible able due overdue through free ready available closed open".split())
"""Words after "you're now" that describe the caller's situation, not a change ("you're now eligible")."""
_BARE_DONE = frozenset(
    "done sorted noted added booked confirmed cancelled canceled removed updated changed".split()
)
"""Participles that close a verbless claim ("No onions, noted", "Two pints of milk, added")."""
_ACKNOWLEDGE = frozenset("ok okay right great sure perfect thanks thank alright got it lovely yes no".split())
"""Words that say nothing about what was done ("Okay, noted" is an acknowledgement, not a claim)."""
_TRANSFER_NOW = re.compile(
    r"\b(?:let me|i'll|i will|i'm going to|i am going to) (?:transfer|connect|put) you(?: through)?"
    r"(?: now| right now| to| over)\b|^(?:transferring|connecting|putting) you\b"
)


_BARE_CONTRACTIONS = {
    "ive": "i've", "weve": "we've", "im": "i'm", "thats": "that's", "youre": "you're", "youve": "you've",
    "youll": "you'll", "ill": "i'll", "well": "well", "dont": "don't", "cant": "can't", "didnt": "didn't",
    "couldnt": "couldn't", "wasnt": "wasn't", "isnt": "isn't", "havent": "haven't", "hasnt": "hasn't",
    "wouldnt": "wouldn't", "shouldnt": "shouldn't", "arent": "aren't", "werent": "weren't", "its": "it's",
    "theyve": "they've", "theyre": "they're", "itll": "it'll", "whats": "what's",
}  # fmt: skip
"""Contractions a speech recogniser writes without their apostrophe ("ive cancelled that", "im sending it").
"well" and "its" are left as they are: as often the words themselves."""
_BARE_CONTRACTION = re.compile(
    r"\b(?:" + "|".join(k for k, v in _BARE_CONTRACTIONS.items() if k != v and k != "its") + r")\b"
)


def _apostrophes(text: str) -> str:
    return _BARE_CONTRACTION.sub(lambda m: _BARE_CONTRACTIONS[m.group(0)], text)


_RE_PREFIX = re.compile(r"\bre-(?=[a-z]{3,})")
""""re-issued", "re-keyed": the prefix joined, so the verb is read as "reissued" (its stem again)."""


@dataclass(frozen=True)
class Claim:
    """One action the agent said it took, with the words that name what it acted on."""

    turn_index: int
    action: str
    sentence: str
    """The claim's clause, with the detail-only clauses that follow it in the sentence."""
    actions: frozenset[str] = field(default_factory=frozenset)
    """Every action the claim may stand for ("scheduled a callback": book or callback)."""
    object_words: tuple[str, ...] = ()
    """The words after the verb in its clause, or the passive's subject."""
    form: str = ""
    """How it was recognised: active, passive, progressive, continued, transfer or pattern."""


def _skip_back(words: Sequence[str], j: int) -> int:
    while j >= 0 and words[j] in _ADVERBS:
        j -= 1
    return j


def _agent_subject(words: Sequence[str], j: int) -> bool:
    """Whether ``words[j]``, the word before a verb (adverbs skipped), makes the agent its subject: "I",
    "we", "I've", or "have" after one of them ("I have just booked")."""
    if j < 0:
        return False
    if words[j] in _SUBJECTS:
        return True
    k = _skip_back(words, j - 1)
    return words[j] in _PERFECT and k >= 0 and words[k] in _SUBJECTS


def _senses(words: Sequence[str], i: int, senses: list[VerbSense]) -> list[VerbSense]:
    """The senses whose particle (if any) follows within five words."""
    ahead = set(words[i + 1 : i + 7])
    with_particle = [s for s in senses if s.particle is not None and s.particle in ahead]
    return with_particle or [s for s in senses if s.particle is None]


def _actions(senses: list[VerbSense], words: Sequence[str]) -> list[str]:
    """The claim's actions: the verb's own, else (a maker verb) the first action its object names."""
    specific = [s.action for s in senses if not s.maker and s.action]
    nouns = noun_actions(words)
    if specific:
        extra = nouns[:1] if set(specific) & _COMBINING else []
        return list(dict.fromkeys(specific + extra))
    fallback = [s.action for s in senses if s.maker and s.action]
    return nouns[:1] or fallback[:1] or ["other"]


def _content(words: Sequence[str]) -> list[str]:
    return [w for w in words if w.isalpha() and len(w) > 2 and w not in _PRONOUNS]


_PRONOUNS = frozenset("you your that this it them those these the for with all everything".split())


def _idiom_claim(words: list[str], after_done: bool) -> tuple[list[str], list[str], str] | None:
    """Claims made without a taxonomy verb: "you're all set for Thursday", "your payment went through", and
    after "done" a new state ("Done, your seat is now 14C"). The nouns around name the action."""
    joined = " ".join(words)
    found = _ALL_SET.search(joined)
    if found is not None:
        after = joined[found.end() :].split()
        nouns = noun_actions(after)
        if nouns:
            return nouns[:1], after, "passive"
        if found.group(1) == "for" and after:
            return ["book"], after, "passive"  # "you're all set for Tuesday at ten": a booking
        return None
    found = _DONE_STATE.search(joined)
    if (
        found is not None
        and not _PAST_REF.search(joined)
        and not (_SUBORDINATE | {"whether", "see", "check"}) & set(joined[: found.start()].split())
    ):
        before = joined[: found.start()].split()
        nouns = noun_actions(before)
        if nouns:
            return nouns[:1], before + joined[found.end() :].split(), "passive"
    state = _NOW_STATE.match(joined)
    if state is not None:
        rest = joined[state.end() :].split()
        subject = (state.group(1) or "").split()
        if (
            rest
            and rest[0] not in _NOW_SKIP
            and not verb_senses(rest[0])
            and (state.group(2) or (subject and subject[-1] in STATE_NOUNS))
        ):
            return (noun_actions(subject) or ["update"])[:1], subject + rest, "passive"
    if after_done and ("is" in words or "are" in words) and "now" in words:
        k = words.index("is") if "is" in words else words.index("are")
        if words[k + 1 : k + 2] == ["now"] and not verb_senses(words[k + 2] if k + 2 < len(words) else ""):
            nouns = noun_actions(words[:k])
            return (nouns[:1] or ["update"]), words[:k] + words[k + 2 :], "passive"
    return None


def _clause_claim(
    words: list[str], continued: bool, around: Sequence[str] = (), after_done: bool = False
) -> tuple[list[str], list[str], str] | None:
    """(actions, object words, form) of the first claim in a clause's words, or None. ``around`` are the
    words of the whole sentence: a maker verb whose clause names nothing ("that's been taken care of, the
    refund is on its way") takes its action from them."""
    idiom = _idiom_claim(words, after_done)
    if idiom is not None:
        return idiom
    if _ALL_SET.search(" ".join(words)):
        # A bare "you're all set" (a name or nothing after it) is a closing formula: it names no action of
        # its own, and "set" is not the agent updating anything; the action is the one reported beside it.
        return None
    for i, word in enumerate(words):
        senses = verb_senses(word)
        if senses:
            j = _skip_back(words, i - 1)
            prev = words[j] if j >= 0 else ""
            form = ""
            if _agent_subject(words, j):
                form = "active"
            elif prev == "you" and j >= 2 and words[j - 1] in ("got", "have") and words[j - 2] in _SUBJECTS:
                form = "active"  # "I've got you booked in"
            elif prev == "you" and j >= 1 and words[j - 1] in ("that's", "thats"):
                form = "passive"  # "that's you booked in for Wednesday"
            elif (
                "that's" in words[max(0, i - 7) : i] and not set(words[words.index("that's") : i]) & _SUBJECTS
            ):
                form = "passive"  # "that's a table for six booked", "that's the standing order moved"
            elif prev in _BE or prev.endswith(("'s", "'re")):
                if prev == "been":
                    k = _skip_back(words, j - 1)  # "has now been upgraded"
                    if k < 0 or not (words[k] in _PERFECT or words[k].endswith(("'s", "'ve"))):
                        continue
                form = "passive"
            elif continued and j < 0:
                form = "continued"
            if not form:
                continue
            chosen = _senses(words, i, senses)
            if not chosen:
                continue
            if _SUBORDINATE & set(words[max(0, i - 6) : i]):
                return None  # "as soon as I've verified you", "once it's been approved": a condition
            if form == "passive":
                if word == "taken" and prev in ("is", "are", "was", "were"):
                    continue  # "Thursday was taken": a slot's state, not something done
                subject = words[: max(j, 0)] + ([prev.rsplit("'", 1)[0]] if "'" in prev else [])
                objects = subject + words[i + 1 :]
                if prev in ("was", "were") and _PAST_REF.search(" ".join(words)):
                    return None
                if prev == "been" and _PERFECT_PAST.search(" ".join(words)):
                    return None
            else:
                objects = words[i + 1 :]
            actions = _actions(chosen, objects)
            if actions == ["other"] and around and all(s.maker for s in chosen):
                actions = noun_actions(around)[:1] or actions
            if actions == ["other"] and (form == "passive" or not _content(objects)):
                continue  # "it's taken", "I've done that": no action named
            return actions, objects, form
        if word in _STATE and i >= 2 and "now" in words:
            nouns = noun_actions(words[:i])
            if nouns:
                return nouns[:1], words[:i], "passive"
        ing = ing_senses(word)
        if ing:
            j = _skip_back(words, i - 1)
            prev = words[j] if j >= 0 else ""
            if prev in ("i'm", "we're") or (prev == "am" and j > 0 and words[j - 1] == "i"):
                chosen = _senses(words, i, ing)
                if chosen:
                    return _actions(chosen, words[i + 1 :]), words[i + 1 :], "progressive"
    return _unlisted_claim(words)


NOT_ACTIONS = frozenset(
    "checked looked noticed understood heard explained mentioned tried attempted wondered realised "
    "realized learned gathered pulled brought received reviewed searched waited talked called phoned "
    "asked answered passed needed wanted used enjoyed loved missed lost apologised apologized appreciated "
    "worked happened started finished ended managed decided discussed considered compared calculated "
    "estimated quoted priced located identified traced tracked monitored contacted informed advised "
    "recommended suggested offered flagged assumed expected hoped guessed figured covered listed spotted "
    "confirmed verified noted seemed appeared changed tested inspected assessed investigated explored "
    "followed viewed opened accessed loaded".split()
)
"""Completed verbs that report looking, saying or finding out rather than acting on the caller's behalf."""


def _unlisted_claim(words: list[str]) -> tuple[list[str], list[str], str] | None:
    """A first-person report of a completed action whose verb the taxonomy lacks ("I've ported your
    number", "we've re-keyed the lock"): an action of its own ("other"), backed by a tool call whose
    name or arguments share a word with its object. Verbs of looking, saying and finding out are not
    actions (:data:`NOT_ACTIONS`)."""
    for i, word in enumerate(words):
        if not (word.endswith("ed") and len(word) > 4) or word in NOT_ACTIONS or verb_senses(word):
            continue
        if word.startswith("re") and word[2:] in NOT_ACTIONS:
            continue  # "rechecked"
        if not _agent_subject(words, _skip_back(words, i - 1)):
            continue
        if _SUBORDINATE & set(words[max(0, i - 6) : i]):
            return None
        objects = words[i + 1 :]
        if _content(objects):
            return ["other"], objects, "active"
    return None


def _verbless_claim(words: list[str], before: list[list[str]]) -> tuple[list[str], list[str], str] | None:
    """A claim closed by a bare participle after what it acted on: "No onions, noted", "Two pints of milk,
    added", "Late checkout at one, all sorted". The words before name the action (or the participle does);
    an acknowledgement alone ("Okay, noted") names nothing and is no claim."""
    lead = [w for w in words if w not in ("all", "that's", "thats", "and")]
    if not lead or lead[0] not in _BARE_DONE or len(lead) > 5:
        return None
    own = [s.action for s in verb_senses(lead[0]) if s.action and not s.maker]
    named = [w for clause in before for w in clause if w not in _ACKNOWLEDGE and w not in _PRONOUNS]
    if own and not before and words[0] in ("all", "that's", "thats"):
        return own, lead[1:], "passive"  # "All booked, we'll see you Tuesday": the participle names it
    if not named or not any(w.isalpha() and len(w) > 2 for w in named):
        return None
    actions = own or noun_actions(named)[:1] or ["update"]
    return actions, named + lead[1:], "passive"


def find_claims(turns: Sequence[Turn], negation_window_chars: int = 30) -> list[Claim]:
    """Every claim in the agent turns: one per clause that reports a taxonomy action as done."""
    claims: list[Claim] = []
    for turn in turns:
        text = _apostrophes(_RE_PREFIX.sub("re", turn.text.replace("\u2019", "'").lower()))
        for match in _SENTENCE.finditer(text):
            sentence = match.group(0).strip()
            if not sentence or sentence.endswith("?") or REPORTS.search(sentence):
                continue
            body = sentence.rstrip(".!;")
            pieces: list[tuple[int, str]] = []
            start = 0
            kept = [m.span() for m in _BETWEEN.finditer(body)]
            for sep in _CLAUSE.finditer(body):
                if any(a <= sep.start() < b for a, b in kept):
                    continue  # "between 8 and 12" is one detail, not two clauses
                pieces.append((start, body[start : sep.start()]))
                start = sep.end()
            pieces.append((start, body[start:]))
            found: list[tuple[Claim, list[str]]] = []
            continued = False
            around = _WORD.findall(body)
            after_done = _DONE.match(body) is not None
            for n, (offset, clause) in enumerate(pieces):
                words = _WORD.findall(clause)
                hit = _clause_claim(words, continued, around, after_done)
                if hit is None and not found and n in (0, len(pieces) - 1):
                    hit = _verbless_claim(words, [_WORD.findall(c) for _, c in pieces[:n]])
                    if hit is not None:
                        offset, clause = 0, body  # the claim is the whole sentence
                if hit is None:
                    if found:
                        found[-1][1].append(clause.strip())
                    if _TRANSFER_NOW.search(clause.strip()) and not _negated(
                        body, offset, clause, negation_window_chars
                    ):
                        claim = Claim(
                            turn.index,
                            "transfer",
                            clause.strip(),
                            frozenset({"transfer"}),
                            tuple(words),
                            "transfer",
                        )
                        found.append((claim, [clause.strip()]))
                        continued = False
                        continue
                    continued = continued and not words
                    continue
                actions, objects, form = hit
                if _negated(body, offset, clause, negation_window_chars):
                    continued = False
                    continue
                claim = Claim(
                    turn.index, actions[0], clause.strip(), frozenset(actions), tuple(objects), form
                )
                found.append((claim, [clause.strip()]))
                continued = form in ("active", "continued")
            for claim, parts in found:
                claims.append(
                    Claim(
                        claim.turn_index,
                        claim.action,
                        ", ".join(p for p in parts if p),
                        claim.actions,
                        claim.object_words,
                        claim.form,
                    )
                )
    return claims


_REASSURANCE = re.compile(
    r"\b(?:don't|do not) worry\b|\bno (?:worries|problem|trouble)\b|\bnot (?:a problem|to worry)\b|"
    r"\bnever mind\b|\bno doubt\b"
)
"""Phrases with a negation word that negate nothing ("don't worry, I've frozen the card")."""
_FAILURE = re.compile(
    r"\b(?:failed|unavailable|declined|rejected|unsuccessful|(?:didn't|did not) go through|no luck|"
    r"(?:an|with an|showing an|gave an|gives an|threw an|got an) error)\b|\b(?:nothing|nobody|no one|none)"
    r"(?:'s| has| have| was| were| is)? (?:been )?\w+ed\b"
)
"""A clause that reports a failure ("the booking came back as unavailable", "nothing's been charged"):
an honest report, whatever verb it uses."""


_CONDITION = re.compile(r"\b(?:once|if|when|as soon as|after|until|unless)\b")


def _negated(body: str, offset: int, clause: str, window: int) -> bool:
    """A negation, condition or offer in the clause before its verb, or just before the clause, or a
    clause that reports a failure, or the consequence of a condition earlier in the sentence ("once the
    direct debit clears ... and then you're paused")."""
    if offset and re.search(r"\bthen\W*$", body[:offset]) and _CONDITION.search(body[:offset]):
        return True
    before = body[max(0, offset - window) : offset] if offset else ""
    before = _REASSURANCE.sub(lambda m: " " * len(m.group(0)), before)
    clause = _REASSURANCE.sub(lambda m: " " * len(m.group(0)), clause)
    if _FAILURE.search(clause):
        return True
    lead = clause.lstrip()
    if NEGATIONS.search(lead.split(" ", 1)[0] if lead else ""):
        return True
    # the clause's own words up to its verb are few: search the whole clause start
    head = lead[: max(window, 1)]
    if NEGATIONS.search(head):
        return True
    return bool(before and re.search(r"\b(?:once|if|when|before|until|as soon as|after)\b", before))
