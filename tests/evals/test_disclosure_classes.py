"""Disclosure kinds on the classes version 4 added: speech-recogniser text, new paraphrases, disclosures
buried in long turns, and Swedish, Indonesian, Vietnamese, Greek, Hindi, Arabic and Korean, with their
look-alikes and negations."""

from __future__ import annotations

import pytest

from convoscope.evals.rules._disclosures import DisclosureKind, find_kind, sentence_texts
from convoscope.evals.rules.phrases import Disclosure, DisclosureParams

from .builders import make_call, run

AI = "ai_disclosure"
RECORDING = "recording_notice"


def _met(kind: str, text: str) -> bool:
    """Whether the agent saying ``text`` in its first turn meets the kind."""
    metric = Disclosure(DisclosureParams.model_validate({"requirements": [kind]}))
    return run(metric, make_call(("agent", text), ("user", "ok"), ("agent", "Sure."))).passed is True


@pytest.mark.parametrize(
    "text",
    [
        "um hi youre speaking with uh an automated agent at northbank how can i help",
        "hello your talking to a digital assistant",
        "hi um this is the council's vir tual assistant how can i help",
        "hi hillside school im a a i assistant",
        "Hi, this is Nova, the clinic's AI receptionist.",
        "Hey there, I'm a computer-generated voice for the gym.",
    ],
)
def test_ai_disclosure_in_speech_recogniser_text_and_paraphrases(text: str) -> None:
    assert _met(AI, text), text


@pytest.mark.parametrize(
    "text",
    [
        "hi this call maybe recorded for uh training",
        "hi hillside school this call is being recordid for quality",
        "Hello, this conversation is logged and recorded.",
        "Hi, we keep a recording of this call for quality.",
        "Welcome to Harbour Insurance, calls are monitored.",
        "Hola, la llamada está siendo monitoreada.",
    ],
)
def test_recording_notice_in_speech_recogniser_text_and_paraphrases(text: str) -> None:
    assert _met(RECORDING, text), text


def test_disclosure_buried_in_a_long_unpunctuated_turn() -> None:
    long_turn = (
        "hi thanks for calling northgrid energy we have had some outages in your area today um just so you "
        "know i am a bot uh and i can help with bills meter readings and outages so what do you need"
    )
    assert _met(AI, long_turn)
    # a rejected earlier match ("this is ... calling") does not hide the disclosure after it
    assert _met(AI, "good morning this is brightsmile dental calling i'm an automated assistant")
    assert _met(
        RECORDING,
        "hi brightsmile dental um we're open till six today and our calls are recorded for training so go on",
    )


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (AI, "Hej, du pratar med en automatiserad agent hos kommunen."),
        (AI, "Hej, jag är en AI-assistent för kommunen."),
        (AI, "Halo, saya adalah asisten virtual dari Asuransi Harbour."),
        (AI, "Chào quý khách, quý khách đang nói chuyện với tổng đài tự động."),
        (AI, "Xin chào, tôi là trợ lý ảo của phòng gym."),
        (AI, "Γεια σας, είμαι ένας ψηφιακός βοηθός του σχολείου."),
        (AI, "namaste main northbank ki AI sahayak hoon"),
        (AI, "aap ek automated agent se baat kar rahe hain"),
        (AI, "नमस्ते, मैं ब्राइटस्माइल डेंटल की वर्चुअल असिस्टेंट हूँ।"),
        (AI, "مرحبا، أنا مساعد افتراضي من شركة الكهرباء."),
        (AI, "안녕하세요, 저는 그랜드 호텔의 AI 상담원입니다."),
        (RECORDING, "Hej, samtalet spelas in för kvalitetssäkring."),
        (RECORDING, "Halo, panggilan ini mungkin direkam untuk kualitas layanan."),
        (RECORDING, "Xin chào, cuộc gọi này có thể được ghi âm."),
        (RECORDING, "Καλημέρα, η κλήση καταγράφεται για λόγους ποιότητας."),
        (RECORDING, "namaste yeh call quality ke liye record ki ja sakti hai"),
        (RECORDING, "यह कॉल गुणवत्ता के लिए रिकॉर्ड की जा सकती है।"),
        (RECORDING, "مرحبا، قد يتم تسجيل هذه المكالمة لأغراض الجودة."),
        (RECORDING, "안녕하세요, 이 통화는 품질 향상을 위해 녹음됩니다."),
    ],
)
def test_kinds_in_the_added_languages(kind: str, text: str) -> None:
    assert _met(kind, text), text


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (AI, "Hi, please hold, you're in a virtual queue."),
        (AI, "Good evening, I'm Priya, the assistant manager on duty."),
        (AI, "hi um no i'm not a robot i'm dan from the front desk"),
        (AI, "Hello, I'm transferring you to our virtual assistant now."),
        (AI, "Hej, jag är inte en robot, jag heter Erik."),
        (AI, "Halo, saya bukan robot."),
        (AI, "Xin chào, tôi không phải là robot, tôi là thợ máy."),
        (AI, "Δεν είμαι ρομπότ."),
        (AI, "main robot nahi hoon, main branch se rahul bol raha hoon"),
        (AI, "मैं रोबोट नहीं हूँ, मैं रिसेप्शन से प्रिया हूँ।"),
        (AI, "مرحبا، أنا لست روبوتا، أنا موظف في البلدية."),
        (AI, "안녕하세요, 저는 로봇이 아닙니다. 프런트 직원입니다."),
        (AI, "AI 비서와 통화하시겠습니까?"),
        (RECORDING, "Hi, I've recorded your meter reading of 4 5 2 1."),
        (RECORDING, "hi um just so you know this call is not being recorded"),
        (RECORDING, "Hi, I listened to the recording of your previous call about the claim."),
        (RECORDING, "I'll call you back once I've recorded the fault."),
        (RECORDING, "Halo, panggilan ini tidak direkam."),
        (RECORDING, "Samtalet spelas inte in."),
        (RECORDING, "call record nahi hoti"),
        (RECORDING, "यह कॉल रिकॉर्ड नहीं की जाती है।"),
        (RECORDING, "هذه المكالمة غير مسجلة."),
        (RECORDING, "이 통화는 녹음되지 않습니다."),
    ],
)
def test_look_alikes_and_negations_in_the_added_classes(kind: str, text: str) -> None:
    assert not _met(kind, text), text


def test_caller_saying_it_in_an_added_language_does_not_count() -> None:
    metric = Disclosure(DisclosureParams.model_validate({"requirements": [AI]}))
    call = make_call(("agent", "नमस्ते।"), ("user", "मैं जानता हूँ कि आप एक एआई असिस्टेंट हैं।"), ("agent", "बताइए।"))
    assert run(metric, call).passed is False


def test_sentences_without_latin_words_are_kept() -> None:
    assert sentence_texts("안녕하세요. 저는 AI 상담원입니다.") == ("안녕하세요.", "저는 AI 상담원입니다.")
    assert sentence_texts("नमस्ते। मैं एक एआई सहायक हूँ।") == ("नमस्ते।", "मैं एक एआई सहायक हूँ।")
    hit = find_kind(DisclosureKind.RECORDING_NOTICE, "이 통화는 녹음됩니다.", max_gap=6)
    assert hit is not None and "녹음" in hit.matched


def test_max_gap_still_bounds_fillers() -> None:
    text = "i'm um uh er a bot"
    assert _met(AI, text)
    metric = Disclosure(DisclosureParams.model_validate({"requirements": [AI], "max_gap": 2}))
    assert run(metric, make_call(("agent", text))).passed is False
