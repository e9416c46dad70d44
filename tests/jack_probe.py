"""A JACK test client, run as its own process: plays a signal into a client's input ports and
records what comes back from its output ports, counting the server's xruns.

It runs in a separate process so that its Python process callback never competes for the GIL
with the engine under test.

Usage: python tests/jack_probe.py PLAY.npy OUT.npy --target PortAudio --seconds S
PLAY.npy: float32 (frames, channels) to play from the first cycle; OUT.npy gets the recording
(float32 (frames, channels)) and OUT.json {"xruns": n, "frames": n, "sample_rate": sr}.
"""

from __future__ import annotations

import argparse
import gc
import json
import threading
import time

import jack
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("play")
    ap.add_argument("out")
    ap.add_argument("--target", default="PortAudio", help="prefix of the client whose in/out ports to wire")
    ap.add_argument("--seconds", type=float, required=True, help="seconds to record")
    ap.add_argument("--ready-file", default=None, help="touched once the ports are wired")
    args = ap.parse_args()

    play = np.load(args.play).astype(np.float32)
    channels = play.shape[1]
    client = jack.Client("nnprobe", no_start_server=True)
    sr = client.samplerate
    total = int(args.seconds * sr)
    # Touch every page now: first writes to fresh (huge) pages inside the process callback
    # page-fault and zero-fill megabytes at a time, a periodic xrun every 2**18 frames.
    rec = np.empty((total, channels), dtype=np.float32)
    rec.fill(0.0)
    pos = [0]
    xruns = [0]
    done = threading.Event()
    outs = [client.outports.register(f"out_{c}") for c in range(channels)]
    ins = [client.inports.register(f"in_{c}") for c in range(channels)]
    started = threading.Event()

    @client.set_xrun_callback
    def _xrun(delay):
        xruns[0] += 1

    @client.set_process_callback
    def _process(frames):
        if not started.is_set():
            for p in outs:
                p.get_array().fill(0.0)
            return
        p0 = pos[0]
        n = min(frames, total - p0)
        for c in range(channels):
            buf = outs[c].get_array()
            buf.fill(0.0)
            k = max(0, min(frames, play.shape[0] - p0))
            if k:
                buf[:k] = play[p0 : p0 + k, c]
            if n > 0:
                rec[p0 : p0 + n, c] = ins[c].get_array()[:n]
        pos[0] = p0 + frames
        if pos[0] >= total:
            done.set()

    # The process callback runs Python: keep the garbage collector from pausing it mid-cycle.
    gc.collect()
    gc.freeze()
    gc.disable()
    with client:
        # PortAudio names its JACK client "PortAudio", or "PortAudio-NN" when another process
        # already holds the name: take the client (of that prefix) that has audio ports.
        pattern = f"^{args.target}[^:]*:"
        target_in = client.get_ports(pattern, is_audio=True, is_input=True)
        target_out = client.get_ports(pattern, is_audio=True, is_output=True)
        if not target_in or not target_out:
            raise SystemExit(f"jack_probe: no ports of client {args.target!r}")
        for c in range(channels):
            client.connect(outs[c], target_in[min(c, len(target_in) - 1)])
            client.connect(target_out[min(c, len(target_out) - 1)], ins[c])
        time.sleep(0.2)
        xruns[0] = 0
        started.set()
        if args.ready_file:
            open(args.ready_file, "w").close()
        done.wait(args.seconds + 10)
    np.save(args.out, rec)
    with open(args.out.replace(".npy", ".json"), "w") as f:
        json.dump({"xruns": xruns[0], "frames": int(min(pos[0], total)), "sample_rate": sr}, f)


if __name__ == "__main__":
    main()
