"""The terminal UI driven by Textual's Pilot: keys change controls through the control surface,
bypass, help, presets, MIDI learn, the classifier panel; and 80x24 snapshots of the main screens.

These use the real chains and control surface with an engine-like object of fixed readings
(tests/tui_fakes.py); tests/test_tui_jack.py runs the UI on real engines on the JACK dummy server.
"""

from __future__ import annotations

import time

import numpy as np
from tui_fakes import FakeEngine, music_signal

from noisyneuron.control.session import LiveSession
from noisyneuron.realtime.chains import build_chain
from noisyneuron.tui.app import NoisyNeuronApp
from noisyneuron.tui.screens import HelpScreen, LoadPresetScreen, SavePresetScreen
from noisyneuron.tui.widgets import ClassifierPanel, ControlsPanel, EnginePanel, MeterPanel, SpectrumPanel

SIZE = (80, 24)


def make_session(chain=None) -> LiveSession:
    session = LiveSession(chain if chain is not None else build_chain("centre-cut"), engine_factory=FakeEngine)
    session.start()
    session.tap.write(music_signal())
    return session


def panel_text(app, widget_type) -> str:
    """What a panel shows, as plain text."""
    widget = app.query_one(widget_type)
    if hasattr(widget, "_texts") and widget._texts:
        return "\n".join(t.plain for t in widget._texts)
    return widget.render().plain


async def test_fader_keys_change_parameters_through_the_surface(tmp_path):
    session = make_session()
    changes = []
    session.surface.subscribe(lambda control, value, source: changes.append((control.key, value, source)))
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.controls.has_focus and app.controls.selected.key == "karaoke.vocals"
        await pilot.press("right")  # off (-60 dB) -> -59 dB
        assert session.surface.get("karaoke.vocals").value == -59.0
        await pilot.press("plus", "plus", "minus")
        assert session.surface.get("karaoke.vocals").value == -58.0
        await pilot.press("shift+right")  # coarse: 6 dB
        assert session.surface.get("karaoke.vocals").value == -52.0
        await pilot.press("down", "left", "pagedown")  # width: -1 %, then -10 %
        width = session.surface.get("karaoke.width")
        assert width.value == session.chain["karaoke"].parameters["width"].default - 11
        text = panel_text(app, ControlsPanel)
        assert "-52.0 dB" in text and width.display in text
        # the smoothed parameter itself has the new target: the audio thread ramps to it
        assert session.chain["karaoke"].parameters["vocals"].value == -52.0
    assert changes and all(source == "tui" for _, _, source in changes)
    assert [k for k, _, _ in changes].count("karaoke.vocals") == 5


async def test_changes_from_other_sources_show_up(tmp_path):
    session = make_session()
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        session.surface.set("karaoke.vocals", -20.0, source="osc")
        app.refresh_readings()
        await pilot.pause()
        assert "-20.0 dB" in panel_text(app, ControlsPanel)


async def test_bypass_toggle(tmp_path):
    session = make_session()
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert "● on" in panel_text(app, ControlsPanel)
        await pilot.press("b")
        assert session.surface.get("karaoke.bypass").value == 1.0
        assert session.chain.bypass["karaoke"].value == 1.0
        assert "○ bypassed" in panel_text(app, ControlsPanel)
        await pilot.press("home", "space")  # the processor's own row toggles too
        assert app.controls.selected.key == "karaoke.bypass"
        assert session.surface.get("karaoke.bypass").value == 0.0
        assert "● on" in panel_text(app, ControlsPanel)


async def test_help_screen_opens_and_closes(tmp_path):
    app = NoisyNeuronApp(make_session(), poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        # the footer shows the keys
        footer = " ".join(str(w.render()) for w in app.query("FooterKey"))
        for key in ("quit", "help", "bypass", "learn", "save", "load", "devices"):
            assert key in footer, footer


async def test_preset_save_and_load_round_trip(tmp_path):
    from noisyneuron.control.config import list_presets, load_preset

    session = make_session()
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "right", "right")  # vocals -57 dB
        await pilot.press("b")  # bypassed
        await pilot.press("s")
        assert isinstance(app.screen, SavePresetScreen)
        await pilot.press("ctrl+a", "ctrl+k", *"quiet", "enter")
        assert not isinstance(app.screen, SavePresetScreen)
        assert list_presets(tmp_path) == ["quiet"]
        saved = load_preset("quiet", tmp_path)
        assert saved.chain == "centre-cut" and saved.values["karaoke.vocals"] == -57.0
        assert saved.values["karaoke.bypass"] == 1.0
        # change things, then load it back
        await pilot.press("b", "left", "left")
        assert session.surface.get("karaoke.vocals").value == -59.0
        await pilot.press("o")
        assert isinstance(app.screen, LoadPresetScreen)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, LoadPresetScreen)
        assert session.surface.get("karaoke.vocals").value == -57.0
        assert session.surface.get("karaoke.bypass").value == 1.0
        assert session.preset_name == "quiet"
        app.refresh_readings()
        assert "preset quiet" in str(app.query_one("#title").render())


async def test_midi_learn_flow(tmp_path):
    from noisyneuron.control.midi import MidiController

    session = make_session()
    # the real controller, its ports not opened: the test plays the part of the MIDI port
    session.midi = MidiController(session.surface, virtual=False)
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        assert session.midi.learn_state().armed == "karaoke.vocals"
        assert app.controls.learning == "karaoke.vocals"
        assert "move a knob" in panel_text(app, ControlsPanel)
        assert "move a knob" in str(app.controls.border_subtitle)
        app.refresh_readings()  # still waiting
        assert app.learning == "karaoke.vocals"
        # a knob moves: CC 40 on channel 1 (what the reader thread hands the controller)
        session.midi._on_bytes([0xB0, 40, 64])
        session.midi._tick(time.monotonic() + 1.0)  # the 14-bit pairing window is over
        app.refresh_readings()
        await pilot.pause()
        assert app.learning is None and app.controls.learning is None
        assert "move a knob" not in panel_text(app, ControlsPanel)
        assert [(m.control, m.cc) for m in session.midi.mapping.cc] == [("karaoke.vocals", 40)]
        # learn again, then cancel with esc
        await pilot.press("down", "l")
        assert session.midi.learn_state().armed == "karaoke.width"
        await pilot.press("escape")
        assert session.midi.learn_state().armed is None and app.learning is None
        assert len(session.midi.mapping.cc) == 1


async def test_learn_without_midi_says_how_to_turn_it_on(tmp_path):
    app = NoisyNeuronApp(make_session(), poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        assert app.learning is None
        assert any("MIDI is off" in n.message for n in app._notifications)


async def test_classifier_panel_renders_a_reading(tmp_path):
    from noisyneuron.models.classifier import ClassifierNet
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.classifier import ClassifierProcessor

    chain = Chain([ClassifierProcessor(net=ClassifierNet().eval())], name="monitor")
    session = make_session(chain)  # the fake engine prepares the chain at 48 kHz, blocks of 256
    music = music_signal(seconds=1.5)
    for start in range(0, len(music) - 256, 256):
        chain.process(np.ascontiguousarray(music[start : start + 256]))
    reading = chain["monitor"].reading()
    assert reading.label is not None and reading.sequence > 0
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = panel_text(app, ClassifierPanel)
        assert reading.label.upper() in text
        for label in reading.confidences:
            assert label[:7] in text
        assert "%" in text
        # a later decision adds to the history strip
        for start in range(0, 4800, 256):
            chain.process(np.ascontiguousarray(music[start : start + 256]))
        app.refresh_readings()
        assert len(app.query_one(ClassifierPanel).history) == 2


async def test_no_classifier_and_the_other_panels(tmp_path):
    app = NoisyNeuronApp(make_session(), poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "no classifier in this chain" in panel_text(app, ClassifierPanel)
        meters = panel_text(app, MeterPanel)
        assert meters.count("\n") == 3 and "-12.0" in meters and "-18.0" in meters  # peak and RMS, in and out
        engine = panel_text(app, EnginePanel)
        for figure in ("latency 64.0 ms", "p99 2.8%", "callback 3.1%", "xruns 0", "late blocks 0", "OSC off", "MIDI off"):
            assert figure in engine, engine
        spectrum = app.query_one(SpectrumPanel)
        assert max(spectrum._cells) > 0  # the test signal's sines show


def test_ui_rate_at_80x24(tmp_path):
    """Polling at 30 Hz, the UI keeps up (>= 20 fps) with moving meters and spectrum."""
    import threading

    session = make_session()
    app = NoisyNeuronApp(session, presets_directory=tmp_path)
    signal = music_signal(seconds=1.0)
    stop = threading.Event()

    def feed():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            for start in range(0, len(signal) - 256, 256):
                session.tap.write(np.ascontiguousarray(signal[start : start + 256]) * rng.random())
                session.engine.input_meter.peak_dbfs[:] = -30 + 20 * rng.random(2)
                time.sleep(0.005)
                if stop.is_set():
                    return

    async def run_for_a_while(pilot):
        threading.Thread(target=feed, daemon=True).start()
        await pilot.pause(2.0)
        fps = app.ui_fps
        stop.set()
        app.exit(fps)

    fps = app.run(headless=True, size=SIZE, auto_pilot=run_for_a_while)
    assert fps is not None and fps >= 20.0, fps


# ----- snapshots (tests/__snapshots__; `pytest --snapshot-update` after a deliberate change) -----------
def _snapshot_app(tmp_path) -> NoisyNeuronApp:
    return NoisyNeuronApp(make_session(), poll_hz=0, presets_directory=tmp_path)


def test_snapshot_main_screen(snap_compare, tmp_path):
    assert snap_compare(_snapshot_app(tmp_path), terminal_size=SIZE)


def test_snapshot_help_screen(snap_compare, tmp_path):
    assert snap_compare(_snapshot_app(tmp_path), terminal_size=SIZE, press=["question_mark"])


async def test_choosing_a_device_restarts_the_engine_on_it(tmp_path):
    from noisyneuron.realtime.devices import DeviceInfo
    from noisyneuron.tui.screens import DeviceScreen

    devices = [
        DeviceInfo(0, "system", "JACK Audio Connection Kit", 2, 2, 48000.0, True, True),
        DeviceInfo(1, "USB Audio", "ALSA", 2, 2, 44100.0, False, False),
        DeviceInfo(2, "HDMI", "ALSA", 0, 8, 48000.0, False, False),
    ]
    session = make_session()
    session.surface.set("karaoke.vocals", -12.0, source="test")
    first = session.engine
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path, list_devices=lambda: devices)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d")
        assert isinstance(app.screen, DeviceScreen)
        inputs = app.screen.query_one("#inputs")
        assert inputs.option_count == 2  # HDMI has no inputs
        await pilot.press("tab")  # to the output list
        await pilot.press("down", "enter")  # from system (highlighted) to USB Audio
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, DeviceScreen)
        assert session.engine is not first and first.stopped == 1
        assert session.engine.output_name == "device 1" and session.engine.started == 1
        assert session.output_spec == 1
        assert session.engine.chain is session.chain  # same chain, same values
        assert session.surface.get("karaoke.vocals").value == -12.0
        app.refresh_readings()
        assert "device 1" in str(app.query_one("#title").render())


async def test_write_config_keeps_devices_chain_and_values(tmp_path, monkeypatch):
    from noisyneuron.control.config import load_config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    session = make_session()
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right", "right", "W")
    config = load_config(tmp_path / "xdg" / "noisyneuron" / "config.toml")
    assert config.chain.name == "centre-cut" and config.devices.blocksize == 256
    assert config.devices.input == "system" and config.devices.output == "system"
    assert config.chain.parameters["karaoke.vocals"] == -58.0


async def test_pop_up_screens_keep_the_main_keys_to_themselves(tmp_path):
    from noisyneuron.tui.screens import DeviceScreen

    session = make_session()
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path, list_devices=lambda: [])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark", "d", "b", "s")
        assert isinstance(app.screen, HelpScreen) and len(app.screen_stack) == 2
        assert session.surface.get("karaoke.bypass").value == 0.0
        await pilot.press("escape", "d")
        assert isinstance(app.screen, DeviceScreen)
        await pilot.press("escape")
        assert len(app.screen_stack) == 1


def test_live_help_explains_the_ui_headless_osc_midi_and_config(capsys):
    import pytest

    from noisyneuron.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["live", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("terminal UI", "80x24", "? shows every key", "own process", "--headless", "--ui-in-process",
                   "/noisyneuron/<processor>/<param>", "bypass", "--config", "--preset", "--set",
                   "--osc-port", "--osc-host", "--osc-allow", "--midi-in", "--midi-map", "--midi-virtual",
                   "--midi-feedback", "'NoisyNeuron'"):
        assert phrase in text, phrase


async def test_a_timer_tick_while_the_panels_are_torn_down_is_harmless(tmp_path):
    """At quit, Textual removes the panels while the 30 Hz timer can still fire once (seen on the
    JACK tests as NoMatches from the timer, failing the app): such a tick does nothing."""
    app = NoisyNeuronApp(make_session(), poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.query_one("#main").remove()
        app._tick()
        app._tick_once()
        await pilot.pause()
        assert app.ticks == 0


async def test_engine_panel_names_lost_audio_and_warns_once_when_too_slow(tmp_path):
    """The engine panel's bottom border says what was lost (nothing while nothing is), and the
    machine being too slow for the chain is said once, as a notification, with what to try."""
    from dataclasses import replace

    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processor import Processor

    class Heavy(Processor):  # stands for the neural separator (without loading it)
        kind = "heavy"

        def process(self, block) -> None:
            pass

    session = make_session(Chain([Heavy()], name="heavy"))
    engine = session.engine
    app = NoisyNeuronApp(session, poll_hz=0, presets_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = app.query_one(EnginePanel)
        assert not panel.border_subtitle and not app._notifications
        base = engine._stats
        for second in range(1, 6):  # losing 3.4 % of every second
            engine._stats = replace(base, run_seconds=float(second), lost_seconds=0.034 * second,
                                    dropped_input_seconds=0.034 * second, lost_share=0.034)
            app.refresh_readings()
        await pilot.pause()
        assert panel.border_subtitle == "too slow · lost 0.17 s (3.4%)", panel.border_subtitle
        notes = [n.message for n in app._notifications]
        assert len(notes) == 1 and "too slow for the heavy chain" in notes[0], notes
        assert "--chain centre-cut" in notes[0] and "--buffer-blocks 4" in notes[0], notes


async def test_a_larger_terminal_gives_the_room_to_the_spectrum_and_no_figure_is_cut(tmp_path):
    """At 120x40 the spectrum grows (more rows and columns of bars); at 80x24 the engine panel's
    figures fit their lines whole (no ellipsis), and the panels keep their 80x24 layout."""
    regions = {}
    for size in ((80, 24), (120, 40)):
        app = NoisyNeuronApp(make_session(build_chain("separator+monitor")), presets_directory=tmp_path)
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.3)
            spectrum, engine = app.query_one(SpectrumPanel), app.query_one(EnginePanel)
            regions[size] = (spectrum.region, engine.region)
            lines = [line for line in engine.render().plain.splitlines() if line]
            assert len(lines) == 5
            assert all(len(line) <= engine.content_size.width and "…" not in line for line in lines), lines
            bars = [t.plain for t in spectrum._texts]
            assert len(bars) == spectrum.content_size.height  # rows of bars and the axis fill the panel
    (small_spectrum, small_engine), (big_spectrum, big_engine) = regions[(80, 24)], regions[(120, 40)]
    assert small_spectrum.height == 7 and small_engine.height == 7
    assert big_spectrum.height >= 20 and big_spectrum.width > small_spectrum.width
    assert big_engine.height == 7
