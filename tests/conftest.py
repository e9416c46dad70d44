"""Shared fixtures: a real JACK server (dummy driver) for tests that open audio streams.

If a server is already named by JACK_DEFAULT_SERVER (``run.sh test`` and ``.ci/run`` start one),
it is used; otherwise a private one is started for the session. PortAudio is shut down before
jackd stops (otherwise PortAudio aborts at exit; see shared ENVIRONMENT notes).
Set NOISYNEURON_REQUIRE_JACK=1 (CI does) to fail instead of skip when jackd is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

JACK_RATE = 48000
JACK_PERIOD = 256


def _server_running(env: dict) -> bool:
    return subprocess.run(["jack_wait", "-c"], env=env, capture_output=True, text=True).stdout.strip().startswith("running")


@pytest.fixture(scope="session")
def jack_server():
    """Name of a running JACK dummy server; PortAudio re-scanned so it sees it."""
    if not shutil.which("jackd"):
        if os.environ.get("NOISYNEURON_REQUIRE_JACK"):
            pytest.fail("jackd is not installed (apt-get install jackd2)")
        pytest.skip("jackd is not installed (apt-get install jackd2)")
    import sounddevice as sd

    env = dict(os.environ)
    proc = None
    name = env.get("JACK_DEFAULT_SERVER")
    if not (name and _server_running(env)):
        name = f"noisyneuron-test-{os.getpid()}"
        env["JACK_DEFAULT_SERVER"] = name
        proc = subprocess.Popen(
            ["jackd", "-n", name, "-d", "dummy", "-r", str(JACK_RATE), "-p", str(JACK_PERIOD)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        subprocess.run(["jack_wait", "-w", "-t", "10"], env=env, check=True, capture_output=True)
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    sd._terminate()
    sd._initialize()
    yield name
    sd._terminate()
    if proc is not None:
        proc.terminate()
        proc.wait(10)
    sd._initialize()
