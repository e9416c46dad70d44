"""Named chains the CLI and UI can build: ``--chain karaoke``.

One registry, so that ``live`` and ``process`` build the identical chain for the same name.
Importing it is cheap (the CLI's parser lists the names on every start): the chain and its
processors (numba, torch) are imported when a chain is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from noisyneuron.errors import UserError

if TYPE_CHECKING:
    from noisyneuron.realtime.chain import Chain

__all__ = ["CHAINS", "build_chain", "karaoke_choice", "source_channels"]


def _centre_cut(input_channels: int | None = None, name: str = "centre-cut") -> Chain:
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

    return Chain([CentreCutKaraoke()], name=name)


def _separator(input_channels: int | None = None, name: str = "separator") -> Chain:
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.separator import NeuralSeparator

    return Chain([NeuralSeparator()], name=name)


def karaoke_choice(input_channels: int | None = None) -> tuple[str, str]:
    """Which karaoke is better here, by measurement: ``("separator" | "centre-cut", reason)``.

    A mono input (``input_channels == 1``) always gets the neural separator when its weights
    load: the centre cut removes what is common to left and right, which in mono is everything.

    The neural separator is chosen when the selected weights load and their recorded quality
    (median accompaniment SDR on the real-world set's test split: voices and recordings training
    never heard; figures from a synthetic split are ignored; written by
    ``noisyneuron eval separation --record-quality``) beats the centre cut's from the same run;
    weights without recorded figures are used when the user named them. The centre cut is the
    fallback when no weights are available. ``reason`` is one line for the user.
    """
    from noisyneuron.models.pretrained import SEPARATOR_WEIGHTS_ENV, selected_separator_weights, separator_quality

    weights = selected_separator_weights()
    if not weights.is_file():
        return "centre-cut", f"DSP centre cut (no separator weights at {weights}; stereo sources only)"
    if input_channels == 1:
        return "separator", "neural separator: the input is mono, and the DSP centre cut needs stereo"
    quality = separator_quality()
    if quality is not None and quality.get("section") != "real-world":
        quality = None  # figures from a synthetic split measure our own generators, not songs
    if quality is None:
        if os.environ.get(SEPARATOR_WEIGHTS_ENV):
            return "separator", f"neural separator ({weights.name}, as asked; its quality was not measured)"
        return "centre-cut", "DSP centre cut (the separator's quality on real-world sound was not measured: run scripts/eval-report.sh)"
    sdr = quality["median_sdr_db"]
    neural, dsp = sdr["separator"]["accompaniment"], sdr["centre-cut"]["accompaniment"]
    figures = f"accompaniment SDR {neural:.1f} vs {dsp:.1f} dB on {quality.get('tracks', '?')} real-world tracks: held-out voices over held-out recordings"
    if neural > dsp:
        return "separator", f"neural separator, better than the DSP centre cut ({figures}); --chain centre-cut for the DSP one"
    return "centre-cut", f"DSP centre cut, better than the neural separator here ({figures}); --chain separator for the neural one"


def _karaoke(input_channels: int | None = None) -> Chain:
    kind, reason = karaoke_choice(input_channels)
    chain = _separator(name="karaoke") if kind == "separator" else _centre_cut(name="karaoke")
    chain.note = f"karaoke: {reason}"
    return chain


def _classifier():
    """The monitor's processor; says so on stderr when it runs on the user's calibration profile."""
    import sys

    from noisyneuron.realtime.processors.classifier import ClassifierProcessor

    proc = ClassifierProcessor()
    if proc.source.startswith("profile"):
        print(f"monitor: using your calibration {proc.source}", file=sys.stderr, flush=True)
    return proc


def _monitor(input_channels: int | None = None) -> Chain:
    from noisyneuron.realtime.chain import Chain

    return Chain([_classifier()], name="monitor")


def _separator_monitor(input_channels: int | None = None) -> Chain:
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.separator import NeuralSeparator

    # the monitor listens to the chain's input (what is on the line), before the separator
    return Chain([_classifier(), NeuralSeparator()], name="separator+monitor")


#: chain name -> (builder of the input's channel count or None, one-line description)
CHAINS: dict[str, tuple[Callable[[int | None], Chain], str]] = {
    "karaoke": (
        _karaoke,
        "remove the vocals with the better of the neural separator and the DSP centre cut, by measured quality (says which)",
    ),
    "centre-cut": (
        _centre_cut,
        "remove the centre-panned vocal with DSP (stereo sources only; bass kept; no model)",
    ),
    "separator": (
        _separator,
        "neural 4-stem separation with a gain per stem (vocals off by default: karaoke; mono too); needs the shipped weights",
    ),
    "monitor": (
        _monitor,
        "music/speech/noise/silence monitor: audio passes untouched, a label every 0.1 s (the calibration profile when there is one)",
    ),
    "separator+monitor": (
        _separator_monitor,
        "the monitor on the input, then the neural separator",
    ),
}


def build_chain(name: str, input_channels: int | None = None) -> Chain:
    """Build the chain called ``name``; a UserError lists the known names otherwise.

    Args:
        name: a key of :data:`CHAINS`.
        input_channels: channels of what will be fed in (a file's, the input device's), when
            known; ``karaoke`` picks the neural separator for mono (see :func:`karaoke_choice`).
    """
    try:
        builder, _ = CHAINS[name]
    except KeyError:
        known = ", ".join(sorted(CHAINS))
        raise UserError(f"unknown chain {name!r}; choose one of: {known}") from None
    return builder(input_channels)


def source_channels(spec: object, is_file: bool) -> int | None:
    """Channels of a chain's input: the file's own, or the input device's most; None when it
    cannot be told yet (the error comes from opening it, later, with its own message)."""
    try:
        if is_file:
            from noisyneuron.audio.files import audio_info

            return int(audio_info(spec).channels)
        from noisyneuron.realtime.devices import resolve_device

        return int(resolve_device(spec, "input").max_input_channels) or None
    except Exception:  # noqa: BLE001 - opening the input reports it properly
        return None
