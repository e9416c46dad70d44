"""Issue 12 items 3, 4 and 5: the network never judges the zeros before a stream or the silence
before a sound (no "speech" flash at onsets and endings), and the gate decides silence relative to
the input's own floor (a quiet talker is not silence; steady floors and digital zero are)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from noisyneuron.demo import make_demo_mix
from noisyneuron.models.classifier import (
    SHIPPED_CLASSIFIER,
    SILENCE,
    ClassifierNet,
    StreamingClassifier,
    batch_decisions,
    load_classifier,
)
from noisyneuron.datasets import noise as nz

from classifier_fixtures import no_user_profile  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def shipped() -> ClassifierNet:
    return load_classifier(SHIPPED_CLASSIFIER)


@pytest.fixture(scope="module")
def untrained() -> ClassifierNet:
    """Random weights: what the gate and the windows do does not depend on the network."""
    torch.manual_seed(3)
    net = ClassifierNet().eval()
    with torch.no_grad():  # give the batch norms non-trivial statistics, so the outputs vary
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net


def _stream(sc: StreamingClassifier, x: np.ndarray, seed: int, max_block: int = 3000) -> list[tuple]:
    """Feed ``x`` in random block sizes: every decision's (label, gated, held, level, smoothed)."""
    got = []
    sc.on_decision = lambda s: got.append((s.label, s.gated, s.held, s.level_dbfs, s.smoothed.copy()))
    rng = np.random.default_rng(seed)
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, max_block))
        sc.process(x[pos : pos + n])
        pos += n
    return got


def _band_noise(rng: np.random.Generator, seconds: float, rate: int, lo_hz: float, hi_hz: float, rms_dbfs: float) -> np.ndarray:
    """White noise band-passed to ``lo_hz..hi_hz`` (Hz) with smooth edges, RMS ``rms_dbfs``."""
    x = rng.standard_normal(int(seconds * rate))
    f = np.fft.rfftfreq(len(x), 1.0 / rate)
    gain = 1.0 / np.sqrt(1.0 + (lo_hz / np.maximum(f, 1.0)) ** 8) / np.sqrt(1.0 + (f / hi_hz) ** 8)
    y = np.fft.irfft(np.fft.rfft(x) * gain, len(x))
    return (y * 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(y**2))).astype(np.float32)


def _peak(x: np.ndarray, peak_dbfs: float) -> np.ndarray:
    return (x / np.max(np.abs(x)) * 10 ** (peak_dbfs / 20)).astype(np.float32)


def _quiet_talker(seconds: float, rate: int, seed: int, peak_dbfs: float = -40.0) -> np.ndarray:
    return _peak(nz.formant_speech(np.random.default_rng(seed), seconds, rate, level_dbfs=-24.0), peak_dbfs)


def _pink_floor(seconds: float, rate: int, seed: int, rms_dbfs: float) -> np.ndarray:
    return nz.noise_floor(np.random.default_rng(seed), seconds, rate, rms_dbfs, "pink").astype(np.float32)


# ----- item 3: onsets -------------------------------------------------------------------------
def _music(rate: int) -> np.ndarray:
    return make_demo_mix(rate, 4.0, seed=0)["mix"]  # stereo float32 (frames, 2)


def _noise(rate: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    hiss = _band_noise(rng, 2.0, rate, 300.0, 3400.0, -26.0)  # the speech band: the hardest case
    rumble = _band_noise(rng, 2.0, rate, 40.0, 400.0, -22.0)
    return np.concatenate([hiss, rumble])[:, None].repeat(2, axis=1)


@pytest.mark.parametrize("kind,rate,make", [("music", 44100, _music), ("noise", 48000, _noise), ("noise", 16000, _noise)])
def test_no_speech_at_any_decision_after_start_or_silence(shipped, kind, rate, make):
    """Silence -> sound -> silence -> sound -> silence, the onsets off the decision grid, from a
    stream start that is the sound itself and from one that is digital silence: the shipped
    model never says "speech" (it did at every onset and most endings when its window started
    from zeros), and the sound is still recognised."""
    sound = make(rate)
    zeros = lambda s: np.zeros((int(s * rate), 2), np.float32)
    for lead in (0.0, 0.73):
        x = np.concatenate([zeros(lead), sound, zeros(1.37), sound, zeros(1.0)])
        streamed = _stream(StreamingClassifier(shipped, rate), x, seed=int(lead * 100))
        labels = [g[0] for g in streamed]
        assert "speech" not in labels, (lead, "".join(lab[:2] for lab in labels))
        batch = batch_decisions(shipped, x, rate)
        assert [batch["labels"][i] for i in batch["index"]] == labels
        # not vacuous: the sound is recognised, and the silences are silence once the gate window is past
        times = batch["times"]
        first = (times > lead + 1.0) & (times <= lead + 4.0)
        assert np.mean([lab == kind for lab, t in zip(labels, first) if t]) >= 0.9
        gap = (times > lead + 4.0 + 0.6) & (times <= lead + 5.37)
        assert all(lab == SILENCE for lab, t in zip(labels, gap) if t)


def test_the_network_never_sees_audio_from_before_the_onset(untrained):
    """Every window the network judges is made of frames of the sound only: not the zeros
    before the stream, not the quiet floor before a sound after a silence."""
    rate = 16000
    rng = np.random.default_rng(1)
    floor = nz.noise_floor(rng, 1.23, rate, -75.0).astype(np.float32)  # gated: silence
    sound = nz.pink_noise(rng, 1.6, rate, -20.0).astype(np.float32)
    x = np.concatenate([sound, floor, sound, np.zeros(int(0.87 * rate), np.float32), sound])
    sc = StreamingClassifier(untrained, rate)
    windows = []
    sc.net.register_forward_hook(lambda module, inputs, output: windows.append(inputs[0][0].numpy().copy()))
    got = _stream(sc, x, seed=5)
    assert len(windows) == sum(1 for g in got if not g[1] and not g[2]) > 30  # the network ran when not gated or held
    frames = np.concatenate(windows)  # (frames, n_mels) log-mel dB
    # zeros and the -75 dBFS floor read the front end's floor (-100 dB) in every band; a frame
    # with any of the sound in it reads above it somewhere
    floor = untrained.config.floor_db
    assert not np.any(np.all(frames <= floor, axis=1))
    # a decision is held only where the sound starts or stops, never inside it
    times = np.array([0.1 * (i + 1) for i in range(len(got))])
    starts = [0.0, 1.6 + 1.23, 2 * 1.6 + 1.23 + 0.87]
    inside = np.zeros(len(got), bool)
    for t0 in starts:
        inside |= (times > t0 + 0.2) & (times <= t0 + 1.6)
    assert not any(g[2] for g, i in zip(got, inside) if i)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_streaming_equals_batch_through_onsets_holds_and_a_quiet_talker(untrained, rate):
    """Onsets off the decision grid, silences by level and by floor, a quiet talker, an abrupt
    end: streaming in random blocks and the batch path give the same decisions."""
    rng = np.random.default_rng(rate)
    parts = [
        np.zeros(int(0.93 * rate)),
        nz.pink_noise(rng, 1.37, rate, -20.0),
        np.zeros(int(0.71 * rate)),
        _quiet_talker(2.1, rate, 4),
        _pink_floor(1.33, rate, 5, -70.0),
        nz.white_noise(rng, 1.11, rate, -30.0),
        np.zeros(int(0.55 * rate)),
    ]
    x = np.concatenate(parts).astype(np.float32)
    got = _stream(StreamingClassifier(untrained, rate), x, seed=rate)
    batch = batch_decisions(untrained, x, rate)
    assert [g[0] for g in got] == [batch["labels"][i] for i in batch["index"]]
    assert [g[1] for g in got] == list(batch["gated"]) and [g[2] for g in got] == list(batch["held"])
    np.testing.assert_allclose(np.array([g[4] for g in got]), batch["smoothed"], atol=1e-5)
    np.testing.assert_allclose([g[3] for g in got], batch["level_dbfs"], atol=1e-6)
    assert any(batch["held"]) and any(batch["gated"]) and not all(batch["gated"])


# ----- item 4: the gate -----------------------------------------------------------------------
@pytest.mark.parametrize("colour", ["white", "pink"])
@pytest.mark.parametrize("rms_dbfs", [-90.0, -80.0, -70.0, -60.0])
def test_steady_noise_floors_are_silence_from_the_first_decision(untrained, colour, rms_dbfs):
    x = nz.noise_floor(np.random.default_rng(int(-rms_dbfs)), 4.0, 16000, rms_dbfs, colour).astype(np.float32)
    got = _stream(StreamingClassifier(untrained, 16000), x, seed=1)
    assert len(got) == 40 and all(g[1] and g[0] == SILENCE for g in got)
    assert all(abs(g[3] - rms_dbfs) < 3.0 for g in got[4:])  # the gate measured the floor's level


def test_a_steady_quiet_hum_is_silence(untrained):
    """A floor need not be noise: steady mains hum below the level threshold is silence too."""
    x = nz.mains_hum(np.random.default_rng(4), 4.0, 16000, level_dbfs=-62.0).astype(np.float32)
    got = _stream(StreamingClassifier(untrained, 16000), x, seed=1)
    assert all(g[1] for g in got)


def test_digital_zero_is_silence(untrained):
    got = _stream(StreamingClassifier(untrained, 48000), np.zeros((3 * 48000, 2), np.float32), seed=2)
    assert len(got) == 30 and all(g[1] and g[0] == SILENCE and g[3] == -120.0 for g in got)


@pytest.mark.parametrize("floor_dbfs", [None, -70.0])
def test_a_quiet_talker_at_minus_40_dbfs_peak_is_not_silence(untrained, floor_dbfs):
    """Speech peaking at -40 dBFS sits below the -58 dBFS level threshold most of the time (the
    old level gate called it silence); its syllables stand 20-30 dB over its own pauses and over
    a -70 dBFS floor, so the gate lets it through; when the talker stops, the floor is silence."""
    rate = 16000
    talk = _quiet_talker(4.0, rate, 7)
    x = talk if floor_dbfs is None else talk + _pink_floor(4.0, rate, 8, floor_dbfs)
    x = np.concatenate([x, _pink_floor(2.0, rate, 9, -70.0)]).astype(np.float32)
    got = _stream(StreamingClassifier(untrained, rate), x, seed=3)
    talking = got[5:40]  # 0.5..4.0 s
    assert np.mean([g[3] < -58.0 for g in talking]) > 0.5  # quieter than the level threshold...
    assert np.mean([g[1] for g in talking]) < 0.15  # ...and yet not silence
    assert all(g[1] and g[0] == SILENCE for g in got[45:])  # 0.5 s after the talker stops: silence
    # the level alone (activity_db=None) calls the same talker silence most of the time
    level_only = _stream(StreamingClassifier(untrained, rate, activity_db=None), x, seed=3)
    assert np.mean([g[1] for g in level_only[5:40]]) > 0.5


# Item 5 (speech over music 10 dB below it, speech in noise at 5 dB SNR) and "the shipped model
# calls a quiet talker speech" are claims about real voices: they are measured on the mixtures
# the classification builder makes from held-out speakers, music and noise packages
# (`noisyneuron eval classifier`, "mixtures" in docs/eval/classifier.md), not here on the numpy
# formant voice, which models trained on real speakers (and silero-vad, 2-23 %) do not take for
# a person. What these tests hold for any weights: the gate lets a -40 dBFS talker through (above).


def test_the_gate_and_the_onset_window_allocate_nothing_per_decision(untrained):
    """What the open path adds to a decision before the network (the gate's floor measurement,
    the onset bookkeeping, the window of real audio) allocates nothing that tracemalloc sees."""
    import tracemalloc

    from noisyneuron.models import classifier as c

    sc = StreamingClassifier(untrained, 48000)
    sc.process(_quiet_talker(1.5, 48000, 2))
    fe = sc.front

    def decide_without_network():
        mean_sq, active = c._gate_measure(fe.mel, fe.ms, fe.count, sc.lead_frames, sc.gate_frames, 10.0, 1e-6,
                                          sc._power, sc._floor, sc._flags)
        real = c._next_real(7, c._gate_open(c._level_dbfs(mean_sq), active, sc.silence_dbfs), sc._flags, sc.context_frames)
        c._hold(real, sc._flags, sc.onset_frames, 0, 3)
        trail = c._trailing_quiet(sc._flags)
        c._fill_window(fe.mel, fe.count - trail, max(1, real - trail), sc._x[0])

    for _ in range(50):
        decide_without_network()
    tracemalloc.start()
    try:
        decide_without_network()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(2000):
            decide_without_network()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # peak - base: the most Python memory held at once, here a few int and float objects (about
    # 300 bytes); a temporary copy of the gate's band powers would be 1.5 kB, of a window 13 kB
    assert peak - base < 1024 and current - base < 256, (peak - base, current - base)
