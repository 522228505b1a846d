"""Voice conditions: noise beds, SNR mixing through the telephone codec, and network impairment."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from convoscope.errors import ConvoscopeError
from convoscope.simulate.voice.codec import FRAME_SAMPLES, SAMPLE_RATE, Pcm, decode_ulaw, encode_ulaw
from convoscope.simulate.voice.conditions import (
    DEFAULT_SNR_DB,
    NOISE_KINDS,
    NOISE_VARIANTS,
    ConditionsError,
    Impairer,
    Mixer,
    NetworkSpec,
    NoiseBed,
    NoiseSpec,
    active_speech_mask,
    measure_snr,
    noise_gain,
    parse_network,
    parse_noise,
    reference_level,
    speech_level,
)
from convoscope.simulate.voice.speech import VoiceSpec, render_speech

Floats = npt.NDArray[np.float64]

LINES = (
    "Hi, I'd like to check the balance on my savings account, please.",
    "It ends in four four seven two, and the card was issued last March.",
    "No, I haven't moved. The address is still twelve Elm Street.",
    "Could you also tell me when the next statement goes out?",
    "Thanks, that's all.",
)


def _tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> Floats:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def _psd(x: Floats) -> tuple[Floats, Floats]:
    """Welch power spectrum over 1024-sample Hann windows."""
    segments = x[: len(x) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024)
    power = np.mean(np.abs(np.fft.rfft(segments, axis=1)) ** 2, axis=0)
    return np.fft.rfftfreq(1024, 1 / SAMPLE_RATE).astype(np.float64), np.asarray(power, dtype=np.float64)


def _runs(flags: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Lengths of the runs of consecutive True values."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return (edges[1::2] - edges[::2]).astype(np.int64)


@pytest.fixture(scope="module")
def noise_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 44.1 kHz stereo recording of a hum and two different rumbles, 7.3 s: the file bed must mix it
    down, resample it and loop it."""
    rate = 44100
    rng = np.random.default_rng(1)
    left = np.cumsum(rng.standard_normal(round(7.3 * rate))) * 0.002
    right = np.cumsum(rng.standard_normal(round(7.3 * rate))) * 0.002
    left -= np.convolve(left, np.ones(441) / 441, mode="same")  # keep the rumble off DC
    right -= np.convolve(right, np.ones(441) / 441, mode="same")
    hum = _tone(180.0, 7.3, rate, 0.05)
    path = tmp_path_factory.mktemp("noise") / "cafe.wav"
    sf.write(path, np.stack([left + hum, right + hum], axis=1), rate)
    return path


@pytest.fixture(scope="module")
def caller() -> tuple[Pcm, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """About 85 s of a caller's lines with pauses between them, at an active level of 3000 (about
    -21 dBFS, leaving headroom for 0 dB SNR): the samples, where speech was active, and where the caller
    was silent. Long and interleaved so that beds whose level swells (street, babble) are sampled evenly
    during speech and between lines."""
    gaps = (0.6, 1.1, 0.8)
    pieces: list[Pcm] = [np.zeros(4000, dtype=np.int16)]
    silent: list[npt.NDArray[np.bool_]] = [np.ones(4000, dtype=np.bool_)]
    for i in range(4 * len(LINES)):
        line = render_speech(LINES[i % len(LINES)])
        gap = np.zeros(round(gaps[i % len(gaps)] * SAMPLE_RATE), dtype=np.int16)
        pieces += [line, gap]
        silent += [np.zeros(len(line), dtype=np.bool_), np.ones(len(gap), dtype=np.bool_)]
    track = np.concatenate(pieces)
    scaled = np.rint(track * (3000.0 / speech_level(track))).astype(np.int16)
    return scaled, active_speech_mask(scaled), np.concatenate(silent)


# ------------------------------------------------------------------------------------------ parse_noise


def test_parse_noise_reads_kind_and_snr_with_a_default() -> None:
    assert parse_noise("pink:15") == NoiseSpec("pink", 15.0)
    assert parse_noise(" Babble:-2.5 ") == NoiseSpec("babble", -2.5)
    assert parse_noise("street") == NoiseSpec("street", DEFAULT_SNR_DB)
    assert str(parse_noise("office:7")) == "office:7"


def test_parse_noise_reads_a_file_relative_to_base_dir_and_colons_in_its_name(
    noise_file: Path, tmp_path: Path
) -> None:
    relative = parse_noise(f"file:{noise_file.name}:12", base_dir=noise_file.parent)
    assert relative == NoiseSpec("file", 12.0, noise_file)
    made = NoiseBed(NoiseSpec("file", 12.0, Path(noise_file.name)), seed=1, base_dir=noise_file.parent)
    np.testing.assert_array_equal(made.next(800), NoiseBed(relative, seed=1).next(800))
    assert parse_noise(f"file:{noise_file}") == NoiseSpec("file", DEFAULT_SNR_DB, noise_file)
    odd = tmp_path / "take:2.wav"
    sf.write(odd, _tone(300.0, 1.0, 8000), 8000)
    assert parse_noise(f"file:{odd}").path == odd
    assert parse_noise(f"file:{odd}:30") == NoiseSpec("file", 30.0, odd)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("traffic:10", "unknown noise kind 'traffic'"),
        ("", "noise is empty"),
        ("pink:loud", "SNR 'loud' is not a number"),
        ("pink:nan", "SNR 'nan' is not a number"),
        ("pink:61", "SNR 61 dB is outside -5..60 dB"),
        ("white:-6", "SNR -6 dB is outside -5..60 dB"),
        ("pink:10:3", "more than one ':'"),
        ("file:", "needs a path"),
    ],
)
def test_parse_noise_rejects_bad_settings_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConditionsError, match=message) as raised:
        parse_noise(text)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, ConvoscopeError)


def test_parse_noise_rejects_files_that_are_not_usable_audio(tmp_path: Path) -> None:
    with pytest.raises(ConditionsError, match="does not exist"):
        parse_noise("file:missing.wav:10", base_dir=tmp_path)
    with pytest.raises(ConditionsError, match="is not a file"):
        parse_noise(f"file:{tmp_path}")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all" * 8)
    with pytest.raises(ConditionsError, match="cannot be read as audio"):
        parse_noise(f"file:{garbage}:10")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 8000)
    with pytest.raises(ConditionsError, match="has no audio"):
        parse_noise(f"file:{empty}")
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(16000), 16000)
    with pytest.raises(ConditionsError, match="is silent"):
        parse_noise(f"file:{silent}")


def test_noise_spec_checks_itself() -> None:
    with pytest.raises(ConditionsError, match="needs a path"):
        NoiseSpec("file", 10.0)
    with pytest.raises(ConditionsError, match="takes no path"):
        NoiseSpec("pink", 10.0, Path("x.wav"))
    with pytest.raises(ConditionsError, match="outside"):
        NoiseSpec("pink", 80.0)


# ------------------------------------------------------------------------------------------- noise beds


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_bed_is_a_deterministic_seamless_unit_rms_stream(kind: str) -> None:
    bed = NoiseBed(NoiseSpec(kind), seed=7)
    size = bed.loop_samples
    seam = size - bed.loop_position
    stream = np.concatenate([bed.next(100), bed.next(60), bed.next(2 * size)]).astype(np.float64)
    twin = NoiseBed(NoiseSpec(kind), seed=7).next(len(stream)).astype(np.float64)
    np.testing.assert_array_equal(stream, twin)
    assert math.sqrt(np.mean(stream[:size] ** 2)) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_array_equal(stream[:size], stream[size : 2 * size])
    steps = np.abs(np.diff(stream))
    assert steps[seam - 1] <= np.quantile(steps, 0.999), "a click where the loop wraps"
    for other in (8, 7 + NOISE_VARIANTS):
        different = NoiseBed(NoiseSpec(kind), seed=other).next(4000)
        assert abs(np.corrcoef(stream[:4000], different)[0, 1]) < 0.3


@pytest.mark.parametrize(("kind", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_coloured_noise_has_its_spectral_slope(kind: str, slope: float) -> None:
    freqs, power = _psd(NoiseBed(NoiseSpec(kind), seed=1).next(8 * SAMPLE_RATE).astype(np.float64))
    band = (freqs >= 100) & (freqs <= 3000)
    fitted = np.polyfit(np.log10(freqs[band]), np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.15)


def _frame_levels(x: Floats) -> Floats:
    frames = x[: len(x) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    return np.asarray(np.sqrt(np.mean(frames**2, axis=1)), dtype=np.float64)


def test_babble_is_overlapping_talkers() -> None:
    babble = NoiseBed(NoiseSpec("babble"), seed=2).next(20 * SAMPLE_RATE).astype(np.float64)
    pink = NoiseBed(NoiseSpec("pink"), seed=2).next(20 * SAMPLE_RATE).astype(np.float64)
    talker = render_speech(LINES[0]).astype(np.float64)
    talker /= math.sqrt(np.mean(talker**2))

    def gaps(x: Floats) -> float:
        return float(np.mean(_frame_levels(x) < 10 ** (-15 / 20)))

    def fluctuation(x: Floats) -> float:
        levels = _frame_levels(x)
        return float(levels.std() / levels.mean())

    # One talker pauses between words; six of them fill each other's pauses, but still come and go
    # like speech rather than hissing steadily like coloured noise.
    assert gaps(talker) > 0.1
    assert gaps(babble) < 0.02
    assert fluctuation(pink) < 0.25 < fluctuation(babble) < fluctuation(talker)
    freqs, power = _psd(babble)
    assert power[freqs < 1000].sum() / power.sum() > 0.6


def test_street_is_low_rumble_with_passing_swells() -> None:
    street = NoiseBed(NoiseSpec("street"), seed=4).next(20 * SAMPLE_RATE).astype(np.float64)
    freqs, power = _psd(street)
    assert power[freqs < 500].sum() / power.sum() > 0.7
    half_seconds = 20 * np.log10(_frame_levels(street).reshape(-1, 25).mean(axis=1))
    assert half_seconds.max() - half_seconds.min() > 3.0


def test_office_is_air_conditioning_with_key_clicks() -> None:
    office = NoiseBed(NoiseSpec("office"), seed=5).next(20 * SAMPLE_RATE).astype(np.float64)
    freqs, power = _psd(office)
    assert power[freqs < 1000].sum() / power.sum() > 0.8
    # Clicks are sparse and sharp: the high-passed bed is far more peaked than Gaussian noise (3).
    edges = np.diff(office)
    assert np.mean((edges - edges.mean()) ** 4) / np.var(edges) ** 2 > 20


def test_file_bed_mixes_down_resamples_and_loops(noise_file: Path, tmp_path: Path) -> None:
    bed = NoiseBed(parse_noise(f"file:{noise_file.name}:10", base_dir=noise_file.parent), seed=3)
    assert bed.loop_samples == pytest.approx(7.3 * SAMPLE_RATE - SAMPLE_RATE // 2, abs=2)
    freqs, power = _psd(bed.next(bed.loop_samples).astype(np.float64))
    assert freqs[np.argmax(power)] == pytest.approx(180.0, abs=8.0)

    # Two tones, one per channel, at 16 kHz in FLAC: both survive the mix-down at the same power.
    stereo = tmp_path / "tones.flac"
    sf.write(stereo, np.stack([_tone(440.0, 3.0, 16000), _tone(1250.0, 3.0, 16000)], axis=1), 16000)
    freqs, power = _psd(NoiseBed(parse_noise(f"file:{stereo}")).next(3 * SAMPLE_RATE).astype(np.float64))
    low = power[np.abs(freqs - 440) < 16].sum()
    high = power[np.abs(freqs - 1250) < 16].sum()
    assert low + high > 0.95 * power.sum()
    assert 10 * math.log10(low / high) == pytest.approx(0.0, abs=0.5)


def test_file_bed_has_no_click_at_its_loop_point(tmp_path: Path) -> None:
    # 97 Hz over 1.2345 s stops mid-cycle: looping it as is would jump by most of its amplitude.
    tone = tmp_path / "tone.wav"
    sf.write(tone, _tone(97.0, 1.2345, 8000), 8000)
    stream = NoiseBed(parse_noise(f"file:{tone}")).next(4 * SAMPLE_RATE).astype(np.float64)
    curvature = np.abs(np.diff(stream, 2))
    assert curvature.max() < 0.05 * np.abs(stream).max()


def test_two_hundred_calls_of_noise_run_far_faster_than_real_time() -> None:
    beds = [NoiseBed(NoiseSpec(NOISE_KINDS[i % len(NOISE_KINDS)]), seed=i) for i in range(200)]
    mixers = [Mixer(bed, speech_rms=3000.0) for bed in beds]
    started = time.perf_counter()
    for _ in range(50):  # one second of 20 ms frames for each call
        for mixer in mixers:
            mixer.frame()
    assert time.perf_counter() - started < 0.4


# ------------------------------------------------------------------------------------------- SNR mixing


def test_speech_level_counts_active_frames_only() -> None:
    loud = _tone(300.0, 1.0, SAMPLE_RATE, 10000.0)
    assert speech_level(loud.astype(np.int16)) == pytest.approx(10000 / math.sqrt(2), rel=1e-3)
    padded = np.concatenate([np.zeros(8 * FRAME_SAMPLES), loud, np.zeros(25 * FRAME_SAMPLES)])
    assert speech_level(padded) == pytest.approx(speech_level(loud), rel=1e-9)
    assert active_speech_mask(padded).sum() == len(loud)
    # 40 dB down is a pause, not speech; 20 dB down is quieter speech and counts.
    murmur = _tone(300.0, 1.0, SAMPLE_RATE, 100.0)
    assert speech_level(np.concatenate([loud, murmur])) == pytest.approx(10000 / math.sqrt(2), rel=1e-3)
    quieter = _tone(300.0, 1.0, SAMPLE_RATE, 1000.0)
    expected = math.sqrt((10000**2 / 2 + 1000**2 / 2) / 2)
    assert speech_level(np.concatenate([loud, quieter])) == pytest.approx(expected, rel=1e-3)
    assert speech_level(np.zeros(800, dtype=np.int16)) == 0.0
    assert speech_level(np.zeros(0, dtype=np.int16)) == 0.0


def test_hesitant_pauses_do_not_change_the_level() -> None:
    line = render_speech(LINES[1])
    pause = np.zeros(5 * FRAME_SAMPLES * 10, dtype=np.int16)
    with_pauses = np.concatenate([line, pause, line, pause, pause, line])
    assert 20 * math.log10(speech_level(with_pauses) / speech_level(line)) == pytest.approx(0.0, abs=0.2)


def test_reference_level_follows_the_voice_amplitude() -> None:
    drop = 20 * math.log10(reference_level(VoiceSpec()) / reference_level(VoiceSpec(amplitude=50)))
    assert drop == pytest.approx(6.0, abs=1.0)


def test_noise_gain() -> None:
    assert noise_gain(3000.0, 20.0) == pytest.approx(300.0)
    assert noise_gain(3000.0, 0.0) == pytest.approx(3000.0)
    assert noise_gain(3000.0, -5.0) == pytest.approx(3000.0 * 10**0.25)
    with pytest.raises(ValueError):
        noise_gain(-1.0, 10.0)
    with pytest.raises(ValueError):
        noise_gain(1.0, math.inf)


def test_measure_snr_on_a_known_mixture() -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(10 * SAMPLE_RATE) * 100.0
    mask = np.zeros(len(noise), dtype=np.bool_)
    mask[3 * SAMPLE_RATE : 7 * SAMPLE_RATE] = True
    speech = np.where(mask, _tone(440.0, 10.0, SAMPLE_RATE, 1000.0 * math.sqrt(2)), 0.0)
    assert measure_snr(speech + noise, mask) == pytest.approx(20.0, abs=0.1)
    assert measure_snr(speech, mask) == math.inf
    assert measure_snr(noise, mask) < 0  # no speech: whatever it measures is noise against noise
    with pytest.raises(ValueError, match="shape"):
        measure_snr(noise, mask[1:])
    with pytest.raises(ValueError, match="both speech"):
        measure_snr(noise, np.ones(len(noise), dtype=np.bool_))
    with pytest.raises(ValueError, match="both speech"):
        measure_snr(noise, mask, noise_mask=mask)


@pytest.mark.parametrize("kind", [*NOISE_KINDS, "file"])
def test_mixed_snr_survives_the_phone_line(
    kind: str, noise_file: Path, caller: tuple[Pcm, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]
) -> None:
    speech, active, silent = caller
    level = speech_level(speech)
    for snr in (0.0, 10.0, 20.0):
        spec = NoiseSpec(kind, snr, noise_file if kind == "file" else None)
        mixer = Mixer(NoiseBed(spec, seed=3), speech_rms=level)
        frames = [mixer.frame(speech[i : i + FRAME_SAMPLES]) for i in range(0, len(speech), FRAME_SAMPLES)]
        sent = decode_ulaw(encode_ulaw(np.concatenate(frames)[: len(speech)]))
        assert measure_snr(sent, active, noise_mask=silent) == pytest.approx(snr, abs=1.0)


def test_mixer_clips_instead_of_wrapping_and_pads_short_frames() -> None:
    spec = NoiseSpec("white", -5.0)
    mixer = Mixer(NoiseBed(spec, seed=9), speech_rms=20000.0)
    twin = NoiseBed(spec, seed=9)
    speech = np.full(FRAME_SAMPLES, 30000, dtype=np.int16)
    out = np.concatenate([mixer.frame(speech) for _ in range(50)])
    ideal = 30000.0 + np.concatenate([twin.next(FRAME_SAMPLES) for _ in range(50)]) * mixer.gain
    assert (ideal > 32767).any() and (ideal < -32768).any()
    np.testing.assert_array_equal(out, np.clip(np.rint(ideal), -32768, 32767).astype(np.int16))

    quiet = Mixer(NoiseBed(spec, seed=9), speech_rms=100.0)
    short = quiet.frame(np.full(100, 5000, dtype=np.int16))
    assert len(short) == FRAME_SAMPLES
    assert np.all(short[:100] > 3000) and np.all(np.abs(short[100:]) < 1000)
    with pytest.raises(ValueError, match="holds 160 samples"):
        quiet.frame(np.zeros(FRAME_SAMPLES + 1, dtype=np.int16))
    clean = Mixer(None, speech_rms=3000.0)
    np.testing.assert_array_equal(clean.frame(speech[:100])[:100], speech[:100])


def test_mixer_keeps_the_noise_on_between_lines() -> None:
    mixer = Mixer(NoiseBed(NoiseSpec("pink", 10.0), seed=1), speech_rms=3000.0)
    assert mixer.gain == pytest.approx(3000.0 / math.sqrt(10))
    between = np.concatenate([mixer.frame() for _ in range(500)]).astype(np.float64)
    assert math.sqrt(np.mean(between**2)) == pytest.approx(mixer.gain, rel=0.1)


# ---------------------------------------------------------------------------------------------- network


def _fates(spec: NetworkSpec, seed: int, frames: int) -> tuple[npt.NDArray[np.bool_], Floats]:
    impairer = Impairer(spec, seed)
    fates = [impairer.fate(i) for i in range(frames)]
    return np.array([f.dropped for f in fates]), np.array([f.delay_s for f in fates])


@pytest.mark.parametrize(("loss", "burst"), [(10.0, 4.0), (3.0, 1.0), (30.0, 2.5)])
def test_gilbert_loss_has_its_rate_and_mean_burst(loss: float, burst: float) -> None:
    frames = 200_000
    dropped, _ = _fates(NetworkSpec(loss_pct=loss, burst_frames=burst), seed=11, frames=frames)
    # Four standard errors of a two-state Markov chain's mean: the chain's memory (1 - p - r) widens
    # the spread of the loss rate over that of independent draws.
    rate, leave = loss / 100, 1 / burst
    memory = 1 - leave - rate * leave / (1 - rate)
    spread = math.sqrt(rate * (1 - rate) * (1 + memory) / (1 - memory) / frames)
    assert dropped.mean() == pytest.approx(rate, abs=4 * spread)
    runs = _runs(dropped)
    assert runs.mean() == pytest.approx(burst, abs=4 * math.sqrt(burst * (burst - 1) / len(runs)) + 1e-9)
    if burst == 1.0:
        assert runs.max() == 1


def test_clean_network_loses_and_delays_nothing() -> None:
    spec = NetworkSpec()
    assert not spec.impaired
    dropped, delays = _fates(spec, seed=1, frames=2000)
    assert not dropped.any()
    assert not delays.any()


def test_jitter_stays_in_bounds_and_keeps_frames_in_order() -> None:
    spec = NetworkSpec(loss_pct=5.0, jitter_ms=80.0)
    _, delays = _fates(spec, seed=5, frames=20_000)
    assert delays.min() >= 0.0 and delays.max() <= 0.080
    assert delays.max() > 0.075 and delays.std() > 0.01
    arrivals = np.arange(len(delays)) * 0.020 + delays
    assert np.all(np.diff(arrivals) >= -1e-12)
    # Below 20 ms of jitter no frame can ever catch up with the one before it: delays are independent.
    _, small = _fates(NetworkSpec(jitter_ms=15.0), seed=5, frames=20_000)
    assert small.mean() == pytest.approx(0.0075, abs=0.0005)


def test_impairment_is_deterministic_by_seed() -> None:
    spec = NetworkSpec(loss_pct=10.0, burst_frames=3.0, jitter_ms=40.0)
    dropped, delays = _fates(spec, seed=2, frames=3000)
    again, again_delays = _fates(spec, seed=2, frames=3000)
    np.testing.assert_array_equal(dropped, again)
    np.testing.assert_array_equal(delays, again_delays)
    other, _ = _fates(spec, seed=3, frames=3000)
    assert (dropped != other).any()
    pinned, _ = _fates(
        NetworkSpec(loss_pct=10.0, burst_frames=3.0, jitter_ms=40.0, seed=1), seed=2, frames=3000
    )
    assert (dropped != pinned).any()
    # The loss pattern does not depend on the jitter setting.
    steady, _ = _fates(NetworkSpec(loss_pct=10.0, burst_frames=3.0), seed=2, frames=3000)
    np.testing.assert_array_equal(dropped, steady)


def test_impairer_answers_recent_frames_again_but_not_old_ones() -> None:
    impairer = Impairer(NetworkSpec(loss_pct=20.0, jitter_ms=30.0), seed=4)
    first = [impairer.fate(i) for i in range(600)]
    assert impairer.fate(599) == first[599]
    assert impairer.fate(300) == first[300]
    impairer.fate(5000)
    with pytest.raises(ValueError, match="too far behind"):
        impairer.fate(0)


def test_parse_network_reads_and_validates() -> None:
    spec = parse_network({"loss_pct": 5, "burst_frames": 2.5, "jitter_ms": 40, "seed": 9})
    assert spec == NetworkSpec(loss_pct=5.0, burst_frames=2.5, jitter_ms=40.0, seed=9)
    assert spec.impaired
    assert parse_network({}) == NetworkSpec()


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"loss_pct": 60}, r"network.loss_pct must be within 0..50%, got 60"),
        ({"loss_pct": -1}, r"network.loss_pct must be within 0..50%"),
        ({"burst_frames": 0.5}, r"network.burst_frames must be >= 1 frames, got 0.5"),
        ({"jitter_ms": 600}, r"network.jitter_ms must be within 0..500 ms"),
        ({"jitter_ms": float("nan")}, r"network.jitter_ms must be a finite number"),
        ({"loss_pct": "5"}, r"network.loss_pct must be a number, got '5'"),
        ({"loss_pct": True}, r"network.loss_pct must be a number"),
        ({"seed": 1.5}, r"network.seed must be an integer"),
        ({"loss_pc": 5}, r"unknown field\(s\) loss_pc"),
    ],
)
def test_parse_network_rejects_bad_settings(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ConditionsError, match=message):
        parse_network(mapping)
