"""Deterministic synthetic canonical calls for the benchmarks.

Benchmarks need calls shaped like production traffic (about 20 turns of realistic length, latency
components on agent turns, tool calls with JSON bodies, cost lines, usage, tags) so that row sizes, JSON
encoding and validation costs are representative; and they need the *same* calls on every run so that
figures from two runs are comparable. Every call is a pure function of ``(seed, index)``: any slice of the
stream can be regenerated on its own, which lets the query benchmark build 100,000 calls chunk by chunk
without holding them all in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from convoscope.model import Call

__all__ = [
    "AGENTS",
    "SOURCES",
    "SPAN_END",
    "SPAN_START",
    "synth_call",
    "synth_calls",
    "synth_payload",
    "synth_payloads",
]

SPAN_END = datetime(2026, 11, 24, tzinfo=UTC)
"""Calls start in the 7 days before this instant (fixed, so time filters hit the same rows every run)."""

SPAN_START = SPAN_END - timedelta(days=7)

AGENTS = ("dental-receptionist", "order-support", "appointment-reminder")
SOURCES = ("vapi", "retell")

_USER_LINES = (
    "Hi, I'd like to book an appointment for next week if there is anything available.",
    "Yes, that's right.",
    "Can you check the status of my order? The number is four five two nine one.",
    "No, I think Tuesday afternoon would work better for me, maybe around three.",
    "Sorry, could you repeat that?",
    "It was delivered to the wrong address and I need it sent back to my home in Springfield.",
    "My insurance is Delta Dental, the member ID should be on file already.",
    "Okay great, thank you so much.",
    "I'd rather talk to a person, please.",
    "Actually, can I also ask about the refund for the other order I returned last month?",
)
_AGENT_LINES = (
    "Thanks for calling Bright Smile Dental, this is Ava. How can I help you today?",
    "I can help with that. Let me look up the available slots for next week, one moment please.",
    "I found an opening on Tuesday at 3:15 PM with Dr. Patel. Would you like me to book that for you?",
    "Your order 45291 shipped on Monday and is currently out for delivery; it should arrive by 8 PM.",
    "I'm sorry about the trouble with the delivery address. I've opened a request to re-route the "
    "package to your home address on file, and you'll get a confirmation text within the hour.",
    "Sure. I've noted Delta Dental with the member ID on your file, so you won't need to bring the card.",
    "Of course, I'll transfer you to a member of our team now. Please stay on the line.",
    "Your refund of $42.18 was issued on the 3rd and should appear on your statement in 3 to 5 days.",
    "Is there anything else I can help you with today?",
    "You're all set. Have a wonderful day!",
)
_TOOLS = ("lookup_customer", "check_availability", "book_appointment", "get_order_status", "issue_refund")
_END_REASONS = ("user_hangup", "agent_hangup", "transfer", "silence_timeout")
_TAGS = ("production", "after-hours", "returning-customer", "escalated", "spanish", "vip")


def _turns(rng: random.Random, count: int) -> tuple[list[dict[str, Any]], float]:
    """Alternating agent/user turns with gaps and per-turn latency components on agent turns."""
    turns: list[dict[str, Any]] = []
    clock = rng.uniform(0.2, 0.8)
    for index in range(count):
        agent = index % 2 == 0
        text = rng.choice(_AGENT_LINES if agent else _USER_LINES)
        # Speech at ~15 characters per second, so turn lengths match the text.
        length = max(0.4, len(text) / rng.uniform(13.0, 17.0))
        turn: dict[str, Any] = {
            "role": "agent" if agent else "user",
            "text": text,
            "start_s": round(clock, 3),
            "end_s": round(clock + length, 3),
        }
        if agent and index > 0:
            eou = rng.uniform(0.15, 0.5)
            stt = rng.uniform(0.05, 0.2)
            llm = rng.lognormvariate(-0.9, 0.45)
            tts = rng.uniform(0.08, 0.3)
            turn.update(
                {
                    "e2e_s": round(eou + stt + llm + tts, 4),
                    "eou_s": round(eou, 4),
                    "stt_s": round(stt, 4),
                    "llm_ttft_s": round(llm, 4),
                    "tts_ttfb_s": round(tts, 4),
                    "interrupted": rng.random() < 0.08,
                }
            )
        turns.append(turn)
        clock += length + rng.uniform(0.3, 1.6)
    return turns, clock


def _tool_calls(rng: random.Random, turns: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Tool calls attached to agent turns, with argument and result objects of a few hundred bytes."""
    agent_turns = [i for i, t in enumerate(turns) if t["role"] == "agent"]
    calls: list[dict[str, Any]] = []
    for seq, turn_index in enumerate(sorted(rng.sample(agent_turns, min(count, len(agent_turns))))):
        name = rng.choice(_TOOLS)
        start = turns[turn_index]["start_s"]
        success = rng.random() > 0.05
        calls.append(
            {
                "id": f"tc_{seq}_{rng.getrandbits(40):010x}",
                "turn_index": turn_index,
                "name": name,
                "arguments": {
                    "customer_id": f"cus_{rng.getrandbits(32):08x}",
                    "date": f"2026-12-{rng.randint(1, 28):02d}",
                    "party_size": rng.randint(1, 4),
                    "notes": "prefers afternoons; follow up by SMS",
                },
                "result": (
                    {
                        "ok": True,
                        "slots": [f"{h:02d}:{m:02d}" for h, m in ((9, 30), (11, 0), (15, 15))],
                        "confirmation": f"CNF-{rng.getrandbits(24):06X}",
                    }
                    if success
                    else {"ok": False, "error": "upstream timeout after 3000 ms"}
                ),
                "success": success,
                "start_s": round(start, 3),
                "end_s": round(start + rng.uniform(0.1, 1.2), 3),
            }
        )
    return calls


def synth_payload(index: int, *, seed: int = 7) -> dict[str, Any]:
    """Call number ``index`` of the stream, as the JSON-able dict a client would POST."""
    rng = random.Random(seed * 1_000_003 + index)
    turns, duration = _turns(rng, rng.choice((18, 20, 20, 22)))
    minutes = duration / 60
    prompt, completion = rng.randint(4_000, 20_000), rng.randint(300, 1_500)
    started = SPAN_START + timedelta(microseconds=rng.randrange(7 * 24 * 3600 * 1_000_000))
    return {
        "source": SOURCES[index % len(SOURCES)],
        "external_id": f"bench-{seed}-{index:08d}",
        "agent_id": AGENTS[rng.randrange(len(AGENTS))],
        "agent_version": f"v{rng.randint(1, 4)}",
        "direction": rng.choice(("inbound", "outbound")),
        "started_at": started.isoformat(),
        "duration_s": round(duration, 3),
        "end_reason": rng.choice(_END_REASONS),
        "end_reason_raw": "customer-ended-call",
        "turns": turns,
        "tool_calls": _tool_calls(rng, turns, 4),
        "cost": [
            {
                "product": "platform",
                "amount": round(0.05 * minutes, 5),
                "quantity": minutes,
                "unit": "minute",
            },
            {"product": "llm", "amount": round(prompt * 2.5e-6 + completion * 1e-5, 5)},
            {"product": "stt", "amount": round(0.0043 * minutes, 5), "quantity": minutes, "unit": "minute"},
            {"product": "tts", "amount": round(0.03 * minutes, 5), "quantity": minutes, "unit": "minute"},
        ],
        "usage": {
            "llm_prompt_tokens": prompt,
            "llm_completion_tokens": completion,
            "tts_characters": sum(len(t["text"]) for t in turns if t["role"] == "agent"),
            "audio_s": round(duration, 3),
        },
        "tags": sorted(rng.sample(_TAGS, rng.randint(0, 3))),
        "metadata": {"region": rng.choice(("us-east", "eu-west")), "campaign": f"c{rng.randint(1, 9)}"},
    }


def synth_payloads(count: int, *, start: int = 0, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Calls ``start`` .. ``start + count - 1`` of the stream as JSON-able dicts."""
    for index in range(start, start + count):
        yield synth_payload(index, seed=seed)


def synth_call(index: int, *, seed: int = 7) -> Call:
    """Call number ``index`` validated into the canonical model (what the store path takes)."""
    return Call.model_validate(synth_payload(index, seed=seed))


def synth_calls(count: int, *, start: int = 0, seed: int = 7) -> list[Call]:
    """Calls ``start`` .. ``start + count - 1`` of the stream as ``Call`` objects."""
    return [synth_call(index, seed=seed) for index in range(start, start + count)]
