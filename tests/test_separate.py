"""Offline separation: chunked separate_array, the Demucs backend and `noisyneuron separate`."""

from __future__ import annotations

import argparse
import re
import os
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from noisyneuron.errors import UserError
from noisyneuron.models.apply import separate_array
from noisyneuron.models.separator import SeparatorConfig, SeparatorNet
from noisyneuron.separate import add_cli_arguments, cli_main, separate_files

STEMS = ("vocals", "drums", "bass", "other")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return SeparatorNet(SeparatorConfig(hidden=32, layers=1)).eval()


def _noise(frames, channels, seed=0, level=0.2):
    return (level * np.random.default_rng(seed).standard_normal((frames, channels))).astype(np.float32)


def _full_forward(net, audio, sample_rate):
    """net(whole signal) as {stem: (frames, channels)}, mono handled like separate_array."""
    x = torch.from_numpy(np.ascontiguousarray(audio[:, :2].T))[None]
    if audio.shape[1] == 1:
        x = x.repeat(1, 2, 1)
    with torch.no_grad():
        y = net(x, sample_rate)[0].numpy()  # (S, C, T)
    if audio.shape[1] == 1:
        y = y.mean(axis=1, keepdims=True)
    return {name: y[i].T for i, name in enumerate(net.config.stems)}


# ----- separate_array ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sample_rate, channels, frames",
    [(44100, 2, 44100 + 123), (44100, 1, 30001), (48000, 2, 40000 + 7), (48000, 1, 500)],
)
def test_chunked_equals_full_forward(net, sample_rate, channels, frames):
    audio = _noise(frames, channels)
    # 0.3 s chunks: 52.5 hops at 44.1 kHz, not a whole number of hops or of input blocks.
    out = separate_array(net, audio, sample_rate, chunk_seconds=0.3)
    ref = _full_forward(net, audio, sample_rate)
    assert list(out) == list(STEMS)
    for name in STEMS:
        assert out[name].shape == (frames, channels) and out[name].dtype == np.float32
        np.testing.assert_allclose(out[name], ref[name], atol=1e-5)
    np.testing.assert_allclose(sum(out.values()), audio, atol=1e-5)


def test_chunk_size_does_not_change_the_result(net):
    audio = _noise(8000, 2, seed=1)
    a = separate_array(net, audio, 44100, chunk_seconds=0.01)  # 2 hops per chunk
    b = separate_array(net, audio, 44100, chunk_seconds=30.0)  # one chunk
    for name in STEMS:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5)


def test_extra_channels_go_to_other_and_1d_is_mono(net):
    audio = _noise(6000, 4, seed=2)
    out = separate_array(net, audio, 44100)
    np.testing.assert_array_equal(out["other"][:, 2:], audio[:, 2:])
    for name in ("vocals", "drums", "bass"):
        assert not out[name][:, 2:].any()
    np.testing.assert_allclose(sum(out.values()), audio, atol=1e-5)
    mono = separate_array(net, audio[:, 0], 44100)
    assert mono["vocals"].shape == (6000,)
    np.testing.assert_allclose(sum(mono.values()), audio[:, 0], atol=1e-5)
    empty = separate_array(net, np.zeros((0, 2), np.float32), 44100)
    assert empty["vocals"].shape == (0, 2)


# ----- separate_files with our model ------------------------------------------------------------
@pytest.fixture
def inputs(tmp_path):
    wav = tmp_path / "in" / "song.wav"
    flac = tmp_path / "in" / "voice.flac"
    low = tmp_path / "in" / "low.wav"
    wav.parent.mkdir()
    sf.write(wav, _noise(2 * 44100, 2, seed=3), 44100, subtype="FLOAT")
    sf.write(flac, _noise(48000, 1, seed=4), 48000)
    sf.write(low, _noise(22050 // 2, 1, seed=5), 22050, subtype="FLOAT")
    return {"wav": wav, "flac": flac, "low": low}


def _check_pair(folder, first, second, source):
    mix, rate = sf.read(source, dtype="float32", always_2d=True)
    a, ra = sf.read(folder / f"{first}.wav", dtype="float32", always_2d=True)
    b, rb = sf.read(folder / f"{second}.wav", dtype="float32", always_2d=True)
    assert ra == rb == rate
    assert a.shape == b.shape == mix.shape
    np.testing.assert_allclose(a + b, mix, atol=1e-4)


def test_separate_files_four_two_and_one_stem(net, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    written = separate_files([inputs["wav"], inputs["flac"]], out, stems="4", net=net, progress=False)
    assert written == [out / "song" / f"{s}.wav" for s in STEMS] + [out / "voice" / f"{s}.wav" for s in STEMS]
    song = {s: sf.read(out / "song" / f"{s}.wav", dtype="float32", always_2d=True) for s in STEMS}
    assert all(rate == 44100 and a.shape == (2 * 44100, 2) for a, rate in song.values())
    mix, _ = sf.read(inputs["wav"], dtype="float32", always_2d=True)
    np.testing.assert_allclose(sum(a for a, _ in song.values()), mix, atol=1e-4)
    voice = sf.read(out / "voice" / "vocals.wav", dtype="float32", always_2d=True)
    assert voice[1] == 48000 and voice[0].shape == (48000, 1)
    err = capsys.readouterr().err
    assert "real time" in err and len(err.strip().splitlines()) == 2

    # Again into the same folder (files replaced), two stems then one.
    written = separate_files([inputs["wav"], inputs["flac"]], out, stems="2", net=net, progress=False)
    assert [p.name for p in written] == ["vocals.wav", "accompaniment.wav"] * 2
    _check_pair(out / "song", "vocals", "accompaniment", inputs["wav"])
    _check_pair(out / "voice", "vocals", "accompaniment", inputs["flac"])

    written = separate_files([inputs["flac"]], out, stems="drums", net=net, progress=False, output_format="flac")
    assert [p.name for p in written] == ["drums.flac", "no_drums.flac"]
    mix, _ = sf.read(inputs["flac"], dtype="float32", always_2d=True)
    d, _ = sf.read(out / "voice" / "drums.flac", dtype="float32", always_2d=True)
    nd, _ = sf.read(out / "voice" / "no_drums.flac", dtype="float32", always_2d=True)
    np.testing.assert_allclose(d + nd, mix, atol=1e-4)
    assert not list(out.rglob("*.partial*"))


def test_other_rates_are_written_at_the_file_rate(net, inputs, tmp_path):
    out = tmp_path / "out"
    separate_files([inputs["low"]], out, stems="vocals", net=net, progress=False)
    _check_pair(out / "low", "vocals", "no_vocals", inputs["low"])


def test_cli_main(net, inputs, tmp_path, monkeypatch):
    monkeypatch.setattr("noisyneuron.separate._load_ours", lambda _net: net)
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args([str(inputs["flac"]), "--out", str(tmp_path / "o"), "--stems", "2", "-q"])
    assert args.model == "ours" and args.format == "wav"
    assert cli_main(args) == 0
    assert sorted(p.name for p in (tmp_path / "o" / "voice").iterdir()) == ["accompaniment.wav", "vocals.wav"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"inputs": ["missing.wav"]}, "no such file"),
        ({"stems": "5"}, "--stems"),
        ({"stems": "guitar!"}, "--stems"),
        ({"model": "spleeter"}, "unknown model"),
        ({"output_format": "mp4"}, "unknown output format"),
        ({"demucs_weights": "x.th"}, "--model demucs"),
        ({"inputs": []}, "no input files"),
    ],
)
def test_bad_arguments_are_one_line_errors(net, inputs, tmp_path, kwargs, words):
    args = {"inputs": [inputs["wav"]], "out_dir": tmp_path / "o", "net": net, "progress": False, **kwargs}
    with pytest.raises(UserError) as info:
        separate_files(**args)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_unreadable_and_clashing_inputs(net, inputs, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    for bad, words in (([junk], "not a readable audio file"), ([inputs["wav"], tmp_path / "song.flac"], "no such file")):
        with pytest.raises(UserError) as info:
            separate_files(bad, tmp_path / "o", net=net, progress=False)
        assert words in str(info.value) and "\n" not in str(info.value)
    twin = tmp_path / "song.flac"
    sf.write(twin, _noise(1000, 2), 44100)
    with pytest.raises(UserError, match="would both write"):
        separate_files([inputs["wav"], twin], tmp_path / "o", net=net, progress=False)
    assert not (tmp_path / "o").exists()  # nothing written before the inputs were checked


# ----- Demucs -----------------------------------------------------------------------------------
TINY_DEMUCS = dict(
    sources=["drums", "bass", "other", "vocals"], channels=8, depth=2, dconv_comp=4, dconv_depth=1,
    t_layers=1, t_heads=1, t_hidden_scale=1.0, nfft=512, segment=1,
)


@pytest.fixture(scope="module")
def tiny_demucs_file(tmp_path_factory):
    """A randomly initialised tiny HTDemucs saved as Demucs saves models (demucs.states format)."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(**TINY_DEMUCS)
    path = tmp_path_factory.mktemp("demucs") / "955717e8-8726e21a.th"
    torch.save({"klass": HTDemucs, "args": (), "kwargs": dict(TINY_DEMUCS), "state": model.state_dict()}, path)
    return path


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    return tmp_path


def test_missing_demucs_weights_say_how_to_get_them(empty_caches):
    from noisyneuron.models.demucs_backend import load_demucs

    started = time.perf_counter()
    with pytest.raises(UserError) as info:
        load_demucs("htdemucs")
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert "\n" not in message
    assert "955717e8-8726e21a.th" in message and "https://" in message
    assert str(empty_caches / "torch" / "hub" / "checkpoints") in message and "--demucs-weights" in message
    with pytest.raises(UserError, match="unknown Demucs model"):
        load_demucs("no_such_model")
    with pytest.raises(UserError, match="no such Demucs model file"):
        load_demucs(str(empty_caches / "nothing.th"))
    junk = empty_caches / "junk.th"
    junk.write_bytes(b"junk")
    with pytest.raises(UserError, match="not a Demucs model file"):
        load_demucs(junk)


def test_demucs_file_end_to_end(tiny_demucs_file, inputs, tmp_path):
    from noisyneuron.models.demucs_backend import load_demucs, separate_demucs

    model = load_demucs(tiny_demucs_file)
    assert list(model.sources) == ["drums", "bass", "other", "vocals"]
    stereo = _noise(30000, 3, seed=6)  # 3 channels at 48 kHz: resampled to 44.1 and back
    out = separate_demucs(model, stereo, 48000)
    assert list(out) == ["drums", "bass", "other", "vocals"]
    assert all(a.shape == (30000, 3) and a.dtype == np.float32 and np.isfinite(a).all() for a in out.values())
    np.testing.assert_array_equal(out["other"][:, 2], stereo[:, 2])

    written = separate_files([inputs["flac"]], tmp_path / "o", stems="vocals", model="demucs", demucs_weights=tiny_demucs_file, progress=False)
    assert [p.name for p in written] == ["vocals.wav", "no_vocals.wav"]
    _check_pair(tmp_path / "o" / "voice", "vocals", "no_vocals", inputs["flac"])


def test_demucs_pretrained_name_from_the_torch_hub_cache(tiny_demucs_file, empty_caches, inputs, tmp_path):
    checkpoints = empty_caches / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / tiny_demucs_file.name).write_bytes(tiny_demucs_file.read_bytes())
    written = separate_files([inputs["flac"]], tmp_path / "o", stems="4", model="demucs", progress=False)
    assert [p.name for p in written] == ["drums.wav", "bass.wav", "other.wav", "vocals.wav"]
    drums, rate = sf.read(written[0], dtype="float32", always_2d=True)
    assert rate == 48000 and drums.shape == (48000, 1)


def test_demucs_pretrained_name_from_the_huggingface_cache(empty_caches):
    """Demucs 4.1.0 downloads named models into the HuggingFace cache; they load from there."""
    import json

    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs
    from safetensors.torch import save_file

    from noisyneuron.models.demucs_backend import load_demucs

    repo = empty_caches / "hf" / "hub" / "models--adefossez--HTDemucs"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    (snapshot / "htdemucs.yaml").write_text("models: ['955717e8']\n")
    state = {k: v.contiguous() for k, v in HTDemucs(**TINY_DEMUCS).state_dict().items()}
    metadata = {"klass": "demucs.htdemucs.HTDemucs", "args": "[]", "kwargs": json.dumps(TINY_DEMUCS)}
    save_file(state, str(snapshot / "955717e8.safetensors"), metadata=metadata)
    model = load_demucs("htdemucs")
    assert isinstance(model, BagOfModels) and list(model.sources) == TINY_DEMUCS["sources"]


def test_stems_never_replace_an_input(net, inputs, tmp_path):
    """Separating a stem into the folder it came from, or with another input whose stems would
    replace it, is a one-line error before anything is written."""
    out = tmp_path / "out"
    (out / "vocals").mkdir(parents=True)
    own = out / "vocals" / "vocals.wav"
    sf.write(own, _noise(4410, 2, seed=9), 44100)
    before = own.read_bytes()
    with pytest.raises(UserError) as info:
        separate_files([own], out, net=net, progress=False)
    assert "input" in str(info.value) and "\n" not in str(info.value)
    assert own.read_bytes() == before and sorted(p.name for p in (out / "vocals").iterdir()) == ["vocals.wav"]

    later = out / "song" / "drums.wav"  # song.wav's stems go to out/song/: this input would be replaced
    later.parent.mkdir()
    sf.write(later, _noise(4410, 2, seed=10), 44100)
    before = later.read_bytes()
    with pytest.raises(UserError) as info:
        separate_files([inputs["wav"], later], out, net=net, progress=False)
    assert str(later) in str(info.value) and "\n" not in str(info.value)
    assert later.read_bytes() == before
    assert sorted(p.name for p in out.rglob("*")) == ["drums.wav", "song", "vocals", "vocals.wav"]


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_pieces_of_any_length_give_the_whole_signal_result(net, channels):
    """ChunkedSeparation (what `separate` streams files through): pushed in uneven pieces, the
    outputs together are as long as the input, aligned, equal to the full forward pass."""
    from noisyneuron.models.apply import ChunkedSeparation

    audio = _noise(20000 + 37, channels, seed=channels)
    run = ChunkedSeparation(net, 44100, channels, chunk_seconds=0.05)
    rng = np.random.default_rng(1)
    parts, a = [], 0
    while a < len(audio):
        n = int(rng.integers(1, 3000))
        parts.append(run.push(audio[a : a + n]))
        assert 0 <= run.frames_in - run.frames_out <= run.n_fft + 3000  # only the unfinished frames wait
        a += n
    parts.append(run.finish())
    out = {name: np.concatenate([p[name] for p in parts]) for name in net.config.stems}
    whole = separate_array(net, audio, 44100)
    for name in net.config.stems:
        assert out[name].shape == audio.shape
        np.testing.assert_allclose(out[name], whole[name], atol=2e-5)
    np.testing.assert_allclose(sum(out.values()), audio, atol=1e-4)
    with pytest.raises(RuntimeError):
        run.push(audio[:10])


def test_separate_checks_the_output_folder_before_the_work(net, inputs, tmp_path):
    from noisyneuron.errors import UserError
    from noisyneuron.separate import separate_files

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked / "x", os.W_OK) or os.geteuid() == 0:
            # root writes anywhere: a file where the folder should be is refused the same way
            blocker = tmp_path / "blocker"
            blocker.write_text("x")
            with pytest.raises(UserError, match="choose another --out|is a file"):
                separate_files([inputs["wav"]], blocker / "sub", net=net, progress=False)
        else:
            with pytest.raises(UserError, match="choose another --out"):
                separate_files([inputs["wav"]], locked, net=net, progress=False)
    finally:
        locked.chmod(0o700)


_MEMORY_CHILD = """
import resource, sys
import numpy as np, soundfile as sf, torch
from noisyneuron.models.separator import SeparatorConfig, SeparatorNet
from noisyneuron.separate import separate_files
source, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = np.random.default_rng(0)
piece = (0.2 * rng.standard_normal((441000, 2))).astype(np.float32)
with sf.SoundFile(source, "w", samplerate=44100, channels=2, subtype="PCM_16") as f:
    for _ in range(int(seconds // 10)):
        f.write(piece)
torch.manual_seed(0)
net = SeparatorNet(SeparatorConfig(hidden=16, layers=1)).eval()
separate_files([source], out, stems="2", net=net, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_a_ten_minute_file_peaks_within_one_and_a_half_times_a_one_minute_file(tmp_path):
    """`separate` streams from disk to disk: a 10-minute file's peak resident memory is within
    1.5x of a 1-minute file's (the whole-file path held the mixture and every stem: 0.81 GB for
    60 s, ten times that for ten minutes). Each run in a fresh process, so the peaks are its own."""
    import subprocess
    import sys

    peaks = {}
    for seconds in (60, 600):
        source, out = tmp_path / f"in{seconds}.wav", tmp_path / f"out{seconds}"
        done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(source), str(out), str(seconds)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks[seconds] = int(done.stdout.split()[-1]) / 1024.0  # MB
        written = sf.info(str(out / f"in{seconds}" / "accompaniment.wav"))
        assert written.frames == seconds * 44100 and written.channels == 2
        for path in (source, *out.rglob("*.wav")):
            path.unlink()  # 10 minutes of stems are 0.5 GB: not kept while the next run goes
    assert peaks[600] <= 1.5 * peaks[60], peaks


def test_chunked_demucs_pieces_and_crossfades_line_up():
    """ChunkedDemucs's bookkeeping, with a pointwise stand-in for the model: every output frame
    is the stand-in of its own input frame, whatever the push sizes, through every crossfade."""
    from types import SimpleNamespace

    from noisyneuron.models.demucs_backend import ChunkedDemucs

    audio = _noise(10_000, 2, seed=9)
    run = ChunkedDemucs(SimpleNamespace(sources=("a", "b")), 1000, 2, (0.0, 1.0), piece_seconds=1.5, overlap_seconds=0.4)
    pieces = []
    run._separate = lambda x: (pieces.append(len(x)), {"a": 0.25 * x, "b": 0.75 * x})[1]
    rng = np.random.default_rng(2)
    parts, a = [], 0
    while a < len(audio):
        n = int(rng.integers(1, 2500))
        parts.append(run.push(audio[a : a + n]))
        a += n
    parts.append(run.finish())
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("a", "b")}
    np.testing.assert_allclose(out["a"], 0.25 * audio, atol=1e-6)
    np.testing.assert_allclose(out["b"], 0.75 * audio, atol=1e-6)
    assert run.frames_in == run.frames_out == len(audio)
    assert pieces == [1500] * 8 + [1200]  # 1500 each, 1100 new frames per piece, the rest last
    with pytest.raises(RuntimeError):
        run.push(audio[:10])


def test_chunked_demucs_is_separate_demucs_on_a_short_signal(tiny_demucs_file):
    from noisyneuron.models.demucs_backend import ChunkedDemucs, demucs_normalisation, load_demucs, separate_demucs

    model = load_demucs(tiny_demucs_file)
    audio = _noise(30_000, 2, seed=4) + 0.05
    ref = audio.astype(np.float64).mean(axis=1)
    norm = demucs_normalisation(ref.sum(), float(ref @ ref), len(ref))
    assert norm[0] == pytest.approx(ref.mean()) and norm[1] == pytest.approx(ref.std(ddof=1))
    run = ChunkedDemucs(model, 44100, 2, norm)
    parts = [run.push(audio[:12_345]), run.push(audio[12_345:]), run.finish()]
    whole = separate_demucs(model, audio, 44100)
    for name in model.sources:
        np.testing.assert_allclose(np.concatenate([p[name] for p in parts]), whole[name], atol=1e-5)


def test_separate_demucs_streams_a_file_longer_than_a_piece(tiny_demucs_file, tmp_path, monkeypatch):
    import noisyneuron.separate as separate_module

    monkeypatch.setattr(separate_module, "_DEMUCS_PIECE_SECONDS", 1.0)
    monkeypatch.setattr(separate_module, "_DEMUCS_OVERLAP_SECONDS", 0.25)
    song = tmp_path / "long.wav"
    audio = _noise(44100 * 3 + 123, 2, seed=5)
    sf.write(str(song), audio, 44100, subtype="FLOAT")
    separate_files([song], tmp_path / "o", stems="2", model="demucs", demucs_weights=tiny_demucs_file, progress=False)
    _check_pair(tmp_path / "o" / "long", "vocals", "accompaniment", song)
    vocals, rate = sf.read(str(tmp_path / "o" / "long" / "vocals.wav"), dtype="float32")
    assert rate == 44100 and vocals.shape == audio.shape and np.isfinite(vocals).all()
    from noisyneuron.models.demucs_backend import load_demucs, separate_demucs

    whole = separate_demucs(load_demucs(tiny_demucs_file), audio, 44100)["vocals"]
    error = np.sum((vocals - whole) ** 2) / np.sum(whole**2)
    assert error < 0.1, error  # pieces with 0.25 s of crossfade stay close to the whole-file pass


def test_separate_a_folder_and_its_subfolders(net, tmp_path):
    """`separate DIR` takes the audio files in it (M4A too); --recursive its subfolders, mirrored
    under --out; an earlier run's stems inside the folder are never taken as inputs."""
    library = tmp_path / "library"
    (library / "album" / "disc2").mkdir(parents=True)
    sf.write(str(library / "a.wav"), _noise(8000, 2, seed=1), 44100)
    sf.write(str(library / "album" / "b.flac"), _noise(8000, 2, seed=2), 44100)
    sf.write(str(library / "album" / "disc2" / "c.wav"), _noise(8000, 1, seed=3), 44100)
    (library / "notes.txt").write_text("not audio")
    out = library / "stems"
    written = separate_files([library], out, stems="2", net=net, progress=False)
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["a/accompaniment.wav", "a/vocals.wav"]
    written = separate_files([library], out, stems="2", net=net, progress=False, recursive=True)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "a/accompaniment.wav", "a/vocals.wav", "album/b/accompaniment.wav", "album/b/vocals.wav",
        "album/disc2/c/accompaniment.wav", "album/disc2/c/vocals.wav"]
    assert sf.info(str(out / "album" / "disc2" / "c" / "vocals.wav")).channels == 1
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    sf.write(str(empty / "sub" / "x.wav"), _noise(4000, 2), 44100)
    with pytest.raises(UserError, match="no audio files in this folder .add --recursive"):
        separate_files([empty], tmp_path / "o", net=net, progress=False)


def test_mp3_stems_at_a_bitrate_and_a_filename_template(net, inputs, tmp_path):
    written = separate_files([inputs["wav"]], tmp_path / "o", stems="2", net=net, progress=False,
                             output_format="mp3", bitrate=192, filename="{track} - {stem}.{ext}")
    names = [p.name for p in written]
    assert names == [f"{inputs['wav'].stem} - vocals.mp3", f"{inputs['wav'].stem} - accompaniment.mp3"]
    info = sf.info(str(written[0]))
    assert info.format == "MP3" and abs(info.duration - sf.info(str(inputs["wav"])).duration) < 0.1
    kbps = written[0].stat().st_size * 8 / info.duration / 1000
    assert 170 < kbps < 215, kbps
    for kwargs, words in [({"filename": "{track}.{ext}"}, "no {stem}"), ({"filename": "{song}/{stem}.{ext}"}, "unknown {song}"),
                          ({"filename": "../{stem}.{ext}"}, "inside --out"), ({"bitrate": 192}, "--format mp3"),
                          ({"output_format": "mp3", "bitrate": 100}, "kbit/s")]:
        with pytest.raises(UserError, match=re.escape(words)):
            separate_files([inputs["wav"]], tmp_path / "bad", stems="2", net=net, progress=False, **kwargs)
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").rglob("*.mp3"))
