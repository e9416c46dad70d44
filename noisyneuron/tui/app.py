"""The terminal UI of ``noisyneuron live`` (Textual).

The app takes a session: by default (what ``noisyneuron live`` runs) a
:class:`~noisyneuron.control.host.RemoteSession`, the engine in its own process with the UI as an OSC
client (measured with ``noisyneuron bench live``: in the engine's process the UI's Python code
costs the neural chains late blocks, see the README); with ``--ui-in-process`` a
:class:`~noisyneuron.control.session.LiveSession` in this process. It never touches the audio
path: a timer polls the readings 30 times a second
(:func:`~noisyneuron.control.readings.poll_readings`: meters, engine figures, the classifier's
reading) and copies the last output samples from the session's tap for the spectrum; every
control change goes through the :class:`~noisyneuron.control.surface.ControlSurface` with
``source="tui"`` (OSC, MIDI and presets take the same path, and the panels show their changes too).
With a RemoteSession that surface is the mirror's: its listener sends each change (keys, MIDI,
presets) to the engine host as ``<address>/f``, where the host's OSC server applies it through
the host's own :meth:`ControlSurface.set`.

Layout (80x24 and up)::

    title: chain, devices, preset
    ┌ levels ───────────────┐┌ spectrum ──────────────┐
    │ in/out meters         ││                         │
    └───────────────────────┘└─────────────────────────┘
    ┌ chain ────────────────┐┌ classifier ────────────┐
    │ processor  ● on       ││ label, bars, history    │
    │   param  ▕████   ▏ -6 ││                         │
    │ mix      ▕██████ ▏100 │└─────────────────────────┘
    │                       │┌ engine ────────────────┐
    │                       ││ latency, load, xruns,   │
    │                       ││ OSC, MIDI               │
    └───────────────────────┘└─────────────────────────┘
    footer: keys
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from functools import partial
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Static

from noisyneuron.control.readings import poll_readings
from noisyneuron.control.session import describe_midi, describe_osc
from noisyneuron.errors import UserError
from noisyneuron.realtime.engine import SlowMachineWatch
from noisyneuron.tui.screens import DeviceScreen, HelpScreen, LoadPresetScreen, SavePresetScreen
from noisyneuron.tui.spectrum import SpectrumAnalyser
from noisyneuron.tui.widgets import (
    ClassifierPanel,
    ControlsPanel,
    EnginePanel,
    MeterPanel,
    SpectrumPanel,
    spectrum_axis,
)

__all__ = ["NoisyNeuronApp", "DEFAULT_POLL_HZ", "learn_state"]

#: readings polled (and the screen redrawn, where something changed) this many times a second:
#: 30, so that a loaded machine still draws 20 or more (the target; tests/test_tui.py checks it)
DEFAULT_POLL_HZ = 30.0


def classifier_name(chain) -> str | None:
    """The first processor of ``chain`` that publishes readings (``reading()``), or None."""
    for processor in chain.processors:
        if callable(getattr(processor, "reading", None)):
            return processor.name
    return None


def learn_state(midi) -> tuple[str | None, object, str]:
    """MIDI learn as the UI needs it: ``(armed control key or None, the last mapping learned or
    None, one-line message)`` from a :class:`~noisyneuron.control.midi.MidiController`."""
    if midi is None:
        return None, None, ""
    try:
        fn = getattr(midi, "learn_state", None)
        state = fn() if callable(fn) else getattr(midi.status(), "learn", None)
    except Exception:  # noqa: BLE001 - a display must not fail
        return None, None, ""
    if state is None:
        return None, None, ""
    return getattr(state, "armed", None), getattr(state, "last", None), str(getattr(state, "message", "") or "")


def terminal_driver():
    """The Textual driver for this terminal: None (Textual's own, drawing on standard error) when
    standard error is a terminal; one drawing on standard output when only standard error is
    redirected (``noisyneuron live 2> log.txt``), so the UI still opens and the log gets the
    lines. Textual's Linux driver keeps its output file in ``_file``; this is the one place we set it."""
    import os
    import sys

    if os.name != "posix":
        return None
    try:
        if sys.__stderr__ is not None and sys.__stderr__.isatty():
            return None
        if sys.__stdout__ is None or not sys.__stdout__.isatty():
            return None
    except (AttributeError, ValueError, OSError):
        return None
    from textual.drivers.linux_driver import LinuxDriver

    class StdoutDriver(LinuxDriver):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._file = sys.__stdout__

    return StdoutDriver


class NoisyNeuronApp(App[str | None]):
    """The live host's terminal UI.

    Args:
        session: a :class:`~noisyneuron.control.session.LiveSession` (started or not: the app
            only reads it and changes controls through its surface).
        poll_hz: readings per second (0: no timer; tests call :meth:`refresh_readings`).
        presets_directory: where ``s`` saves and ``o`` loads presets.
        config: the :class:`~noisyneuron.control.config.Config` in use (``W`` writes it back).
        duration: quit after this many seconds (None: until ``q``).
        list_devices: returns the devices for the device screen (default: PortAudio's).
        driver_class: a Textual driver class (``noisyneuron bench live`` draws into a counter).

    The app's return value (``App.run()``) is a line for the terminal after exit, or None.
    """

    CSS_PATH = "noisyneuron.tcss"
    TITLE = "NoisyNeuron"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "help", key_display="?"),
        Binding("b", "bypass", "bypass"),
        Binding("l", "learn", "learn"),
        Binding("s", "save_preset", "save"),
        Binding("o", "load_preset", "load"),
        Binding("d", "devices", "devices"),
        Binding("W", "write_config", "write config", show=False),
        Binding("escape", "cancel_learn", "cancel", show=False),
    ]

    def __init__(self, session, *, poll_hz: float = DEFAULT_POLL_HZ, presets_directory: Path | None = None,
                 config=None, duration: float | None = None, list_devices=None, driver_class=None) -> None:
        super().__init__(driver_class=driver_class)
        self.session = session
        self.poll_hz = float(poll_hz)
        self.presets_directory = Path(presets_directory) if presets_directory is not None else None
        self.config = config
        self.duration = duration
        self._list_devices = list_devices
        self.classifier = classifier_name(session.chain)
        self.analyser: SpectrumAnalyser | None = None
        self._last_tick: float | None = None
        self._tick_times: deque[float] = deque(maxlen=64)
        #: seconds each readings poll + widget update took (for `bench live`)
        self.tick_seconds: deque[float] = deque(maxlen=4096)
        self.ticks = 0
        self.learning: str | None = None
        self._learned_before: object = None
        self._title_text = ""
        self._exit_message: str | None = None
        #: says once (a notification, and "too slow" on the engine panel) when the machine is too slow
        self.slow_watch = SlowMachineWatch(session.chain, getattr(session, "buffer_blocks", None))

    # ----- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                meters = MeterPanel(id="meters", classes="panel")
                meters.border_title = "levels dBFS: peak rms"
                yield meters
                controls = ControlsPanel(self.session.surface, id="controls", classes="panel")
                controls.border_title = f"chain: {self.session.chain.name}"
                yield controls
            with Vertical(id="right"):
                spectrum = SpectrumPanel(id="spectrum", classes="panel")
                spectrum.border_title = "spectrum (output)"
                yield spectrum
                classifier = ClassifierPanel(self.classifier is not None, id="classifier", classes="panel")
                classifier.border_title = f"classifier{': ' + self.classifier if self.classifier else ''}"
                yield classifier
                engine = EnginePanel(id="engine", classes="panel")
                engine.border_title = "engine"
                yield engine
        yield Footer()

    @property
    def controls(self) -> ControlsPanel:
        return self.query_one(ControlsPanel)

    def on_mount(self) -> None:
        self.controls.focus()
        self.refresh_readings(dt=0.0)
        self.call_after_refresh(self._tick_once)  # once the panels have their sizes
        if self.poll_hz > 0:
            self.set_interval(1.0 / self.poll_hz, self._tick)
        if self.duration is not None:
            self.set_timer(self.duration, partial(self.exit, None))
        # a clean exit (engine stopped, files closed) when killed or when the terminal goes away
        for name in ("SIGTERM", "SIGHUP"):
            try:
                asyncio.get_running_loop().add_signal_handler(getattr(signal, name), self.exit)
            except (AttributeError, NotImplementedError, RuntimeError, ValueError):
                pass

    # ----- polling -----------------------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.perf_counter()
        dt = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        self._tick_times.append(now)
        try:
            self.refresh_readings(dt)
        except NoMatches:  # a tick that fires while the app shuts down: its panels are gone
            return
        self.tick_seconds.append(time.perf_counter() - now)
        self.ticks += 1

    def _tick_once(self) -> None:
        try:
            self.refresh_readings(0.0)
        except NoMatches:  # the app quit before its first frame
            pass

    @property
    def ui_fps(self) -> float | None:
        """Polls per second over the last ~2.5 s (None until a second's worth)."""
        t = self._tick_times
        if len(t) < 2 or t[-1] - t[0] < 1.0:
            return None
        return (len(t) - 1) / (t[-1] - t[0])

    def refresh_readings(self, dt: float = 0.04) -> None:
        """Poll the session once and update every panel (each redraws only if what it shows changed)."""
        session = self.session
        readings = poll_readings(session)
        self.query_one(MeterPanel).show(readings.input, readings.output)
        self._update_spectrum(dt)
        if self.classifier is not None:
            self.query_one(ClassifierPanel).show(readings.analysis.get(self.classifier))
        # figures to read, not to watch move: 5 updates a second are enough (and cheaper)
        if self.poll_hz <= 0 or self.ticks % max(1, round(self.poll_hz / 5)) == 0:
            warning = self.slow_watch.check(readings.stats)
            if warning:
                self.notify(warning, title="too slow", severity="warning", timeout=30)
            self.query_one(EnginePanel).show(
                readings.latency_ms, readings.stats, session.sample_rate, session.blocksize,
                self.ui_fps if self.poll_hz > 0 else None, describe_osc(session), describe_midi(session),
                too_slow=self.slow_watch.warned,
            )
        self._poll_learn()
        self.controls.poll()
        self._update_title()
        if self._exit_message is None:
            reason = session.end_reason()
            if reason:
                self._exit_message = reason
                self.exit(reason)

    def _update_spectrum(self, dt: float) -> None:
        panel = self.query_one(SpectrumPanel)
        width = panel.content_size.width
        if width <= 0 or self.session.tap is None:
            return
        rate = self.session.sample_rate
        if self.analyser is None or self.analyser.columns != width or self.analyser.sample_rate != rate:
            self.analyser = SpectrumAnalyser(rate, width)
        levels = self.analyser.update(self.session.tap, dt)
        panel.show(levels, self.analyser.floor_db, self.analyser.ceiling_db,
                   spectrum_axis(width, self.analyser.fmin, self.analyser.fmax))

    def _update_title(self) -> None:
        session = self.session
        try:
            in_name, out_name = session.describe_endpoints()
        except Exception:  # noqa: BLE001
            in_name = out_name = "?"
        short = [n.split(" (")[0] if not n.startswith("<") else "file" for n in (in_name, out_name)]
        text = f"NoisyNeuron · {session.chain.name} · {short[0]} → {short[1]}"
        if session.preset_name:
            text += f" · preset {session.preset_name}"
        if self.learning:
            text += " · MIDI learn"
        if text != self._title_text:
            self._title_text = text
            self.query_one("#title", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))

    # ----- actions -------------------------------------------------------------------------------------
    _MAIN_SCREEN_ACTIONS = frozenset({"bypass", "learn", "save_preset", "load_preset", "devices", "write_config",
                                      "cancel_learn"})

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """While a pop-up screen is open, the main screen's keys are off (quit and help stay)."""
        if len(self.screen_stack) > 1 and action in self._MAIN_SCREEN_ACTIONS:
            return False
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_bypass(self) -> None:
        control = self.controls.selected
        processor = control.processor
        if processor == "chain":
            processor = self.session.chain.processors[0].name
        value = self.session.surface.toggle(f"{processor}.bypass", source="tui")
        self.controls.poll()
        self.notify(f"{processor}: {'bypassed' if value >= 0.5 else 'on'}", timeout=2)

    def action_learn(self) -> None:
        midi = self.session.midi
        control = self.controls.selected
        if midi is None:
            self.notify("MIDI is off: start with --midi-in PORT or --midi-virtual to learn", severity="warning")
            return
        self._learned_before = learn_state(midi)[1]
        try:
            midi.learn(control.key)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.learning = control.key
        self.controls.learning = control.key
        self.controls.border_subtitle = "move a knob… (esc cancels)"
        self.controls.poll()

    def action_cancel_learn(self) -> None:
        if self.learning is None:
            return
        midi = self.session.midi
        if midi is not None:
            try:
                midi.cancel_learn()
            except Exception:  # noqa: BLE001
                pass
        self._end_learn()
        self.notify("MIDI learn cancelled", timeout=2)

    def _end_learn(self) -> None:
        self.learning = None
        self.controls.learning = None
        self.controls.border_subtitle = ""
        self.controls.poll()

    def _poll_learn(self) -> None:
        if self.learning is None:
            return
        armed, last, message = learn_state(self.session.midi)
        if armed == self.learning:
            return
        self._end_learn()
        if last is not None and last is not self._learned_before:
            describe = getattr(last, "describe", None)
            text = f"learned {describe() if callable(describe) else last}"
            text += self._save_learned()
            self.notify(text, timeout=5)
        elif message:
            self.notify(message, timeout=3)

    def _save_learned(self) -> str:
        """Save learned mappings to the map file they came from (--midi-map); else say how to keep them."""
        midi = self.session.midi
        path = getattr(getattr(midi, "mapping", None), "path", None)
        if path is None:
            return "; W writes it to the config"
        try:
            saved = midi.save_mapping()
        except (UserError, OSError) as exc:
            return f"; not saved: {exc}"
        return f"; saved to {saved}"

    def action_save_preset(self) -> None:
        from noisyneuron.control.config import list_presets

        existing = list_presets(self.presets_directory)
        suggestion = self.session.preset_name or f"{self.session.chain.name}-1"
        self.push_screen(SavePresetScreen(suggestion, existing), self._save_preset)

    def _save_preset(self, name: str | None) -> None:
        from noisyneuron.control.config import save_preset

        if not name:
            return
        try:
            path = save_preset(name, self.session.surface.snapshot(), self.session.chain.name, self.presets_directory)
        except (UserError, OSError) as exc:
            self.notify(f"preset not saved: {exc}", severity="error")
            return
        self.session.preset_name = name
        self.notify(f"saved preset {name} ({path})", timeout=3)

    def action_load_preset(self) -> None:
        from noisyneuron.control.config import list_presets

        self.push_screen(LoadPresetScreen(list_presets(self.presets_directory)), self._load_preset)

    def _load_preset(self, name: str | None) -> None:
        if not name:
            return
        self.load_preset(name)

    def load_preset(self, name: str) -> list[str]:
        """Apply preset ``name`` through the surface (source ``preset``); returns the keys this
        chain does not have."""
        from noisyneuron.control.config import load_preset

        try:
            preset = load_preset(name, self.presets_directory)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return []
        unknown = self.session.surface.restore(preset.values, source="preset")
        self.session.preset_name = preset.name
        self.controls.poll()
        note = f"loaded preset {preset.name}"
        if unknown:
            note += f" ({len(unknown)} values for another chain skipped: {', '.join(unknown[:3])})"
        self.notify(note, timeout=3)
        return unknown

    def action_devices(self) -> None:
        if self._list_devices is not None:
            devices = self._list_devices()
        else:
            from noisyneuron.realtime.devices import list_devices

            devices = list_devices()
        in_name, out_name = (n.split(" (")[0] for n in self.session.describe_endpoints())
        self.push_screen(DeviceScreen(devices, in_name, out_name), self._choose_device)

    def _choose_device(self, choice: tuple[str, int] | None) -> None:
        if choice is None:
            return
        kind, index = choice
        self.notify(f"restarting audio on {kind} device {index}…", timeout=2)
        self.run_worker(partial(self._switch_device, kind, index), thread=True, exclusive=True, group="devices")

    def _switch_device(self, kind: str, index: int) -> None:  # worker thread
        try:
            if kind == "input":
                self.session.switch_devices(input=index)
            else:
                self.session.switch_devices(output=index)
        except UserError as exc:
            self.call_from_thread(self.notify, f"kept the old device: {exc}", severity="error", timeout=6)
            return
        self.analyser = None
        names = (n.split(" (")[0] for n in self.session.describe_endpoints())
        self.call_from_thread(self.notify, f"audio restarted: {' → '.join(names)}", timeout=4)

    def action_write_config(self) -> None:
        from noisyneuron.control.config import Config, save_config

        config = self.config if self.config is not None else Config()
        session = self.session
        in_name, out_name = session.device_names()
        if in_name is not None:
            config.devices.input = in_name
        if out_name is not None:
            config.devices.output = out_name
        config.devices.blocksize = session.blocksize
        config.chain.name = session.chain.name
        config.chain.parameters = session.surface.snapshot()
        mappings = session.midi_mappings()
        if mappings is not None:
            config.midi.mappings = mappings
        try:
            path = save_config(config)
        except (UserError, OSError) as exc:
            self.notify(f"config not written: {exc}", severity="error")
            return
        self.config = config
        self.notify(f"wrote {path}", timeout=3)

    async def action_quit(self) -> None:
        self.exit(self._exit_message)


def run_tui(session, **kwargs) -> str | None:
    """Run the app until the user quits; returns the app's exit line (or None)."""
    app = NoisyNeuronApp(session, **kwargs)
    result = app.run()
    if app.return_code not in (0, None):
        raise SystemExit(app.return_code)
    return result if isinstance(result, str) else None

