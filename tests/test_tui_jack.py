"""The terminal UI on real engines on the JACK dummy server: in the engine's process, with the
engine in its own process (what `noisyneuron live` runs), and `noisyneuron live` itself in tmux."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from noisyneuron.control.live import LiveSpec, OscSpec
from noisyneuron.control.osc import OscClient
from noisyneuron.demo import make_demo_mix
from noisyneuron.realtime.chains import build_chain
from noisyneuron.audio.files import FileSource
from noisyneuron.tui.app import NoisyNeuronApp
from noisyneuron.tui.widgets import ControlsPanel, MeterPanel, SpectrumPanel

pytestmark = pytest.mark.jack
SIZE = (80, 24)


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(str(path), make_demo_mix(sample_rate=48000, seconds=4.0)["mix"], 48000)
    return path


async def _wait_for(pilot, condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await pilot.pause(0.05)
    return condition()


async def test_ui_in_process_on_a_real_engine(jack_server, song, tmp_path):
    from noisyneuron.control.session import LiveSession

    session = LiveSession(build_chain("centre-cut"), input=FileSource(song, 48000, 2, 256, loop=True),
                          sample_rate=48000, blocksize=256)
    session.start()
    try:
        app = NoisyNeuronApp(session, presets_directory=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            meters = app.query_one(MeterPanel)
            assert await _wait_for(pilot, lambda: meters._rows and meters._rows[2][2] > -60.0), meters._rows
            spectrum = app.query_one(SpectrumPanel)
            assert await _wait_for(pilot, lambda: spectrum._cells and max(spectrum._cells) > 8)
            await pilot.press("right", "right")
            assert session.chain["karaoke"].parameters["vocals"].value == -58.0
            assert "-58.0 dB" in app.query_one(ControlsPanel).render().plain
            assert await _wait_for(pilot, lambda: app.ui_fps is not None)  # a second of frames
            assert app.ui_fps > 10
            stats = session.stats()
            assert stats.blocks > 0 and stats.errors == 0
    finally:
        session.stop()


async def test_ui_with_the_engine_in_its_own_process(jack_server, song, tmp_path):
    """What `noisyneuron live` runs: the UI's controls reach the engine host over OSC, a DAW's
    changes reach the UI, meters and spectrum come through shared memory."""
    from noisyneuron.control.host import RemoteSession

    session = RemoteSession(LiveSpec(chain="centre-cut", input_file=str(song), loop=True, sample_rate=48000,
                             blocksize=256, settings=["width=50"]))
    try:
        assert not session.block.path.exists()  # both processes have it mapped: nothing can be left behind
        assert session.surface.get("karaoke.width").value == 50.0  # --set applied in the host, mirrored here
        app = NoisyNeuronApp(session, presets_directory=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            meters = app.query_one(MeterPanel)
            assert await _wait_for(pilot, lambda: meters._rows and meters._rows[2][2] > -60.0), meters._rows
            spectrum = app.query_one(SpectrumPanel)
            assert await _wait_for(pilot, lambda: spectrum._cells and max(spectrum._cells) > 8)
            await pilot.press("right", "right", "right")
            assert session.surface.get("karaoke.vocals").value == -57.0
            with OscClient("127.0.0.1", session.osc.port) as daw:
                deadline = time.monotonic() + 5
                while daw.query("/noisyneuron/karaoke/vocals")["f"] != -57.0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert daw.query("/noisyneuron/karaoke/vocals")["f"] == -57.0  # the engine has it
                daw.send("/noisyneuron/karaoke/width/f", 75.0)  # another client moves a control
                assert await _wait_for(pilot, lambda: session.surface.get("karaoke.width").value == 75.0, 5.0)
            app.refresh_readings()
            assert "75.0 %" in app.query_one(ControlsPanel).render().plain
            assert session.stats().blocks > 0 and session.latency_seconds > 0
            # another output device (here: the same one, by index): a new engine host, same values
            old_port = session.osc.port
            session.switch_devices(output=0)
            assert session.osc.port != old_port and session.output_spec == 0
            with OscClient("127.0.0.1", session.osc.port) as daw:
                assert daw.query("/noisyneuron/karaoke/vocals")["f"] == -57.0
                assert daw.query("/noisyneuron/karaoke/width")["f"] == 75.0
            meters._rows = ()
            assert await _wait_for(pilot, lambda: meters._rows and meters._rows[2][2] > -60.0), meters._rows
            await pilot.press("left")
            assert session.surface.get("karaoke.vocals").value == -58.0
    finally:
        final = session.stop()
    assert final is not None and final["final"]["blocks"] > 0 and final["final"]["errors"] == 0


def _host_value(port: int, address: str, expected: float, timeout: float = 5.0) -> float:
    """The engine host's value of ``address`` (asked over OSC like a DAW), once it is ``expected``
    or after ``timeout``."""
    with OscClient("127.0.0.1", port) as daw:
        deadline = time.monotonic() + timeout
        value = daw.query(address)["f"]
        while value != pytest.approx(expected, abs=1e-4) and time.monotonic() < deadline:
            time.sleep(0.05)
            value = daw.query(address)["f"]
        return value


async def test_presets_and_midi_in_the_ui_process_reach_the_engine_host(jack_server, song, tmp_path):
    """With the engine in its own process, a preset loaded in the UI and MIDI (a knob and a pad on
    the UI process's controller) change the engine's values: each goes through the mirror's
    ControlSurface.set (sources "preset" and "midi"), whose listener sends it to the host over OSC."""
    from noisyneuron.control.config import save_preset
    from noisyneuron.control.midi import MidiController
    from noisyneuron.control.midi_map import CCMapping, MidiMap, NoteMapping
    from noisyneuron.control.host import RemoteSession

    save_preset("soft", {"karaoke.vocals": -20.0, "karaoke.width": 60.0}, "centre-cut", tmp_path)
    session = RemoteSession(LiveSpec(chain="centre-cut", input_file=str(song), loop=True, sample_rate=48000,
                             blocksize=256))
    sources: list[tuple[str, str]] = []
    session.surface.subscribe(lambda control, value, source: sources.append((control.key, source)))
    # the real controller, its ports not opened: the test plays the part of the MIDI port
    session.midi = MidiController(session.surface, virtual=False, mapping=MidiMap(
        [CCMapping("karaoke.width", 0, 7, takeover="jump")], [NoteMapping("karaoke.bypass", 9, 36, "toggle")]))
    port = session.osc.port
    try:
        app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            assert app.load_preset("soft") == []
            assert _host_value(port, "/noisyneuron/karaoke/vocals", -20.0) == -20.0
            assert _host_value(port, "/noisyneuron/karaoke/width", 60.0) == 60.0
            session.midi._on_bytes([0xB0, 7, 127])  # the knob all the way up: width 100 %
            assert _host_value(port, "/noisyneuron/karaoke/width", 100.0) == 100.0
            session.midi._on_bytes([0x99, 36, 100])  # the pad: bypass on
            assert _host_value(port, "/noisyneuron/karaoke/bypass", 1.0) == 1.0
            app.refresh_readings()
            await pilot.pause()
            text = app.query_one(ControlsPanel).render().plain
            assert "100.0 %" in text and "bypassed" in text and "-20.0 dB" in text
    finally:
        session.stop()
    assert ("karaoke.vocals", "preset") in sources and ("karaoke.width", "preset") in sources
    assert ("karaoke.width", "midi") in sources and ("karaoke.bypass", "midi") in sources


def test_engine_host_error_is_one_line(jack_server):
    from noisyneuron.control.host import EngineHostError, RemoteSession

    with pytest.raises(EngineHostError) as info:
        RemoteSession(LiveSpec(chain="centre-cut", input="no-such-device-xyz"))
    assert "no input device matches 'no-such-device-xyz'" in str(info.value)
    assert "\n" not in str(info.value)


def test_osc_port_taken_is_fatal_only_when_the_command_line_asked(jack_server):
    """As with the engine in the UI's process: an OSC server that only the config file asked for
    and that cannot start is reported (one line, in the UI's OSC status) and the UI keeps its
    private link; one asked for on the command line stops `live` with one line."""
    import socket

    from noisyneuron.control.session import describe_osc
    from noisyneuron.control.host import EngineHostError, RemoteSession

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        osc = {"enabled": True, "host": "127.0.0.1", "port": port, "allow": [], "feedback_hz": 20.0}
        with pytest.raises(EngineHostError) as info:
            RemoteSession(LiveSpec(chain="centre-cut", osc=OscSpec(**dict(osc, asked=True))))
        assert str(info.value) and "\n" not in str(info.value)
        session = RemoteSession(LiveSpec(chain="centre-cut", osc=OscSpec(**dict(osc, asked=False))))
        try:
            assert session.osc.private and session.osc.port != port
            assert session.osc_error and "\n" not in session.osc_error
            assert describe_osc(session) == f"OSC error: {session.osc_error}"
            session.surface.set("karaoke.vocals", -30.0, source="tui")  # the private link works
            assert _host_value(session.osc.port, "/noisyneuron/karaoke/vocals", -30.0) == -30.0
        finally:
            session.stop()


@pytest.mark.parametrize("stderr_to_file", [False, True])
def test_live_in_tmux(jack_server, tmp_path, stderr_to_file):
    """`noisyneuron live --chain karaoke` in a real terminal (tmux): the screen shows the meters and
    the chain, `q` quits cleanly and the summary follows. With only standard error redirected
    (``2> live.log``) the UI still opens, on standard output, and the log gets the lines."""
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux is not installed (run.sh installs it for the tests: apt-get install tmux)")
    socket = f"nn-test-{os.getpid()}"
    status = tmp_path / "status"
    env = {
        "JACK_DEFAULT_SERVER": jack_server.name, "JACK_NO_START_SERVER": "1",
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "TERM": "xterm-256color",
    }
    env_args = " ".join(f"{k}={v}" for k, v in env.items())
    log = tmp_path / "live.log"
    redirect = f" 2> {log}" if stderr_to_file else ""
    command = (f"env {env_args} {sys.executable} -m noisyneuron live --chain karaoke{redirect}; "
               f"echo $? > {status}; sleep 30")

    def tmux_run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([tmux, "-L", socket, *args], capture_output=True, text=True, check=check,
                              env=dict(os.environ, **env))

    def screen() -> str:
        return tmux_run("capture-pane", "-p", "-t", "live").stdout

    tmux_run("-f", "/dev/null", "new-session", "-d", "-s", "live", "-x", "80", "-y", "24", "bash", "-c", command)
    tmux_run("set-option", "-t", "live", "status", "off")  # the whole 80x24 for the UI
    try:
        deadline = time.monotonic() + 90
        text = ""
        while time.monotonic() < deadline:
            text = screen()
            if "levels dBFS" in text and "chain: karaoke" in text and " fps" in text and "quit" in text:
                break
            time.sleep(0.25)
        assert "levels dBFS" in text and "chain: karaoke" in text, text
        for expected in ("in  L", "out L", "spectrum", "classifier", "engine", "xruns", "quit", "help"):
            assert expected in text, text
        assert all(len(line) <= 80 for line in text.splitlines())
        tmux_run("send-keys", "-t", "live", "q")
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status.exists(), screen()
        assert status.read_text().strip() == "0", screen()
        after = log.read_text() if stderr_to_file else screen()
        assert "ran " in after and "Traceback" not in after, after
        if stderr_to_file:
            assert "no terminal UI" not in after and "live: karaoke chain" in after, after
    finally:
        tmux_run("kill-server", check=False)


def test_live_headless_takes_osc_midi_and_a_preset_from_the_config(jack_server, tmp_path):
    """`noisyneuron live --headless` with a config file: OSC on the configured port, MIDI's virtual
    port, the chain's parameters from the file, a preset on top, --set over both."""
    import re
    import threading

    from noisyneuron.control.config import save_preset

    config = tmp_path / "config.toml"
    config.write_text(
        '[chain]\nname = "centre-cut"\n[chain.parameters]\n"karaoke.width" = 30\n"karaoke.low_cut" = 200\n'
        '[osc]\nenabled = true\nport = 0\n[midi]\nvirtual = true\n'
    )
    save_preset("soft", {"karaoke.vocals": -20.0, "karaoke.low_cut": 150.0}, "centre-cut", tmp_path / "presets")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"), NOISYNEURON_MIDI_API="jack")
    live = subprocess.Popen(
        [sys.executable, "-m", "noisyneuron", "live", "--headless", "--config", str(config), "--preset", "soft",
         "--set", "width=40", "--duration", "20"],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    lines: list[str] = []
    port = threading.Event()

    def read():
        for line in live.stderr:
            lines.append(line)
            if line.startswith("OSC "):
                port.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert port.wait(60), "".join(lines)
        osc_line = next(line for line in lines if line.startswith("OSC "))
        number = int(re.match(r"OSC [\d.]+:(\d+)", osc_line).group(1))
        with OscClient("127.0.0.1", number) as client:
            assert client.query("/noisyneuron/karaoke/width")["f"] == 40.0  # --set over the file
            assert client.query("/noisyneuron/karaoke/low_cut")["f"] == 150.0  # the preset over the file
            assert client.query("/noisyneuron/karaoke/vocals")["f"] == -20.0  # the preset
        deadline = time.monotonic() + 10
        while not any(line.startswith("MIDI ") for line in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("NoisyNeuron (virtual)" in line for line in lines if line.startswith("MIDI ")), "".join(lines)
    finally:
        live.send_signal(__import__("signal").SIGINT)
        live.wait(30)
    assert live.returncode == 0, "".join(lines)
    assert any(line.startswith("OSC: ") for line in lines), "".join(lines)  # the OSC summary at exit


def test_engine_host_on_a_disk_that_fills_reports_the_failure_and_keeps_the_take(jack_server, small_disk):
    """What `noisyneuron live --output` runs with the UI: the engine host stops on the failed write,
    names no file as written, and says how it failed (the UI then prints it and exits non-zero)."""
    from noisyneuron.control.host import RemoteSession

    disk = small_disk(256)  # under a second of 24-bit stereo at 48 kHz
    take = disk / "take.wav"
    session = RemoteSession(LiveSpec(chain="centre-cut", output_file=str(take), sample_rate=48000))
    try:
        deadline = time.monotonic() + 15
        while not session.finished and time.monotonic() < deadline:
            time.sleep(0.05)
        assert session.finished, "the engine host kept running on a full disk"
    finally:
        final = session.stop()
    assert final is not None and final["exit_code"] == 2 and final["wrote"] == ""
    assert "disk space" in final["failed"] and "take.incomplete.wav" in final["failed"]
    assert "\n" not in final["failed"] and final["final"]["errors"] == 1
    assert not take.exists() and sf.info(str(disk / "take.incomplete.wav")).frames > 0


def test_session_end_reason_names_a_processing_failure(jack_server, tmp_path):
    """The terminal UI quits on a session's end reason: a failed read must be one."""
    from noisyneuron.control.session import LiveSession

    song = tmp_path / "bad.flac"
    sf.write(str(song), make_demo_mix(sample_rate=48000, seconds=1.0)["mix"], 48000)
    data = bytearray(song.read_bytes())
    data[200:20200] = bytes((b * 7 + 13) & 255 for b in data[200:20200])
    song.write_bytes(bytes(data))
    session = LiveSession(build_chain("centre-cut"), input=FileSource(song, 48000, 2, 256), output=None,
                          sample_rate=48000, blocksize=256)
    session.start()
    try:
        assert session.engine.wait(2.0)
        reason = session.end_reason()
    finally:
        session.stop()
    assert reason is not None and reason.startswith("the audio stopped:") and "read failed" in reason
    assert session.engine.stats().errors == 1
