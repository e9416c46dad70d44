"""A JACK test client, run as its own process: plays a signal into another client's input ports
and records what comes back from its output ports.

Its audio callback is rtmixer's C callback (play_buffer / record_buffer actions), so no Python
runs in the JACK process cycle: a Python process callback overran its cycle now and then on these
machines and the xruns it caused were blamed on the engine under test. JACK-Client is used only
to wire the ports and to count the server's xruns.

Usage: python tests/jack_probe.py PLAY.npy OUT.npy --seconds S [--target PortAudio] [--ready FILE]
The probe wires its ports and starts, then waits a lead-in second (port connections are graph
changes, which may glitch the server once), then plays PLAY.npy (float32 (frames, channels)) and
records for S seconds. OUT.npy gets the recording aligned with PLAY.npy; OUT.json
{"xruns": n, "frames": n, "sample_rate": sr} counts the server's xruns after the lead-in only.
--ready FILE is created when the lead-in ends (steady state: start counting there).
"""

from __future__ import annotations

import argparse
import json
import time

import jack
import numpy as np
import rtmixer

from noisyneuron.realtime.engine import lock_process_memory

LEAD_IN_SECONDS = 1.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("play")
    ap.add_argument("out")
    ap.add_argument("--target", default="PortAudio", help="prefix of the client whose in/out ports to wire")
    ap.add_argument("--seconds", type=float, required=True, help="seconds to record")
    ap.add_argument("--ready", default=None, help="file created when the lead-in ends")
    args = ap.parse_args()

    lock_process_memory()  # the same as the engine: no page faults in the audio callback
    play = np.ascontiguousarray(np.load(args.play), dtype=np.float32)
    channels = play.shape[1]
    control = jack.Client("nnprobe-control", no_start_server=True)
    xruns = [0]
    control.set_xrun_callback(lambda delay: xruns.__setitem__(0, xruns[0] + 1))
    sample_rate = control.samplerate
    lead_in = int(LEAD_IN_SECONDS * sample_rate)
    frames = int(args.seconds * sample_rate)
    play_buffer = np.empty((lead_in + frames, channels), dtype=np.float32)
    play_buffer.fill(0.0)
    play_buffer[lead_in : lead_in + min(frames, len(play))] = play[:frames]
    rec = np.empty((lead_in + frames, channels), dtype=np.float32)
    rec.fill(0.0)  # touch every page now, not in the audio callback

    pattern = f"^{args.target}[^:]*:"
    before = {p.name for p in control.get_ports(pattern, is_audio=True)}
    stream = rtmixer.MixerAndRecorder(
        channels=channels, samplerate=sample_rate, blocksize=control.blocksize, latency="low"
    )
    mine = [p for p in control.get_ports(pattern, is_audio=True) if p.name not in before]
    mine_in = [p for p in mine if p.is_input]
    mine_out = [p for p in mine if p.is_output]
    target_in = [p for p in control.get_ports(pattern, is_audio=True, is_input=True) if p.name in before]
    target_out = [p for p in control.get_ports(pattern, is_audio=True, is_output=True) if p.name in before]
    if not target_in or not target_out or len(mine_in) < channels or len(mine_out) < channels:
        raise SystemExit(f"jack_probe: no ports of a client {args.target!r} to wire to")
    with control:
        # both actions queued before the stream starts: they begin in the same callback
        stream.record_buffer(rec, channels=channels)
        stream.play_buffer(play_buffer, channels=channels)
        for c in range(channels):
            control.connect(mine_out[c], target_in[min(c, len(target_in) - 1)])
            control.connect(target_out[min(c, len(target_out) - 1)], mine_in[c])
        stream.start()
        time.sleep(LEAD_IN_SECONDS)
        xruns[0] = 0
        if args.ready:
            open(args.ready, "w").close()
        time.sleep(args.seconds + 0.5)
        stream.stop()
        stream.close()
    np.save(args.out, rec[lead_in:])
    with open(args.out.replace(".npy", ".json"), "w") as f:
        json.dump({"xruns": xruns[0], "frames": frames, "sample_rate": sample_rate}, f)


if __name__ == "__main__":
    main()
