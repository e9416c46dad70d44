"""Recording labelled takes from an input device, for calibrating the monitor to a room and a
microphone (``noisyneuron classify --calibrate``); the calibration itself is
:func:`noisyneuron.models.classifier_calibration.calibrate`."""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import numpy as np

from noisyneuron.errors import UserError
from noisyneuron.models.classifier import SILENCE
from noisyneuron.models.classifier_calibration import Recording

__all__ = ["record_from_device"]


def record_from_device(device, labels: list[str], seconds: float, sample_rate: float | None = None,
                       prompt=input, say=print, save_dir: str | os.PathLike | None = None,
                       gate_dbfs: float | None = None) -> list[Recording]:
    """Record ``seconds`` of each label from input ``device`` (index or part of a name; None:
    the default), prompting before each; optionally keep the takes as ``save_dir/<label>/take-*.wav``.
    With ``gate_dbfs`` (the model's level gate), a take of a label other than silence that is
    quieter than the gate gets a warning: the input heard nothing (not connected, muted).
    One-line :class:`UserError` for a missing device."""
    import sounddevice as sd

    from noisyneuron.realtime.devices import resolve_device

    dev = resolve_device(device, "input")
    rate = int(sample_rate or dev.default_sample_rate)
    hints = {"music": "play music", "speech": "talk (or play speech)", "noise": "make or play noise (fan, traffic, machines)",
             "silence": "keep quiet (room tone only)"}
    out: list[Recording] = []
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for label in labels:
        prompt(f"[{label}] {hints.get(label, 'produce ' + label)} near the microphone, then press Enter to record {seconds:g} s ")
        say(f"recording {label} for {seconds:g} s from {dev.name} ...")
        try:
            audio = sd.rec(int(seconds * rate), samplerate=rate, channels=1, device=dev.index, dtype="float32")
            sd.wait()
        except sd.PortAudioError as exc:
            raise UserError(f"cannot record from {dev.name}: {str(exc).splitlines()[0]}") from None
        mono = np.ascontiguousarray(audio[:, 0])
        level = 10 * math.log10(max(float(np.mean(mono.astype(np.float64) ** 2)), 1e-12))
        say(f"  {label}: {len(mono) / rate:.1f} s, RMS {level:.1f} dBFS")
        if gate_dbfs is not None and label != SILENCE and level < gate_dbfs:
            say(f"  warning: the {label} take is below the level gate ({gate_dbfs:g} dBFS) and will read as silence: "
                f"is {dev.name} connected and unmuted?")
        out.append(Recording(label, mono, rate, f"{label}/take-{stamp}.wav"))
        if save_dir is not None:
            import soundfile as sf

            target = Path(save_dir) / label / f"take-{stamp}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(target), mono, rate, subtype="PCM_24")
    return out
