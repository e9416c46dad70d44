"""Rendered accompaniments from music21 scores (noisyneuron.datasets.scores / .instruments).

These need the data tools (``scripts/install-data-tools.sh``): music21, fluidsynth with the GM
SoundFont, and the Hydrogen drum kits; each test skips with the reason when they are missing.
Seeds below were picked for what they make (a rock groove, no drums); a test says so if a change
to the arranger's random draws moves them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pytest

from noisyneuron.errors import UserError

SR = 44100
CHORALE = "music21:bach/bwv66.6"
TUNE = "music21:oneills1850/0001-0050#3"
SECONDS = 12.0
ROCK_SEED = 0  # bwv66.6, 12 s: a straight "rock" groove
NO_DRUMS_SEED = 25  # bwv66.6, 12 s: no drums

have_music21 = importlib.util.find_spec("music21") is not None
have_fluidsynth = shutil.which("fluidsynth") is not None and os.path.isfile("/usr/share/sounds/sf2/FluidR3_GM.sf2")
have_kits = os.path.isdir("/usr/share/hydrogen/data/drumkits") or os.path.isdir("/usr/share/sonic-pi/samples")

needs_music21 = pytest.mark.skipif(not have_music21, reason="music21 is not installed (scripts/install-data-tools.sh)")
needs_render = pytest.mark.skipif(
    not (have_music21 and have_fluidsynth and have_kits),
    reason="needs music21, fluidsynth + fluid-soundfont-gm and hydrogen-drumkits/sonic-pi-samples (scripts/install-data-tools.sh)",
)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("score-cache")


@pytest.fixture(scope="module")
def render(cache_dir):
    """render(score_id, seed, seconds) with results memoised across the module's tests."""
    from noisyneuron.datasets.instruments import render_accompaniment

    memo = {}

    def _render(score_id=CHORALE, seed=ROCK_SEED, seconds=SECONDS):
        key = (score_id, seed, seconds)
        if key not in memo:
            memo[key] = render_accompaniment(score_id, seconds, np.random.default_rng(seed), cache_dir=cache_dir)
        return memo[key]

    return _render


def _power_fraction_below(x: np.ndarray, hz: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64).mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    return float(spec[freqs < hz].sum() / spec.sum())


def _onsets(x: np.ndarray, hop: int = 220) -> np.ndarray:
    """Onset times (s): where the high-passed energy (10 ms windows, 5 ms hop) jumps >= 9 dB
    above its minimum over the previous 20 ms; at most one onset per 40 ms."""
    mono = np.diff(x.astype(np.float64).mean(axis=1), prepend=0.0)  # pre-emphasis: transients stand out
    n = len(mono) // hop - 1
    sq = np.square(mono)
    energy = np.array([sq[i * hop : i * hop + 2 * hop].sum() for i in range(n)]) + 1e-12
    db = 10.0 * np.log10(energy)
    rise = np.zeros(n)
    rise[4:] = db[4:] - np.minimum.reduce([db[3:-1], db[2:-2], db[1:-3], db[:-4]])
    loud = db > db.max() - 40.0
    picked: list[int] = []
    for i in np.flatnonzero((rise >= 9.0) & loud):
        if not picked or i - picked[-1] > 8:
            picked.append(i)
    return (np.array(picked) + 1) * hop / SR  # the jump ends in the second half of the window


# ----- scores ------------------------------------------------------------------------------------
@needs_music21
def test_score_ids_are_many_sorted_and_public_domain_by_default():
    from noisyneuron.datasets.scores import CORPUS_LICENCES, list_score_ids

    ids = list_score_ids()  # the default cache: ~30 s on a machine's first run, then instant
    assert len(ids) >= 300
    assert ids == sorted(set(ids))
    assert CHORALE in ids and TUNE in ids
    folders = {i.split(":", 1)[1].split("/", 1)[0] for i in ids}
    assert {"bach", "palestrina", "monteverdi", "oneills1850"} <= folders
    assert folders <= set(CORPUS_LICENCES)  # essenFolksong (non-commercial) only on request
    assert any(i.startswith("music21:essenFolksong/") for i in list_score_ids(include_restricted=True))


@needs_music21
def test_load_score_top_voice_first_and_cached(cache_dir):
    from noisyneuron.datasets.scores import load_score

    score = load_score(CHORALE, cache_dir)
    assert score.time_signature == (4, 4)
    assert len(score.parts) == 4
    means = [np.mean([n.pitch for n in p]) for p in score.parts]
    assert means == sorted(means, reverse=True)
    assert score.length_quarters % 4 == 0 and score.length_quarters >= max(n.start + n.duration for p in score.parts for n in p)
    # the pickup (one quarter) sits on beat 4 of bar 0: the first full bar starts at quarter 4
    assert min(n.start for n in score.parts[0]) == 3.0
    assert "public domain" in score.licence
    cached = list((cache_dir / "scores").rglob("*.json"))
    assert cached, "the parsed score was not cached"
    again = load_score(CHORALE, cache_dir)
    assert again.parts == score.parts


@needs_music21
def test_load_score_without_music21_is_a_one_line_user_error(tmp_path, monkeypatch):
    from noisyneuron.datasets.scores import load_score

    monkeypatch.setitem(sys.modules, "music21", None)  # import music21 now raises ImportError
    with pytest.raises(UserError) as err:
        load_score(CHORALE, tmp_path)
    assert "install-data-tools.sh" in str(err.value) and "\n" not in str(err.value)


# ----- rendering ---------------------------------------------------------------------------------
@needs_render
def test_stems_shapes_and_levels(render):
    r = render()
    assert set(r.stems) == {"drums", "bass", "other"}
    frames = round(SECONDS * SR)
    for name, x in r.stems.items():
        assert x.dtype == np.float32 and x.shape == (frames, 2), name
        assert np.all(np.isfinite(x))
        assert np.sqrt(np.mean(np.square(x))) > 1e-3, f"{name} is silent"
    tune = render(TUNE, 3)  # a one-part tune gets generated bass and harmony
    assert tune.meta["parts_in_score"] == 1 and tune.meta["generated_harmony"]
    assert all(np.sqrt(np.mean(np.square(tune.stems[s]))) > 1e-3 for s in ("bass", "other"))


@needs_render
def test_deterministic_for_a_seed_and_different_for_another(render, cache_dir):
    from noisyneuron.datasets.instruments import render_accompaniment

    a = render()
    b = render_accompaniment(CHORALE, SECONDS, np.random.default_rng(ROCK_SEED), cache_dir=cache_dir)
    for name in a.stems:
        assert np.array_equal(a.stems[name], b.stems[name]), name
    assert a.melody == b.melody and a.meta == b.meta
    c = render(CHORALE, ROCK_SEED + 1)
    assert not np.array_equal(a.stems["other"], c.stems["other"])
    assert a.meta["tempo_bpm"] != c.meta["tempo_bpm"]


@needs_render
def test_bass_is_low_and_other_reaches_higher(render):
    lows = []
    for seed in (ROCK_SEED, 12, NO_DRUMS_SEED):
        r = render(CHORALE, seed)
        bass_low = _power_fraction_below(r.stems["bass"], 300.0)
        other_low = _power_fraction_below(r.stems["other"], 300.0)
        assert bass_low > 0.5, f"seed {seed}: only {bass_low:.2f} of the bass power is below 300 Hz"
        assert other_low < bass_low, f"seed {seed}: 'other' ({other_low:.2f} below 300 Hz) is not higher than the bass"
        assert 1.0 - _power_fraction_below(r.stems["other"], 600.0) > 0.02  # "other" has content up high
        lows.append(bass_low)
    assert np.median(lows) > 0.8


@needs_render
def test_drum_onsets_fall_on_the_tempo_grid(render):
    r = render()
    drums = r.meta["drums"]
    assert drums["groove"] == "rock" and r.meta["swing"] == 0, f"seed {ROCK_SEED} no longer gives a straight rock groove: {drums['groove']}"
    quarter = 60.0 / r.meta["tempo_bpm"]
    onsets = _onsets(r.stems["drums"])
    assert len(onsets) >= SECONDS / quarter  # at least one per beat on average
    sixteenth = quarter / 4.0
    off_grid = np.abs(onsets / sixteenth - np.round(onsets / sixteenth)) * sixteenth
    assert np.mean(off_grid < 0.03) > 0.9, f"onsets off the 16th grid: {np.round(off_grid, 3)}"
    # every beat (after any drum-less intro) has an onset near it
    start = drums["intro_bars_without_drums"] * 4 * quarter
    beats = np.arange(start, SECONDS - 0.1, quarter)
    near = [np.min(np.abs(onsets - t)) < 0.03 for t in beats]
    assert np.mean(near) > 0.85
    assert drums["kit"] and drums["sample_files"]


@needs_render
def test_no_drums_is_a_silent_stem(render):
    r = render(CHORALE, NO_DRUMS_SEED)
    assert r.meta["drums"]["groove"] == "none", f"seed {NO_DRUMS_SEED} no longer gives a drum-less track"
    assert not np.any(r.stems["drums"])
    assert not any(s["package"] == "hydrogen-drumkits" for s in r.meta["sources"])


@needs_render
def test_melody_is_inside_the_track_and_singable(render):
    for sid, seed in ((CHORALE, ROCK_SEED), (TUNE, 3)):
        r = render(sid, seed)
        assert len(r.melody) >= 8
        for a, b in zip(r.melody, r.melody[1:]):
            assert b.start >= a.end - 1e-6, "melody notes overlap"
        for n in r.melody:
            assert 0.0 <= n.start < SECONDS and n.duration > 0 and n.end <= SECONDS + 1e-6
            assert 48 <= n.pitch <= 84


@needs_render
def test_meta_is_json_and_credits_every_source(render):
    r = render()
    meta = json.loads(json.dumps(r.meta))
    assert meta["score_id"] == CHORALE
    assert 40.0 <= meta["tempo_bpm"] <= 250.0 and isinstance(meta["transpose"], int)
    packages = {s["package"]: s["licence"] for s in meta["sources"]}
    assert {"music21", "fluid-soundfont-gm"} <= set(packages)
    assert packages["fluid-soundfont-gm"] == "MIT"
    assert "hydrogen-drumkits" in packages or "sonic-pi-samples" in packages
    assert all(s["licence"] and s["id"] and s["kind"] for s in meta["sources"])
    programs = [p["program"] for p in meta["parts"]]
    assert all(0 <= p <= 127 for p in programs) and meta["parts"][0]["stem"] == "bass"


@needs_render
def test_missing_fluidsynth_is_a_one_line_user_error(monkeypatch):
    from noisyneuron.datasets import instruments

    monkeypatch.setattr(instruments.shutil, "which", lambda name: None)
    with pytest.raises(UserError) as err:
        instruments.render_accompaniment(CHORALE, 5.0, np.random.default_rng(0))
    assert str(err.value) == "fluidsynth is not installed; run scripts/install-data-tools.sh"
