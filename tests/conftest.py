"""Shared fixtures: a real JACK server (dummy driver) for tests that open audio streams.

The session starts a private server, so its log (the server's own account of every xrun and of
the client that caused it) is at a known path. PortAudio is shut down before jackd stops
(otherwise PortAudio aborts at exit; see shared ENVIRONMENT notes).
Set NOISYNEURON_REQUIRE_JACK=1 (run.sh test and CI do) to fail instead of skip when jackd is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

JACK_RATE = 48000
JACK_PERIOD = 256


@dataclass(frozen=True)
class JackServer:
    """A running JACK dummy server: its name and the file its messages go to."""

    name: str
    log: Path


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    """A private JACK dummy server (48 kHz, 256-frame periods); PortAudio re-scanned to see it."""
    if not shutil.which("jackd"):
        if os.environ.get("NOISYNEURON_REQUIRE_JACK"):
            pytest.fail("jackd is not installed (apt-get install jackd2)")
        pytest.skip("jackd is not installed (apt-get install jackd2)")
    import sounddevice as sd

    name = f"noisyneuron-test-{os.getpid()}"
    log_path = tmp_path_factory.mktemp("jack") / "jackd.log"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["jackd", "-n", name, "-d", "dummy", "-r", str(JACK_RATE), "-p", str(JACK_PERIOD)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, check=True, capture_output=True)
    except subprocess.CalledProcessError:
        proc.kill()
        pytest.fail(f"jackd did not start: {log_path.read_text()[-500:]}")
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    sd._terminate()
    sd._initialize()
    yield JackServer(name, log_path)
    sd._terminate()
    proc.terminate()
    proc.wait(10)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    sd._initialize()


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib)``: a fresh folder on a tmpfs of that size (a real disk that fills up).
    Needs root (mount); skipped where the mount is refused. Unmounted at the end."""
    mounts = []

    def make(kib: int) -> Path:
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k,mode=0755", "tmpfs", str(folder)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()})")
        mounts.append(folder)
        return folder

    yield make
    for folder in reversed(mounts):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
