"""End-to-end tests of the live engine on a real JACK server (dummy driver).

A separate probe process (tests/jack_probe.py) plays known signals into the engine's JACK input
ports and records its output ports, so the engine is measured from outside, as a user hears it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from noisyneuron.demo import make_demo_mix
from noisyneuron.realtime.chain import Chain
from noisyneuron.realtime.chains import apply_settings, build_chain
from noisyneuron.realtime.engine import Engine
from noisyneuron.realtime.offline import process_array
from noisyneuron.realtime.processor import Processor
from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

PROBE = Path(__file__).with_name("jack_probe.py")
pytestmark = pytest.mark.jack


def run_probe(play: np.ndarray, tmp_path: Path, seconds: float) -> tuple[np.ndarray, dict]:
    """Play ``play`` into the PortAudio client and record its output for ``seconds``."""
    np.save(tmp_path / "play.npy", play.astype(np.float32))
    out = tmp_path / "rec.npy"
    subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path / "play.npy"), str(out), "--seconds", str(seconds)],
        check=True, timeout=seconds + 30,
    )
    return np.load(out), json.loads(out.with_suffix(".json").read_text())


def impulse_train(sample_rate: int, seconds: float, every: float = 0.5) -> np.ndarray:
    x = np.zeros((int(sample_rate * seconds), 2), dtype=np.float32)
    for k in range(1, int(seconds / every)):
        x[int(k * every * sample_rate), :] = 0.8
    return x


@pytest.mark.parametrize("backend,blocksize", [("rtmixer", 256), ("rtmixer", 512), ("callback", 256)])
def test_round_trip_latency_equals_reported(jack_server, tmp_path, backend, blocksize):
    chain = build_chain("karaoke")
    apply_settings(chain, ["karaoke.bypass=1"])  # impulses pass, delayed by the chain's latency
    engine = Engine(chain, blocksize=blocksize, backend=backend)
    with engine:
        sr = int(engine.sample_rate)
        play = impulse_train(sr, 3.0)
        rec, info = run_probe(play, tmp_path, 3.0)
        reported = engine.latency_samples
    stats = engine.stats()
    assert stats.xruns == 0 and stats.late_blocks == 0 and stats.errors == 0, stats
    played_at = np.flatnonzero(play[:, 0] > 0.5)
    heard_at = np.flatnonzero(np.abs(rec[:, 0]) > 0.4)
    assert len(heard_at) == len(played_at), f"impulses lost: played {played_at}, heard {heard_at}"
    delays = heard_at - played_at
    assert np.all(delays == delays[0]), f"latency drifted: {delays}"
    assert abs(int(delays[0]) - reported) <= blocksize, (delays[0], engine.latency_breakdown())


class InputTap(Processor):
    """Test processor: records the chain's input (the engine's input stream) into a buffer."""

    kind = "tap"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.buffer = np.zeros((frames, 2), dtype=np.float32)
        self.position = 0

    def reset(self) -> None:
        super().reset()
        self.position = 0

    def process(self, block) -> None:
        n = min(len(block), len(self.buffer) - self.position)
        self.buffer[self.position : self.position + n] = block[:n]
        self.position += n


def test_live_output_equals_offline_output_shifted_by_latency(jack_server, tmp_path):
    """The same input gives the same samples live and offline; offline adds no delay."""
    seconds = 4.0
    tap = InputTap(int(48000 * (seconds + 2)))
    karaoke = CentreCutKaraoke()
    engine = Engine(Chain([tap, karaoke], name="karaoke"), blocksize=256)
    captured_out = np.zeros_like(tap.buffer)
    pos = [0]

    def capture_output(block):
        n = min(len(block), len(captured_out) - pos[0])
        captured_out[pos[0] : pos[0] + n] = block[:n]
        pos[0] += n

    engine.on_block = capture_output
    demo = make_demo_mix(sample_rate=48000, seconds=3.0)["mix"]
    with engine:
        run_probe(demo, tmp_path, seconds)
    n = min(tap.position, pos[0])
    live_in, live_out = tap.buffer[:n], captured_out[:n]
    assert np.abs(live_in).max() > 0.1, "the engine heard nothing"
    offline = process_array(live_in, Chain([CentreCutKaraoke()], name="karaoke"), blocksize=512, sample_rate=48000)
    latency = karaoke.latency_samples
    np.testing.assert_allclose(live_out[latency:], offline[: n - latency], atol=1e-5)


def _cli(*args: str, timeout: float = 120, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "noisyneuron", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.slow
def test_karaoke_live_20_seconds_without_xruns(jack_server, tmp_path):
    """The CLI's live karaoke on the JACK dummy server at blocksize 256: no xruns in 20 s."""
    import jack

    xruns = [0]
    counter = jack.Client("xruncounter", no_start_server=True)
    counter.set_xrun_callback(lambda delay: xruns.__setitem__(0, xruns[0] + 1))
    stats_path = tmp_path / "stats.json"
    with counter:
        live = subprocess.Popen(
            [sys.executable, "-m", "noisyneuron", "live", "--chain", "karaoke", "--blocksize", "256",
             "--duration", "24", "--headless", "--quiet", "--stats-json", str(stats_path)],
            stderr=subprocess.PIPE, text=True,
        )
        # wait for the engine's ports, then play music into it for 20 s
        ready = threading.Event()
        lines = []

        def read_stderr():
            for line in live.stderr:
                lines.append(line)
                if line.startswith("live:"):
                    ready.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        assert ready.wait(60), "".join(lines)
        xruns[0] = 0
        demo = make_demo_mix(sample_rate=48000, seconds=20.0)["mix"]
        rec, info = run_probe(demo, tmp_path, 20.0)
        live.wait(60)
    assert live.returncode == 0, "".join(lines)
    stats = json.loads(stats_path.read_text())["stats"]
    assert xruns[0] == 0, f"JACK server xruns: {xruns[0]}"
    assert info["xruns"] == 0
    assert stats["xruns"] == 0 and stats["late_blocks"] == 0 and stats["errors"] == 0, stats
    assert np.abs(rec).max() > 0.05, "no audio came back"


def test_live_to_file_and_from_file(jack_server, tmp_path):
    out = tmp_path / "live.wav"
    r = _cli("live", "--output", str(out), "--duration", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    import soundfile as sf

    info = sf.info(str(out))
    assert info.channels == 2 and 1.5 < info.duration < 3.0
    song = tmp_path / "song.wav"
    sf.write(str(song), make_demo_mix(sample_rate=44100, seconds=1.0)["mix"], 44100)
    r = _cli("live", "--input", str(song), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "input file finished" in r.stderr


def test_sigint_stops_cleanly_and_leaves_a_valid_file(jack_server, tmp_path):
    import signal
    import time

    import soundfile as sf

    out = tmp_path / "rec.wav"
    p = subprocess.Popen([sys.executable, "-m", "noisyneuron", "live", "--output", str(out), "--quiet"],
                         stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "Traceback" not in err
    assert sf.info(str(out)).frames > 0


def test_missing_device_is_one_line_error(jack_server):
    r = _cli("live", "--input", "no-such-device-xyz", "--duration", "1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "no input device matches 'no-such-device-xyz'" in r.stderr


def test_devices_lists_jack(jack_server):
    r = _cli("devices")
    assert r.returncode == 0
    assert "JACK Audio Connection Kit" in r.stdout


def test_no_device_falls_back_to_the_demo(tmp_path):
    """Without any audio device, live karaoke renders the demo through the chain into a file."""
    import os

    import soundfile as sf

    env = dict(os.environ, JACK_DEFAULT_SERVER="noisyneuron-no-such-server", JACK_NO_START_SERVER="1")
    listed = _cli("devices", "--json", env=env)
    if json.loads(listed.stdout or "[]"):
        pytest.skip("this machine has audio devices besides JACK")
    r = _cli("live", "--chain", "karaoke", "--demo-dir", str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr
    assert "No usable audio device" in r.stderr
    mix, sr = sf.read(str(tmp_path / "noisyneuron-demo-mix.wav"), dtype="float32")
    out, _ = sf.read(str(tmp_path / "noisyneuron-demo-karaoke.wav"), dtype="float32")
    assert mix.shape == out.shape and sr == 44100
    # the output is much closer to the accompaniment than the mix was (the vocal is removed)
    stems = make_demo_mix(sample_rate=44100, seconds=len(mix) / 44100)
    np.testing.assert_allclose(stems["mix"], mix, atol=1e-4)  # same demo song (24-bit file)
    vocal_energy = np.sum(stems["vocals"] ** 2)
    residual = np.sum((out - stems["accompaniment"]) ** 2)
    assert residual < vocal_energy / 4, 10 * np.log10(residual / vocal_energy)
