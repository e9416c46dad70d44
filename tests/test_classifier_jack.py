"""The monitor live on a real JACK server (dummy driver): readings while audio plays, no xruns;
`classify calibrate` recording from the JACK device."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from noisyneuron.demo import make_demo_mix
from noisyneuron.models.classifier import ClassifierNet, export_classifier
from test_engine_jack import _cli, _live_without_xruns, run_probe

pytestmark = pytest.mark.jack


@pytest.fixture()
def weights(tmp_path, monkeypatch):
    """Untrained weights of the shipped size (the work per decision is the same), used by every
    process of the test; no user profile."""
    torch.manual_seed(0)
    path = tmp_path / "classifier.pt"
    export_classifier(ClassifierNet(), path)
    monkeypatch.setenv("NOISYNEURON_CLASSIFIER_WEIGHTS", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return path


def test_monitor_live_publishes_readings_of_what_plays(jack_server, tmp_path, weights):
    from noisyneuron.realtime.chains import build_chain
    from noisyneuron.realtime.engine import Engine

    chain = build_chain("monitor")
    monitor = chain["monitor"]
    engine = Engine(chain, blocksize=256)
    seen = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            r = monitor.reading()
            if r is not None:
                seen.append(r)
            stop.wait(0.05)

    with engine:
        assert engine.latency_breakdown()["chain"] == 0
        reader = threading.Thread(target=poll)
        reader.start()
        try:
            music = make_demo_mix(sample_rate=int(engine.sample_rate), seconds=3.0)["mix"]
            run_probe(music, tmp_path, 4.0)
        finally:
            stop.set()
            reader.join()
    stats = engine.stats()
    assert stats.errors == 0
    sequences = [r.sequence for r in seen]
    assert sequences == sorted(sequences) and sequences[-1] >= 30  # ten decisions a second
    loud = [r for r in seen if not r.gated]
    assert loud and max(r.level_dbfs for r in loud) > -40.0  # it heard the music
    assert all(r.label in monitor.labels for r in seen)
    assert any(r.label == "silence" for r in seen)  # before the probe plays: nothing connected


@pytest.mark.slow
def test_monitor_live_20_seconds_without_xruns(jack_server, tmp_path, weights):
    """`noisyneuron live --chain monitor` at blocksize 256 on the 48 kHz JACK dummy server: 20 s
    without an xrun or a late block, under the rules of the karaoke test (test_engine_jack)."""
    _live_without_xruns(tmp_path, ("--chain", "monitor"))


def test_calibrate_records_from_the_jack_device(jack_server, tmp_path, weights):
    """`classify calibrate --input system` end to end on the JACK dummy server, stdin not a
    terminal (so no prompts): JACK's C sine client (jack_simple_client) is wired into the
    recording's input ports while the music take runs; the silence take hears the dummy
    driver's capture ports (digital silence). 5 s per label, two labels."""
    import jack
    import torch as th

    profile = tmp_path / "mic.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # another job owns the other core
    sine = subprocess.Popen(["jack_simple_client"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    control = jack.Client("nncalibrate-wiring", no_start_server=True)
    proc = None
    try:
        deadline = time.monotonic() + 10
        while not control.get_ports("^jack_simple_client:output", is_audio=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        source = control.get_ports("^jack_simple_client:output", is_audio=True)[0]
        proc = subprocess.Popen(
            [sys.executable, "-m", "noisyneuron", "classify", "calibrate", "--input", "system", "--labels", "music,silence",
             "--seconds", "5", "--profile", str(profile), "--classifier-weights", str(weights)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        err: list[str] = []
        music_started, music_done = threading.Event(), threading.Event()

        def read_stderr():
            for line in proc.stderr:
                err.append(line)
                if line.startswith("recording music"):
                    music_started.set()
                elif line.strip().startswith("music:"):
                    music_done.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        assert music_started.wait(60), "".join(err)
        wired = []
        while not wired and not music_done.is_set():  # the take's ports appear once its stream opens
            for port in control.get_ports("^PortAudio[^:]*:in", is_audio=True):
                try:
                    control.connect(source, port)
                    wired.append(port.name)
                except jack.JackError:
                    pass
            time.sleep(0.02)
        out = proc.stdout.read()
        assert proc.wait(60) == 0, "".join(err) + out
        reader.join(10)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        control.close()
        sine.terminate()
        sine.wait(10)
    err_text = "".join(err)
    assert wired, err_text
    assert "not a terminal" in err_text and "Traceback" not in err_text
    levels = {x.split(":")[0].strip(): float(x.split("RMS ")[1].split()[0]) for x in err if "RMS" in x}
    assert levels["music"] > -40.0 and levels["silence"] < -100.0, levels  # it heard the sine, then nothing
    assert "warning" not in err_text  # the music take was above the level gate
    line = next(x for x in out.splitlines() if x.startswith("held-back accuracy"))
    before, after = (float(v) for v in line.split("before ")[1].split(" -> after "))
    assert 0.0 <= before <= after <= 1.0, out
    per_label = [x.split() for x in out.splitlines() if x.startswith("  ")]
    assert [p[0] for p in per_label] == ["music", "silence"] and all(p[2] == "->" for p in per_label), out
    assert "profile saved: " + str(profile) in out
    blob = th.load(profile, weights_only=True)
    meta = blob["profile"]
    assert meta["labels_recorded"] == ["music", "silence"] and meta["accuracy_after"] == pytest.approx(after, abs=5e-4)


def test_calibrate_from_a_missing_device_is_one_line_error(jack_server, tmp_path, weights):
    r = _cli("classify", "calibrate", "--input", "no-such-device-xyz", "--profile", str(tmp_path / "p.pt"),
             "--classifier-weights", str(weights), "--yes")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "no input device matches 'no-such-device-xyz'" in r.stderr
    assert not (tmp_path / "p.pt").exists()
