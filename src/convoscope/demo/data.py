"""Demo calls: a believable week of two voice agents, generated deterministically.

``convoscope demo`` and the docs need data that looks like production so every page and chart has
something to show: a week of calls in business-hour waves, two agents on two platforms, conversations
that read like the domain, tool calls that sometimes fail, costs and token counts at real prices, end
reasons in realistic proportions, and two stories for a dashboard to find:

* ``dental-receptionist`` v4 (deployed two days before ``now``, on a bigger model) answers noticeably
  slower than v3 did, with a heavier tail;
* the order API behind ``order-status`` had a four-hour incident four days before ``now``: lookups time
  out and more calls end in transfers and errors.

A few calls carry the real stereo recordings shipped in ``recordings/`` (user left, agent right), with
turns that match the audio; the manifest written by ``scripts/make-demo-audio`` says where each turn is.
Everything is drawn from ``random.Random(seed)`` and placed relative to ``now``, so the same
``(now, seed)`` always gives the same calls.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from pydantic import JsonValue

from ..errors import NotFound
from ..model import (
    Call,
    CallSource,
    CostLine,
    Direction,
    EndReason,
    LatencyStats,
    Recording,
    Role,
    ToolCall,
    Turn,
    Usage,
    Word,
)

__all__ = [
    "DemoRecording",
    "DemoToolCall",
    "DemoTurn",
    "demo_calls",
    "demo_recordings",
    "recording_bytes",
]

_RECORDINGS_DIR = "recordings"
_MANIFEST = "manifest.json"

DENTAL = "dental-receptionist"
ORDERS = "order-status"

# The business's clock (US Eastern, standard time): call volume follows its office hours.
_LOCAL_OFFSET = timedelta(hours=-5)

_RAW_END_REASONS: dict[CallSource, dict[EndReason, str]] = {
    CallSource.VAPI: {
        EndReason.USER_HANGUP: "customer-ended-call",
        EndReason.AGENT_HANGUP: "assistant-ended-call",
        EndReason.TRANSFER: "assistant-forwarded-call",
        EndReason.VOICEMAIL: "voicemail",
        EndReason.SILENCE_TIMEOUT: "silence-timed-out",
        EndReason.ERROR: "pipeline-error-openai-llm-failed",
        EndReason.MAX_DURATION: "exceeded-max-duration",
    },
    CallSource.RETELL: {
        EndReason.USER_HANGUP: "user_hangup",
        EndReason.AGENT_HANGUP: "agent_hangup",
        EndReason.TRANSFER: "call_transfer",
        EndReason.VOICEMAIL: "voicemail_reached",
        EndReason.SILENCE_TIMEOUT: "inactivity",
        EndReason.ERROR: "error_llm_websocket_lost_connection",
        EndReason.MAX_DURATION: "max_duration_reached",
    },
}


# --------------------------------------------------------------------------------------------------------
# The shipped recordings


@dataclass(frozen=True, slots=True)
class DemoTurn:
    """One utterance as placed in a shipped recording (seconds from the start of the file)."""

    role: Role
    text: str
    start_s: float
    end_s: float
    interrupted: bool


@dataclass(frozen=True, slots=True)
class DemoToolCall:
    """A tool call the scripted conversation makes before the agent turn ``turn_index``."""

    name: str
    arguments: JsonValue
    result: JsonValue
    success: bool
    turn_index: int


@dataclass(frozen=True, slots=True)
class DemoRecording:
    """A recording shipped with convoscope, as described by its manifest entry."""

    file: str
    title: str
    format: str
    sample_rate: int
    channels: int
    channel_map: dict[int, Role]
    frames: int
    duration_s: float
    size_bytes: int
    sha256: str
    source: CallSource
    agent_id: str
    agent_version: str
    end_reason: EndReason
    end_reason_raw: str
    turns: tuple[DemoTurn, ...]
    tool_calls: tuple[DemoToolCall, ...] = field(default=())

    def read_bytes(self) -> bytes:
        """The file's bytes, from the installed package."""
        return resources.files(__package__).joinpath(_RECORDINGS_DIR, self.file).read_bytes()

    def to_recording(self) -> Recording:
        """The canonical :class:`Recording`; ``uri`` stays None until a server stores the bytes."""
        return Recording(
            format=self.format,
            sample_rate=self.sample_rate,
            channels=self.channels,
            channel_map=dict(self.channel_map),
            duration_s=self.duration_s,
            sha256=self.sha256,
        )


def _parse_recording(entry: dict[str, Any]) -> DemoRecording:
    return DemoRecording(
        file=entry["file"],
        title=entry["title"],
        format=entry["format"],
        sample_rate=int(entry["sample_rate"]),
        channels=int(entry["channels"]),
        channel_map={int(k): Role(v) for k, v in entry["channel_map"].items()},
        frames=int(entry["frames"]),
        duration_s=float(entry["duration_s"]),
        size_bytes=int(entry["bytes"]),
        sha256=entry["sha256"],
        source=CallSource(entry["source"]),
        agent_id=entry["agent_id"],
        agent_version=entry["agent_version"],
        end_reason=EndReason(entry["end_reason"]),
        end_reason_raw=entry["end_reason_raw"],
        turns=tuple(
            DemoTurn(
                role=Role(t["role"]),
                text=t["text"],
                start_s=float(t["start_s"]),
                end_s=float(t["end_s"]),
                interrupted=bool(t["interrupted"]),
            )
            for t in entry["turns"]
        ),
        tool_calls=tuple(
            DemoToolCall(
                name=t["name"],
                arguments=t["arguments"],
                result=t["result"],
                success=bool(t["success"]),
                turn_index=int(t["turn_index"]),
            )
            for t in entry["tool_calls"]
        ),
    )


@cache
def _manifest() -> tuple[DemoRecording, ...]:
    text = resources.files(__package__).joinpath(_RECORDINGS_DIR, _MANIFEST).read_text(encoding="utf-8")
    return tuple(_parse_recording(entry) for entry in json.loads(text)["recordings"])


def demo_recordings() -> list[DemoRecording]:
    """The recordings shipped in ``convoscope/demo/recordings``, in manifest order."""
    return list(_manifest())


def recording_bytes(sha256: str) -> bytes:
    """The bytes of the shipped recording with this sha256 (what a demo call's Recording names)."""
    for recording in _manifest():
        if recording.sha256 == sha256:
            data = recording.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise NotFound(f"demo recording {recording.file} does not match its manifest sha256")
            return data
    raise NotFound(f"no demo recording has sha256 {sha256}")


# --------------------------------------------------------------------------------------------------------
# Conversation scripts


@dataclass(frozen=True, slots=True)
class _Tool:
    name: str
    arguments: dict[str, JsonValue]
    result: dict[str, JsonValue]
    success: bool = True
    slow: bool = False  # a timeout: the call to the tool hangs for seconds before failing


@dataclass(slots=True)
class _Line:
    """A scripted utterance; ``idle_s`` makes an agent line a prompt after that much silence, not a reply."""

    role: Role
    text: str
    tools: list[_Tool] = field(default_factory=list)
    idle_s: float | None = None


@dataclass(slots=True)
class _Script:
    """A conversation before timing: alternating lines, how it ended and what the platform concluded."""

    lines: list[_Line]
    end_reason: EndReason
    tags: list[str]
    summary: str
    successful: bool
    direction: Direction = Direction.INBOUND
    fillers: bool = True  # whether small-talk exchanges may be inserted to vary the length


def _a(text: str, *tools: _Tool) -> _Line:
    return _Line(Role.AGENT, text, list(tools))


def _u(text: str) -> _Line:
    return _Line(Role.USER, text)


_FIRST = ["Daniel", "Maria", "James", "Priya", "Robert", "Aisha", "Kevin", "Laura", "Tomás", "Mei", "Hannah"]
_LAST = ["Reyes", "Johnson", "Okafor", "Kim", "Schultz", "Patel", "Moreau", "Nguyen", "Brooks", "Ivanova"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_TIMES = ["8:30 AM", "9:00 AM", "10:15 AM", "11:30 AM", "1:00 PM", "2:30 PM", "3:45 PM", "4:30 PM"]
_SERVICES = ["cleaning", "checkup", "filling", "crown fitting", "whitening consultation"]
_DENTISTS = ["Dr. Patel", "Dr. Nguyen", "Dr. Okafor"]
_ITEMS = ["rain jacket", "pair of hiking boots", "wool sweater", "backpack", "tent", "pair of trail shoes"]
_CARRIERS = ["UPS", "FedEx", "USPS"]
_CITIES = ["Portland", "Denver", "Austin", "Columbus", "Raleigh"]

_DENTAL_GREETINGS = [
    "Thank you for calling Bright Smile Dental, this is Ava. How can I help you today?",
    "Bright Smile Dental, this is Ava. How can I help?",
    "Hi, thanks for calling Bright Smile Dental. What can I do for you today?",
]
_ORDER_GREETINGS = [
    "Hi, you've reached Northwind Outfitters order support. What can I help you with?",
    "Thanks for calling Northwind Outfitters. How can I help with your order today?",
]

# Exchanges a caller may insert anywhere after an agent line: (user says, agent answers). None repeats.
_DENTAL_FILLERS: list[tuple[str, str | None]] = [
    ("Sorry, could you repeat that?", None),
    ("Hold on, let me grab a pen.", "Of course, take your time."),
    ("Do you take Delta Dental insurance?", "Yes, we're in network with Delta Dental, Cigna and Aetna."),
    ("Is there parking at the office?", "Yes, there's free parking behind the building."),
    ("How long does that usually take?", "Usually about forty-five minutes."),
    ("Sorry, the line cut out for a second.", "No problem. I'm still here."),
]
_ORDER_FILLERS: list[tuple[str, str | None]] = [
    ("Sorry, could you repeat that?", None),
    ("Hang on, I'm looking for the email.", "No problem, take your time."),
    ("Can I get a tracking number?", "Sure, I'll text the tracking link to the number on your order."),
    ("Do you ship on weekends?", "We ship Monday through Saturday."),
    ("Sorry, you're breaking up a little.", "Sorry about that. Can you hear me now?"),
]


def _pick(rng: random.Random, options: list[str]) -> str:
    return options[rng.randrange(len(options))]


def _name(rng: random.Random) -> str:
    return f"{_pick(rng, _FIRST)} {_pick(rng, _LAST)}"


def _digits(value: str) -> str:
    words = "zero one two three four five six seven eight nine".split()
    return " ".join(words[int(d)] for d in value)


def _closing(rng: random.Random, *, agent_ends: bool, after_user: bool = False) -> list[_Line]:
    """The end of a call that went well; it starts with the caller's thanks unless they just spoke."""
    lines = (
        []
        if after_user
        else [_u(_pick(rng, ["Great, thank you.", "Perfect, thanks.", "Okay, sounds good."]))]
    )
    lines.append(_a("Is there anything else I can help you with?"))
    if agent_ends:
        lines.append(_u(_pick(rng, ["No, that's all. Thanks!", "Nope, that's it.", "No, thank you."])))
        lines.append(_a(_pick(rng, ["Have a great day. Goodbye!", "You're welcome. Take care, bye!"])))
    else:
        lines.append(
            _u(_pick(rng, ["No, that's everything. Bye.", "That's it, thank you. Bye!", "No, thanks. Bye."]))
        )
    return lines


def _dental_booking(rng: random.Random, _: bool) -> _Script:
    name, service, dentist = _name(rng), _pick(rng, _SERVICES), _pick(rng, _DENTISTS)
    day, other_day = rng.sample(_DAYS, 2)
    first, second = sorted(rng.sample(_TIMES, 2), key=_TIMES.index)
    month = _pick(rng, ["March", "June", "October", "January"])
    birth = f"{month} {rng.randint(2, 28)}, {rng.randint(1950, 2004)}"
    slot_taken = rng.random() < 0.12
    lines = [
        _a(_pick(rng, _DENTAL_GREETINGS)),
        _u(f"Hi, I'd like to book a {service}, ideally on {day}."),
        _a("Of course. Can I have your full name and date of birth?"),
        _u(f"It's {name}, {birth}."),
        _a(
            f"Thanks, {name.split()[0]}. On {day} I have {first} or {second}. Which works better?",
            _Tool(
                "check_availability",
                {"service": service, "day": day, "patient": name},
                {"slots": [f"{day} {first}", f"{day} {second}"], "provider": dentist},
            ),
        ),
        _u(f"{second} please."),
    ]
    if slot_taken:
        lines += [
            _a(
                f"I'm sorry, {second} was just taken. I can do {first} on {day}, or {second} on {other_day}.",
                _Tool(
                    "book_appointment",
                    {"patient": name, "slot": f"{day} {second}", "service": service},
                    {"error": "slot_unavailable", "message": "slot was booked by another patient"},
                    success=False,
                ),
            ),
            _u(f"{other_day} at {second} is fine."),
        ]
        day = other_day
    lines.append(
        _a(
            f"You're all set for {day} at {second} with {dentist}. We'll text you a reminder the day before.",
            _Tool(
                "book_appointment",
                {"patient": name, "slot": f"{day} {second}", "service": service},
                {"confirmation": f"BSD-{rng.randint(10000, 99999)}", "provider": dentist},
            ),
        )
    )
    agent_ends = rng.random() < 0.35
    lines += _closing(rng, agent_ends=agent_ends)
    return _Script(
        lines,
        EndReason.AGENT_HANGUP if agent_ends else EndReason.USER_HANGUP,
        ["booking"],
        f"Caller booked a {service} on {day} at {second} with {dentist}.",
        True,
    )


def _dental_reschedule(rng: random.Random, _: bool) -> _Script:
    old_day, new_day = rng.sample(_DAYS, 2)
    old_time, new_time = rng.sample(_TIMES, 2)
    appointment = f"apt-{rng.randint(1000, 9999)}"
    cancel = rng.random() < 0.35
    lines = [
        _a(_pick(rng, _DENTAL_GREETINGS)),
        _u(f"I need to {'cancel' if cancel else 'move'} my appointment on {old_day}."),
        _a(
            f"I found your appointment on {old_day} at {old_time}. "
            + ("Would you like me to cancel it?" if cancel else "What day would suit you better?"),
            _Tool(
                "find_appointment",
                {"caller_phone": f"+1555555{rng.randint(1000, 9999)}"},
                {"appointment_id": appointment, "when": f"{old_day} {old_time}"},
            ),
        ),
    ]
    if cancel:
        lines += [
            _u("Yes, please cancel it. I'll call back when I'm back in town."),
            _a(
                "Done, your appointment is cancelled. We'll be happy to see you when you're back.",
                _Tool("cancel_appointment", {"appointment_id": appointment}, {"status": "cancelled"}),
            ),
        ]
        summary, tags = f"Caller cancelled their {old_day} appointment.", ["cancellation"]
    else:
        lines += [
            _u(f"Is anything open on {new_day}?"),
            _a(
                f"Yes, {new_day} at {new_time} is open. Shall I move you there?",
                _Tool("check_availability", {"day": new_day}, {"slots": [f"{new_day} {new_time}"]}),
            ),
            _u("Yes, please."),
            _a(
                f"Done. You're now booked for {new_day} at {new_time}.",
                _Tool(
                    "reschedule_appointment",
                    {"appointment_id": appointment, "slot": f"{new_day} {new_time}"},
                    {"appointment_id": appointment, "when": f"{new_day} {new_time}"},
                ),
            ),
        ]
        summary, tags = (
            f"Caller moved their appointment from {old_day} to {new_day} at {new_time}.",
            ["reschedule"],
        )
    agent_ends = rng.random() < 0.3
    lines += _closing(rng, agent_ends=agent_ends)
    return _Script(
        lines, EndReason.AGENT_HANGUP if agent_ends else EndReason.USER_HANGUP, tags, summary, True
    )


def _dental_question(rng: random.Random, _: bool) -> _Script:
    insurance = rng.random() < 0.4
    lines = [_a(_pick(rng, _DENTAL_GREETINGS))]
    if insurance:
        plan = _pick(rng, ["MetLife", "Guardian", "Humana", "United Concordia"])
        lines += [
            _u(f"Do you accept {plan} for a root canal? I want to know what I'd pay."),
            _a(f"We do accept {plan}. What you'd pay depends on your plan. May I have your member ID?"),
            _u(f"Sure, it's {_digits(str(rng.randint(100000, 999999)))}."),
            _a(
                "I can't see a cost estimate for that plan. Let me connect you with our billing coordinator.",
                _Tool("lookup_insurance", {"plan": plan}, {"error": "no_estimate_available"}, success=False),
            ),
            _u("Okay, thanks."),
            _a(
                "Transferring you now. Please hold.",
                _Tool("transfer_call", {"destination": "billing"}, {"status": "transferred"}),
            ),
        ]
        return _Script(
            lines, EndReason.TRANSFER, ["faq", "transfer"], f"Insurance question about {plan}.", False
        )
    topic, answer = rng.choice(
        [
            ("What are your hours on Saturday?", "On Saturdays we're open from 9 AM to 1 PM."),
            ("Do you see kids?", "Yes, Dr. Nguyen sees children from age three."),
            ("Where exactly is the office?", "We're at 412 Maple Street, next to the public library."),
            ("Do you do emergency visits?", "Yes, we keep same-day slots for emergencies every weekday."),
        ]
    )
    lines += [
        _u(topic),
        _a(answer),
        _u("Great, and do I need to bring anything for a first visit?"),
        _a("Just a photo ID and your insurance card. Please arrive ten minutes early for paperwork."),
    ]
    lines += _closing(rng, agent_ends=rng.random() < 0.3)
    end = EndReason.AGENT_HANGUP if lines[-1].role is Role.AGENT else EndReason.USER_HANGUP
    return _Script(lines, end, ["faq"], f"Caller asked: {topic}", True)


def _dental_emergency(rng: random.Random, _: bool) -> _Script:
    lines = [
        _a(_pick(rng, _DENTAL_GREETINGS)),
        _u("Hi, I cracked a tooth last night and it really hurts. Can someone see me today?"),
        _a("I'm sorry to hear that. Is there any swelling, or a fever?"),
        _u(_pick(rng, ["Some swelling on the left side, yes.", "No fever, but it's throbbing a lot."])),
        _a(
            "Thank you. I'm connecting you with our on-call dentist right away. Please stay on the line.",
            _Tool(
                "transfer_call",
                {"destination": "on_call_dentist", "reason": "cracked tooth, pain"},
                {"status": "transferred"},
            ),
        ),
        _u("Okay, thank you."),
    ]
    return _Script(lines, EndReason.TRANSFER, ["escalation", "transfer"], "Dental emergency escalated.", True)


def _dental_reminder(rng: random.Random, _: bool) -> _Script:
    name, day, time = _name(rng), _pick(rng, _DAYS), _pick(rng, _TIMES)
    first = name.split()[0]
    if rng.random() < 0.6:
        lines = [
            _u(f"Hi, you've reached {first}."),
            _a(f"Hi {first}, this is Ava from Bright Smile Dental. Do you have a quick moment?"),
            _u("I can't take your call right now. Please leave a message after the tone."),
            _a(
                f"Hi {first}, this is Bright Smile Dental reminding you of your appointment on {day} "
                f"at {time}. Please call us back if you need to change it. Thank you!"
            ),
        ]
        return _Script(
            lines,
            EndReason.VOICEMAIL,
            ["reminder", "voicemail"],
            "Reminder left on voicemail.",
            False,
            Direction.OUTBOUND,
            fillers=False,
        )
    lines = [
        _u("Hello?"),
        _a(f"Hi, this is Ava from Bright Smile Dental. Am I speaking with {first}?"),
        _u("Yes, speaking."),
        _a(f"I'm calling to confirm your appointment on {day} at {time}. Will you be able to make it?"),
        _u("Yes, I'll be there."),
        _a(
            "Wonderful, you're confirmed. See you then. Goodbye!",
            _Tool("confirm_appointment", {"patient": name, "when": f"{day} {time}"}, {"status": "confirmed"}),
        ),
    ]
    return _Script(
        lines,
        EndReason.AGENT_HANGUP,
        ["reminder"],
        "Patient confirmed their appointment.",
        True,
        Direction.OUTBOUND,
    )


def _order_status(rng: random.Random, incident: bool) -> _Script:
    item, carrier = _pick(rng, _ITEMS), _pick(rng, _CARRIERS)
    order = str(rng.randint(100000, 999999))
    day = _pick(rng, _DAYS)
    lines = [
        _a(_pick(rng, _ORDER_GREETINGS)),
        _u(f"Hi, where is my order? I bought a {item} last week."),
        _a("I can check that for you. What's your order number?"),
        _u(f"It's {_digits(order)}."),
    ]
    tags = ["order-status"]
    if incident and rng.random() < 0.7:
        timeout = _Tool(
            "lookup_order",
            {"order_id": order},
            {"error": "upstream_timeout", "message": "orders API did not respond within 4 s"},
            success=False,
            slow=True,
        )
        lines += [
            _a("I'm sorry, I'm having trouble reaching our order system. Let me try once more.", timeout),
            _u("Okay."),
        ]
        if rng.random() < 0.5:
            lines += [
                _a("It's still not responding. I'll transfer you to a support agent who can help.", timeout),
                _u("Fine."),
                _a(
                    "Transferring you now.",
                    _Tool("transfer_call", {"destination": "support"}, {"status": "transferred"}),
                ),
            ]
            return _Script(
                lines, EndReason.TRANSFER, [*tags, "transfer", "tool-error"], "Lookup failed.", False
            )
        tags.append("tool-error")
    elif rng.random() < 0.2:
        wrong = order[:-2] + order[-1] + order[-2]
        lines[-1] = _u(f"It's {_digits(wrong)}.")
        lines += [
            _a(
                f"I couldn't find order {_digits(wrong)}. Could you read it to me again?",
                _Tool("lookup_order", {"order_id": wrong}, {"error": "order not found"}, success=False),
            ),
            _u(f"Sorry, {_digits(order)}."),
        ]
    status = rng.choices(["shipped", "processing", "delivered"], weights=[0.68, 0.22, 0.1])[0]
    if status == "shipped":
        answer = f"Found it. Your {item} shipped with {carrier} and should arrive on {day}."
        result: dict[str, JsonValue] = {"status": "shipped", "carrier": carrier, "eta": day, "items": [item]}
    elif status == "processing":
        answer = f"Your {item} is being packed and should ship by {day}."
        result = {"status": "processing", "ship_by": day, "items": [item]}
    else:
        answer = f"Our records show your {item} was delivered yesterday to the front door."
        result = {"status": "delivered", "items": [item]}
    lines.append(_a(answer, _Tool("lookup_order", {"order_id": order}, result)))
    if status == "delivered":
        lines += [
            _u("That's strange, I never got it."),
            _a(
                "I'm sorry. I'll transfer you to our support team to open a claim.",
                _Tool(
                    "transfer_call", {"destination": "support", "reason": "missing package"}, {"status": "ok"}
                ),
            ),
            _u("Thank you."),
        ]
        return _Script(
            lines, EndReason.TRANSFER, [*tags, "transfer"], "Package marked delivered but missing.", False
        )
    lines += _closing(rng, agent_ends=rng.random() < 0.2)
    end = EndReason.AGENT_HANGUP if lines[-1].role is Role.AGENT else EndReason.USER_HANGUP
    return _Script(lines, end, tags, f"Caller checked an order: {status}.", True)


def _order_address(rng: random.Random, _: bool) -> _Script:
    order, city = str(rng.randint(100000, 999999)), _pick(rng, _CITIES)
    shipped = rng.random() < 0.4
    lines = [
        _a(_pick(rng, _ORDER_GREETINGS)),
        _u("I need to change the delivery address on my order."),
        _a("Sure. What's the order number, and what's the new address?"),
        _u(f"Order {_digits(order)}, and the new address is {rng.randint(10, 999)} Oak Street in {city}."),
    ]
    if shipped:
        lines += [
            _a(
                "I'm sorry, that order has already shipped, so I can't change the address. "
                "You can redirect it with the carrier using the tracking link we sent.",
                _Tool(
                    "update_shipping_address",
                    {"order_id": order, "city": city},
                    {"error": "already_shipped"},
                    success=False,
                ),
            ),
            _u("Oh, okay. I'll do that."),
        ]
        summary, ok = "Address change refused: order already shipped.", False
    else:
        lines += [
            _a(
                f"Done. Your order will now go to Oak Street in {city}.",
                _Tool("update_shipping_address", {"order_id": order, "city": city}, {"status": "updated"}),
            ),
            _u("Perfect."),
        ]
        summary, ok = f"Delivery address changed to {city}.", True
    lines += _closing(rng, agent_ends=False, after_user=True)
    return _Script(lines, EndReason.USER_HANGUP, ["address-change"], summary, ok)


def _order_refund(rng: random.Random, _: bool) -> _Script:
    item, order = _pick(rng, _ITEMS), str(rng.randint(100000, 999999))
    angry = rng.random() < 0.35
    lines = [
        _a(_pick(rng, _ORDER_GREETINGS)),
        _u(f"I returned a {item} two weeks ago and I still don't have my refund."),
        _a("I'm sorry about that. What's the order number?"),
        _u(f"{_digits(order)}."),
        _a(
            "The return arrived, but the refund is on hold for review.",
            _Tool("lookup_order", {"order_id": order}, {"status": "returned", "refund": "on_hold"}),
        ),
    ]
    if angry:
        lines += [
            _u("This is ridiculous. I want to talk to a real person right now."),
            _a("I understand. I'll connect you with a billing specialist now."),
        ]
    else:
        lines += [
            _u("Why is it on hold?"),
            _a("I can't see the reason, but a billing specialist can. One moment."),
        ]
    failed = rng.random() < 0.1
    lines += [
        _u("Okay."),
        _a(
            "I'm sorry, no one in billing is available right now. They'll call you back tomorrow."
            if failed
            else "Transferring you now. Please hold.",
            _Tool(
                "transfer_call",
                {"destination": "billing"},
                {"error": "no_agents_available"} if failed else {"status": "transferred"},
                success=not failed,
            ),
        ),
    ]
    tags = ["refund", "escalation"] if angry else ["refund"]
    if failed:
        return _Script(
            lines, EndReason.AGENT_HANGUP, [*tags, "tool-error"], "Refund on hold; transfer failed.", False
        )
    return _Script(lines, EndReason.TRANSFER, [*tags, "transfer"], "Refund on hold; sent to billing.", False)


def _silent(base: Callable[[random.Random, bool], _Script]) -> Callable[[random.Random, bool], _Script]:
    """The caller goes quiet mid-call: the agent prompts once, then the platform's silence timer ends it."""

    def script(rng: random.Random, incident: bool) -> _Script:
        inner = base(rng, incident)
        # Cut after an agent line (even index), at least the third one, before the script's own end.
        last = max(4, len(inner.lines) - 2)
        cut = 2 * rng.randint(2, last // 2)
        lines = inner.lines[: cut + 1]
        lines.append(_u(_pick(rng, ["Hold on one second.", "Uh, let me check.", "Hang on."])))
        prompt = _a("Are you still there? I haven't heard anything for a while.")
        prompt.idle_s = rng.uniform(7.0, 10.0)
        lines.append(prompt)
        return _Script(lines, EndReason.SILENCE_TIMEOUT, [], "Caller went silent.", False, inner.direction)

    return script


def _failing(base: Callable[[random.Random, bool], _Script]) -> Callable[[random.Random, bool], _Script]:
    """The pipeline fails mid-call: the caller's last words get no answer and the call drops."""

    def script(rng: random.Random, incident: bool) -> _Script:
        inner = base(rng, incident)
        cut = min(len(inner.lines), 2 * rng.randint(3, 6))
        lines = inner.lines[:cut]
        if lines[-1].role is Role.AGENT:
            lines.append(_u("Hello? Are you there?"))
        return _Script(
            lines, EndReason.ERROR, [], "Call dropped by a pipeline error.", False, inner.direction
        )

    return script


_Flow = Callable[[random.Random, bool], _Script]
_DENTAL_FLOWS: list[tuple[_Flow, float]] = [
    (_dental_booking, 0.36),
    (_dental_reschedule, 0.24),
    (_dental_question, 0.14),
    (_dental_emergency, 0.05),
    (_dental_reminder, 0.13),
    (_silent(_dental_booking), 0.05),
    (_failing(_dental_booking), 0.03),
]
_ORDER_FLOWS: list[tuple[_Flow, float]] = [
    (_order_status, 0.5),
    (_order_address, 0.14),
    (_order_refund, 0.17),
    (_silent(_order_status), 0.07),
    (_failing(_order_status), 0.05),
]


def _add_fillers(rng: random.Random, script: _Script, fillers: list[tuple[str, str | None]]) -> None:
    """Insert small-talk exchanges after agent lines so lengths vary from 6 to 30 turns."""
    if not script.fillers:
        return
    extra = min(rng.choice([0, 0, 0, 1, 1, 2, 3, 5]), (30 - len(script.lines)) // 2)
    for _ in range(extra):
        spots = [i for i, line in enumerate(script.lines[:-2]) if line.role is Role.AGENT and i > 0]
        if not spots:
            return
        at = rng.choice(spots)
        question, answer = fillers[rng.randrange(len(fillers))]
        agent_text = answer if answer is not None else script.lines[at].text
        script.lines[at + 1 : at + 1] = [_u(question), _a(agent_text)]


# --------------------------------------------------------------------------------------------------------
# Timing, latency, cost


@dataclass(frozen=True, slots=True)
class _Profile:
    """How an agent deployment performs and what it costs."""

    agent_id: str
    version: str
    source: CallSource
    llm_model: str
    voice: str
    llm_median_s: float
    tail_p: float
    platform_per_min: float
    prompt_per_mtok: float
    completion_per_mtok: float
    system_prompt_tokens: int


_DENTAL_V3 = _Profile(
    DENTAL, "v3", CallSource.VAPI, "gpt-4o-mini", "sarah", 0.42, 0.04, 0.05, 0.15, 0.6, 1400
)
_DENTAL_V4 = _Profile(DENTAL, "v4", CallSource.VAPI, "gpt-4.1", "sarah", 0.85, 0.1, 0.05, 2.0, 8.0, 1900)
_ORDERS_V1 = _Profile(
    ORDERS, "v1", CallSource.RETELL, "gpt-4o-mini", "cimo", 0.5, 0.05, 0.07, 0.15, 0.6, 1100
)

_STT_PER_MIN = 0.01
_TTS_PER_CHAR = 0.000015


def _r3(value: float) -> float:
    return round(value, 3)


def _speech_s(rng: random.Random, text: str, role: Role) -> float:
    words = max(1, len(text.split()))
    rate = rng.uniform(2.6, 3.2) if role is Role.USER else rng.uniform(2.9, 3.4)
    return words / rate + rng.uniform(0.15, 0.35)


@dataclass(slots=True)
class _Latency:
    eou_s: float
    stt_s: float
    llm_ttft_s: float
    tts_ttfb_s: float
    e2e_s: float


def _latency(rng: random.Random, profile: _Profile, extra_s: float) -> _Latency:
    """Components of one agent response; ``extra_s`` is time spent in tools and the LLM's second pass."""
    eou = rng.uniform(0.15, 0.45)
    stt = rng.uniform(0.04, 0.18)
    llm = profile.llm_median_s * math.exp(rng.gauss(0.0, 0.35))
    if rng.random() < profile.tail_p:
        llm += rng.expovariate(1 / 1.3)
    tts = rng.uniform(0.09, 0.28)
    transport = rng.uniform(0.03, 0.12)
    e2e = max(0.6, eou + stt + llm + tts + transport + extra_s)
    return _Latency(_r3(eou), _r3(stt), _r3(llm), _r3(tts), _r3(e2e))


def _words(rng: random.Random, text: str, start_s: float, end_s: float, role: Role) -> list[Word]:
    """Word timings spread over the turn by word length, as a platform with word timestamps reports."""
    tokens = text.split()
    weights = [len(t) + 2 for t in tokens]
    span = end_s - start_s
    total = sum(weights)
    words: list[Word] = []
    cursor = start_s
    for token, weight in zip(tokens, weights, strict=True):
        length = span * weight / total
        confidence = _r3(rng.uniform(0.78, 0.99)) if role is Role.USER else None
        words.append(
            Word(word=token, start_s=_r3(cursor), end_s=_r3(cursor + length * 0.92), confidence=confidence)
        )
        cursor += length
    return words


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _stats(values: list[float], *, with_values: bool) -> LatencyStats:
    return LatencyStats(
        p50_s=_r3(_quantile(values, 0.5)),
        p90_s=_r3(_quantile(values, 0.9)),
        p95_s=_r3(_quantile(values, 0.95)),
        p99_s=_r3(_quantile(values, 0.99)),
        min_s=min(values),
        max_s=max(values),
        count=len(values),
        values_s=list(values) if with_values else None,
    )


def _vendor_latency(turns: list[Turn], source: CallSource) -> dict[str, LatencyStats]:
    agent = [t for t in turns if t.role is Role.AGENT and t.e2e_s is not None]
    if not agent:
        return {}
    with_values = source is CallSource.RETELL
    series = {
        "e2e": [t.e2e_s for t in agent],
        "stt": [t.stt_s for t in agent],
        "llm": [t.llm_ttft_s for t in agent],
        "tts": [t.tts_ttfb_s for t in agent],
    }
    return {
        key: _stats([v for v in values if v is not None], with_values=with_values)
        for key, values in series.items()
    }


def _costs(profile: _Profile, turns: list[Turn], duration_s: float) -> tuple[list[CostLine], Usage]:
    agent_turns = [t for t in turns if t.role is Role.AGENT]
    prompt = completion = 0
    context = profile.system_prompt_tokens
    for turn in turns:
        tokens = round(len(turn.text.split()) * 1.35) + 4
        if turn.role is Role.AGENT:
            prompt += context
            completion += tokens
        context += tokens
    characters = sum(len(t.text) for t in agent_turns)
    minutes = duration_s / 60
    llm = (prompt * profile.prompt_per_mtok + completion * profile.completion_per_mtok) / 1_000_000
    lines = [
        CostLine(
            product="stt",
            amount=round(minutes * _STT_PER_MIN, 6),
            quantity=round(minutes, 4),
            unit="minute",
            unit_price=_STT_PER_MIN,
        ),
        CostLine(product="llm", amount=round(llm, 6), quantity=prompt + completion, unit="token"),
        CostLine(
            product="tts",
            amount=round(characters * _TTS_PER_CHAR, 6),
            quantity=characters,
            unit="character",
            unit_price=_TTS_PER_CHAR,
        ),
        CostLine(
            product="platform",
            amount=round(minutes * profile.platform_per_min, 6),
            quantity=round(minutes, 4),
            unit="minute",
            unit_price=profile.platform_per_min,
        ),
    ]
    usage = Usage(
        llm_prompt_tokens=prompt,
        llm_completion_tokens=completion,
        tts_characters=characters,
        stt_audio_s=_r3(duration_s),
        audio_s=_r3(duration_s),
        extra={"llm_requests": float(len(agent_turns))},
    )
    return lines, usage


def _tool_duration(rng: random.Random, tool: _Tool) -> float:
    return rng.uniform(3.8, 4.2) if tool.slow else rng.uniform(0.12, 0.8)


def _timed(
    rng: random.Random, script: _Script, profile: _Profile, *, words: bool, call_tag: str
) -> tuple[list[Turn], list[ToolCall], float]:
    """Place the script's lines in time: turns, tool calls, and the call's duration."""
    turns: list[Turn] = []
    tools: list[ToolCall] = []
    end = rng.uniform(0.3, 1.0)
    previous_end = 0.0
    for index, line in enumerate(script.lines):
        duration = _speech_s(rng, line.text, line.role)
        latency: _Latency | None = None
        if line.idle_s is not None:
            start = previous_end + line.idle_s
        elif line.role is Role.AGENT and index > 0:
            tool_spans = [_tool_duration(rng, tool) for tool in line.tools]
            extra = sum(tool_spans) + (profile.llm_median_s * rng.uniform(0.6, 1.0) if line.tools else 0.0)
            latency = _latency(rng, profile, extra)
            start = previous_end + latency.e2e_s
            cursor = previous_end + latency.eou_s + latency.stt_s + latency.llm_ttft_s
            for number, (tool, span) in enumerate(zip(line.tools, tool_spans, strict=True)):
                tools.append(
                    ToolCall(
                        id=f"{call_tag}-t{len(tools) + 1}",
                        turn_index=index,
                        name=tool.name,
                        arguments=dict(tool.arguments),
                        result=dict(tool.result),
                        success=tool.success,
                        start_s=_r3(cursor),
                        end_s=_r3(cursor + span),
                    )
                )
                cursor += span + (0.02 if number + 1 < len(line.tools) else 0.0)
        elif index == 0:
            start = end
        else:
            start = previous_end + rng.uniform(0.25, 1.1)
        start = _r3(start)
        finish = _r3(start + duration)
        turns.append(
            Turn(
                index=index,
                role=line.role,
                text=line.text,
                start_s=start,
                end_s=finish,
                e2e_s=latency.e2e_s if latency else None,
                eou_s=latency.eou_s if latency else None,
                stt_s=latency.stt_s if latency else None,
                llm_ttft_s=latency.llm_ttft_s if latency else None,
                tts_ttfb_s=latency.tts_ttfb_s if latency else None,
            )
        )
        # A caller sometimes barges in on a long agent turn: they start talking while it speaks, and the
        # agent stops about 0.4 s later.
        if (
            line.role is Role.USER
            and index >= 2
            and turns[index - 1].role is Role.AGENT
            and len(turns[index - 1].text.split()) >= 10
            and rng.random() < 0.08
        ):
            agent = turns[index - 1]
            barge = _r3(agent.start_s + (agent.end_s - agent.start_s) * rng.uniform(0.45, 0.8))
            cut = _r3(barge + rng.uniform(0.3, 0.5))
            spoken = agent.text.split()
            heard = max(1, round(len(spoken) * (cut - agent.start_s) / (agent.end_s - agent.start_s)))
            turns[index - 1] = agent.model_copy(
                update={"end_s": cut, "interrupted": True, "text": " ".join(spoken[:heard])}
            )
            turns[index] = turns[index].model_copy(update={"start_s": barge, "end_s": _r3(barge + duration)})
            finish = _r3(barge + duration)
        previous_end = finish
    if script.end_reason is EndReason.SILENCE_TIMEOUT:
        tail = rng.uniform(10.0, 30.0)
    elif script.end_reason is EndReason.ERROR:
        tail = rng.uniform(4.0, 9.0)
    else:
        tail = rng.uniform(0.3, 1.5)
    if words:
        turns = [
            t.model_copy(update={"words": _words(rng, t.text, t.start_s, t.end_s, t.role)}) for t in turns
        ]
    return turns, tools, _r3(previous_end + tail)


# --------------------------------------------------------------------------------------------------------
# Calls


def _external_id(rng: random.Random, source: CallSource) -> str:
    bits = rng.getrandbits(128)
    if source is CallSource.RETELL:
        return f"call_{bits:032x}"
    return str(uuid.UUID(int=bits, version=4))


def _hour_weight(moment: datetime) -> float:
    local = moment + _LOCAL_OFFSET
    weekend = local.weekday() >= 5
    hour = local.hour
    if 8 <= hour < 18:
        weight = 1.0
    elif hour in (7, 18, 19):
        weight = 0.35
    else:
        weight = 0.05
    return weight * (0.35 if weekend else 1.0)


def _start_time(rng: random.Random, now: datetime) -> datetime:
    """A start in the 7 days before ``now``, weighted toward the business's office hours."""
    window = 7 * 24 * 3600 - 15 * 60
    while True:
        moment = now - timedelta(seconds=rng.uniform(15 * 60, window))
        if rng.random() < _hour_weight(moment):
            return moment.replace(microsecond=(moment.microsecond // 1000) * 1000)


def _analysis(rng: random.Random, script: _Script, source: CallSource) -> dict[str, JsonValue]:
    if rng.random() > 0.75:
        return {}
    analysis: dict[str, JsonValue] = {"summary": script.summary, "call_successful": script.successful}
    if source is CallSource.RETELL:
        negative = not script.successful or "escalation" in script.tags
        analysis["user_sentiment"] = (
            "Negative" if negative else rng.choice(["Positive", "Neutral", "Positive"])
        )
    return analysis


def _build_call(
    rng: random.Random,
    *,
    profile: _Profile,
    started_at: datetime,
    script: _Script,
    turns: list[Turn],
    tools: list[ToolCall],
    duration_s: float,
    external_id: str,
    recording: Recording | None = None,
    end_reason_raw: str | None = None,
) -> Call:
    cost, usage = _costs(profile, turns, duration_s)
    tags = list(dict.fromkeys(script.tags))
    if any(t.interrupted for t in turns):
        tags.append("barge-in")
    if any(t.success is False for t in tools) and "tool-error" not in tags:
        tags.append("tool-error")
    return Call(
        source=profile.source,
        external_id=external_id,
        agent_id=profile.agent_id,
        agent_version=profile.version,
        direction=script.direction,
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=duration_s),
        duration_s=duration_s,
        end_reason=script.end_reason,
        end_reason_raw=end_reason_raw or _RAW_END_REASONS[profile.source][script.end_reason],
        turns=turns,
        tool_calls=tools,
        recordings=[recording] if recording else [],
        vendor_latency=_vendor_latency(turns, profile.source),
        cost=cost,
        usage=usage,
        vendor_analysis=_analysis(rng, script, profile.source),
        tags=tags,
        metadata={"llm_model": profile.llm_model, "voice": profile.voice, "demo": True},
    )


def _profile_for(agent: str, started_at: datetime, deploy: datetime) -> _Profile:
    if agent == ORDERS:
        return _ORDERS_V1
    return _DENTAL_V4 if started_at >= deploy else _DENTAL_V3


def _choose(rng: random.Random, flows: list[tuple[_Flow, float]]) -> _Flow:
    return rng.choices([flow for flow, _ in flows], weights=[weight for _, weight in flows])[0]


def _recording_call(rng: random.Random, shipped: DemoRecording, started_at: datetime, number: int) -> Call:
    """A call whose turns are exactly the shipped recording's, with latencies read off the audio's gaps."""
    profile = _DENTAL_V4 if shipped.agent_id == DENTAL else _ORDERS_V1
    call_tag = f"rec{number}"
    turns: list[Turn] = []
    tools: list[ToolCall] = []
    for index, demo_turn in enumerate(shipped.turns):
        latency: _Latency | None = None
        previous = shipped.turns[index - 1] if index else None
        if demo_turn.role is Role.AGENT and previous is not None and previous.role is Role.USER:
            # The audio's own gap is the response time; its parts are split in typical proportions.
            gap = demo_turn.start_s - previous.end_s
            latency = _Latency(_r3(gap * 0.2), _r3(gap * 0.08), _r3(gap * 0.35), _r3(gap * 0.12), _r3(gap))
            calls = [t for t in shipped.tool_calls if t.turn_index == index]
            cursor = previous.end_s + gap * 0.63
            span = gap * 0.3 / max(1, len(calls))
            for demo_tool in calls:
                tools.append(
                    ToolCall(
                        id=f"{call_tag}-t{len(tools) + 1}",
                        turn_index=index,
                        name=demo_tool.name,
                        arguments=demo_tool.arguments,
                        result=demo_tool.result,
                        success=demo_tool.success,
                        start_s=_r3(cursor),
                        end_s=_r3(cursor + span),
                    )
                )
                cursor += span
        turn = Turn(
            index=index,
            role=demo_turn.role,
            text=demo_turn.text,
            start_s=demo_turn.start_s,
            end_s=demo_turn.end_s,
            interrupted=demo_turn.interrupted,
            e2e_s=latency.e2e_s if latency else None,
            eou_s=latency.eou_s if latency else None,
            stt_s=latency.stt_s if latency else None,
            llm_ttft_s=latency.llm_ttft_s if latency else None,
            tts_ttfb_s=latency.tts_ttfb_s if latency else None,
        )
        if shipped.source is CallSource.RETELL:
            turn = turn.model_copy(
                update={"words": _words(rng, turn.text, turn.start_s, turn.end_s, turn.role)}
            )
        turns.append(turn)
    successful = shipped.end_reason in (EndReason.USER_HANGUP, EndReason.AGENT_HANGUP)
    script = _Script(
        lines=[],
        end_reason=shipped.end_reason,
        tags=["recorded", *(["booking"] if "book_appointment" in [t.name for t in tools] else [])],
        summary=shipped.title + ".",
        successful=successful,
    )
    if shipped.end_reason is EndReason.TRANSFER:
        script.tags.append("transfer")
    return _build_call(
        rng,
        profile=profile,
        started_at=started_at,
        script=script,
        turns=turns,
        tools=tools,
        duration_s=shipped.duration_s,
        external_id=_external_id(rng, profile.source),
        recording=shipped.to_recording(),
        end_reason_raw=shipped.end_reason_raw,
    )


def demo_calls(*, now: datetime, seed: int = 7, count: int = 320) -> list[Call]:
    """``count`` calls from the 7 days before ``now`` (timezone-aware), oldest first.

    The same ``(now, seed, count)`` always gives the same calls. The first few of ``count`` are the calls
    that carry the shipped recordings (placed in the last two days, when v4 of the dental agent ran);
    their ``Recording.uri`` is None until a server stores the bytes from :func:`recording_bytes`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    deploy = now - timedelta(days=2)
    incident = (now - timedelta(days=4, hours=2), now - timedelta(days=4, hours=-2))
    calls: list[Call] = []
    seen: set[str] = set()

    shipped = demo_recordings()[: min(count, len(_manifest()))]
    for number, recording in enumerate(shipped):
        hours_ago = 3 + 9 * number + rng.uniform(0.0, 2.0)
        started_at = (now - timedelta(hours=hours_ago)).replace(microsecond=0)
        call = _recording_call(rng, recording, started_at, number)
        seen.add(call.external_id)
        calls.append(call)

    while len(calls) < count:
        started_at = _start_time(rng, now)
        agent = DENTAL if rng.random() < 0.6 else ORDERS
        profile = _profile_for(agent, started_at, deploy)
        during_incident = agent == ORDERS and incident[0] <= started_at < incident[1]
        flows = _DENTAL_FLOWS if agent == DENTAL else _ORDER_FLOWS
        if during_incident and rng.random() < 0.25:
            script = _failing(_order_status)(rng, True)
        else:
            script = _choose(rng, flows)(rng, during_incident)
        _add_fillers(rng, script, _DENTAL_FILLERS if agent == DENTAL else _ORDER_FILLERS)
        external_id = _external_id(rng, profile.source)
        if external_id in seen:
            continue
        turns, tools, duration = _timed(
            rng, script, profile, words=profile.source is CallSource.RETELL, call_tag=external_id[-8:]
        )
        if started_at + timedelta(seconds=duration) > now:
            started_at = now - timedelta(seconds=duration + rng.uniform(60, 600))
            started_at = started_at.replace(microsecond=(started_at.microsecond // 1000) * 1000)
        seen.add(external_id)
        calls.append(
            _build_call(
                rng,
                profile=profile,
                started_at=started_at,
                script=script,
                turns=turns,
                tools=tools,
                duration_s=duration,
                external_id=external_id,
            )
        )
    calls.sort(key=lambda call: (call.started_at, call.external_id))
    return calls
