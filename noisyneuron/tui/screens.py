"""The TUI's pop-up screens: help, device selection, presets (save and load)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

__all__ = ["HelpScreen", "DeviceScreen", "SavePresetScreen", "LoadPresetScreen", "HELP_KEYS"]

#: (keys, what they do), in the order the help screen lists them
HELP_KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓  k j", "select a control"),
    ("← →  - +", "fader by 1 dB / 1 % / one step"),
    ("shift+← →  PgUp PgDn", "fader by 6 dB / 10 %"),
    ("space  enter", "toggle on/off (bypass)"),
    ("b", "bypass the selected processor"),
    ("l", "MIDI learn: select, l, move a knob"),
    ("esc", "cancel MIDI learn"),
    ("s  o", "save a preset, load a preset"),
    ("W", "write config: devices, chain, values, MIDI"),
    ("d", "choose devices (restarts the audio)"),
    ("?  F1", "this help (esc closes)"),
    ("q  ctrl+c", "quit"),
)


class HelpScreen(ModalScreen[None]):
    """Key bindings and what the panels show."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss_screen", "close")]

    def compose(self) -> ComposeResult:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("NoisyNeuron: keys\n", style="bold")
        for keys, what in HELP_KEYS:
            text.append(f" {keys:<22}", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\nMeters: █ RMS, ▒ peak, │ held peak, dBFS. Keys, OSC, MIDI\n", style="dim")
        text.append("and presets change values one way, smoothed.", style="dim")
        with Vertical(id="help-box"):
            yield Static(text, id="help-text")

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)


class DeviceScreen(ModalScreen[tuple[str, int] | None]):
    """Input and output devices side by side; enter on one restarts the audio on it.

    Dismisses with ``("input", index)`` or ``("output", index)``, or None (esc).
    """

    BINDINGS = [Binding("escape,q", "cancel", "close"), Binding("tab", "app.focus_next", show=False)]

    def __init__(self, devices, current_input: str, current_output: str) -> None:
        super().__init__()
        self.devices = devices
        self.current_input = current_input
        self.current_output = current_output

    def compose(self) -> ComposeResult:
        def options(kind: str) -> list[Option]:
            result = []
            for d in self.devices:
                channels = d.max_input_channels if kind == "input" else d.max_output_channels
                if channels <= 0:
                    continue
                current = d.name == (self.current_input if kind == "input" else self.current_output)
                mark = "●" if current else " "
                result.append(Option(f"{mark}{d.index:>3} {d.name} ({channels} ch, {d.default_sample_rate / 1000:g} kHz)",
                                     id=f"{kind}-{d.index}"))
            return result or [Option(f"no {kind} devices", disabled=True)]

        with Vertical(id="device-box"):
            yield Label("Choose a device (enter restarts the audio on it; esc closes)", id="device-title")
            with Horizontal(id="device-lists"):
                with Vertical():
                    yield Label("input", classes="device-kind")
                    yield OptionList(*options("input"), id="inputs")
                with Vertical():
                    yield Label("output", classes="device-kind")
                    yield OptionList(*options("output"), id="outputs")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, _, index = (event.option.id or "").partition("-")
        if index.isdigit():
            self.dismiss((kind, int(index)))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SavePresetScreen(ModalScreen[str | None]):
    """Ask for a preset name; dismisses with the name (enter) or None (esc)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, suggestion: str, existing: list[str]) -> None:
        super().__init__()
        self.suggestion = suggestion
        self.existing = existing

    def compose(self) -> ComposeResult:
        with Vertical(id="preset-box"):
            yield Label("Save preset as (enter saves, esc cancels):")
            yield Input(value=self.suggestion, placeholder="preset name", id="preset-name")
            if self.existing:
                yield Label(Text("saved: " + ", ".join(self.existing[:8]), style="dim"), id="preset-existing")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        self.dismiss(name or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LoadPresetScreen(ModalScreen[str | None]):
    """Pick a saved preset; dismisses with its name (enter) or None (esc)."""

    BINDINGS = [Binding("escape,q", "cancel", "cancel")]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        with Vertical(id="preset-box"):
            yield Label("Load preset (enter loads, esc cancels):")
            if self.names:
                yield OptionList(*[Option(n, id=f"preset-{i}") for i, n in enumerate(self.names)], id="preset-list")
            else:
                yield Label(Text("no presets saved yet: press s on the main screen", style="dim"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.names[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)
