"""The say-do action taxonomy: what support, booking, banking, retail, travel, healthcare, telecom and
utilities agents report doing, and which tool calls would back each report.

A claim is recognised by its verb (and, for verbs that only say "something was made", by its object
noun), not by a listed phrase: "I've reconnected your line" is a claim because "reconnect" is in the
taxonomy, whatever the rest of the sentence says. Tool calls are read with the same vocabulary, split
into tokens (``create_booking``, ``bookAppointment``, ``issue-refund``), so a claim is backed by a tool
whose name says the same action, or a related one (a reschedule is backed by an update of the booking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "ACTIONS",
    "READ_ONLY",
    "ActionSpec",
    "VerbSense",
    "action_names",
    "backing_actions",
    "noun_actions",
    "past_forms",
    "tool_actions",
    "tool_tokens",
    "ing_senses",
    "verb_senses",
]


@dataclass(frozen=True)
class ActionSpec:
    """One action: the verbs that claim it, the nouns that name it, and the actions whose tools back it.

    ``verbs`` are base forms; a verb followed by ``+particle`` needs that word later in the clause
    ("take+off"). ``makers`` are verbs that only say something was made or done ("issued", "placed",
    "opened"): the object noun decides the action, and this one is the fallback when no noun does.
    ``nouns`` name the action or its object (in a claim's object or subject, or a tool's name).
    ``also`` lists actions whose tools back this one too.
    """

    name: str
    verbs: tuple[str, ...]
    nouns: tuple[str, ...] = ()
    makers: tuple[str, ...] = ()
    also: tuple[str, ...] = ()


def _spec(name: str, verbs: str, nouns: str = "", makers: str = "", also: str = "") -> ActionSpec:
    return ActionSpec(
        name, tuple(verbs.split()), tuple(nouns.split()), tuple(makers.split()), tuple(also.split())
    )


ACTIONS: tuple[ActionSpec, ...] = (
    _spec(
        "book",
        "book reserve schedule earmark put+aside set+aside",
        "booking reservation appointment appt slot visit consultation viewing session calendar table lesson "
        "class course trial tour treatment groom grooming fitting installation boarding stay",
        makers="arrange",
        also="reschedule pause order",
    ),
    _spec("reschedule", "reschedule rebook postpone", "rescheduling", also="book update"),
    _spec("cancel", "cancel terminate void withdraw delete", "cancellation termination", also="remove close"),
    _spec("close", "close resolve", "closure", also="cancel update"),
    _spec(
        "refund",
        "refund reimburse",
        "refund reimbursement chargeback funds",
        also="credit return",
    ),
    _spec("credit", "credit compensate", "credit compensation goodwill adjustment", also="refund waive"),
    _spec("waive", "waive reverse write+off", "waiver reversal writeoff", also="credit refund remove update"),
    _spec(
        "payment",
        "pay charge bill debit collect top+up",
        "payment charge deposit instalment installment topup transaction invoice billing checkout",
    ),
    _spec(
        "discount",
        "discount",
        "discount voucher promo coupon promotion offer pricematch",
        also="credit update",
    ),
    _spec(
        "send",
        "send email text message mail resend share post",
        "link email sms text message receipt letter notification",
        also="notify",
    ),
    _spec("notify", "notify alert", "notification alert reminder", also="send"),
    _spec(
        "transfer",
        "transfer connect forward put+through hand+over",
        "transfer handoff handover route queue",
        also="escalate",
    ),
    _spec("escalate", "escalate refer", "escalation referral supervisor priority", also="transfer ticket"),
    _spec(
        "update",
        "update change amend correct modify edit switch swap save move redirect reroute divert",
        "update change preference preferences setting settings profile details",
        makers="set",
        also="reschedule assign",
    ),
    _spec(
        "add",
        "add include enrol enroll register subscribe sign+up opt+in waitlist",
        "waitlist enrolment enrollment registration subscription",
        also="update book",
    ),
    _spec(
        "remove", "remove drop unsubscribe opt+out take+off unlink detach", "removal", also="update cancel"
    ),
    _spec(
        "ticket",
        "lodge",
        "ticket case complaint claim report request incident fault dispute enquiry inquiry investigation",
        makers="open log file raise submit",
        also="escalate",
    ),
    _spec("callback", "", "callback", also="book ticket"),
    _spec(
        "reset",
        "reset regenerate rekey",
        "password pin passcode credential credentials",
        also="update unlock",
    ),
    _spec(
        "unlock",
        "unlock unblock unfreeze unsuspend restore reinstate reconnect reopen",
        "",
        also="reset activate update",
    ),
    _spec(
        "block",
        "block freeze lock suspend disable deactivate disconnect bar stop",
        "",
        also="cancel update pause",
    ),
    _spec(
        "activate",
        "activate enable provision",
        "activation pack bundle addon boost feature",
        also="update add",
    ),
    _spec(
        "order",
        "order reorder buy purchase replace print",
        "order purchase replacement cart basket card print",
        makers="place",
        also="dispatch",
    ),
    _spec(
        "dispatch",
        "ship dispatch deliver send+out",
        "shipment delivery dispatch courier engineer technician",
        also="order book",
    ),
    _spec("return", "return exchange", "return returns exchange rma", also="refund order"),
    _spec("verify", "verify authenticate validate", "verification identity authentication kyc otp"),
    _spec(
        "renew",
        "renew extend repeat refill roll+over",
        "renewal extension repeat refill prescription",
        also="update order",
    ),
    _spec("upgrade", "upgrade downgrade bump+up", "upgrade downgrade plan tariff", also="update"),
    _spec("pause", "pause hold defer skip", "pause", also="update block"),
    _spec("limit", "increase decrease lower reduce", "limit", also="update"),
    _spec("note", "note record annotate document", "note notes comment memo", also="update"),
    _spec("assign", "assign allocate", "seat seating allocation", also="update book"),
    _spec(
        "approve",
        "approve authorise authorize accept grant",
        "approval authorisation authorization",
        also="update",
    ),
)
"""The built-in taxonomy. Verbs with ``makers`` defaults: "set" (update), "arrange" (book), "open",
"log", "file", "raise", "submit" (ticket) and "place" (order) when no object noun names an action."""

GENERIC_MAKERS = frozenset(
    "make create issue process apply put take confirm complete do sort start "
    "initiate generate finalise finalize action organise organize handle request release".split()
)
"""Verbs that name no action of their own ("I've processed the refund"): the object noun decides."""

READ_ONLY = frozenset(
    "get lookup look find search check fetch list read query retrieve view show status "
    "describe count estimate quote calculate availability available".split()
)
"""Tool-name words of calls that read rather than act: such a call backs no claim."""

_IRREGULAR = {
    "send": ("sent",), "pay": ("paid",), "make": ("made",), "put": ("put",), "set": ("set",),
    "take": ("took", "taken"), "get": ("got", "gotten"), "freeze": ("froze", "frozen"),
    "unfreeze": ("unfroze", "unfrozen"), "reset": ("reset",), "hold": ("held",), "bar": ("barred",),
    "do": ("did", "done"), "write": ("wrote", "written"), "buy": ("bought",), "hand": ("handed",),
    "resend": ("resent",), "grant": ("granted",), "lodge": ("lodged",), "rebook": ("rebooked",),
    "sign": ("signed",), "opt": ("opted",), "top": ("topped",), "refer": ("referred",),
    "transfer": ("transferred",), "enrol": ("enrolled",), "cancel": ("cancelled", "canceled"),
    "stop": ("stopped",), "drop": ("dropped",), "ship": ("shipped",), "submit": ("submitted",),
    "log": ("logged",), "plan": ("planned",), "text": ("texted",), "email": ("emailed",),
    "bump": ("bumped",), "swap": ("swapped",), "roll": ("rolled",),
}  # fmt: skip


def past_forms(base: str) -> tuple[str, ...]:
    """The past tense and participle of a base verb ("reset" → reset, "apply" → applied)."""
    if base in _IRREGULAR:
        return _IRREGULAR[base]
    if base.endswith("e"):
        return (base + "d",)
    if base.endswith("y") and base[-2:-1] not in tuple("aeiou"):
        return (base[:-1] + "ied",)
    return (base + "ed",)


@dataclass(frozen=True)
class VerbSense:
    """What one past form can mean: an action (None for a generic maker), a particle it needs, and
    whether its object noun may decide the action instead."""

    action: str | None
    particle: str | None
    maker: bool


@lru_cache(maxsize=1)
def _lexicon() -> tuple[dict[str, list[VerbSense]], dict[str, list[VerbSense]], dict[str, list[str]]]:
    past: dict[str, list[VerbSense]] = {}
    base: dict[str, list[VerbSense]] = {}
    nouns: dict[str, list[str]] = {}

    def put(verb: str, sense_action: str | None, maker: bool) -> None:
        word, _, particle = verb.partition("+")
        sense = VerbSense(sense_action, particle or None, maker)
        base.setdefault(word, []).append(sense)
        for form in past_forms(word):
            past.setdefault(form, []).append(sense)

    for spec in ACTIONS:
        for verb in spec.verbs:
            put(verb, spec.name, False)
        for verb in spec.makers:
            put(verb, spec.name, True)
        for noun in spec.nouns:
            nouns.setdefault(noun, []).append(spec.name)
    for verb in GENERIC_MAKERS:
        put(verb, None, True)
    return past, base, nouns


def verb_senses(word: str, *, past: bool = True) -> list[VerbSense]:
    """The senses of a past form (``past``) or base form of a verb; empty when it is not in the taxonomy.

    A verb with the prefix "re" that is not listed means its stem again ("reactivated", "reissued",
    "reapplied"), so the prefix needs no entries of its own.
    """
    table = _lexicon()[0] if past else _lexicon()[1]
    found = table.get(word, [])
    if not found and word.startswith("re") and len(word) > 6:
        found = table.get(word[2:], [])
    return found


def ing_senses(word: str) -> list[VerbSense]:
    """The senses of a present participle ("transferring", "sending"): actions under way."""
    if not word.endswith("ing") or len(word) < 6:
        return []
    stem = word[:-3]
    for base in (stem, stem + "e", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem):
        senses = verb_senses(base, past=False)
        if senses:
            return senses
    return []


def noun_actions(words: Iterable[str]) -> list[str]:
    """Actions named by nouns among ``words`` (singular or plural), in order of first mention."""
    table = _lexicon()[2]
    out: list[str] = []
    for said in words:
        word = said.split("'")[0]
        for candidate in (word, word[:-1] if word.endswith("s") else word):
            for action in table.get(candidate, []):
                if action not in out:
                    out.append(action)
    return out


def action_names() -> list[str]:
    """Every action of the taxonomy."""
    return [spec.name for spec in ACTIONS]


_SPECS = {spec.name: spec for spec in ACTIONS}


def backing_actions(actions: Iterable[str]) -> frozenset[str]:
    """The claimed actions and those whose tools also back them (one step of ``also``)."""
    out = set(actions)
    for action in list(out):
        spec = _SPECS.get(action)
        if spec is not None:
            out.update(spec.also)
    return frozenset(out)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[^A-Za-z0-9]+")


@lru_cache(maxsize=1024)
def tool_tokens(name: str) -> tuple[str, ...]:
    """A tool name split into lower-case words: ``bookAppointment`` and ``book-appointment`` alike."""
    return tuple(part.lower() for part in _CAMEL.split(name) if part)


def _strip(word: str) -> str:
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


_WRITE_METHODS = frozenset({"post", "put", "patch"})
"""HTTP methods a tool named after its route starts with ("POST /v2/bookings"); GET reads, DELETE cancels."""
_ROUTE_WORDS = frozenset({"api", "v1", "v2", "v3", "v4", "rest", "http", "https"})


def tool_actions(name: str, argument_keys: Sequence[str] = ()) -> frozenset[str]:
    """What a tool call does, read from its name (and argument keys when the name says nothing).

    A specific verb in the name decides ("cancel_appointment" cancels, whatever it cancels); a read-only
    verb ("get_booking") makes it a lookup, which backs no claim; otherwise its nouns ("create_booking")
    and a maker verb's fallback decide.
    """
    words = tuple(w for w in tool_tokens(name) if w not in _ROUTE_WORDS)
    if words and words[0] in _WRITE_METHODS:
        words = words[1:]  # "POST /v2/bookings" creates a booking: the method is no action of its own
    if not words or words[0] in READ_ONLY:
        return frozenset({"lookup"})
    verbs: set[str] = set()
    makers: set[str] = set()
    for word in words:
        for sense in verb_senses(word, past=False):
            if sense.particle is not None and sense.particle not in words:
                continue  # "take_payment" takes, it does not "take off"
            if not sense.maker and sense.action:
                verbs.add(sense.action)
            elif sense.action:
                makers.add(sense.action)
    if verbs:
        return frozenset(verbs)
    if any(word in READ_ONLY for word in words):
        return frozenset({"lookup"})
    found = noun_actions(words) or noun_actions(_strip(word) for word in words)
    if not found:
        found = noun_actions(part for key in argument_keys for part in tool_tokens(key))
    return frozenset(found) if found else frozenset(makers)
