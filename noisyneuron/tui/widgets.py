"""The main screen's panels. Each one is a small widget that renders a few lines of text from the
last values it was given and asks for a redraw only when what it shows has changed.

Nothing here touches the audio path: the app polls readings at UI rate and hands them in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget

from noisyneuron.control.surface import CHAIN_CONTROLS, Control, ControlSurface

__all__ = [
    "ClassifierPanel",
    "ControlsPanel",
    "EnginePanel",
    "MeterPanel",
    "SpectrumPanel",
    "fader_steps",
    "meter_bar",
]

_EIGHTHS_H = " ▏▎▍▌▋▊▉█"  # horizontal: 0..8 eighths of a cell
_EIGHTHS_V = " ▁▂▃▄▅▆▇█"  # vertical
METER_FLOOR_DB = -60.0
LABEL_STYLES = {
    "music": "bold green",
    "speech": "bold cyan",
    "noise": "bold yellow",
    "silence": "dim",
}


def _db_text(db: float, width: int = 6) -> str:
    return f"{'-inf':>{width}}" if db <= -119.0 else f"{db:{width}.1f}"


def _meter_colour(db: float) -> str:
    if db >= -6.0:
        return "red"
    if db >= -18.0:
        return "yellow"
    return "green"


def _append_runs(text: Text, cells: list[tuple[str, str]]) -> None:
    """Append (character, style) cells to ``text`` as one span per run of equal style (drawing
    cost grows with the number of spans, not of cells)."""
    run_style = None
    run: list[str] = []
    for ch, style in cells:
        if style != run_style and run:
            text.append("".join(run), style=run_style)
            run = []
        run_style = style
        run.append(ch)
    if run:
        text.append("".join(run), style=run_style)


def meter_bar(peak_db: float, rms_db: float, hold_db: float, width: int,
              floor_db: float = METER_FLOOR_DB) -> Text:
    """A horizontal meter: ``█`` up to the RMS level, ``▒`` up to the peak, ``│`` at the held peak."""
    text = Text()
    span = -floor_db
    hold_cell = int((hold_db - floor_db) / span * width) if hold_db > floor_db else -1
    cells = []
    for i in range(width):
        cell_db = floor_db + (i + 0.5) * span / width
        colour = _meter_colour(cell_db)
        if rms_db >= cell_db:
            cells.append(("█", colour))
        elif peak_db >= cell_db:
            cells.append(("▒", colour))
        elif i == min(hold_cell, width - 1):
            cells.append(("│", colour))
        else:
            cells.append(("·", "grey30"))
    _append_runs(text, cells)
    return text


class _LinesWidget(Widget):
    """A widget drawn line by line (Textual's line API) from rich Text lines that are turned into
    strips once per change: the panels that change every frame (meters, spectrum) cost a fraction
    of a full content render."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._texts: list[Text] = []
        self._strips: list[Strip] | None = None

    def set_lines(self, texts: list[Text]) -> None:
        self._texts = texts
        self._strips = None
        self.refresh()

    def on_resize(self) -> None:
        self._strips = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if self._strips is None:
            console = self.app.console
            self._strips = [
                Strip(list(t.render(console)), t.cell_len).apply_style(base).crop_extend(0, width, base)
                for t in self._texts
            ]
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, base)


class MeterPanel(_LinesWidget):
    """Input and output meters per channel: bar, peak and RMS in dBFS."""

    DEFAULT_CSS = "MeterPanel { height: 6; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rows: tuple = ()
        self._width = 0

    def show(self, input_reading, output_reading) -> None:
        rows = []
        for name, reading in (("in ", input_reading), ("out", output_reading)):
            channels = len(reading.peak_dbfs) if reading is not None else 2
            for c in range(min(channels, 2)):
                if reading is None:
                    rows.append((name, c, -120.0, -120.0, -120.0))
                else:
                    rows.append((name, c, round(float(reading.peak_dbfs[c]), 1), round(float(reading.rms_dbfs[c]), 1),
                                 round(float(reading.hold_dbfs[c]), 1)))
        rows = tuple(rows)
        width = self.content_size.width or 39
        if rows != self._rows or width != self._width:
            self._rows = rows
            self._width = width
            self.set_lines(self.lines(width))

    def lines(self, width: int) -> list[Text]:
        bar_width = max(6, width - 20)
        out = []
        for name, c, peak, rms, hold in self._rows:
            line = Text(no_wrap=True, overflow="crop")
            label = f"{name} {'LR'[c] if c < 2 else c} " if c == 0 else f"{'':3} {'LR'[c] if c < 2 else c} "
            line.append(label, style="bold" if c == 0 else "")
            line.append_text(meter_bar(peak, rms, hold, bar_width))
            line.append(f" {_db_text(peak)}", style=_meter_colour(peak) if peak > -119 else "dim")
            line.append(f" {_db_text(rms)}", style="dim")
            out.append(line)
        return out


# ----- controls ------------------------------------------------------------------------------------
def _nice(x: float) -> float:
    """The 1-2-5 number nearest ``x`` from below (step sizes)."""
    if x <= 0:
        return 1.0
    exp = math.floor(math.log10(x))
    base = x / 10 ** exp
    nice = 5.0 if base >= 5 else 2.0 if base >= 2 else 1.0
    return nice * 10 ** exp


def fader_steps(control: Control) -> tuple[float, float]:
    """(fine, coarse) steps of a fader in its unit: 1 and 6 dB for levels, 1 and 10 for
    percentages, the parameter's own step for discrete ones, else ~1 % and ~10 % of the range."""
    p = control.parameter
    if p.step:
        return float(p.step), float(p.step) * (1 if (p.maximum - p.minimum) / p.step <= 10 else 5)
    if p.unit == "dB":
        return 1.0, 6.0
    if p.unit == "%":
        return 1.0, 10.0
    span = p.maximum - p.minimum
    return _nice(span / 100.0), _nice(span / 10.0)


@dataclass(frozen=True)
class _Row:
    control: Control
    label: str
    header: bool  # a processor's own row (its bypass)


class ControlsPanel(Widget, can_focus=True):
    """The chain: each processor with its bypass toggle, a fader per parameter, the chain's mix.

    Keys (when focused): up/down select; left/right or -/+ move a fader by a fine step,
    shift+left/right or page up/down by a coarse one; space/enter toggles an on/off control.
    Every change goes through :meth:`ControlSurface.set` with ``source="tui"``.
    """

    BINDINGS = [
        Binding("up,k", "move(-1)", "select", show=False),
        Binding("down,j", "move(1)", "select", show=False),
        Binding("right", "nudge(1, False)", "adjust", key_display="←→"),
        Binding("plus,equals_sign", "nudge(1, False)", "adjust", show=False),
        Binding("left,minus", "nudge(-1, False)", "adjust", show=False),
        Binding("shift+right,pageup", "nudge(1, True)", "coarse", show=False),
        Binding("shift+left,pagedown", "nudge(-1, True)", "coarse", show=False),
        Binding("space,enter", "toggle_selected", "toggle", show=False),
        Binding("home", "first", show=False),
        Binding("end", "last", show=False),
    ]

    def __init__(self, surface: ControlSurface, **kwargs) -> None:
        super().__init__(**kwargs)
        self.surface = surface
        self.rows: list[_Row] = []
        for processor in surface.chain.processors:
            self.rows.append(_Row(surface.find(f"{processor.name}.bypass"), processor.name, True))
            for name in processor.parameters:
                self.rows.append(_Row(surface.find(f"{processor.name}.{name}"), name, False))
        self.rows.append(_Row(surface.find(f"{CHAIN_CONTROLS}.mix"), "mix", True))
        self.index = next((i for i, r in enumerate(self.rows) if not r.header), 0)
        #: the key of the control MIDI learn is waiting for (None: not learning)
        self.learning: str | None = None
        self._shown: tuple = ()
        self._unsubscribe = surface.subscribe(self._on_surface_change)
        self._dirty = True

    def on_unmount(self) -> None:
        self._unsubscribe()

    def _on_surface_change(self, control, value, source) -> None:  # any thread: just a flag
        self._dirty = True

    @property
    def selected(self) -> Control:
        return self.rows[self.index].control

    def select(self, key: str) -> None:
        """Select the row of control ``key`` (e.g. ``karaoke.vocals``)."""
        for i, row in enumerate(self.rows):
            if row.control.key == key:
                self.index = i
                self._dirty = True
                self.poll()
                return
        raise KeyError(key)

    def poll(self) -> None:
        """Redraw if a value changed (from any source) since the last look."""
        state = (self.index, self.learning, self.has_focus, tuple(r.control.parameter.value for r in self.rows))
        if self._dirty or state != self._shown:
            self._dirty = False
            self._shown = state
            self.refresh()

    # ----- actions -------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        self.index = max(0, min(len(self.rows) - 1, self.index + delta))
        self.poll()

    def action_first(self) -> None:
        self.index = 0
        self.poll()

    def action_last(self) -> None:
        self.index = len(self.rows) - 1
        self.poll()

    def action_nudge(self, direction: int, coarse: bool) -> None:
        control = self.selected
        if control.is_toggle:
            value = control.parameter.maximum if direction > 0 else control.parameter.minimum
        else:
            fine, big = fader_steps(control)
            step = big if coarse else fine
            value = control.parameter.value + direction * step
            if not control.parameter.step:
                value = round(value / fine) * fine  # land on the fine grid: -12.4 + 1 -> -11 etc.
        self.surface.set(control, value, source="tui")
        self.poll()

    def action_toggle_selected(self) -> None:
        control = self.selected
        if control.is_toggle:
            self.surface.toggle(control, source="tui")
            self.poll()

    # ----- drawing -------------------------------------------------------------------------------
    def render(self) -> Text:
        width = self.content_size.width or 39
        height = self.content_size.height or len(self.rows)
        first = 0
        if len(self.rows) > height:
            first = min(max(0, self.index - height // 2), len(self.rows) - height)
        value_width = 10
        label_width = min(13, 1 + max((len(r.label) + (0 if r.header else 2) for r in self.rows), default=8))
        label_width = max(label_width, 8)
        bar_width = max(4, width - label_width - value_width - 2)
        out = Text(no_wrap=True, overflow="crop")
        for n, row in enumerate(self.rows[first : first + height]):
            i = first + n
            if n:
                out.append("\n")
            selected = i == self.index
            cursor = "▶" if selected else " "
            line_style = "reverse" if selected and self.has_focus else ("bold" if selected else "")
            control = row.control
            p = control.parameter
            if row.header and control.name == "bypass":
                on = p.value < 0.5
                out.append(f"{cursor}", style="bold")
                out.append(f"{row.label[: width - 14]:<{width - 14}}", style=("bold " + line_style).strip())
                if self.learning == control.key:
                    out.append(f"{'move a knob…':>13}", style="bold yellow")
                else:
                    out.append(" ● on        " if on else " ○ bypassed  ", style=("green" if on else "yellow") + (" reverse" if selected and self.has_focus else ""))
                continue
            indent = "" if row.header else "  "
            label = f"{indent}{row.label}"[: label_width - 1]
            out.append(cursor, style="bold")
            out.append(f"{label:<{label_width}}", style=line_style)
            if self.learning == control.key:
                out.append(f"{'move a knob…':<{bar_width + value_width + 1}}", style="bold yellow")
                continue
            if control.is_toggle:
                on = p.value >= 0.5
                out.append(f"{'[x]' if on else '[ ]':<{bar_width + 1}}", style=line_style)
            else:
                filled = p.normalized * bar_width
                full = int(filled)
                part = int((filled - full) * 8)
                bar = "█" * full + (_EIGHTHS_H[part] if full < bar_width and part else "")
                out.append(bar, style="cyan" if not selected else "bold cyan")
                out.append("░" * (bar_width - len(bar)), style="grey30")
                out.append(" ")
            out.append(f"{control.state().display:>{value_width}}", style=line_style)
        return out


# ----- spectrum ------------------------------------------------------------------------------------
class SpectrumPanel(_LinesWidget):
    """The output's spectrum: one log-spaced band per column, eighth-block bars."""

    DEFAULT_CSS = "SpectrumPanel { height: 5; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cells: tuple = ()
        self._height = 0
        self.floor_db = -90.0
        self.ceiling_db = 0.0
        self.axis = ""

    def show(self, levels: np.ndarray, floor_db: float, ceiling_db: float, axis: str) -> None:
        height = max(1, (self.content_size.height or 5) - 1)
        steps = height * 8
        scale = steps / (ceiling_db - floor_db)
        cells = tuple(int(round((min(max(float(v), floor_db), ceiling_db) - floor_db) * scale)) for v in levels)
        if cells != self._cells or axis != self.axis or height != self._height:
            self._cells = cells
            self.axis = axis
            self._height = height
            self.set_lines(self.lines(height, self.content_size.width or 37))

    def lines(self, height: int, width: int) -> list[Text]:
        cells = self._cells[:width]
        colours = ["green" if i < 0.33 * len(cells) else "cyan" if i < 0.66 * len(cells) else "magenta"
                   for i in range(len(cells))]
        out = []
        for r in range(height):
            level_base = (height - 1 - r) * 8
            line = Text(no_wrap=True, overflow="crop")
            _append_runs(line, [(_EIGHTHS_V[max(0, min(8, c - level_base))], colours[i]) for i, c in enumerate(cells)])
            out.append(line)
        out.append(Text(self.axis[:width], style="dim", no_wrap=True, overflow="crop"))
        return out


def spectrum_axis(width: int, fmin: float, fmax: float) -> str:
    """Frequency labels under a log axis of ``width`` columns from ``fmin`` to ``fmax`` Hz."""
    line = [" "] * width
    for f, label in ((100, "100"), (1000, "1k"), (10000, "10k")):
        if not fmin <= f <= fmax:
            continue
        col = int(round(math.log(f / fmin) / math.log(fmax / fmin) * (width - 1)))
        start = min(max(0, col - len(label) // 2), width - len(label))
        if all(ch == " " for ch in line[start : start + len(label)]):
            line[start : start + len(label)] = label
    tail = f"{fmax / 1000:g}k"
    if all(ch == " " for ch in line[width - len(tail) - 1 :]):
        line[width - len(tail) :] = tail
    return "".join(line)


# ----- classifier ----------------------------------------------------------------------------------
class ClassifierPanel(Widget):
    """What the classifier hears: label, a bar per class, a history strip (newest right)."""

    DEFAULT_CSS = "ClassifierPanel { height: 6; }"
    HISTORY = 64

    def __init__(self, has_classifier: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.has_classifier = has_classifier
        self.reading = None
        self.history: deque[str] = deque(maxlen=self.HISTORY)
        self._sequence = None
        self._shown: tuple = ()

    def show(self, reading) -> None:
        if reading is None or getattr(reading, "label", None) is None:
            return
        sequence = getattr(reading, "sequence", None)
        if sequence is not None and sequence == self._sequence:
            return
        self._sequence = sequence
        self.reading = reading
        self.history.append(str(getattr(reading, "label", "?")))
        confidences = getattr(reading, "confidences", {}) or {}
        state = (reading.label, tuple((k, round(float(v), 2)) for k, v in confidences.items()), tuple(self.history))
        if state != self._shown:
            self._shown = state
            self.refresh()

    def render(self) -> Text:
        width = self.content_size.width or 37
        out = Text(no_wrap=True, overflow="crop")
        if not self.has_classifier:
            out.append("no classifier in this chain\n", style="dim")
            out.append("(--chain monitor, separator+monitor)", style="dim")
            return out
        r = self.reading
        if r is None:
            out.append("listening…", style="dim")
            return out
        label = str(r.label)
        confidences = dict(getattr(r, "confidences", {}) or {})
        top = confidences.get(label, max(confidences.values(), default=0.0))
        out.append(f"{label.upper():<10}", style=LABEL_STYLES.get(label, "bold"))
        out.append(f"{top * 100:3.0f} %", style="bold")
        level = getattr(r, "level_dbfs", None)
        if level is not None and math.isfinite(level):
            out.append(f"{'':4}{level:6.1f} dBFS", style="dim")
        bar_width = max(4, width - 14)
        for name, value in list(confidences.items())[:4]:
            out.append("\n")
            out.append(f"{name[:7]:<8}", style=LABEL_STYLES.get(name, ""))
            filled = max(0.0, min(1.0, float(value))) * bar_width
            full = int(filled)
            part = int((filled - full) * 8)
            bar = "█" * full + (_EIGHTHS_H[part] if full < bar_width and part else "")
            out.append(f"{bar:<{bar_width}}", style=LABEL_STYLES.get(name, "white").replace("bold ", ""))
            out.append(f"{float(value) * 100:5.0f}%")
        out.append("\n")
        history = list(self.history)[-width:]
        for name in history:
            out.append(name[:1].upper() if name != "silence" else "·", style=LABEL_STYLES.get(name, ""))
        return out


# ----- engine --------------------------------------------------------------------------------------
class EnginePanel(Widget):
    """Latency, callback and processing load, xruns and late blocks, UI rate; OSC and MIDI status;
    on the bottom border, audio lost (``lost 1.2 s (3.4%)``) and whether the machine is too slow."""

    DEFAULT_CSS = "EnginePanel { height: 5; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lines: tuple[tuple[str, str], ...] = ()

    def show(self, latency_ms: float, stats, sample_rate: float, blocksize: int, ui_fps: float | None,
             osc: str, midi: str, too_slow: bool = False) -> None:
        """``too_slow``: the machine is too slow for the chain now (the bottom border says so,
        beside what was lost; nothing is shown there while nothing is lost)."""
        lost = getattr(stats, "lost_seconds", 0.0) > 0
        subtitle = ("too slow · " if too_slow else "") + (stats.lost_text() if lost else "")
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle
        lines = (
            (f"latency {latency_ms:.1f} ms · {sample_rate / 1000:g} kHz · block {blocksize}", ""),
            (f"load {stats.processing_load_mean * 100:.1f}% p99 {stats.processing_load_p99 * 100:.1f}%"
             f" · callback {stats.callback_load * 100:.1f}%", ""),
            (f"xruns {stats.xruns} · late blocks {stats.late_blocks} · ui "
             + (f"{ui_fps:.0f} fps" if ui_fps is not None else "-- fps"),
             "bold red" if stats.xruns or stats.late_blocks or stats.errors or lost else ""),
            (osc, "dim" if " off" in osc else ("red" if "error" in osc else "")),
            (midi, "dim" if " off" in midi else ("red" if "error" in midi else "")),
        )
        if lines != self._lines:
            self._lines = lines
            self.refresh()

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, (line, style) in enumerate(self._lines):
            if i:
                out.append("\n")
            out.append(line, style=style)
        return out
