"""End-to-end tests of the live engine on a real JACK server (dummy driver).

A separate probe process (tests/jack_probe.py) plays known signals into the engine's JACK input
ports and records its output ports, so the engine is measured from outside, as a user hears it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from noisyneuron.demo import make_demo_mix
from noisyneuron.realtime.chain import Chain
from noisyneuron.control.surface import ControlSurface
from noisyneuron.realtime.chains import build_chain
from noisyneuron.realtime.engine import Engine
from noisyneuron.realtime.offline import process_array
from noisyneuron.realtime.processor import Processor
from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

PROBE = Path(__file__).with_name("jack_probe.py")
pytestmark = pytest.mark.jack


def run_probe(play: np.ndarray, tmp_path: Path, seconds: float, on_ready=None) -> tuple[np.ndarray, dict]:
    """Play ``play`` into the PortAudio client and record its output for ``seconds``.

    ``on_ready()`` is called once the probe is wired and past its lead-in (steady state).
    """
    np.save(tmp_path / "play.npy", play.astype(np.float32))
    out = tmp_path / "rec.npy"
    ready = tmp_path / "ready"
    ready.unlink(missing_ok=True)
    probe = subprocess.Popen(
        [sys.executable, str(PROBE), str(tmp_path / "play.npy"), str(out), "--seconds", str(seconds),
         "--ready", str(ready)],
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and probe.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if on_ready is not None and ready.exists():
        on_ready()
    assert probe.wait(seconds + 30) == 0, "jack_probe failed"
    return np.load(out), json.loads(out.with_suffix(".json").read_text())


def impulse_train(sample_rate: int, seconds: float, every: float = 0.5) -> np.ndarray:
    x = np.zeros((int(sample_rate * seconds), 2), dtype=np.float32)
    for k in range(1, int(seconds / every)):
        x[int(k * every * sample_rate), :] = 0.8
    return x


@pytest.mark.parametrize("backend,blocksize", [("rtmixer", 256), ("rtmixer", 512), ("callback", 256)])
def test_round_trip_latency_equals_reported(jack_server, tmp_path, backend, blocksize):
    chain = build_chain("centre-cut")
    ControlSurface(chain).apply_settings(["karaoke.bypass=1"])  # impulses pass, delayed by the chain's latency
    engine = Engine(chain, blocksize=blocksize, backend=backend)
    at_ready = []
    with engine:
        sr = int(engine.sample_rate)
        play = impulse_train(sr, 3.0)
        rec, info = run_probe(play, tmp_path, 3.0, on_ready=lambda: at_ready.append(engine.stats()))
        reported = engine.latency_samples
    stats = engine.stats()
    assert at_ready, "the probe never got going"
    # from steady state on (wiring the probe's ports is a graph change), never late, unless the
    # server itself missed deadlines then (a VM stall: it runs the missed cycles back to back,
    # as the soak tests below measure): late blocks with no xrun are the engine's own
    late = stats.late_blocks - at_ready[0].late_blocks
    assert stats.errors == 0 and (late == 0 or stats.xruns > at_ready[0].xruns), stats
    played_at = np.flatnonzero(play[:, 0] > 0.5)
    heard_at = np.flatnonzero(np.abs(rec[:, 0]) > 0.4)
    # each impulse's delay to the first one heard after it
    delays = [int(heard_at[heard_at >= p][0] - p) for p in played_at if np.any(heard_at >= p)]
    # A server xrun the VM causes (see test_karaoke_live_20_seconds_without_xruns) can hit one
    # impulse; every other one must come back with one and the same delay, the reported latency
    # within one block (the probe, a PortAudio client in a feedback loop with the engine, may add
    # one JACK period of its own).
    typical = int(np.median(delays))
    assert sum(d == typical for d in delays) >= len(played_at) - 1, (delays, stats)
    assert abs(typical - reported) <= blocksize, (typical, engine.latency_breakdown())


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


def _cli(*args: str, timeout: float = 120, env=None, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "noisyneuron", *args], capture_output=True, text=True, timeout=timeout, env=env,
        stdin=stdin,
    )


def _count_server_xruns(seconds: float) -> int:
    """Server xruns over the next ``seconds``, from a JACK-Client counter."""
    import jack

    xruns = [0]
    counter = jack.Client("xruncounter", no_start_server=True)
    counter.set_xrun_callback(lambda delay: xruns.__setitem__(0, xruns[0] + 1))
    with counter:
        time.sleep(seconds)
    return xruns[0]


def _karaoke_window(tmp_path: Path, seconds: float, chain_args: tuple[str, ...] = ("--chain", "karaoke")) -> tuple[int, dict, np.ndarray]:
    """`noisyneuron live --chain karaoke` at blocksize 256 in its own process, fed by JACK's C
    sine client (jack_simple_client) and recorded by JACK's C recorder (jack_rec), so nothing
    but the engine runs Python; returns (server xruns in steady state, engine counters,
    recording)."""
    import jack
    import soundfile as sf

    stats_path = tmp_path / "stats.json"
    wav = tmp_path / "live.wav"
    live = subprocess.Popen(
        [sys.executable, "-m", "noisyneuron", "live", *chain_args, "--blocksize", "256",
         "--duration", str(seconds + 6), "--headless", "--stats-json", str(stats_path)],
        stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read_stderr():
        for line in live.stderr:
            lines.append(line)
            if line.startswith("live:"):
                ready.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    assert ready.wait(60), "".join(lines)
    sine = subprocess.Popen(["jack_simple_client"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    xruns = [0]
    control = jack.Client("xruncounter", no_start_server=True)
    control.set_xrun_callback(lambda delay: xruns.__setitem__(0, xruns[0] + 1))
    with control:
        engine_in = control.get_ports("^PortAudio[^:]*:in", is_audio=True)
        engine_out = control.get_ports("^PortAudio[^:]*:out", is_audio=True)
        deadline = time.monotonic() + 10
        while not control.get_ports("^jack_simple_client:output", is_audio=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        # the sine into the left input only: hard-left content, which karaoke keeps
        source = control.get_ports("^jack_simple_client:output", is_audio=True)[0]
        for _ in range(50):  # the client may still be activating
            try:
                control.connect(source, engine_in[0])
                break
            except jack.JackErrorCode:
                time.sleep(0.1)
        assert engine_in[0] in control.get_all_connections(source)
        recorder = subprocess.Popen(
            ["jack_rec", "-f", str(wav), "-d", str(seconds), *[p.name for p in engine_out]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1.5)  # connections are graph changes: count from steady state
        xruns[0] = 0
        late_before = _late_blocks_in_status(lines)
        recorder.wait(seconds + 30)
        steady_xruns = xruns[0]
        late_after = _late_blocks_in_status(lines)
    sine.terminate()
    sine.wait(10)
    live.wait(60)
    assert live.returncode == 0, "".join(lines)
    rec, _ = sf.read(str(wav), dtype="float32")
    stats = json.loads(stats_path.read_text())["stats"]
    stats["steady_late_blocks"] = late_after - late_before
    return steady_xruns, stats, rec


def _late_blocks_in_status(lines: list[str]) -> int:
    """The late-block count of the last once-a-second status line `live` printed."""
    for line in reversed(lines):
        if "| late " in line:
            return int(line.split("| late ")[1].split()[0])
    return 0


def _baseline_window(seconds: float) -> int:
    """Server xruns over ``seconds`` with only JACK's own C example clients (jack_thru and
    jack_simple_client) running: what the machine does with no Python and none of our code."""
    clients = [subprocess.Popen([name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for name in ("jack_thru", "jack_simple_client")]
    try:
        time.sleep(1.0)
        return _count_server_xruns(seconds)
    finally:
        for c in clients:
            c.terminate()
            c.wait(10)


@pytest.mark.slow
def test_centre_cut_live_20_seconds_without_xruns(jack_server, tmp_path):
    """The CLI's live DSP karaoke on the JACK dummy server at blocksize 256: 20 s without an xrun.

    Counted from when the sine source and the recorder are wired and running (connecting ports is
    a graph change). The processing thread must never be late, in any case. These virtual machines also make the
    server miss deadlines on their own, in bursts: JACK's C example clients alone measured
    0 xruns in 90 s one hour and 83 in 180 s the next. So if the window has xruns, the same
    length is measured with only those C clients: if they glitch too, the machine cannot
    measure this now and the test is skipped saying so; if they do not, the engine gets one
    more window and must be clean. A real defect (a Python callback under load) makes xruns in
    every window (hundreds in 10 s; see `noisyneuron bench dsp`).
    """
    _live_without_xruns(tmp_path, ("--chain", "centre-cut"))


@pytest.mark.slow
def test_separator_and_monitor_live_60_seconds_without_xruns(jack_server, tmp_path):
    """The neural separator live (torch in the processing thread, one thread) with the classifier
    monitor beside it, at blocksize 256 on the 48 kHz JACK dummy server: 60 s without an xrun or
    a late block (the separator's soak target, and the monitor's "zero xruns beside the
    separator"), under the same rules as the centre-cut test. Untrained separator weights of the
    shipped size: the work per hop is the same."""
    import torch

    from noisyneuron.models.pretrained import EXPORT_FORMAT
    from noisyneuron.models.separator import SeparatorConfig, SeparatorNet

    cfg = SeparatorConfig()
    weights = tmp_path / "separator.pt"
    torch.save({"format": EXPORT_FORMAT, "config": cfg.as_dict(), "state_dict": SeparatorNet(cfg).state_dict()}, weights)
    _live_without_xruns(tmp_path, ("--chain", "separator+monitor", "--separator-weights", str(weights), "--set", "vocals=0"), seconds=60.0)


def _live_without_xruns(tmp_path: Path, chain_args: tuple[str, ...], seconds: float = 20.0) -> None:
    """`noisyneuron live` for ``seconds`` must be clean: no server xrun and no late block.

    A window that is not clean gets up to two more: one clean window shows the engine can keep
    up, and a chain that cannot is late in all three (a lone late block with no server xrun, one
    in 3,400 blocks, was seen once in a full CI run on a busy 2-core VM: the processing thread
    descheduled past the 2-block margin while the server was not). Server xruns that JACK's C example clients make
    on their own in a window of the same length mean the machine cannot measure this now (skip,
    saying so). That holds for late blocks that come with server xruns too: when the virtual
    machine stalls, the dummy server misses its deadline and then runs the missed cycles back to
    back, draining the engine's 2-block margin faster than any processing thread can refill it
    (measured on a noisy day: 17-72 server xruns and 0-2 late blocks per 30 s for every chain,
    the centre cut and the monitor alone included, while the C clients alone had 4-25). Late
    blocks with no server xrun are the engine's own and have no such excuse: they fail in all
    three windows. Whatever the machine does, the chain's own cost is measured in every window: its
    processing time per block must stay under 0.8 of the block at the 99th percentile (the monitor's decision blocks, one in 19, take the most). A
    processing error fails at once.
    """
    import sounddevice as sd

    # This process's own PortAudio client (idle) would be one more client to wake every cycle.
    sd._terminate()
    try:
        windows = []
        for attempt in range(3):
            xruns, stats, rec = _karaoke_window(tmp_path, seconds, chain_args)
            assert stats["errors"] == 0, stats
            assert np.abs(rec).max() > 0.05, "no audio came back"
            late = stats["steady_late_blocks"]
            window = {"xruns": xruns, "late_blocks": late, "dropped_frames": stats["dropped_frames"],
                      "processing_load_p99": round(stats["processing_load_p99"], 3)}
            windows.append(window)
            assert stats["processing_load_p99"] < 0.8, f"the chain takes too long per block: {window}"
            if xruns == 0 and late == 0:
                return
            if xruns:
                baseline = _baseline_window(seconds)
                if baseline:
                    pytest.skip(
                        f"the machine is glitching on its own: JACK's C example clients alone had "
                        f"{baseline} xruns in {seconds:g} s (the engine's window: {window})"
                    )
        pytest.fail(f"xruns or late blocks in all three {seconds:g} s windows with the engine: {windows}")
    finally:
        sd._initialize()


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
    r = _cli("live", "--input", str(song), stdin=subprocess.DEVNULL)  # no --headless, no terminal: it says why
    assert r.returncode == 0, r.stderr
    assert "no terminal UI (standard input is not a terminal): running headless" in r.stderr, r.stderr


def test_sigint_stops_cleanly_and_leaves_a_valid_file(jack_server, tmp_path):
    import signal
    import time

    import soundfile as sf

    out = tmp_path / "rec.wav"
    p = subprocess.Popen([sys.executable, "-m", "noisyneuron", "live", "--headless", "--output", str(out)],
                         stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:  # running once it says so (loading the separator takes seconds)
        lines.append(line)
        if line.startswith("live:"):
            break
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    _, rest = p.communicate(timeout=30)
    err = "".join(lines) + rest
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


# ----- issue 13: a failure in the processing thread stops the run, loses nothing --------------------
def _start_live(*args: str) -> tuple[subprocess.Popen, list[str], float]:
    """`noisyneuron live --headless ARGS`, read up to its `live:` line; returns (process, stderr
    lines so far, time the line came)."""
    p = subprocess.Popen([sys.executable, "-m", "noisyneuron", "live", "--headless", *args],
                         stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if line.startswith("live:"):
            break
    return p, lines, time.monotonic()


def _finish(p: subprocess.Popen, lines: list[str], timeout: float = 30) -> tuple[str, float]:
    """Wait for ``p``; returns (all of its stderr, the time it exited)."""
    rest = []
    reader = threading.Thread(target=lambda: rest.extend(p.stderr), daemon=True)
    reader.start()
    p.wait(timeout)
    ended = time.monotonic()
    reader.join(5)
    return "".join(lines + rest), ended


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("noisyneuron: error:")]


def test_live_output_on_a_disk_that_fills_stops_and_keeps_an_incomplete_take(jack_server, small_disk):
    import os
    import wave

    import soundfile as sf

    disk = small_disk(512)  # 24-bit stereo at 48 kHz is 288 kB/s: full after about 1.8 s
    take = disk / "take.wav"
    p, lines, _ = _start_live("--chain", "centre-cut", "--output", str(take), "--duration", "30")
    full_at = None
    try:
        while p.poll() is None and time.monotonic() - (full_at or time.monotonic()) < 5:
            st = os.statvfs(disk)
            if full_at is None and st.f_bavail * st.f_frsize < 8192:
                full_at = time.monotonic()
            time.sleep(0.005)
        err, ended = _finish(p, lines)
    finally:
        if p.poll() is None:
            p.kill()
    assert full_at is not None, "the disk never filled"
    assert p.returncode not in (0, None), err
    assert ended - full_at < 2.0, f"took {ended - full_at:.1f} s to stop after the disk filled\n{err}"
    assert "Traceback" not in err, err
    errors = _error_lines(err)
    assert len(errors) == 1 and "take.incomplete.wav" in errors[0] and "disk space" in errors[0], err
    assert "1 processing errors" in err, err  # the stats count it
    assert not take.exists() and not (disk / "take.partial.wav").exists()  # nothing under a final name
    kept = disk / "take.incomplete.wav"
    with wave.open(str(kept)) as w:  # a valid header, for strict readers too
        assert w.getnframes() > 48000
    assert sf.info(str(kept)).frames == wave.open(str(kept)).getnframes()


@pytest.mark.parametrize("where", ["first read", "mid-read"])
def test_live_input_that_fails_to_read_stops_within_a_second(jack_server, tmp_path, where):
    import soundfile as sf

    song = tmp_path / "song.flac"
    sf.write(str(song), make_demo_mix(sample_rate=48000, seconds=3.0)["mix"], 48000)
    data = bytearray(song.read_bytes())
    start = 200 if where == "first read" else len(data) // 2  # after the header / in the middle
    for k in range(start, min(len(data), start + 20000)):
        data[k] = (data[k] * 7 + 13) & 255
    song.write_bytes(bytes(data))
    p, lines, started = _start_live("--chain", "centre-cut", "--input", str(song))
    try:
        err, ended = _finish(p, lines, timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 2, err  # a corrupt file is the user's to fix, as in `process`
    assert "Traceback" not in err, err
    errors = _error_lines(err)
    assert len(errors) == 1 and "read failed" in errors[0] and str(song) in errors[0], err
    # the first read fails at once; the mid-read one after the first 65536 frames (1.4 s) played
    budget = 2.0 if where == "first read" else 65536 / 48000 + 2.0
    assert ended - started < budget, f"took {ended - started:.1f} s\n{err}"


# ----- issue 13 item 8: what a slow machine loses is counted, in seconds, and said plainly ---------
class Sleeper(Processor):
    """Test processor: passes audio through, sleeping ``sleep`` seconds in every block (a chain
    slower than real time), or once for ``stall`` seconds when :meth:`stall_once` is called."""

    kind = "sleeper"

    def __init__(self, sleep: float = 0.0) -> None:
        super().__init__()
        self.sleep = sleep
        self._stall = 0.0

    def stall_once(self, seconds: float) -> None:
        self._stall = seconds

    def process(self, block) -> None:
        if self._stall:
            stall, self._stall = self._stall, 0.0
            time.sleep(stall)
        elif self.sleep:
            time.sleep(self.sleep)


BLOCK_SECONDS = 256 / 48000


def _server_xruns_during(action):
    """Run ``action()``; returns (its result, server xruns meanwhile) from a JACK-Client counter."""
    import jack

    xruns = [0]
    counter = jack.Client("xruncounter", no_start_server=True)
    counter.set_xrun_callback(lambda delay: xruns.__setitem__(0, xruns[0] + 1))
    with counter:
        result = action()
    return result, xruns[0]


def test_a_chain_slower_than_real_time_reports_the_input_it_lost(jack_server):
    """Processing takes 1.5 blocks per block: about a third of the input cannot be processed. The
    stats say how much, in seconds and as a share of the run, and the watch says it once."""
    from noisyneuron.realtime.engine import SlowMachineWatch

    engine = Engine(Chain([Sleeper(1.5 * BLOCK_SECONDS)], name="sleepy"), blocksize=256)
    watch = SlowMachineWatch(engine.chain, engine.buffer_blocks)
    warnings = []
    with engine:
        for _ in range(3):
            time.sleep(1.0)
            warnings.append(watch.check(engine.stats()))
    s = engine.stats()
    assert 2.8 < s.run_seconds < 4.0, s
    assert s.dropped_input_seconds > 0.4 and s.late_output_seconds > 0.4, s
    assert 0.15 < s.lost_share < 0.6, s
    assert s.lost_seconds == max(s.dropped_input_seconds, s.late_output_seconds)
    # what was processed and what was lost make up the run (the device's time exactly: the
    # wall clock also has whatever the JACK server itself missed, its xruns, on a busy machine)
    assert abs(s.seconds + s.dropped_input_seconds - s.run_seconds) < (0.1 if s.xruns == 0 else 0.3), s
    assert s.as_dict()["dropped_input_seconds"] == s.dropped_input_seconds
    assert "lost" in s.summary() and f"{s.lost_share * 100:.1f}% of the run" in s.summary()
    said = [w for w in warnings if w]
    assert len(said) == 1 and warnings[0] == said[0], warnings  # at once, and once
    assert "too slow for the sleepy chain" in said[0] and "--chain centre-cut" in said[0], said


def test_a_stall_loses_as_much_input_as_it_lasted(jack_server):
    """One 0.6 s stall: the counter of dropped frames alone saw a few ms of it (the rest of the
    input overflowed the output ring, or the thread was blind while it slept); the device's own
    count of callbacks sees all of it."""
    sleeper = Sleeper()
    engine = Engine(Chain([sleeper], name="stall"), blocksize=256)
    with engine:
        time.sleep(0.5)
        sleeper.stall_once(0.6)
        time.sleep(1.5)
    s = engine.stats()
    assert 0.55 < s.dropped_input_seconds < 0.9, s
    assert 0.55 < s.late_output_seconds < 0.9, s


def test_a_normal_run_loses_nothing(jack_server):
    engine = Engine(Chain([Sleeper()], name="plain"), blocksize=256)

    def run():
        with engine:
            time.sleep(2.0)
        return engine.stats()

    s, xruns = _server_xruns_during(run)
    if s.lost_seconds and xruns:
        pytest.skip(f"the machine stalled the JACK server ({xruns} server xruns): {s.summary()}")
    assert s.lost_seconds == 0 and s.dropped_input_seconds == 0 and s.late_output_seconds == 0, s.summary()
    assert s.lost_share == 0 and 1.9 < s.run_seconds < 2.6, s
    assert "nothing lost" in s.summary()


@pytest.mark.parametrize("kind", ["slow", "normal"])
def test_live_names_the_loss_in_its_status_lines_stats_json_and_a_warning(jack_server, tmp_path, monkeypatch, capsys, kind):
    """`live --headless` with a chain slower than real time: the status lines say `lost`, the
    JSON carries the seconds and the share, and the too-slow warning comes once, with what to try.
    With a chain that keeps up: nothing lost, no warning."""
    from noisyneuron import cli, live

    sleep = 1.5 * BLOCK_SECONDS if kind == "slow" else 0.0
    from noisyneuron.realtime import chains

    monkeypatch.setattr(chains, "build_chain", lambda name, channels=None: Chain([Sleeper(sleep)], name="sleepy"))
    monkeypatch.setattr(live, "_install_sigterm_handler", lambda: None)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    stats_path = tmp_path / "stats.json"
    code, xruns = _server_xruns_during(lambda: cli.main(
        ["live", "--headless", "--duration", "2.5", "--stats-json", str(stats_path)]))
    err = capsys.readouterr().err
    assert code == 0, err
    stats = json.loads(stats_path.read_text())["stats"]
    for key in ("run_seconds", "dropped_input_seconds", "late_output_seconds", "lost_seconds", "lost_share"):
        assert key in stats, stats
    lines = err.splitlines()
    status = [line for line in lines if "| late " in line]
    warnings = [line for line in lines if "too slow" in line]
    if kind == "slow":
        assert stats["dropped_input_seconds"] > 0.3 and 0.15 < stats["lost_share"] < 0.6, stats
        assert 2.3 < stats["run_seconds"] < 3.5, stats
        assert status and all("| lost " in line for line in status), err
        live = [line for line in warnings if line.startswith("noisyneuron: warning: this machine is too slow")]
        final = [line for line in warnings if line.startswith("noisyneuron: warning: the machine was too slow")]
        assert len(live) == 1 and len(final) == 1, err
        assert "--chain centre-cut" in live[0], live
        summary = next(line for line in lines if line.startswith("ran "))
        assert f"{stats['lost_share'] * 100:.1f}% of the run" in summary, summary  # the summary names it
    else:
        if stats["lost_seconds"] and xruns:
            pytest.skip(f"the machine stalled the JACK server ({xruns} server xruns): {stats}")
        assert stats["lost_seconds"] == 0 and stats["lost_share"] == 0, stats
        assert status and not any("lost" in line for line in status) and not warnings, err
        assert "nothing lost" in next(line for line in lines if line.startswith("ran ")), err
