"""Offline separation with Demucs (Meta's Hybrid Transformer Demucs), as an alternative backend.

Demucs is not real-time (it looks seconds ahead) but separates better than the streaming
separator; ``noisyneuron separate --model demucs`` uses it. Weights are never downloaded here:

- :func:`load_demucs` with a file loads a model saved by Demucs: a ``.th``/``.pt`` package (the
  pickled dict with ``klass``, ``args``, ``kwargs`` and ``state`` that ``demucs.states`` writes
  and reads; loading it runs pickle, so only load files you trust) or a ``.safetensors`` file in
  the format of Demucs's HuggingFace repositories;
- with a pretrained name (``htdemucs``, ``htdemucs_ft``, ``mdx_extra``...) it looks only in the two
  local caches Demucs 4.1.0 fills when it downloads: the HuggingFace hub cache
  (``$HF_HUB_CACHE``, default ``$HF_HOME/hub`` = ``~/.cache/huggingface/hub``, repository
  ``adefossez/HTDemucs`` for ``htdemucs``) and torch.hub's checkpoint folder
  (``$TORCH_HOME/hub/checkpoints`` = ``~/.cache/torch/hub/checkpoints``, files such as
  ``955717e8-8726e21a.th`` from ``https://dl.fbaipublicfiles.com/demucs/``). When neither has the
  weights it raises a one-line :class:`~noisyneuron.errors.UserError` that says where to get them.

:func:`separate_demucs` runs a loaded model on a ``(frames, channels)`` array at any rate;
:class:`ChunkedDemucs` runs it over a long signal given in pieces, with memory bounded by the
piece length (``noisyneuron separate --model demucs`` streams files through it).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from noisyneuron.audio.resampling import resample
from noisyneuron.errors import UserError

__all__ = ["DEFAULT_DEMUCS_MODEL", "load_demucs", "separate_demucs", "ChunkedDemucs", "demucs_normalisation", "demucs_cache_dirs"]

#: The pretrained Demucs model used when none is named (4 stems: drums, bass, other, vocals).
DEFAULT_DEMUCS_MODEL = "htdemucs"

_FILE_SUFFIXES = {".th", ".pt", ".pth", ".safetensors"}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def demucs_cache_dirs() -> tuple[Path, Path]:
    """The two folders a pretrained Demucs model is looked up in, as Demucs 4.1.0 fills them:
    ``(huggingface hub cache, torch hub checkpoints)``, resolved from the environment now
    (``HF_HUB_CACHE``/``HF_HOME``/``XDG_CACHE_HOME`` and ``TORCH_HOME``/``XDG_CACHE_HOME``)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    hf_home = os.environ.get("HF_HOME") or os.path.join(cache_home, "huggingface")
    hf_cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(hf_home, "hub")
    hf_path = Path(os.path.expandvars(os.path.expanduser(hf_cache)))
    return hf_path, Path(torch.hub.get_dir()) / "checkpoints"


def load_demucs(name_or_path: str | os.PathLike | None = DEFAULT_DEMUCS_MODEL):
    """Load a Demucs model from a file or from the local caches; never uses the network.

    Args:
        name_or_path: a model file (``.th``/``.pt`` saved by Demucs, or ``.safetensors``), or a
            pretrained name such as ``"htdemucs"`` (``None``: :data:`DEFAULT_DEMUCS_MODEL`).

    Returns:
        the model in eval mode (a ``demucs.apply.BagOfModels`` for pretrained names, the bare
        model for a file), with ``.sources`` (stem names), ``.samplerate`` (Hz) and
        ``.audio_channels``.

    Raises:
        UserError: one line: a missing or unreadable file, an unknown name, or weights that are
            not on this machine (saying how to get them).
    """
    spec = str(name_or_path) if name_or_path is not None else DEFAULT_DEMUCS_MODEL
    path = Path(spec).expanduser()
    if path.suffix.lower() in _FILE_SUFFIXES or os.sep in spec or path.exists():
        model = _load_file(path)
    else:
        model = _load_pretrained(spec)
    model.eval()
    return model


def _load_file(path: Path):
    if not path.exists():
        raise UserError(f"{path}: no such Demucs model file; give a .th file saved by Demucs (or a .safetensors one), or a pretrained name such as htdemucs")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the Demucs model file in it (.th or .safetensors)")
    try:
        if path.suffix.lower() == ".safetensors":
            from demucs.hf import load_safetensors_model

            return load_safetensors_model(path)
        from demucs.states import load_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_model(path)
    except Exception as error:  # noqa: BLE001 - any failure means "not a usable model file"
        reason = _one_line(f"{type(error).__name__}: {error}")[:200]
        raise UserError(
            f"{path}: not a Demucs model file ({reason}); give a .th file saved by Demucs "
            f"(e.g. from https://dl.fbaipublicfiles.com/demucs/) or a Demucs .safetensors file"
        ) from None


def _known_names() -> list[str]:
    from demucs.pretrained import REMOTE_ROOT

    return sorted(p.stem for p in REMOTE_ROOT.glob("*.yaml"))


def _from_hf_cache(name: str, hf_cache: Path):
    """The bag from the HuggingFace cache only (``local_files_only``), or ``None``."""
    try:
        import yaml
        from demucs.apply import BagOfModels
        from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name, load_safetensors_model
        from huggingface_hub import hf_hub_download
    except ImportError:
        return None
    namespace, short = name.split("/", 1) if "/" in name else (DEFAULT_NAMESPACE, name)
    repo_id = f"{namespace}/{hf_repo_name(short)}"
    try:
        with open(hf_hub_download(repo_id, f"{short}.yaml", cache_dir=hf_cache, local_files_only=True)) as file:
            bag = yaml.safe_load(file)
        files = [hf_hub_download(repo_id, f"{sig}.safetensors", cache_dir=hf_cache, local_files_only=True) for sig in bag["models"]]
    except (OSError, KeyError, ValueError, TypeError):  # LocalEntryNotFoundError is an OSError
        return None
    return BagOfModels([load_safetensors_model(f) for f in files], bag.get("weights"), bag.get("segment"))


def _legacy_plan(name: str) -> tuple[list[str], dict | None] | None:
    """URLs of the legacy checkpoints ``name`` needs and its bag definition (``None`` for a
    single signature), or ``None`` for a name Demucs does not know."""
    import yaml
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files

    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")
    if name in urls:
        return [urls[name]], None
    bag_file = REMOTE_ROOT / f"{name}.yaml"
    if not bag_file.is_file():
        return None
    bag = yaml.safe_load(bag_file.read_text())
    if not all(sig in urls for sig in bag["models"]):
        return None
    return [urls[sig] for sig in bag["models"]], bag


def _load_pretrained(name: str):
    hf_cache, checkpoints = demucs_cache_dirs()
    model = _from_hf_cache(name, hf_cache)
    if model is not None:
        return model
    plan = _legacy_plan(name) if "/" not in name else None
    if plan is None:
        if "/" in name:
            raise UserError(
                f"Demucs model {name} is not in the HuggingFace cache {hf_cache}; download it on a "
                f"machine with internet or pass --demucs-weights FILE"
            )
        raise UserError(f"unknown Demucs model {name!r}: use one of {', '.join(_known_names())}, or give a model file (.th)")
    urls, bag = plan
    files = [checkpoints / url.rsplit("/", 1)[1] for url in urls]
    missing = [(url, f) for url, f in zip(urls, files) if not f.is_file()]
    if missing:
        fetch = " ".join(url for url, _ in missing)
        raise UserError(
            f"Demucs weights for {name} are not on this machine (looked in {hf_cache} and "
            f"{checkpoints}); download {fetch} into {checkpoints} (e.g. curl -L -O), or run "
            f"`python -c \"import demucs.pretrained as p; p.get_model('{name}')\"` once with "
            f"internet, or pass --demucs-weights FILE.th"
        )
    models = [_load_file(f) for f in files]
    if bag is None:
        return models[0]
    from demucs.apply import BagOfModels

    return BagOfModels(models, bag.get("weights"), bag.get("segment"))


def demucs_normalisation(reference_sum: float, reference_sum_squares: float, frames: int) -> tuple[float, float]:
    """``(mean, std)`` of the mono reference Demucs normalises by (the mean of the first two
    channels, or the one channel), from its sum and sum of squares over ``frames`` samples, as
    ``torch.std`` gives them (unbiased); ``(0.0, 1.0)`` for fewer than two samples."""
    if frames < 2:
        return 0.0, 1.0
    mean = reference_sum / frames
    variance = max(0.0, (reference_sum_squares - frames * mean * mean) / (frames - 1))
    return float(mean), float(np.sqrt(variance))


def separate_demucs(model, audio: np.ndarray, sample_rate: float, progress: bool = False,
                    normalisation: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Separate a whole signal with a Demucs model.

    The audio is resampled (soxr, HQ) to ``model.samplerate`` (44.1 kHz for htdemucs) when its
    rate differs and the stems back to ``sample_rate``; normalised like Demucs's own CLI (minus
    the mean, over the standard deviation of the mono mix, undone on the stems); then run with
    ``demucs.apply.apply_model(shifts=0, split=True, overlap=0.25)``. Channels as in
    :mod:`noisyneuron.models.apply`: mono is copied to the model's two channels and each stem
    returned as the mean of its two; with more than two channels the first two are separated
    and the others put unchanged into ``"other"`` (into the last stem if the model has no
    ``"other"``).

    Args:
        model: from :func:`load_demucs`.
        audio: float ``(frames, channels)`` samples (1-D: mono, stems returned 1-D).
        sample_rate: Hz.
        progress: Demucs's tqdm bar over its segments (on stderr).
        normalisation: ``(mean, std)`` of the mono mix to normalise by (default: this audio's;
            a piece of a longer file passes the whole file's, :func:`demucs_normalisation`).

    Returns:
        ``{stem: float32 (frames, channels)}`` in ``model.sources`` order (htdemucs: drums, bass,
        other, vocals), aligned with ``audio``. The stems add up to the input only approximately.
    """
    from demucs.apply import apply_model

    from noisyneuron.models.apply import as_frames_channels

    x, one_d = as_frames_channels(audio)
    frames, channels = x.shape
    sources = list(model.sources)
    model_rate = int(model.samplerate)
    model_channels = int(getattr(model, "audio_channels", 2))
    out = {name: np.zeros((frames, channels), dtype=np.float32) for name in sources}
    if frames:
        if channels == 1:
            net_in = np.repeat(x, model_channels, axis=1)
        elif channels >= model_channels:
            net_in = x[:, :model_channels]
        else:
            raise ValueError(f"the model needs {model_channels} channels, got {channels}")
        other_rate = int(round(sample_rate)) != model_rate
        if other_rate:
            net_in = resample(np.ascontiguousarray(net_in), sample_rate, model_rate)
        wav = torch.from_numpy(np.ascontiguousarray(net_in.T, dtype=np.float32))  # (C, T)
        if normalisation is None:
            ref = wav.mean(0)
            mean = float(ref.mean())
            std = float(ref.std()) if ref.numel() > 1 else 0.0
        else:
            mean, std = float(normalisation[0]), float(normalisation[1])
        std = std + 1e-8
        mix = ((wav - mean) / std)[None]
        with torch.inference_mode():
            est = apply_model(model, mix, shifts=0, split=True, overlap=0.25, progress=progress)[0]
        est = (est * std + mean).numpy()  # (S, C, T)
        for i, name in enumerate(sources):
            stem = np.ascontiguousarray(est[i].T)  # (T, C)
            if other_rate:
                stem = resample(stem, model_rate, sample_rate, frames)
            if channels == 1:
                out[name][:, 0] = stem.mean(axis=1)
            else:
                out[name][:, :model_channels] = stem
        if channels > model_channels:
            extra = "other" if "other" in out else sources[-1]
            out[extra][:, model_channels:] = x[:, model_channels:]
    if one_d:
        return {name: a[:, 0] for name, a in out.items()}
    return out


class ChunkedDemucs:
    """Demucs over a signal given in pieces: ``push`` samples in, the stems of the final samples out.

    Demucs is not causal (it looks seconds ahead and behind), so the signal is cut into pieces of
    ``piece_seconds`` that overlap by ``overlap_seconds``; each piece is separated on its own
    (:func:`separate_demucs`, with the whole signal's ``normalisation``) and the overlaps are
    crossfaded linearly, so each output frame comes mostly from the piece in which it has the
    most context. Memory is bounded by one piece (plus Demucs's own working set), whatever the
    signal's length. A signal no longer than one piece gives exactly :func:`separate_demucs`'s
    result.

    Args:
        model: from :func:`load_demucs`.
        sample_rate: of the samples pushed, Hz.
        channels: of the samples pushed.
        normalisation: ``(mean, std)`` of the whole signal's mono mix (:func:`demucs_normalisation`).
        piece_seconds: length of each piece, seconds, overlap included (default 60).
        overlap_seconds: overlap of consecutive pieces, seconds (default 8: one htdemucs segment).

    Attributes:
        stems: the model's stem names, in the order of the dicts returned.
        frames_in / frames_out: samples pushed / returned so far.
    """

    def __init__(self, model, sample_rate: float, channels: int, normalisation: tuple[float, float],
                 piece_seconds: float = 60.0, overlap_seconds: float = 8.0) -> None:
        self.model = model
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        self.normalisation = (float(normalisation[0]), float(normalisation[1]))
        self.stems = tuple(model.sources)
        self.overlap = max(1, int(round(overlap_seconds * self.sample_rate)))
        self.piece = max(2 * self.overlap, int(round(piece_seconds * self.sample_rate)))
        self._pending = np.zeros((0, self.channels), dtype=np.float32)  # input from the next piece's start
        self._tail: dict[str, np.ndarray] | None = None  # stems of the pending input's first overlap frames
        self._finished = False
        self.frames_in = 0
        self.frames_out = 0

    def _separate(self, piece: np.ndarray) -> dict[str, np.ndarray]:
        return separate_demucs(self.model, piece, self.sample_rate, normalisation=self.normalisation)

    def _emit(self, stems: dict[str, np.ndarray], keep: int) -> dict[str, np.ndarray]:
        """Crossfade the held tail into ``stems``' head; return all but the last ``keep`` frames
        and hold those as the new tail."""
        n = len(next(iter(stems.values())))
        if self._tail is not None:
            t = len(next(iter(self._tail.values())))
            fade_in = ((np.arange(t, dtype=np.float32) + 0.5) / t)[:, None]
            stems = {k: np.concatenate([self._tail[k] * (1.0 - fade_in) + v[:t] * fade_in, v[t:]]) for k, v in stems.items()}
        out = {k: v[: n - keep] for k, v in stems.items()}
        self._tail = {k: v[n - keep :].copy() for k, v in stems.items()} if keep else None
        self.frames_out += n - keep
        return out

    def push(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """Add ``(frames, channels)`` samples; returns ``{stem: (frames', channels)}`` for the
        samples whose stems are final now (none until a whole piece has come in)."""
        if self._finished:
            raise RuntimeError("ChunkedDemucs.finish() was called; make a new one")
        x = np.asarray(audio, dtype=np.float32).reshape(-1, self.channels)
        self.frames_in += len(x)
        self._pending = np.concatenate([self._pending, x])
        parts = []
        while len(self._pending) > self.piece:  # more is known to follow: this piece is not the last
            piece = self._pending[: self.piece]
            parts.append(self._emit(self._separate(piece), keep=self.overlap))
            self._pending = self._pending[self.piece - self.overlap :].copy()
        if not parts:
            return {k: np.zeros((0, self.channels), dtype=np.float32) for k in self.stems}
        return {k: np.concatenate([p[k] for p in parts]) for k in self.stems}

    def finish(self) -> dict[str, np.ndarray]:
        """The stems of every sample not returned yet; no more pushes after this."""
        self._finished = True
        if not len(self._pending):  # nothing was pushed (a held tail always has input after it)
            return {k: np.zeros((0, self.channels), dtype=np.float32) for k in self.stems}
        out = self._emit(self._separate(self._pending), keep=0)
        self._pending = np.zeros((0, self.channels), dtype=np.float32)
        return out
