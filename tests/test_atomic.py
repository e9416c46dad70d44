"""The one atomic-write helper (noisyneuron.audio.atomic): a target appears only complete, a failed
write leaves neither a temporary nor a changed target, and parallel writers never collide."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from noisyneuron.audio.atomic import atomic_path, atomic_write_bytes, atomic_write_text, partial_sibling


def test_partial_sibling_names(tmp_path):
    a, b = partial_sibling(tmp_path / "x.json"), partial_sibling(tmp_path / "x.json")
    assert a != b and a.parent == tmp_path and ".partial" in a.name and a.name.startswith("x.json.")
    assert partial_sibling(tmp_path / "take.wav", keep_suffix=True).suffix == ".wav"
    assert partial_sibling(tmp_path / "take.wav", keep_suffix=True, unique=False).name == "take.partial.wav"
    assert partial_sibling(tmp_path / "best.pt", unique=False).name == "best.pt.partial"


def test_write_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    assert atomic_write_text(target, "new\n") == target
    assert target.read_text() == "new\n" and sorted(os.listdir(tmp_path)) == ["a.json"]
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_removes_the_temporary_and_keeps_the_target(tmp_path, error):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"complete old file")
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a")
            raise error
    assert target.read_bytes() == b"complete old file"
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]


def test_a_failed_first_write_creates_no_target(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "plot.png", keep_suffix=True, unique=False) as tmp:
            tmp.write_bytes(b"x")
            raise ValueError("boom")
    assert os.listdir(tmp_path) == []


def test_writers_that_pick_the_format_by_extension(tmp_path):
    target = tmp_path / "cache.npz"
    with atomic_path(target, keep_suffix=True) as tmp:
        np.savez(tmp, a=np.arange(3))  # would add .npz to a name not ending in it
    with np.load(target) as z:
        np.testing.assert_array_equal(z["a"], np.arange(3))
    assert os.listdir(tmp_path) == ["cache.npz"]


def test_fsync_and_mode(tmp_path):
    target = atomic_write_text(tmp_path / "config.toml", "x = 1\n", fsync=True, mode=0o600)
    assert target.read_text() == "x = 1\n"
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0


def test_threads_writing_distinct_targets_in_one_folder_do_not_collide(tmp_path):
    def write(i: int) -> None:
        for round_ in range(20):
            atomic_write_text(tmp_path / f"{i}.json", f"{i} {round_}\n" * 200)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(os.listdir(tmp_path)) == sorted(f"{i}.json" for i in range(8))
    for i in range(8):
        assert (tmp_path / f"{i}.json").read_text() == f"{i} 19\n" * 200


def test_threads_writing_one_target_leave_one_complete_version(tmp_path):
    target = tmp_path / "shared.json"

    def write(i: int) -> None:
        for _ in range(20):
            atomic_write_text(target, f"{i}\n" * 5000)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = target.read_text()
    assert len(set(text.splitlines())) == 1 and len(text.splitlines()) == 5000
    assert os.listdir(tmp_path) == ["shared.json"]


def _write_in_worker(args: tuple[str, int]) -> int:
    folder, i = args
    for round_ in range(10):
        atomic_write_bytes(os.path.join(folder, f"w{i}.bin"), bytes([i]) * 10000 + bytes([round_]))
    return os.getpid()


def test_worker_processes_writing_distinct_targets_in_one_folder(tmp_path):
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_in_worker, [(str(tmp_path), i) for i in range(4)]))
    assert sorted(os.listdir(tmp_path)) == [f"w{i}.bin" for i in range(4)]
    for i in range(4):
        assert (tmp_path / f"w{i}.bin").read_bytes() == bytes([i]) * 10000 + bytes([9])
