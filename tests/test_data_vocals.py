"""Vocal stems for the separation data: length, determinism, pitch, silence, splits, melodies.

Each method's tests skip, with the reason, when its tool is not installed
(``scripts/install-data-tools.sh`` installs them all).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from noisyneuron.errors import UserError
from noisyneuron.datasets import vocals
from noisyneuron.datasets.melody import MelodyNote, midi_to_hz
from noisyneuron.datasets.splits import split_of

RATE = 44100
SECONDS = 9.0
AVAILABLE = vocals.available_methods()


def _needs(method: str):
    return pytest.mark.skipif(method not in AVAILABLE, reason=f"{method}: {vocals._tool_missing(method)} is not installed (scripts/install-data-tools.sh)")


def _method_params(methods=vocals.VOCAL_METHODS):
    return [pytest.param(m, marks=_needs(m)) for m in methods]


def _melody() -> list[MelodyNote]:
    """Two phrases with a 2.6 s rest between them (3.4 s to 6.0 s), pitches in C4..D5."""
    first = [MelodyNote(0.5 + 0.55 * i, 0.53, p) for i, p in enumerate([64, 67, 69, 67, 65])]
    second = [MelodyNote(6.0 + 0.7 * i, 0.68, p) for i, p in enumerate([62, 64, 65, 69])]
    return first + second


@pytest.fixture(scope="module")
def sung() -> dict[str, vocals.Vocal]:
    """One vocal per available method (seed 3), shared by the tests."""
    return {m: vocals.sing(_melody(), SECONDS, m, np.random.default_rng(3), "train") for m in AVAILABLE}


def _f0(audio: np.ndarray) -> np.ndarray:
    """f0 per 5 ms frame, Hz (0: unvoiced), by WORLD's dio + stonemask at 16 kHz."""
    import soxr

    pw = vocals._pyworld()
    x = soxr.resample(audio.astype(np.float64), RATE, 16000)
    f0, t = pw.dio(x, 16000, f0_floor=60.0, f0_ceil=900.0, frame_period=5.0)
    return pw.stonemask(x, f0, t, 16000)


def _rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2) + 1e-30)


@pytest.mark.parametrize("method", _method_params())
def test_length_dtype_level_and_meta(method, sung):
    v = sung[method]
    assert v.audio.dtype == np.float32 and v.audio.shape == (round(SECONDS * RATE),)
    assert np.all(np.isfinite(v.audio)) and np.max(np.abs(v.audio)) < 1.0
    assert _rms_db(v.audio[int(0.5 * RATE) : int(3.2 * RATE)]) > -40.0  # the first phrase is sung
    json.dumps(v.meta)  # JSON-serialisable
    assert v.meta["method"] == method
    assert v.meta["sources"] and all({"kind", "id", "package", "licence"} <= set(s) for s in v.meta["sources"])


@pytest.mark.parametrize("method", _method_params())
def test_same_rng_state_same_audio(method):
    mel = _melody()[:4]
    a = vocals.sing(mel, 3.0, method, np.random.default_rng(11), "train")
    b = vocals.sing(mel, 3.0, method, np.random.default_rng(11), "train")
    c = vocals.sing(mel, 3.0, method, np.random.default_rng(12), "train")
    assert np.array_equal(a.audio, b.audio) and a.meta == b.meta
    assert not np.array_equal(a.audio, c.audio)


@pytest.mark.parametrize("method", _method_params(("sinsy", "festival", "speech-espeak", "speech-flite")))
def test_pitch_follows_the_melody(method, sung):
    v = sung[method]
    f0 = _f0(v.audio)
    shifts = v.meta["transpose_semitones"]
    errors = []
    for note in _melody():
        a = int((note.start + 0.3 * note.duration) / 0.005)
        b = int((note.start + 0.8 * note.duration) / 0.005)
        voiced = f0[a:b][f0[a:b] > 0]
        if len(voiced) > (b - a) // 2:
            err = 12 * np.log2(np.median(voiced) / midi_to_hz(note.pitch))
            if shifts != 0:  # sinsy may move a phrase by octaves into its voice's range
                err = (err + 6) % 12 - 6
            errors.append(err)
    errors = np.abs(np.array(errors))
    assert len(errors) >= 6, f"only {len(errors)} of 9 notes voiced"
    # WORLD imposes the exact f0 (plus vibrato); sinsy's HMM voice sings within about a semitone
    tolerance = 1.5 if method == "sinsy" else 0.5
    assert np.median(errors) < 1.0 and np.mean(errors < tolerance) >= 0.85, np.round(errors, 2)


@pytest.mark.parametrize("method", _method_params())
def test_silent_in_long_rests(method, sung):
    audio = sung[method].audio
    sung_db = _rms_db(audio[int(0.5 * RATE) : int(3.2 * RATE)])
    rest = audio[int(4.0 * RATE) : int(5.2 * RATE)]  # the middle of the rest, past tails, before breaths
    assert _rms_db(rest) < sung_db - 50.0
    assert not np.any(audio[: int(0.05 * RATE)])  # before the lead-in: exact zeros


@_needs("klettres")
def test_klettres_uses_only_clips_of_its_split():
    for split, seed in [("valid", 1), ("test", 2), ("train", 3)]:
        v = vocals.sing(_melody(), SECONDS, "klettres", np.random.default_rng(seed), split)
        speakers = [s["speaker"] for s in v.meta["sources"] if s["package"] == "klettres-data"]
        assert speakers and len(set(speakers)) == 1  # one line, one voice
        assert all(split_of(i) == split for i in speakers), split
        assert all(s["licence"] for s in v.meta["sources"])
    allowed = set(vocals.klettres_clips("test"))
    assert allowed and not allowed & set(vocals.klettres_clips("train"))


@_needs("klettres")
def test_klettres_repitched_follows_melody():
    hits = []
    calls = 0
    for seed in range(30):  # three calls that re-pitch (most do; some keep natural pitch)
        v = vocals.sing(_melody(), SECONDS, "klettres", np.random.default_rng(seed), "train")
        if not v.meta["repitched"]:
            continue
        f0 = _f0(v.audio)
        for note in _melody():
            seg = f0[int((note.start + 0.3 * note.duration) / 0.005) : int((note.start + 0.8 * note.duration) / 0.005)]
            if np.sum(seg > 0) > len(seg) // 2:  # clips are letters and syllables: some are unvoiced
                hits.append(abs(12 * np.log2(np.median(seg[seg > 0]) / midi_to_hz(note.pitch))) < 1.0)
        calls += 1
        if calls >= 3 and len(hits) >= 8:  # letters of some speakers are mostly unvoiced
            break
    assert calls >= 3, "klettres re-pitched fewer than 3 of 30 calls"
    assert len(hits) >= 8 and np.mean(hits) >= 0.85, hits


def test_unknown_method_and_missing_tool(monkeypatch):
    with pytest.raises(ValueError):
        vocals.sing(_melody(), 2.0, "opera", np.random.default_rng(0), "train")
    monkeypatch.setattr(vocals.shutil, "which", lambda name: None)
    with pytest.raises(UserError, match=r"^espeak-ng is not installed; run scripts/install-data-tools.sh$"):
        vocals.sing(_melody(), 2.0, "speech-espeak", np.random.default_rng(0), "train")
    assert "speech-espeak" not in vocals.available_methods()


def test_empty_melody_is_silence():
    if "speech-flite" not in AVAILABLE:
        pytest.skip("speech-flite: flite is not installed (scripts/install-data-tools.sh)")
    v = vocals.sing([], 1.5, "speech-flite", np.random.default_rng(0), "train")
    assert v.audio.shape == (round(1.5 * RATE),) and not np.any(v.audio)


@pytest.mark.parametrize("seed", range(12))
def test_random_melody_properties(seed):
    rng = np.random.default_rng(seed)
    seconds = float(rng.uniform(8.0, 40.0))
    low, high = (52, 76) if seed % 2 else (60, 72)
    mel = vocals.random_melody(seconds, rng, low, high)
    assert len(mel) >= 3
    assert all(low <= n.pitch <= high for n in mel)
    assert all(n.start >= 0 and n.duration >= 0.1 and n.end <= seconds for n in mel)
    assert all(a.start < b.start and a.end <= b.start for a, b in zip(mel, mel[1:]))
    sung = sum(n.duration for n in mel) / seconds
    assert 0.3 <= sung <= 0.9
    steps = np.abs(np.diff([n.pitch for n in mel]))
    assert np.mean(steps <= 5) >= 0.75  # mostly steps of one or two scale degrees
    gaps = [b.start - a.end for a, b in zip(mel, mel[1:])]
    if mel[-1].end - mel[0].start > 20.0:
        assert max(gaps) >= 0.3  # long melodies have rests between phrases


def test_random_melody_is_deterministic():
    a = vocals.random_melody(20.0, np.random.default_rng(5))
    b = vocals.random_melody(20.0, np.random.default_rng(5))
    assert a == b and a != vocals.random_melody(20.0, np.random.default_rng(6))


def test_nan_world_codes_become_quiet_unvoiced_frames():
    # d4c coded some klettres frames' aperiodicity as NaN, which made whole vocal stems NaN
    f0 = np.array([200.0, 210.0, 220.0])
    sp = np.array([[-20.0, -30.0], [np.nan, -31.0], [-22.0, -33.0]])
    ap = np.array([[-5.0], [-6.0], [-np.inf]])
    f0c, spc, apc = vocals._finite_codes(f0, sp, ap)
    assert np.all(np.isfinite(spc)) and np.all(np.isfinite(apc))
    assert list(f0c) == [200.0, 0.0, 0.0]
    assert spc[1, 0] == -33.0 and apc[2, 0] == 0.0 and spc[0, 0] == -20.0
