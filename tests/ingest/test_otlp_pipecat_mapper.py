"""The Pipecat mapper on the interruption flag Pipecat sets when it closes the turn the pipeline's end
left open (seen on a real Pipecat 1.14 pipeline), against a caller's barge-in."""

from __future__ import annotations

from _otlp_spans import span as _span

from convoscope.ingest.otlp import PriceTable, mapper_for
from convoscope.model import Call, Role, Span

KEY = "pipecat:conv-1"


def _turn(number: int, *, interrupted: bool, root: bool = True, **extra: object) -> list[Span]:
    """A turn with its STT and TTS spans, ``10 * number`` seconds into the conversation."""
    base = 10 * number
    turn_id = 10 * number
    return [
        _span(
            turn_id,
            "turn",
            base,
            base + 8,
            1 if root else None,
            **{"conversation.id": "conv-1", "turn.number": number, "turn.was_interrupted": interrupted},
            **extra,
        ),
        _span(turn_id + 1, "stt", base, base + 1, turn_id, transcript=f"user {number}", is_final=True),
        _span(turn_id + 2, "tts", base + 2, base + 3, turn_id, text=f"agent {number}"),
    ]


def _conversation(*turns: list[Span], root: bool = True) -> Call:
    spans = [s for turn in turns for s in turn]
    if root:
        spans.append(_span(1, "conversation", 0, 10 * len(turns) + 9, None, **{"conversation.id": "conv-1"}))
    call = mapper_for(KEY).assemble(KEY, spans, started_at=None, prices=PriceTable())
    assert call is not None
    return call


def _interrupted(call: Call) -> list[bool]:
    return [t.interrupted for t in call.turns if t.role == Role.AGENT]


def test_the_turn_the_pipeline_end_closed_is_not_an_interruption() -> None:
    # Pipecat 1.14 on EndFrame: the open last turn is closed with turn.was_interrupted = true.
    call = _conversation(_turn(1, interrupted=False), _turn(2, interrupted=True))
    assert _interrupted(call) == [False, False]


def test_a_barge_in_before_the_last_turn_stays_an_interruption() -> None:
    call = _conversation(_turn(1, interrupted=True), _turn(2, interrupted=False), _turn(3, interrupted=True))
    assert _interrupted(call) == [True, False, False]


def test_a_turn_flagged_as_ended_by_the_conversation_end_is_not_an_interruption() -> None:
    # The conversation span's end closes an open turn and says so; the flag is enough even before the
    # conversation span arrives (it may come in a later export).
    call = _conversation(
        _turn(1, interrupted=False),
        _turn(2, interrupted=True, **{"turn.ended_by_conversation_end": True}),
        root=False,
    )
    assert _interrupted(call) == [False, False]


def test_speech_cut_off_by_the_end_counts_when_the_tts_span_says_so() -> None:
    last = _turn(2, interrupted=True)
    tts = last[2]
    last[2] = tts.model_copy(update={"attributes": {**tts.attributes, "tts.interrupted": True}})
    call = _conversation(_turn(1, interrupted=False), last)
    assert _interrupted(call) == [False, True]


def test_an_open_conversation_keeps_the_flag_of_its_last_turn() -> None:
    # Without the conversation span the last turn seen may still be followed by one not yet exported.
    call = _conversation(_turn(1, interrupted=False), _turn(2, interrupted=True), root=False)
    assert _interrupted(call) == [False, True]
    assert call.metadata["conversation_open"] is True
