"""The monitor live on a real JACK server (dummy driver): readings while audio plays, no xruns."""

from __future__ import annotations

import threading

import pytest
import torch

from noisyneuron.demo import make_demo_mix
from noisyneuron.models.classifier import ClassifierNet, export_classifier
from test_engine_jack import _live_without_xruns, run_probe

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
