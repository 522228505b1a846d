"""The analysis document: segments, events and metrics of a generated recording, its schema, its params."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import convoscope.audio
from convoscope.audio import (
    AnalysisParams,
    TurnTakingAnalysis,
    analyze_audio,
    load_recording,
    parse_overrides,
)
from convoscope.audio.metrics import OVERLAP_METRICS, VENDOR_E2E_MINUS_AUDIO_GAP
from convoscope.audio.report import analysis_json_schema
from convoscope.errors import InputError
from convoscope.model import Role
from convoscope.testing import make_call, stereo_wav_bytes

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schema" / "turn-taking.json"
USER = [(0.5, 2.0), (4.0, 6.0)]
AGENT = [(2.6, 3.8), (5.2, 7.5)]
WEBRTC = AnalysisParams().with_overrides({"backend": "webrtc"})


def _analysis(**kwargs: object) -> TurnTakingAnalysis:
    wav = stereo_wav_bytes(left=USER, right=AGENT, duration_s=8.0, noise_db=-60)
    audio = load_recording(wav, channel_map=[Role.USER, Role.AGENT])
    return analyze_audio(audio, call_id="c1", params=WEBRTC, **kwargs)  # type: ignore[arg-type]


def _close(
    actual: list[tuple[float, float]], expected: list[tuple[float, float]], tol_s: float = 0.02
) -> None:
    assert len(actual) == len(expected), (actual, expected)
    for (a0, a1), (e0, e1) in zip(actual, expected, strict=True):
        assert abs(a0 - e0) <= tol_s and abs(a1 - e1) <= tol_s, (actual, expected)


def test_document_has_known_segments_events_and_metrics() -> None:
    doc = _analysis()
    _close(doc.segments[Role.USER], USER)
    _close(doc.segments[Role.AGENT], AGENT)
    assert doc.overlap_scorable and doc.events is not None
    _close([g.interval for g in doc.events.gaps], [(2.0, 2.6), (3.8, 4.0)])
    assert [(g.from_role, g.to_role) for g in doc.events.gaps] == [
        (Role.USER, Role.AGENT),
        (Role.AGENT, Role.USER),
    ]
    assert [(i.interrupter, i.floor_taken) for i in doc.events.interruptions] == [(Role.AGENT, True)]
    _close(doc.events.talk_over, [(5.2, 6.0)])
    values = {m.metric.removeprefix("turn_taking."): m.value for m in doc.metrics}
    assert values["agent_interruptions"] == 1.0
    assert values["user_interruptions"] == 0.0
    assert values["talk_over_s"] == pytest.approx(0.8, abs=0.03)
    assert values["first_response_s"] == pytest.approx(2.6, abs=0.02)
    # Two responses: 2.6 - 2.0 = 0.6 s and 5.2 - 6.0 = -0.8 s; the median is their mean.
    assert values["response_gap_p50_s"] == pytest.approx(-0.1, abs=0.03)
    assert values["agent_clipping"] == 0.0
    assert doc.params.vad.backend == "webrtc"
    assert all(m.params["vad"]["backend"] == "webrtc" for m in doc.metrics)  # type: ignore[index,call-overload]


def test_json_output_validates_against_the_published_schema() -> None:
    published = json.loads(SCHEMA_PATH.read_text())
    assert published == analysis_json_schema(), "run scripts/gen-docs"
    document = json.loads(_analysis(transcript=make_call()).model_dump_json())
    jsonschema.Draft202012Validator.check_schema(published)
    jsonschema.validate(document, published, format_checker=jsonschema.FormatChecker())
    assert set(document) >= {"segments", "events", "metrics", "params"}
    broken = {**document, "segments": {"user": [[0.5]]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, published)


def test_vendor_latency_difference_has_per_turn_evidence() -> None:
    # The transcript's third turn (agent, 5.2-6.9 s) reports e2e 0.9 s; it overlaps the audio agent turn
    # at 5.2 s, which answers the user turn ending at 6.0 s: audio gap -0.8 s, difference 1.7 s.
    doc = _analysis(transcript=make_call())
    result = next(m for m in doc.metrics if m.metric == VENDOR_E2E_MINUS_AUDIO_GAP)
    assert result.value == pytest.approx(1.7, abs=0.03)
    pairs = result.evidence["pairs"]
    assert isinstance(pairs, list) and len(pairs) == 1
    assert pairs[0]["transcript_turn_index"] == 2  # type: ignore[index,call-overload]


def test_single_track_analysis_is_not_scorable() -> None:
    wav = stereo_wav_bytes(left=USER, right=AGENT, duration_s=8.0)
    audio = load_recording(wav, channel_map=None, mono_role=Role.AGENT)
    doc = analyze_audio(audio, call_id="mono", params=WEBRTC)
    assert not doc.overlap_scorable and doc.events is None
    assert [m.metric for m in doc.metrics] == list(OVERLAP_METRICS)
    assert all(m.value is None and "not_scorable" in m.evidence for m in doc.metrics)
    assert list(doc.segments) == [Role.AGENT] and doc.segments[Role.AGENT]


def test_overrides_flat_dotted_and_nested() -> None:
    params = AnalysisParams().with_overrides(
        {"long_silence_s": "5", "vad.min_speech_s": 0.05, "turn_taking": {"backchannel_max_s": 0.8}}
    )
    assert params.turn_taking.long_silence_s == 5.0
    assert params.vad.min_speech_s == 0.05
    assert params.turn_taking.backchannel_max_s == 0.8
    # A new threshold moves the derived hysteresis threshold with it; an explicit one is kept.
    assert AnalysisParams().with_overrides({"threshold": "0.7"}).vad.neg_threshold == pytest.approx(0.55)
    explicit = AnalysisParams().with_overrides({"neg_threshold": 0.2}).with_overrides({"threshold": 0.6})
    assert explicit.vad.neg_threshold == 0.2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"no_such_knob": 1}, "unknown analysis parameter 'no_such_knob'"),
        ({"vad.long_silence_s": 1}, "unknown analysis parameter 'vad.long_silence_s'"),
        ({"long_silence_s": "-3"}, "long_silence_s"),
        ({"backend": "magic"}, "backend"),
        ({"threshold": None}, "threshold: expected a number"),
        ({"vad": {"threshold": "high"}}, "threshold: expected a number"),
        ({"turn_taking": {"nope": 1}}, "unknown analysis parameter 'turn_taking.nope'"),
    ],
)
def test_bad_overrides_name_the_parameter(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        AnalysisParams().with_overrides(overrides)


def test_parse_overrides() -> None:
    assert parse_overrides(["a=1", " b = x "]) == {"a": "1", "b": "x"}
    with pytest.raises(InputError, match="NAME=VALUE"):
        parse_overrides(["threshold"])


def test_public_names_resolve_and_are_sorted() -> None:
    names = list(convoscope.audio.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        assert getattr(convoscope.audio, name) is not None
