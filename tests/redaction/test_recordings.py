"""Recordings under redaction: real stereo WAV files uploaded with their call, muted over the masked
words on the speaker's channel and left sample for sample as they were elsewhere, or not kept at all."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import soundfile as sf

from convoscope.model import Recording
from convoscope.model.blob_ref import stored_sha

from .conftest import AGENT, REDACT_ON, Live

RATE = 8000
SECONDS = 8.0
USER_WORDS = "my number is five five five eight six seven five three oh nine thanks".split()
PADDING_S = 0.05


def _noise_wav() -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(7)
    samples = rng.integers(-8000, 8000, size=(int(RATE * SECONDS), 2), dtype=np.int16)
    samples[samples == 0] = 1  # no sample is silent by chance
    out = io.BytesIO()
    sf.write(out, samples, RATE, format="WAV", subtype="PCM_16")
    return out.getvalue(), samples


def _call() -> dict[str, Any]:
    words = [
        {"word": word, "start_s": 2.0 + 0.4 * i, "end_s": 2.0 + 0.4 * i + 0.3}
        for i, word in enumerate(USER_WORDS)
    ]
    return {
        "source": "generic",
        "external_id": "recorded",
        "started_at": "2026-12-01T10:00:00Z",
        "turns": [
            {"role": "agent", "text": AGENT, "start_s": 0.2, "end_s": 1.6},
            {
                "role": "user",
                "text": " ".join(USER_WORDS),
                "start_s": 2.0,
                "end_s": words[-1]["end_s"],
                "words": words,
            },
        ],
    }


def _upload(live: Live, wav: bytes) -> None:
    response = live.post(
        "/api/v1/calls",
        files={"recording": ("call.wav", wav, "audio/wav")},
        data={"call": json.dumps(_call()), "channel_map": "user,agent"},
    )
    assert response.status_code == 202, response.text
    live.process()


def _muted_span() -> tuple[int, int]:
    """The samples of the spoken number (words 3 to 12), padded as the setting says."""
    start_s = 2.0 + 0.4 * 3 - PADDING_S
    end_s = 2.0 + 0.4 * 12 + 0.3 + PADDING_S
    return int(np.floor(start_s * RATE)), int(np.ceil(end_s * RATE))


def test_a_recording_is_muted_over_the_masked_words_on_the_speakers_channel(live: Live) -> None:
    live.redact({**REDACT_ON, "mute_padding_s": PADDING_S})
    wav, original = _noise_wav()
    uploaded = live.services.blobs.put(wav)
    _upload(live, wav)
    (stored,) = live.calls()
    user = stored["call"]["turns"][1]
    assert user["text"] == "my number is [phone] thanks"
    recording = Recording.model_validate(stored["call"]["recordings"][0])
    sha = stored_sha(recording)
    assert sha is not None and sha != uploaded
    assert not live.services.blobs.exists(uploaded), "the unmuted upload is still kept"
    muted, rate = sf.read(io.BytesIO(live.services.blobs.read(sha)), dtype="int16", always_2d=True)
    assert rate == RATE and muted.shape == original.shape
    first, last = _muted_span()
    assert np.all(muted[first:last, 0] == 0)
    # Everything else is exactly as uploaded: the user's channel around the number, the agent's channel.
    assert np.array_equal(muted[:first, 0], original[:first, 0])
    assert np.array_equal(muted[last:, 0], original[last:, 0])
    assert np.array_equal(muted[:, 1], original[:, 1])
    # Muted by the masked words, not by the text only: the words "my number is" are not silent.
    assert np.all(muted[int(2.0 * RATE) : first - 1, 0] != 0)


def test_a_project_that_drops_recordings_keeps_none(live: Live) -> None:
    live.redact({**REDACT_ON, "recordings": "drop"})
    wav, _ = _noise_wav()
    uploaded = live.services.blobs.put(wav)
    _upload(live, wav)
    (stored,) = live.calls()
    assert stored["call"]["recordings"] == []
    assert not live.services.blobs.exists(uploaded)
    assert not any(p.is_file() for p in (live.data_dir / "blobs").rglob("*"))


def test_keep_stores_the_audio_as_sent(live: Live) -> None:
    live.redact({**REDACT_ON, "recordings": "keep"})
    wav, _ = _noise_wav()
    uploaded = live.services.blobs.put(wav)
    _upload(live, wav)
    (stored,) = live.calls()
    assert stored_sha(Recording.model_validate(stored["call"]["recordings"][0])) == uploaded
    assert stored["call"]["turns"][1]["text"] == "my number is [phone] thanks"
