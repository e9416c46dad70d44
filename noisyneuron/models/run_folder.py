"""What the separator and classifier trainers share: run-folder files, device choice, the
learning-rate schedule, Ctrl-C handling, and writing and reading exported weight files.

A run folder holds ``checkpoint.pt``, ``best.pt`` (both via :func:`save_atomic`), ``log.jsonl``
(one JSON object per validation: :func:`append_log`, :func:`read_log`, :func:`truncate_log`) and
``loss.png`` (:func:`plot_run`). The checkpoint and export contents stay with each trainer; this
module only moves bytes. torch is imported inside the functions, so importing this module (as
the torch-free :mod:`noisyneuron.models.pretrained` may) does not load it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from noisyneuron.audio.atomic import atomic_path, atomic_write_text
from noisyneuron.errors import UserError

__all__ = [
    "save_atomic", "read_log", "append_log", "truncate_log", "plot_run", "choose_device", "torch_threads",
    "lr_factor", "Interrupt", "check_trajectory", "noisyneuron_version", "cast_state", "write_export", "read_export",
    "load_checkpoint",
]


# ----- files ----------------------------------------------------------------------------------
def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` through ``path.partial`` (a crash never leaves half a file;
    the fixed name is overwritten by the next save rather than left behind)."""
    import torch

    with atomic_path(path, unique=False) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path, what: str, device="cpu") -> dict:
    """A training checkpoint, loaded with ``torch.load(weights_only=True)``: tensors and plain
    types only, so a checkpoint from elsewhere cannot run code. One-line :class:`UserError` for a
    missing, truncated or foreign file (``what``: e.g. ``"classifier training checkpoint"``)."""
    import torch

    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - truncated, foreign, or holding more than tensors and plain types
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{path}: not a readable NoisyNeuron {what} ({type(exc).__name__}: {first[:160]})") from None
    if not isinstance(blob, dict):
        raise UserError(f"{path}: not a NoisyNeuron {what}")
    return blob


def read_log(path: Path) -> list[dict]:
    """The rows of a ``log.jsonl`` ([] when there is none; a line cut by a crash is skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_log(path: Path, row: dict) -> None:
    """Append one row to a ``log.jsonl``."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """Keep only the rows up to ``step`` (on resume: validations after the checkpoint are redone)."""
    rows = [r for r in read_log(path) if r.get("step", 0) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def plot_run(
    rows: list[dict], path: Path, series: Sequence[tuple[str, str]], ylabel: str, *,
    loss_label: str = "train loss (running mean)", log_loss: bool = False, figsize: tuple[float, float] = (8, 6),
) -> None:
    """Train loss (top) and validation ``series`` (bottom) against step, into ``path`` (PNG, Agg:
    no display needed; written atomically). ``series``: ``(row key, legend label)`` pairs; rows
    whose first key is None are left out of the bottom panel. ``log_loss``: a log loss axis when
    every loss is positive."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    lossy = [r for r in rows if r.get("loss") is not None]
    top.plot([r["step"] for r in lossy], [r["loss"] for r in lossy], marker=".", label=loss_label)
    top.set_ylabel("loss")
    if log_loss and lossy and min(r["loss"] for r in lossy) > 0:
        top.set_yscale("log")
    top.grid(True, alpha=0.3)
    top.legend(loc="upper right")
    valid = [r for r in rows if r.get(series[0][0]) is not None]
    for key, label in series:
        bottom.plot([r["step"] for r in valid], [r[key] for r in valid], marker=".", label=label)
    bottom.set_ylabel(ylabel)
    bottom.set_xlabel("step")
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path, keep_suffix=True) as tmp:  # savefig picks PNG by the extension
        fig.savefig(tmp)


# ----- training -------------------------------------------------------------------------------
def choose_device(name: str):
    """``torch.device`` for ``--device`` ("cpu", "cuda", "cuda:N"); one-line :class:`UserError`
    for anything else or a GPU that is not there."""
    import torch

    name = (name or "cpu").strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is available here (torch {torch.__version__}); use --device cpu")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise UserError(f"--device {name}: must be cpu or cuda") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise UserError(f"--device {name}: must be cpu or cuda")


@contextmanager
def torch_threads(device, threads: int | None) -> Iterator[None]:
    """On a CPU device, run with ``threads`` torch threads (default: all cores); restored after."""
    import torch

    old = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(threads or os.cpu_count() or 1)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """Multiplier of the peak lr for the update at ``step`` (0-based): linear warm-up (at most a
    tenth of the run), then cosine decay to 2 %."""
    warm = max(1, min(warmup, steps // 10))
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, steps - warm))
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * progress))


class Interrupt:
    """Turns the first Ctrl-C into a flag checked between steps (so the checkpoint is consistent);
    a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def check_trajectory(ckpt_path: Path, old: dict, now: dict, fields: Sequence[str]) -> None:
    """One-line :class:`UserError` when a checkpoint's settings ``old`` differ from ``now`` in ``fields``."""
    diff = [f"{k}={old.get(k)!r} (now {now[k]!r})" for k in fields if old.get(k) != now[k]]
    if diff:
        raise UserError(f"{ckpt_path} was trained with {', '.join(diff)}: resume with the same settings or choose another --out")


def noisyneuron_version() -> str:
    import noisyneuron

    return noisyneuron.__version__


# ----- exported weight files ------------------------------------------------------------------
def cast_state(state_dict: dict, dtype: str) -> dict:
    """A state dict's tensors on the CPU, floating ones in ``dtype`` ("float32" or "float16")."""
    import torch

    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype must be float32 or float16, got {dtype!r}")
    torch_dtype = torch.float16 if dtype == "float16" else torch.float32
    return {k: v.detach().to("cpu", torch_dtype if v.is_floating_point() else v.dtype).contiguous() for k, v in state_dict.items()}


def write_export(dest: str | os.PathLike, meta: dict, state: dict, limit_bytes: int, what: str, advice: str) -> int:
    """Write ``{**meta, "state_dict": state}`` to ``dest`` atomically; returns its size in bytes.
    One-line :class:`UserError` (nothing written) when it would reach ``limit_bytes``."""
    import torch

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, unique=False) as tmp:  # an error (the size limit too) removes the temporary
        torch.save({**meta, "state_dict": state}, tmp)
        size = tmp.stat().st_size
        if size >= limit_bytes:
            raise UserError(f"{dest}: the exported {what} would be {size / 1e6:.1f} MB (limit {limit_bytes // (1024 * 1024)} MB); {advice}")
    return size


def read_export(path: Path, export_format: str, what: str, hint: str, build: Callable[[dict], object]):
    """The network (float32, CPU, eval mode, ``export_meta`` = the file's metadata) in an exported
    file of ``export_format``; ``build(config dict)`` makes the bare network. One-line
    :class:`UserError` for an unreadable, foreign or damaged file (``hint``: how to make one)."""
    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file
        raise UserError(f"{path}: cannot read {what} weights ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != export_format:
        raise UserError(f"{path}: not an exported NoisyNeuron {what} ({hint})")
    net = build(blob["config"])
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except RuntimeError:
        raise UserError(f"{path}: its weights do not fit its config (a damaged file?)") from None
    net.export_meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return net.eval()
