"""load_recording: every format and rate becomes per-role float32 tracks at 16 kHz; bad input is refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from convoscope.audio.load import LoadedAudio, load_recording
from convoscope.errors import AudioFormatError
from convoscope.model import Role

USER_HZ = 440.0
AGENT_HZ = 880.0


def _tone(freq_hz: float, seconds: float, rate_hz: int) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return 0.4 * np.sin(2 * np.pi * freq_hz * t)


def _stereo(seconds: float, rate_hz: int) -> npt.NDArray[np.float64]:
    return np.stack([_tone(USER_HZ, seconds, rate_hz), _tone(AGENT_HZ, seconds, rate_hz)], axis=1)


def _peak_hz(track: npt.NDArray[np.float32], rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(track * np.hanning(len(track))))
    return float(np.fft.rfftfreq(len(track), 1 / rate_hz)[int(np.argmax(spectrum))])


def _write(path: Path, audio: npt.NDArray[np.float64], rate_hz: int, fmt: str, subtype: str) -> Path:
    sf.write(path, audio, rate_hz, format=fmt, subtype=subtype)
    return path


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix", "rate_hz"),
    [
        ("WAV", "PCM_16", "wav", 16000),
        ("WAV", "PCM_24", "wav", 48000),
        ("WAV", "PCM_32", "wav", 44100),
        ("WAV", "FLOAT", "wav", 24000),
        ("WAV", "ULAW", "wav", 8000),
        ("WAV", "ALAW", "wav", 8000),
        ("FLAC", "PCM_16", "flac", 22050),
        ("OGG", "VORBIS", "ogg", 16000),
        ("MP3", "MPEG_LAYER_III", "mp3", 44100),
    ],
)
def test_every_format_loads_with_roles_on_the_right_channels(
    tmp_path: Path, fmt: str, subtype: str, suffix: str, rate_hz: int
) -> None:
    path = _write(tmp_path / f"call.{suffix}", _stereo(1.0, rate_hz), rate_hz, fmt, subtype)
    loaded = load_recording(path, channel_map=[Role.USER, Role.AGENT])
    assert loaded.rate_hz == 16000
    assert loaded.original_rate_hz == rate_hz
    assert loaded.roles == (Role.USER, Role.AGENT)
    assert loaded.sources == (str(path),)
    assert loaded.formats[0].format == fmt.lower()
    # MP3 frames add encoder delay and padding; everything else keeps the exact length.
    assert loaded.duration_s == pytest.approx(1.0, abs=0.06 if fmt == "MP3" else 1e-3)
    for role, freq_hz in ((Role.USER, USER_HZ), (Role.AGENT, AGENT_HZ)):
        track = loaded.tracks[role]
        assert track.dtype == np.float32
        assert len(track) == len(loaded.tracks[Role.USER])
        assert _peak_hz(track, loaded.rate_hz) == pytest.approx(freq_hz, abs=2.0)


@pytest.mark.parametrize("rate_hz", [8000, 16000, 22050, 24000, 44100, 48000])
def test_every_common_rate_is_resampled_keeping_duration_and_pitch(tmp_path: Path, rate_hz: int) -> None:
    path = _write(tmp_path / "call.wav", _stereo(2.0, rate_hz), rate_hz, "WAV", "PCM_16")
    loaded = load_recording(path, channel_map={0: Role.USER, 1: Role.AGENT})
    assert len(loaded.tracks[Role.USER]) == pytest.approx(32000, abs=1)
    assert loaded.duration_s == pytest.approx(2.0, abs=1e-4)
    assert _peak_hz(loaded.tracks[Role.USER], 16000) == pytest.approx(USER_HZ, abs=1.0)
    assert _peak_hz(loaded.tracks[Role.AGENT], 16000) == pytest.approx(AGENT_HZ, abs=1.0)
    rms = float(np.sqrt(np.mean(loaded.tracks[Role.USER][1000:-1000] ** 2)))
    assert rms == pytest.approx(0.4 / np.sqrt(2), rel=0.02)


def test_target_rate_is_configurable(tmp_path: Path) -> None:
    path = _write(tmp_path / "call.wav", _stereo(1.0, 44100), 44100, "WAV", "PCM_16")
    loaded = load_recording(path, channel_map=[Role.AGENT, Role.USER], target_rate_hz=8000)
    assert len(loaded.tracks[Role.AGENT]) == 8000
    assert _peak_hz(loaded.tracks[Role.AGENT], 8000) == pytest.approx(USER_HZ, abs=1.0)


def test_bytes_load_like_files() -> None:
    buffer = io.BytesIO()
    sf.write(buffer, _stereo(0.5, 16000), 16000, format="WAV", subtype="PCM_16")
    loaded = load_recording(buffer.getvalue(), channel_map=[Role.USER, Role.AGENT])
    assert loaded.sources == ("recording",)
    assert loaded.duration_s == pytest.approx(0.5)


def test_pair_of_mono_files_is_padded_to_the_longer(tmp_path: Path) -> None:
    user = _write(tmp_path / "user.wav", _tone(USER_HZ, 1.5, 8000), 8000, "WAV", "PCM_16")
    agent = _write(tmp_path / "agent.flac", _tone(AGENT_HZ, 2.0, 48000), 48000, "FLAC", "PCM_24")
    loaded = load_recording(user, second=agent, channel_map=[Role.USER, Role.AGENT])
    assert loaded.sources == (str(user), str(agent))
    assert loaded.duration_s == pytest.approx(2.0, abs=1e-3)
    assert loaded.padded_s[Role.USER] == pytest.approx(0.5, abs=1e-3)
    assert loaded.padded_s[Role.AGENT] == 0.0
    assert np.all(loaded.tracks[Role.USER][24100:] == 0.0)
    assert _peak_hz(loaded.tracks[Role.USER][:24000], 16000) == pytest.approx(USER_HZ, abs=1.0)
    assert _peak_hz(loaded.tracks[Role.AGENT], 16000) == pytest.approx(AGENT_HZ, abs=1.0)


def test_clock_offset_moves_audio_onto_call_time(tmp_path: Path) -> None:
    path = _write(tmp_path / "call.wav", _stereo(1.0, 16000), 16000, "WAV", "PCM_16")
    late = load_recording(path, channel_map=[Role.USER, Role.AGENT], offset_s=0.25)
    assert late.offset_s == 0.25
    assert late.duration_s == pytest.approx(1.25)
    assert np.all(late.tracks[Role.USER][:4000] == 0.0)
    assert np.abs(late.tracks[Role.USER][4000:4100]).max() > 0.1
    early = load_recording(path, channel_map=[Role.USER, Role.AGENT], offset_s=-0.5)
    assert early.duration_s == pytest.approx(0.5)
    with pytest.raises(AudioFormatError, match="removes the whole recording"):
        load_recording(path, channel_map=[Role.USER, Role.AGENT], offset_s=-2.0)


def test_mono_analysis_is_explicit_and_not_overlap_scorable(tmp_path: Path) -> None:
    path = _write(tmp_path / "mixed.wav", _tone(USER_HZ, 1.0, 16000), 16000, "WAV", "PCM_16")
    loaded = load_recording(path, channel_map=None, mono_role=Role.AGENT)
    assert isinstance(loaded, LoadedAudio)
    assert loaded.roles == (Role.AGENT,)
    assert loaded.overlap_scorable is False


@pytest.mark.parametrize("channel_map", [None, [], {}])
def test_missing_channel_map_is_not_scorable(tmp_path: Path, channel_map: object) -> None:
    path = _write(tmp_path / "call.wav", _stereo(0.5, 16000), 16000, "WAV", "PCM_16")
    with pytest.raises(
        AudioFormatError, match="channel map unknown: not scorable for overlap metrics"
    ) as err:
        load_recording(path, channel_map=channel_map)  # type: ignore[arg-type]
    assert "call.wav" in str(err.value)


def test_channel_map_of_the_wrong_size_names_file_and_counts(tmp_path: Path) -> None:
    path = _write(tmp_path / "call.wav", _stereo(0.5, 16000), 16000, "WAV", "PCM_16")
    with pytest.raises(AudioFormatError, match=r"call\.wav.*names 3 channels but the recording has 2"):
        load_recording(path, channel_map=[Role.USER, Role.AGENT, Role.SYSTEM])
    with pytest.raises(AudioFormatError, match=r"names 1 channels but the recording has 2"):
        load_recording(path, channel_map=[Role.USER])
    with pytest.raises(AudioFormatError, match="same role"):
        load_recording(path, channel_map=[Role.USER, Role.USER])
    with pytest.raises(AudioFormatError, match=r"0\.\.1"):
        load_recording(path, channel_map={0: Role.USER, 5: Role.AGENT})


def test_mono_file_where_stereo_is_needed(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.wav", _tone(USER_HZ, 0.5, 16000), 16000, "WAV", "PCM_16")
    with pytest.raises(AudioFormatError, match=r"one\.wav: the recording is mono") as err:
        load_recording(path, channel_map=[Role.USER, Role.AGENT])
    assert "stereo file or a pair of mono files" in str(err.value)


def test_pair_member_must_be_mono(tmp_path: Path) -> None:
    user = _write(tmp_path / "user.wav", _tone(USER_HZ, 0.5, 16000), 16000, "WAV", "PCM_16")
    both = _write(tmp_path / "both.wav", _stereo(0.5, 16000), 16000, "WAV", "PCM_16")
    with pytest.raises(AudioFormatError, match=r"both\.wav: a pair of recordings must be mono"):
        load_recording(user, second=both, channel_map=[Role.USER, Role.AGENT])
    with pytest.raises(AudioFormatError, match=r"names 1 files but the recording has 2"):
        load_recording(user, second=user, channel_map=[Role.USER])


def _wav_header(rate_hz: int, data_bytes: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate_hz, rate_hz * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def test_bad_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    good = io.BytesIO()
    sf.write(good, _stereo(0.5, 16000), 16000, format="WAV", subtype="PCM_16")
    cases = {
        "truncated.wav": (good.getvalue()[:-4000], "truncated"),
        "empty.wav": (b"", "empty"),
        "silent.wav": (_wav_header(16000, 0), "no audio frames"),
        "zero_rate.wav": (_wav_header(0, 3200) + bytes(3200), ""),
        "photo.wav": (b"\xff\xd8\xff\xe0" + bytes(2000), "not a readable audio file"),
        "cut.flac": (b"fLaC" + bytes(10), ""),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(AudioFormatError) as err:
            load_recording(path, channel_map=[Role.USER, Role.AGENT])
        assert name in str(err.value)
        assert reason in str(err.value)


def test_missing_file_is_an_audio_format_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match=r"nowhere\.wav: cannot read"):
        load_recording(tmp_path / "nowhere.wav", channel_map=[Role.USER, Role.AGENT])


def test_truncated_flac_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    sf.write(buffer, _stereo(2.0, 16000), 16000, format="FLAC", subtype="PCM_16")
    path = tmp_path / "short.flac"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(AudioFormatError, match=r"short\.flac: truncated"):
        load_recording(path, channel_map=[Role.USER, Role.AGENT])
