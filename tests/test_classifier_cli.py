"""`noisyneuron classify` (timeline, formats, plot, bad files), `classify calibrate`,
`train classifier`, and `bench classifier`."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from classifier_fixtures import example, folder_of_folders, no_user_profile  # noqa: F401 (autouse)
from noisyneuron.cli import main
from noisyneuron.models.classifier import ClassifierNet, export_classifier


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """An untrained classifier of the shipped size: the CLI's behaviour does not depend on accuracy."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "untrained.pt"
    export_classifier(ClassifierNet(), path)
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """3 s of music at -20 dBFS, then 2 s of digital silence, stereo 44.1 kHz."""
    x = np.concatenate([example("music", 3.0, 1, 44100), np.zeros(2 * 44100, np.float32)])
    path = tmp_path_factory.mktemp("s") / "song.wav"
    sf.write(str(path), np.stack([x, 0.5 * x], axis=1), 44100)
    return path


def _segments_are_a_timeline(segments, duration):
    assert segments and segments[0]["start"] == 0.0
    for a, b in zip(segments, segments[1:]):
        assert a["end"] == b["start"] and a["label"] != b["label"]
    assert segments[-1]["end"] == pytest.approx(duration, abs=1e-3)
    assert all(0.0 <= s["confidence"] <= 1.0 for s in segments)


def test_classify_json_csv_table_and_plot(weights, song, tmp_path, capsys):
    assert main(["classify", str(song), "--format", "json", "--classifier-weights", str(weights), "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result) == 1 and result[0]["file"] == str(song) and result[0]["sample_rate"] == 44100
    segments = result[0]["segments"]
    _segments_are_a_timeline(segments, 5.0)
    # the silent end is silence (the level gate): once its 0.4 s window is silent, within two decisions
    assert segments[-1]["label"] == "silence" and 3.0 <= segments[-1]["start"] <= 3.6
    assert all(s["label"] != "silence" for s in segments[:-1] if s["end"] <= 3.0)

    assert main(["classify", str(song), "--format", "csv", "--classifier-weights", str(weights), "-q"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["label"], float(r["start"]), float(r["end"])) for r in rows] == [(s["label"], s["start"], s["end"]) for s in segments]

    plot = tmp_path / "song.png"
    assert main(["classify", str(song), "--classifier-weights", str(weights), "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    assert "start" in captured.out and "silence" in captured.out and str(song) in captured.out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert "x faster than real time" in captured.err

    other = tmp_path / "other.flac"
    sf.write(str(other), example("noise", 2.0, 3, 16000), 16000)
    assert main(["classify", str(song), str(other), "--classifier-weights", str(weights), "--plot", str(plot), "--format", "json", "-q"]) == 0
    assert [r["file"] for r in json.loads(capsys.readouterr().out)] == [str(song), str(other)]
    assert (tmp_path / "song-song.png").is_file() and (tmp_path / "song-other.png").is_file()


def test_plot_has_a_label_strip_above_a_clear_spectrogram(weights, song, tmp_path):
    """Issue 12 item 6: the segments are colour bands on a strip above the spectrogram (with a
    legend of every label); nothing (no boundary lines, no tint) is drawn over the spectrogram."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from noisyneuron.classify import _figure, segments_of
    from noisyneuron.models.classifier import batch_decisions, load_classifier

    net = load_classifier(weights)
    audio = sf.read(str(song), dtype="float32")[0].mean(axis=1)
    result = batch_decisions(net, audio, 44100)
    segments = segments_of(result, len(audio) / 44100)
    assert len(segments) >= 2  # there are boundaries to draw (music, then the silent end)
    fig, strip, spec = _figure(audio, 44100, result, segments, net, "song")
    try:
        fig.canvas.draw()
        assert len(spec.images) == 1 and not spec.lines and not spec.patches and not spec.collections
        assert strip.get_position().y0 >= spec.get_position().y1 - 1e-6  # the strip is above
        bands = strip.patches
        assert len(bands) == len(segments)
        for band, seg in zip(bands, segments):
            x0, x1 = band.get_window_extent().x0, band.get_window_extent().x1
            left, right = strip.transData.transform([(seg["start"], 0), (seg["end"], 0)])[:, 0]
            assert abs(x0 - left) < 1.0 and abs(x1 - right) < 1.0
        colour = {seg["label"]: band.get_facecolor()[:3] for band, seg in zip(bands, segments)}
        assert len({tuple(np.round(c, 3)) for c in colour.values()}) == len(colour)  # a colour per label
        legend = strip.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == list(result["labels"])
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if text.get_text() in colour:
                assert np.allclose(to_rgba(handle.get_facecolor())[:3], colour[text.get_text()], atol=1e-3)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("make,message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), ""),
    (lambda p: sf.write(str(p), np.zeros((0, 1), np.float32), 16000), ""),
])
def test_bad_files_are_one_line_errors(weights, song, tmp_path, capsys, make, message):
    bad = tmp_path / "bad.wav"
    make(bad)
    status = main(["classify", str(song), str(bad), "--classifier-weights", str(weights)])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""  # checked before any work: nothing printed for song.wav either
    err = captured.err.strip()
    assert err.count("\n") == 0 and err.startswith("noisyneuron: error:") and "bad.wav" in err and message in err


def test_missing_weights_and_bad_plot_name_are_one_line_errors(song, tmp_path, capsys):
    assert main(["classify", str(song), "--classifier-weights", str(tmp_path / "none.pt")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_classify_calibrate_from_a_folder(weights, tmp_path, capsys):
    folder = folder_of_folders(tmp_path / "takes", {"music": 1, "speech": 1, "noise": 1, "silence": 1}, seconds=6.0)
    profile = tmp_path / "studio.pt"
    status = main(["classify", "calibrate", "--from", str(folder), "--profile", str(profile), "--classifier-weights", str(weights)])
    out = capsys.readouterr().out
    assert status == 0, out
    line = next(x for x in out.splitlines() if x.startswith("held-back accuracy"))
    before, after = (float(v) for v in line.split("before ")[1].split(" -> after "))
    assert 0.0 <= before <= 1.0 and after >= before
    assert profile.is_file() and "profile saved" in out
    # the profile is used by `classify` when named, and `classify` says so
    song = tmp_path / "speech.wav"
    sf.write(str(song), example("speech", 2.0, 9), 16000)
    assert main(["classify", str(song), "--classifier-weights", str(profile)]) == 0
    assert "calibration profile" in capsys.readouterr().err
    # a label the model does not have
    (tmp_path / "birds" / "birds").mkdir(parents=True)
    sf.write(str(tmp_path / "birds" / "birds" / "a.wav"), example("music", 6.0, 1), 16000)
    assert main(["classify", "calibrate", "--from", str(tmp_path / "birds"), "--profile", str(profile), "--classifier-weights", str(weights)]) == 2
    assert "not the model's" in capsys.readouterr().err


def test_calibrate_needs_a_source(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["classify", "calibrate"])
    assert exc.value.code == 2
    assert "--input" in capsys.readouterr().err


def test_train_classifier_cli_and_export(tmp_path, capsys):
    data = folder_of_folders(tmp_path / "env", {"hum": 2, "rain": 2, "clatter": 2}, seconds=2.0)
    # label names are the user's: make their audio actually differ
    for label, kind in (("hum", "hum"), ("rain", "rain"), ("clatter", "clatter")):
        from noisyneuron.datasets import noise as nz

        for n, f in enumerate(sorted((data / label).iterdir())):
            x, _ = nz.random_noise(kind, np.random.default_rng(n), 2.0, 16000, -25.0)
            sf.write(str(f), x.astype(np.float32), 16000, subtype="FLOAT")
    out = tmp_path / "run"
    status = main(["train", "classifier", "--data", str(data), "--out", str(out), "--steps", "6", "--valid-every", "3",
                   "--threads", "1", "--export", str(tmp_path / "env.pt"), "-q"])
    printed = capsys.readouterr().out
    assert status == 0 and "labels clatter, hum, rain" in printed and "exported" in printed
    blob = torch.load(tmp_path / "env.pt", weights_only=True)
    assert blob["labels"] == ["clatter", "hum", "rain"] and blob["dtype"] == "float16"
    assert main(["train", "classifier", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def test_bench_classifier_runs_tiny(weights, monkeypatch):
    from noisyneuron.bench.classifier import format_classifier_table, run_classifier_bench

    monkeypatch.setenv("NOISYNEURON_CLASSIFIER_WEIGHTS", str(weights))
    result = run_classifier_bench(seconds=1.0, rows=("ours live 16 kHz", "energy-baseline"))
    ours, peer = result["rows"]["ours live 16 kHz"], result["rows"]["energy-baseline"]
    assert "error" not in ours and "error" not in peer, result
    assert ours["rtf"] > 0 and ours["decisions"] == (16000 // 512 * 512) // 1600 and 0 < ours["p50_ms"] <= ours["p99_ms"]
    assert ours["vs_energy"] == pytest.approx(ours["rtf"] / peer["rtf"])
    assert not ours["last_gated"]  # the bench measures the network, not the gate
    table = format_classifier_table(result)
    assert "ours live 16 kHz" in table and "energy-baseline" in table


# ----- issue 13: a plot that cannot be written is a one-line error --------------------------------
@pytest.mark.parametrize("where", ["under a regular file", "read-only file system", "full disk"])
def test_plot_that_cannot_be_written_is_one_line_and_exit_2(weights, song, tmp_path, capsys, small_disk, where):
    """Tests run as root, where a chmod'ed folder stays writable: these places fail for root too."""
    import subprocess

    if where == "under a regular file":
        (tmp_path / "notes.txt").write_text("a file, not a folder")
        plot = tmp_path / "notes.txt" / "out.png"
    elif where == "read-only file system":
        folder = small_disk(64)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        plot = folder / "out.png"
    else:
        folder = small_disk(8)  # the plot is well over 10 kB
        plot = folder / "out.png"
    status = main(["classify", str(song), "--classifier-weights", str(weights), "--plot", str(plot), "-q"])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.count("\n") == 0 and err.startswith("noisyneuron: error: --plot") and "Traceback" not in err, err
    assert not plot.exists() and (not plot.parent.is_dir() or not list(plot.parent.glob("out*.partial*")))
