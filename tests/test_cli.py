"""The command line without audio devices: process, demo, errors, help."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from noisyneuron.cli import main
from noisyneuron.demo import make_demo_mix


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noisyneuron", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "song.wav"
    demo = make_demo_mix(sample_rate=44100, seconds=4.0)
    sf.write(str(path), demo["mix"], 44100, subtype="FLOAT")
    return path, demo


def test_help_explains_commands():
    r = run("--help")
    assert r.returncode == 0
    for word in ("live", "process", "devices", "bench", "demo"):
        assert word in r.stdout
    r = run("live", "--help")
    assert "--blocksize" in r.stdout and "demo" in r.stdout


def test_process_removes_the_centre_and_lines_up_with_the_input(song, tmp_path):
    path, demo = song
    out = tmp_path / "karaoke.wav"
    assert main(["process", str(path), str(out), "--quiet"]) == 0
    y, sr = sf.read(str(out), dtype="float32")
    assert sr == 44100 and y.shape == demo["mix"].shape
    # aligned: the output is far closer to the accompaniment than to the mix, sample for sample
    err_acc = np.sum((y - demo["accompaniment"]) ** 2)
    err_mix = np.sum((y - demo["mix"]) ** 2)
    assert err_acc < 0.25 * err_mix
    # vocals at 0 dB: the chain passes the mix through unchanged (24-bit output)
    out0 = tmp_path / "same.wav"
    assert main(["process", str(path), str(out0), "--quiet", "--set", "vocals=0"]) == 0
    y0, _ = sf.read(str(out0), dtype="float32")
    np.testing.assert_allclose(y0, demo["mix"], atol=1e-4)


@pytest.mark.parametrize(
    "setup,args,message",
    [
        (lambda d: (d / "bad.wav").write_bytes(b"RIFF\x00\x01garbage" * 50), ["bad.wav", "o.wav"], "not a readable audio file"),
        (lambda d: None, ["missing.wav", "o.wav"], "no such file"),
        (lambda d: (d / "empty.wav").write_bytes(b""), ["empty.wav", "o.wav"], "empty.wav"),
        (None, ["SONG", "nodir/o.wav"], "does not exist"),
        (None, ["SONG", "o.wav", "--set", "volume=3"], "no control 'volume'"),
        (None, ["SONG", "o.wav", "--set", "vocals"], "KEY=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(song, tmp_path, setup, args, message):
    if setup is not None:
        setup(tmp_path)
    args = [str(song[0]) if a == "SONG" else str(tmp_path / a) if a.endswith(".wav") else a for a in args]
    r = run("process", *args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("noisyneuron: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.wav").exists()


def test_nan_input_is_replaced_and_reported(tmp_path):
    x = make_demo_mix(sample_rate=44100, seconds=1.0)["mix"].copy()
    x[1000:1010] = np.nan
    x[5000, 1] = np.inf
    path = tmp_path / "nan.wav"
    sf.write(str(path), x, 44100, subtype="FLOAT")
    r = run("process", str(path), str(tmp_path / "o.wav"))
    assert r.returncode == 0, r.stderr
    assert "NaN/Inf" in r.stderr
    y, _ = sf.read(str(tmp_path / "o.wav"))
    assert np.isfinite(y).all()


def test_demo_command_writes_both_files(tmp_path):
    assert main(["demo", "--out-dir", str(tmp_path), "--seconds", "2", "--quiet"]) == 0
    mix, sr = sf.read(str(tmp_path / "noisyneuron-demo-mix.wav"))
    out, _ = sf.read(str(tmp_path / "noisyneuron-demo-karaoke.wav"))
    assert sr == 44100 and mix.shape == out.shape == (88200, 2)
    assert not np.allclose(mix, out, atol=1e-3)


# ----- issue 13: an output never overwrites an input ------------------------------------------------
def _arrange_overwrite(tmp_path, layout):
    """(input, output) for each way an output can name the input or its temporary file."""
    song = tmp_path / "x.wav"
    if layout == "output-partial-is-input":  # x.partial.wav -> x.wav writes through x.partial.wav
        song = tmp_path / "x.partial.wav"
        out = tmp_path / "x.wav"
    elif layout == "same-path":
        out = song
    elif layout == "same-path-spelled-differently":
        out = tmp_path / "sub" / ".." / "x.wav"
        (tmp_path / "sub").mkdir()
    elif layout == "hard-link":
        out = tmp_path / "linked.wav"
    elif layout == "symlink":
        out = tmp_path / "alias.wav"
    elif layout == "partial-is-symlink-to-input":
        out = tmp_path / "y.wav"
    sf.write(str(song), make_demo_mix(sample_rate=44100, seconds=1.0)["mix"], 44100)
    if layout == "hard-link":
        os.link(song, out)
    elif layout == "symlink":
        os.symlink(song, out)
    elif layout == "partial-is-symlink-to-input":
        os.symlink(song, tmp_path / "y.partial.wav")
    return song, out


@pytest.mark.parametrize("layout", [
    "output-partial-is-input", "same-path", "same-path-spelled-differently", "hard-link", "symlink",
    "partial-is-symlink-to-input",
])
def test_process_refuses_an_output_that_would_overwrite_its_input(tmp_path, capsys, layout):
    song, out = _arrange_overwrite(tmp_path, layout)
    before = song.read_bytes()
    existed = {p.name for p in tmp_path.iterdir()}
    assert main(["process", str(song), str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("noisyneuron: error: ") and err.count("\n") == 1, err
    assert "input" in err
    assert song.read_bytes() == before  # the input is untouched
    assert {p.name for p in tmp_path.iterdir()} == existed  # and nothing was written or removed


def test_process_onto_a_disk_that_fills_is_one_line_and_keeps_an_incomplete_file(tmp_path, capsys, small_disk):
    song = tmp_path / "song.wav"
    sf.write(str(song), make_demo_mix(sample_rate=44100, seconds=4.0)["mix"], 44100)
    disk = small_disk(256)  # 4 s of 24-bit stereo is 1 MB
    out = disk / "out.wav"
    assert main(["process", str(song), str(out), "--quiet", "--chain", "centre-cut"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("noisyneuron: error: ") and err.count("\n") == 1, err
    assert "disk space" in err and "out.incomplete.wav" in err
    assert not out.exists() and not (disk / "out.partial.wav").exists()
    assert 0 < sf.info(str(disk / "out.incomplete.wav")).frames < 4 * 44100


def test_building_the_parser_imports_neither_torch_nor_numba():
    """Every command builds the whole parser first: it must not pay for torch (1.5-4 s) or
    numba (0.4 s) before the command that needs them runs (issue 14, start-up)."""
    import subprocess
    import sys

    code = ("import sys; from noisyneuron.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numba', 'scipy', 'textual', 'demucs') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_process_writes_mp3_at_the_asked_bitrate_and_refuses_a_bitrate_for_wav(song, tmp_path, capsys):
    """`process IN OUT.mp3 --bitrate 192`: an MP3 of the input's length at about 192 kbit/s
    (LAME's default, about 128, without it); a bitrate for a WAV is a one-line error."""
    path, demo = song
    sizes = {}
    for bitrate in (None, 192):
        out = tmp_path / f"karaoke-{bitrate}.mp3"
        argv = ["process", str(path), str(out), "--chain", "centre-cut", "--quiet"]
        assert main(argv + (["--bitrate", str(bitrate)] if bitrate else [])) == 0
        info = sf.info(str(out))
        assert info.format == "MP3" and info.samplerate == 44100 and info.channels == 2
        y, _ = sf.read(str(out), dtype="float32")
        assert abs(len(y) - len(demo["mix"])) <= 2304  # up to two MP3 frames of encoder padding
        sizes[bitrate] = out.stat().st_size
    kbps = sizes[192] * 8 / 1000 / 4.0
    assert 170 < kbps < 215, kbps
    assert sizes[None] < sizes[192]
    capsys.readouterr()
    assert main(["process", str(path), str(tmp_path / "x.wav"), "--chain", "centre-cut", "--quiet", "--bitrate", "192"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bitrate" in err[0]
    assert not (tmp_path / "x.wav").exists()


def test_separate_starts_neither_numba_nor_the_ui_stack():
    """`separate` with our model needs torch and the file I/O only: numba (and through its
    extensions rocket-fft and scipy.fft), textual and the MIDI stack stay unloaded (issue 14,
    start-up: they cost about 1.5 s of a short file's 4.5 s)."""
    code = (
        "import sys, numpy as np, soundfile as sf, tempfile, pathlib\n"
        "d = pathlib.Path(tempfile.mkdtemp()); sf.write(str(d / 'a.wav'), np.zeros((4410, 2)), 44100)\n"
        "from noisyneuron.cli import main\n"
        "assert main(['separate', str(d / 'a.wav'), '--out', str(d / 'out'), '-q']) == 0\n"
        "print(sorted(m for m in ('numba', 'rocket_fft', 'scipy', 'textual', 'rtmidi') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out
