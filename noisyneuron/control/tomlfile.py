"""Reading and writing the TOML files of the control layer (config, presets, MIDI maps).

One reader that turns every failure into a one-line error naming the file, and one atomic
writer (:func:`noisyneuron.audio.atomic.atomic_write_text`: a temporary file in the same folder,
flushed, then renamed; readers see the old file or the new one, never a part).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from noisyneuron.audio import atomic
from noisyneuron.errors import UserError

__all__ = ["read_toml", "atomic_write_text"]


def read_toml(path: Path, error: type[UserError] = UserError, what: str = "") -> dict:
    """The TOML document at ``path``.

    Args:
        path: the file.
        error: the :class:`UserError` subclass to raise.
        what: what the file is, for messages (e.g. ``"MIDI map"``); empty: just "file".

    Raises:
        error: missing, unreadable or not valid TOML, in one line naming the file.
    """
    kind = f"{what} " if what else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {kind}file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise error(f"{path}: cannot read{' ' + what if what else ''}: {reason}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and durably (folders made as needed; the file is
    readable by its owner only, 0600, as these files always were). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic.atomic_write_text(path, text, fsync=True, mode=0o600)
