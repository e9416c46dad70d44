"""Atomic file writes: the one way every writer in NoisyNeuron makes a file appear only complete.

A file is written under a temporary sibling name (same folder, so the final rename is atomic on
every file system that has renames), then :func:`os.replace`\\ d onto the target; when the write
raises, the temporary is removed and the target is left as it was. Readers therefore see either
the old file or the new one, never half of one, and a killed writer leaves at most a temporary
whose name holds ``.partial`` (which listings of data sets and training folders skip).

- :func:`atomic_path` yields the temporary path to hand to any writer (``np.savez``,
  ``torch.save``, ``savefig``, ``sf.write``...); :func:`atomic_write_bytes` and
  :func:`atomic_write_text` are the common cases.
- :func:`partial_sibling` is the naming rule: ``name.<tag>.partial``, or with ``keep_suffix``
  ``stem.<tag>.partial.ext`` for writers that choose the format from the extension. The tag
  (process id and a counter) makes the name unique per writer, so parallel workers writing
  distinct (or even the same) targets in one folder never share a temporary; ``unique=False``
  gives the fixed ``name.partial`` / ``stem.partial.ext`` (a single writer's large file, which
  the next run then overwrites instead of leaving an orphan, and
  :class:`~noisyneuron.audio.files.FileSink`'s recoverable partial file).
- :func:`fsync_folder` makes a rename durable where the OS allows it.

Ground floor: imports nothing from the project.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "partial_sibling", "fsync_folder"]

_counter = itertools.count()  # next() is atomic under the GIL: threads get distinct tags


def partial_sibling(target: str | os.PathLike, *, keep_suffix: bool = False, unique: bool = True) -> Path:
    """The temporary name a write of ``target`` goes to, in ``target``'s folder.

    ``song.json`` -> ``song.json.<pid>-<n>.partial``; with ``keep_suffix`` (the extension stays
    last, for writers that pick the format from it) ``take.wav`` -> ``take.<pid>-<n>.partial.wav``.
    ``unique=False`` drops the tag: ``song.json.partial`` / ``take.partial.wav``.
    """
    target = Path(target)
    tag = f".{os.getpid()}-{next(_counter)}" if unique else ""
    if keep_suffix:
        return target.with_name(f"{target.stem}{tag}.partial{target.suffix}")
    return target.with_name(f"{target.name}{tag}.partial")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (where the OS allows opening a folder; else nothing)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # e.g. the folder became read-only: the caller's error is the one to see
        pass


@contextmanager
def atomic_path(
    target: str | os.PathLike, *, keep_suffix: bool = False, unique: bool = True, fsync: bool = False
) -> Iterator[Path]:
    """Yield a temporary sibling of ``target`` to write; on a clean exit move it onto ``target``.

    When the block raises (anything, ``KeyboardInterrupt`` included) the temporary is removed,
    ``target`` is untouched and the exception propagates. The block must create the temporary
    (a block that writes nothing makes the rename raise :class:`FileNotFoundError`).

    Args:
        target: the file to write; its folder must exist.
        keep_suffix: keep ``target``'s extension last in the temporary name (see
            :func:`partial_sibling`).
        unique: a temporary name unique to this write (process id and counter); False: the
            fixed ``<name>.partial`` (one writer only).
        fsync: flush the file and the rename to disk before returning (slower; for files whose
            loss after a power cut matters, e.g. configuration).
    """
    target = Path(target)
    tmp = partial_sibling(target, keep_suffix=keep_suffix, unique=unique)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    if fsync:
        fsync_folder(target.parent)


def atomic_write_bytes(
    target: str | os.PathLike, data: bytes, *, fsync: bool = False, unique: bool = True, mode: int = 0o666
) -> Path:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path`); returns the target.
    ``mode``: permissions of the new file, before the umask."""
    target = Path(target)
    with atomic_path(target, fsync=fsync, unique=unique) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), mode)
        with open(fd, "wb") as f:
            f.write(data)
    return target


def atomic_write_text(
    target: str | os.PathLike, text: str, *, encoding: str = "utf-8", fsync: bool = False, unique: bool = True,
    mode: int = 0o666,
) -> Path:
    """Write ``text`` to ``target`` atomically (see :func:`atomic_path`); returns the target."""
    return atomic_write_bytes(target, text.encode(encoding), fsync=fsync, unique=unique, mode=mode)
