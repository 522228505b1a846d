"""Say-do consistency, loops, end reason, latency, speech rate and talk ratio on hand-built calls."""

from __future__ import annotations

from convoscope.audio.metrics import AGENT_TALK_RATIO, AGENT_WORDS_PER_MIN, RESPONSE_GAP_P50, RESPONSE_GAP_P95
from convoscope.evals.base import EvalContext
from convoscope.evals.rules.endreason import EndReasonClassification
from convoscope.evals.rules.latency import Latency, LatencyParams
from convoscope.evals.rules.loops import LoopDetection
from convoscope.evals.rules.saydo import SayDoConsistency
from convoscope.evals.rules.speech import SpeechRate, SpeechRateParams, TalkRatio
from convoscope.model.call import Call
from convoscope.model.enums import MetricSource
from convoscope.model.metric import MetricResult

from .builders import make_call, run


def statuses(call: Call) -> list[tuple[int, str, str]]:
    result = run(SayDoConsistency(), call)
    return [(c["turn_index"], c["action"], c["status"]) for c in result.evidence["claims"]]  # type: ignore[index, union-attr]


def test_claim_backed_by_successful_tool() -> None:
    call = make_call(
        ("user", "Book me Tuesday at 3pm"),
        ("agent", "Great, I've booked you for Tuesday at 3 pm."),
        tool_calls=[
            {
                "name": "book_appointment",
                "turn_index": 1,
                "arguments": {"day": "Tuesday", "time": "15:00"},
                "success": True,
            }
        ],
    )
    result = run(SayDoConsistency(), call)
    assert result.value == 1.0 and result.passed is True
    assert result.evidence["extraction"] == "patterns"
    assert statuses(call) == [(1, "book", "done")]


def test_claim_without_tool_failed_tool_and_mismatch() -> None:
    call = make_call(
        ("agent", "I've sent you the link by text."),
        ("agent", "Your appointment is confirmed for Wednesday."),
        ("agent", "I have cancelled your subscription."),
        tool_calls=[
            {"name": "book_slot", "turn_index": 1, "arguments": {"day": "Thursday"}, "success": True},
            {"name": "cancel_subscription", "turn_index": 2, "success": False},
        ],
    )
    result = run(SayDoConsistency(), call)
    assert result.value == 0.0 and result.passed is False
    assert statuses(call) == [(0, "send", "missing"), (1, "book", "mismatched"), (2, "cancel", "failed")]
    assert result.evidence["claims"][1]["detail"] == "said wednesday, tool got thursday"  # type: ignore[index]


def test_transfer_backed_by_later_tool_or_end_reason() -> None:
    tool_after = make_call(
        ("agent", "Transferring you now to billing."),
        ("agent", "One moment."),
        tool_calls=[{"name": "transferCall", "turn_index": 1}],
    )
    assert statuses(tool_after) == [(0, "transfer", "done")]
    by_end = make_call(("agent", "Let me transfer you to a specialist."), end_reason="transfer")
    assert statuses(by_end) == [(0, "transfer", "done")]
    too_late = make_call(
        ("agent", "Transferring you now."),
        ("user", "ok"),
        ("agent", "hm"),
        tool_calls=[{"name": "transfer", "turn_index": 2}],
    )
    assert statuses(too_late) == [(0, "transfer", "missing")]


def test_claim_phrasings() -> None:
    for text in ("I went ahead and scheduled that for you.", "All done, you're booked in for Friday."):
        assert statuses(make_call(("agent", text))) == [(0, "book", "missing")], text


def test_offers_questions_and_negations_are_not_claims() -> None:
    call = make_call(
        ("agent", "Would you like me to book you for Tuesday?"),
        ("agent", "I can't transfer you right now."),
        ("agent", "Once I've sent the link you'll get a text."),
        ("agent", "I haven't booked anything yet."),
    )
    result = run(SayDoConsistency(), call)
    assert result.evidence["claims"] == [] and result.value == 1.0 and result.passed is True


def test_loops_versus_a_normal_reask() -> None:
    ask = "Could you please tell me your account number?"
    reask = make_call(
        ("agent", ask), ("user", "uh"), ("agent", ask), ("user", "1234"), ("agent", "Thanks, found it.")
    )
    result = run(LoopDetection(), reask)
    assert result.value == 1 and result.passed is True
    looped = make_call(
        ("agent", ask),
        ("user", "uh"),
        ("agent", ask + "."),
        ("user", "?"),
        ("agent", "could you please tell me your account number"),
    )
    result = run(LoopDetection(), looped)
    assert result.value == 2 and result.passed is False
    assert result.evidence["repeated_utterances"][0]["turn_indices"] == [0, 2, 4]  # type: ignore[index]


def test_a_reworded_reask_of_one_slot_is_a_loop_and_parallel_questions_are_not() -> None:
    reworded = make_call(
        ("agent", "Could you repeat the account number?"),
        ("user", "4471"),
        ("agent", "Sorry, what was the account number again?"),
        ("user", "4471!"),
        ("agent", "Sorry, could you repeat the account number"),
        ("user", "4 4 7 1"),
        ("agent", "Your account number is 4471, thanks."),
    )
    result = run(LoopDetection(), reworded)
    assert result.value == 2 and result.passed is False
    assert result.evidence["repeated_utterances"][0]["turn_indices"] == [0, 2, 4]  # type: ignore[index]
    parallel = make_call(
        ("agent", "Could you spell your last name?"),
        ("user", "S M I T H"),
        ("agent", "Could you spell your first name?"),
        ("user", "J O E"),
        ("agent", "Could you spell your street name?"),
        ("user", "E L M"),
    )
    assert run(LoopDetection(), parallel).value == 0
    # the slots coincide exactly, so even a full overlap requirement groups them
    assert run(LoopDetection.from_overrides({"slot_overlap": 1.0}), reworded).value == 2
    # two-word slots ignored by their words, but "account number" is a slot concept, so still one slot
    narrow = run(LoopDetection.from_overrides({"min_slot_words": 3}), reworded)
    sentences = narrow.evidence["repeated_utterances"][0]["sentences"]  # type: ignore[index]
    assert narrow.value == 2 and "slot: account_number" in {s["why"] for s in sentences}  # type: ignore[index, union-attr]


def test_short_turns_never_loop_and_tool_loops_do() -> None:
    call = make_call(
        *[("agent", "Okay.")] * 5,
        tool_calls=[{"name": "lookup", "arguments": {"id": 1}}] * 3
        + [{"name": "lookup", "arguments": {"id": 2}}],
    )
    result = run(LoopDetection(), call)
    assert result.evidence["max_utterance_repeats"] == 0
    assert result.evidence["max_tool_repeats"] == 2
    assert result.passed is True  # two repeats of a tool call are tolerated by default
    more = make_call(("agent", "x"), tool_calls=[{"name": "lookup", "arguments": {"id": 1}}] * 4)
    assert run(LoopDetection(), more).passed is False


def test_end_reason_from_source_and_transcript() -> None:
    assert (
        run(EndReasonClassification(), make_call(("agent", "bye"), end_reason="user_hangup")).value
        == "hangup"
    )
    errored = run(EndReasonClassification(), make_call(("agent", "x"), end_reason="dial_failed"))
    assert errored.value == "error" and errored.passed is False
    voicemail = make_call(
        ("user", "Hi, you've reached Sam, please leave a message after the tone."), ("agent", "Hello?")
    )
    result = run(EndReasonClassification(), voicemail)
    assert result.value == "voicemail" and result.evidence["turn_index"] == 0
    transfer = make_call(("agent", "Sure."), ("agent", "I'm transferring you to billing."))
    assert run(EndReasonClassification(), transfer).value == "transfer"
    assert run(EndReasonClassification(), make_call()).value == "unknown"


def test_latency_from_transcript_gaps() -> None:
    # turns 2 s long; gaps 0.5 s except where set below
    call = Call.model_validate(
        {
            "source": "generic",
            "external_id": "l",
            "started_at": "2026-03-02T09:30:00Z",
            "turns": [
                {"role": "user", "text": "a", "start_s": 0.0, "end_s": 2.0},
                {"role": "agent", "text": "b", "start_s": 2.8, "end_s": 4.0},
                {"role": "user", "text": "c", "start_s": 4.5, "end_s": 6.0},
                {"role": "agent", "text": "d", "start_s": 10.0, "end_s": 11.0},
                {"role": "user", "text": "e", "start_s": 11.5, "end_s": 12.0},
                {"role": "agent", "text": "f", "start_s": 12.0, "end_s": 13.0, "e2e_s": 1.2},
            ],
        }
    )
    result = run(Latency(), call)
    # latencies 0.8 (transcript), 4.0 (transcript), 1.2 (vendor): p50 1.2, p95 = 1.2 + 0.9 * 2.8 = 3.72
    assert result.value == 1.2
    assert result.evidence["p95_s"] == 3.72
    assert result.evidence["source"] == "transcript+vendor"
    assert result.evidence["slow_turns"] == [{"turn_index": 3, "latency_s": 4.0, "source": "transcript"}]
    assert result.passed is False
    relaxed = Latency(LatencyParams(turn_max_s=None, p95_max_s=None))
    assert run(relaxed, call).passed is True


def score(metric: str, value: float) -> MetricResult:
    return MetricResult(call_id="c1", metric=metric, value=value, source=MetricSource.AUDIO)


def test_latency_prefers_audio_percentiles() -> None:
    call = make_call(("user", "a"), ("agent", "b"))
    context = EvalContext(
        scores={
            RESPONSE_GAP_P50: score(RESPONSE_GAP_P50, 2.5),
            RESPONSE_GAP_P95: score(RESPONSE_GAP_P95, 3.0),
        }
    )
    result = run(Latency(), call, context)
    assert result.value == 2.5 and result.evidence["source"] == "audio" and result.passed is False
    assert run(Latency(), make_call(("agent", "hello"))).evidence == {
        "not_scorable": "no agent reply with a latency"
    }


def test_speech_rate_from_transcript_and_audio() -> None:
    # 10 words in 2 s of agent speech, twice: 20 words / 4 s = 300 wpm
    words = "one two three four five six seven eight nine ten"
    call = make_call(("agent", words), ("user", "ok"), ("agent", words))
    result = run(SpeechRate(), call)
    assert result.value == 300.0 and result.passed is False and result.evidence["within"] == "above"
    assert run(SpeechRate(SpeechRateParams(maximum=320)), call).passed is True
    audio = EvalContext(scores={AGENT_WORDS_PER_MIN: score(AGENT_WORDS_PER_MIN, 150.0)})
    assert run(SpeechRate(), call, audio).evidence == {"source": "audio", "within": "yes"}


def test_talk_ratio_from_transcript_and_audio() -> None:
    # 3 turns of 2 s with 0.5 s gaps; duration 10 s given; agent speaks 4 s
    call = make_call(("agent", "a"), ("user", "b"), ("agent", "c"), duration_s=10.0)
    result = run(TalkRatio(), call)
    assert result.value == 0.4 and result.passed is True
    audio = EvalContext(scores={AGENT_TALK_RATIO: score(AGENT_TALK_RATIO, 0.9)})
    high = run(TalkRatio(), call, audio)
    assert high.value == 0.9 and high.passed is False and high.evidence["source"] == "audio"


def test_a_question_repeated_inside_longer_turns_is_a_loop() -> None:
    call = make_call(
        ("agent", "Happy to look into it. Which bank account is the transfer from?"),
        ("user", "The one I opened last spring."),
        ("agent", "Thanks for bearing with me. Which bank account is the transfer from? The app shows it."),
        ("user", "I have three of them."),
        ("agent", "No rush at all. Which bank account is the transfer from? I can't continue without it."),
        ("user", "Hmm."),
    )
    result = run(LoopDetection(), call)
    assert result.value == 2 and result.passed is False
    repeated = result.evidence["repeated_utterances"][0]  # type: ignore[index]
    assert repeated["turn_indices"] == [0, 2, 4]  # type: ignore[index]
    assert [s["sentence"] for s in repeated["sentences"]] == ["Which bank account is the transfer from?"] * 3  # type: ignore[index, union-attr]
    assert result.version == "7" and result.params["reset_on_progress"] is True


def test_a_slot_reasked_three_times_in_other_words_is_a_loop() -> None:
    call = make_call(
        ("agent", "What is the tracking number of the parcel?"),
        ("user", "It's a blue box."),
        ("agent", "Could you read me the parcel's tracking number?"),
        ("user", "It came yesterday."),
        ("agent", "And the tracking number on that parcel, please?"),
        ("user", "I threw the label away."),
    )
    result = run(LoopDetection(), call)
    assert result.value == 2 and result.passed is False
    # stricter slot matching than the stems allow leaves the rewordings apart
    assert run(LoopDetection.from_overrides({"slot_overlap": 1.0, "similarity": 1.0}), call).passed is False
    assert run(LoopDetection.from_overrides({"max_repeats": 2}), call).passed is True


def test_progress_courtesy_and_a_late_reask_are_not_loops() -> None:
    courtesy = make_call(
        ("agent", "Thank you, I have noted that. What time suits you for the visit?"),
        ("user", "Mornings."),
        ("agent", "Thank you, I have noted that. How many rooms need painting?"),
        ("user", "Two."),
        ("agent", "Thank you, I have noted that. Do you want us to bring dust sheets?"),
        ("user", "Yes."),
    )
    assert run(LoopDetection(), courtesy).value == 0
    offers = make_call(
        ("agent", "Your seat is changed to the aisle. Can I help with anything else?"),
        ("user", "Add a bag."),
        ("agent", "The extra bag is added to the booking. Can I help with anything else?"),
        ("user", "A meal too."),
        ("agent", "A vegetarian meal is now on your ticket. Can I help with anything else?"),
    )
    assert run(LoopDetection(), offers).passed is True
    late = make_call(
        ("agent", "What is the serial number of the boiler?"),
        ("user", "Not sure."),
        ("agent", "What is the serial number of the boiler?"),
        ("user", "Let me look later."),
        ("agent", "Fine. The engineer can come on Thursday morning."),
        ("user", "Great, and the serial is SN-4471."),
        ("agent", "What is the serial number of the boiler?"),
    )
    result = run(LoopDetection(), late)
    assert result.value == 1 and result.passed is True  # the statement in between was progress
    assert run(LoopDetection.from_overrides({"reset_on_progress": False}), late).passed is False


def test_a_statement_repeated_with_new_apologies_around_it_is_a_loop() -> None:
    """Version 4: the turn's main statement decides, so an apology or add-on does not make a turn new, and a
    merged paraphrase ("as I said, ...") of an earlier turn's two sentences still repeats it."""
    call = make_call(
        ("agent", "Our warehouse has your sofa and it leaves on Monday."),
        ("user", "Can it be sooner?"),
        ("agent", "I'm so sorry about that. Our warehouse has your sofa and it leaves on Monday."),
        ("user", "Sooner please."),
        ("agent", "I totally understand. Like I said, the sofa is at our warehouse and leaves Monday."),
        ("user", "Ugh."),
    )
    result = run(LoopDetection(), call)
    assert result.passed is False and result.value == 2
    assert run(LoopDetection.from_overrides({"min_core_words": 10, "similarity": 0.9}), call).passed is True


def test_a_slot_asked_as_question_imperative_and_need_with_synonyms_is_a_loop() -> None:
    call = make_call(
        ("agent", "When were you born?"),
        ("user", "Long ago."),
        ("agent", "Tell me your date of birth, please."),
        ("user", "Why?"),
        ("agent", "I'll need your DOB before I can go on."),
        ("user", "Hmm."),
    )
    assert run(LoopDetection(), call).passed is False


def test_new_news_after_a_repeated_courtesy_or_one_template_stays_progress() -> None:
    courtesy = make_call(
        ("agent", "I'm sorry for the wait. Your parcel left the depot this morning."),
        ("user", "And?"),
        ("agent", "I'm sorry for the wait. The driver is two stops away."),
        ("user", "And now?"),
        ("agent", "I'm sorry for the wait. Your parcel has been delivered to your porch."),
        ("user", "Thanks."),
    )
    template = make_call(
        ("agent", "I've added the white sofa to your basket."),
        ("user", "And the table."),
        ("agent", "I've added the oak coffee table to your basket."),
        ("user", "And a lamp."),
        ("agent", "I've added the floor lamp to your basket."),
        ("user", "Done."),
    )
    assert run(LoopDetection(), courtesy).passed is True
    assert run(LoopDetection(), template).passed is True
