"""Training the streaming separator (:class:`~noisyneuron.models.separator.SeparatorNet`).

CPU by default, ``cuda`` where asked for and present. A run lives in one folder (``out``)::

    out/checkpoint.pt   everything needed to continue exactly (written atomically)
    out/best.pt         the model with the best valid vocals SDR so far
    out/log.jsonl       one JSON object per validation: step, loss, lr, seconds, SDRs
    out/loss.png        train loss and valid SDR against step (redrawn at each validation)

Data (:class:`StemSegments`): each example is a random track (chosen in proportion to its
length) and a random offset, ``segment_seconds`` long, read straight from the stem FLAC files
with a seek (or from RAM with ``preload``). Stems come in :data:`STEMS` order, ``(4, 2, T)``
float32, full scale 1.0. A two-stem track (vocals + accompaniment) puts its accompaniment in the
"other" slot, drums and bass zero, and is flagged ``two_stem`` so the loss compares only vocals
and drums + bass + other against the accompaniment. Augmentation: a remix of stems from
different four-stem tracks (p = 0.5), a gain per stem (-6..+3 dB), a channel swap per stem
(p = 0.5), a polarity flip (p = 0.5), mono (p = 0.15); near-silent mixtures (< -50 dBFS RMS) are
drawn again. The mixture is the sum of the augmented stems, so the targets are exact.

Every example is a pure function of ``(seed, example index)`` and step ``k`` uses examples
``k * batch_size ... (k + 1) * batch_size - 1``, so the data order does not depend on workers,
and a resumed run draws exactly the batches the uninterrupted run would have drawn.

Loss (:func:`separation_loss`), on the model's own STFT, per stem: the mean absolute difference
of the real parts + of the imaginary parts + of the magnitudes between the estimated and the
target spectra; averaged over the known stems (all four), or for a two-stem example over
{vocals, accompaniment}, the accompaniment estimate being the sum of the other three stems. The
model's masks sum to one over the stems, so the sum of the estimates is always the mixture and
the two views agree.

Validation: the first ``valid_tracks`` valid tracks that have vocals, up to their first 30 s, a
whole-signal forward pass, and a cheap global SDR (:func:`global_sdr`) for vocals and for
accompaniment (= mixture - vocals estimate); medians over tracks, dB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from noisyneuron.errors import UserError
from noisyneuron.datasets.layout import SEPARATION_RATE, SeparationTrack, separation_tracks
from noisyneuron.models.run_folder import (
    Interrupt,
    append_log,
    cast_state,
    check_trajectory,
    choose_device,
    lr_factor,
    noisyneuron_version,
    plot_run,
    read_log,
    save_atomic,
    torch_threads,
    truncate_log,
    write_export,
)
from noisyneuron.models.pretrained import EXPORT_FORMAT, load_separator  # noqa: F401 - re-exported
from noisyneuron.models.train_options import DEFAULT_OUT, TrainConfig, add_cli_arguments  # noqa: F401 - re-exported
from noisyneuron.models.separator import FEATURE_DESIGNS, STEMS, SeparatorConfig, SeparatorNet

__all__ = [
    "TrainConfig",
    "StemSegments",
    "separation_loss",
    "global_sdr",
    "manifest_hash",
    "train",
    "export_separator",
    "load_separator",
    "add_cli_arguments",
    "cli_main",
    "DEFAULT_OUT",
]

#: Default run folder.
#: Format tags of the files this module writes.
CHECKPOINT_FORMAT = "noisyneuron-separator-checkpoint"
#: Seconds of each valid track the validation runs on (from the start).
VALID_SECONDS = 30.0
_SILENCE_DBFS = -50.0
_GAIN_DB = (-6.0, 3.0)
_MAX_TRIES = 20
_EXPORT_LIMIT_BYTES = 20 * 1024 * 1024

# The validation series drawn under the loss in loss.png: (log.jsonl key, legend label).
_PLOT_SERIES = (("valid_vocals_sdr", "vocals"), ("valid_accompaniment_sdr", "accompaniment"))

# Fields of TrainConfig that shape the training trajectory: a resumed run must match them.
_TRAJECTORY_FIELDS = (
    "steps", "batch_size", "segment_seconds", "lr", "warmup_steps", "weight_decay", "grad_clip",
    "seed", "hidden", "layers", "features", "remix_p", "mono_p", "karaoke_weight",
)


# ----- data -----------------------------------------------------------------------------------
def manifest_hash(data: str | os.PathLike) -> str:
    """sha256 (hex) of the data set's ``manifest.json`` bytes."""
    path = Path(data) / "manifest.json"
    if not path.is_file():
        raise UserError(f"{data}: not a NoisyNeuron data set (no manifest.json); build one with `noisyneuron data build separation`")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _track_frames(track: SeparationTrack) -> int:
    return int(round(track.seconds * SEPARATION_RATE))


def _layout(track: SeparationTrack) -> str:
    stems = set(track.stems)
    if stems == set(STEMS):
        return "four"
    if stems == {"vocals", "accompaniment"}:
        return "two"
    raise UserError(f"{track.path}: stems {', '.join(track.stems)} are neither {', '.join(STEMS)} nor vocals + accompaniment")


class StemSegments(torch.utils.data.Dataset):
    """Random, augmented training segments of one split; ``segments[i]`` is example ``i``.

    Example ``i`` depends only on ``(seed, i)`` (and ``stream``): a dict with

    - ``stems``: float32 ``(4, 2, T)`` in :data:`STEMS` order, ``T = round(segment_seconds *
      44100)`` samples, full scale 1.0;
    - ``mixture``: float32 ``(2, T)``, exactly ``stems.sum(0)``;
    - ``known``: bool ``(4,)``, which stem slots hold that stem (all four, or vocals only for a
      two-stem track, whose accompaniment sits in the "other" slot);
    - ``two_stem``: bool, the example came from a vocals + accompaniment track.

    :meth:`batch` collates the examples of one training step. The object is a map-style torch
    ``Dataset``: a ``DataLoader`` with ``sampler=range(first, last)`` runs it in workers.
    """

    def __init__(
        self, root: str | os.PathLike, split: str = "train", segment_seconds: float = 6.0, seed: int = 0,
        preload: bool = False, remix_p: float = 0.5, mono_p: float = 0.15, augment: bool = True,
    ):
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"{root}: no such data folder")
        self.tracks = separation_tracks(root, split)
        if not self.tracks:
            raise UserError(f"{root}: no {split} tracks (is it a separation data set? `noisyneuron data build separation`)")
        self.layouts = [_layout(t) for t in self.tracks]
        self.frames = np.array([_track_frames(t) for t in self.tracks], dtype=np.int64)
        if not np.any(self.frames > 0):
            raise UserError(f"{root}: the {split} tracks are empty")
        self.weights = self.frames / self.frames.sum()
        self.four = np.flatnonzero(np.array([lay == "four" for lay in self.layouts]) & (self.frames > 0))
        four_frames = self.frames[self.four].astype(np.float64)
        self.four_weights = four_frames / four_frames.sum() if len(self.four) else four_frames
        self.segment = max(1, int(round(segment_seconds * SEPARATION_RATE)))
        self.seed = int(seed)
        self.remix_p, self.mono_p, self.augment = float(remix_p), float(mono_p), bool(augment)
        self._ram: list[dict[str, np.ndarray]] | None = None
        if preload:
            self.preload()

    def preload(self) -> None:
        """Decode every stem of the split into RAM once (int16; reads then never touch the disk)."""
        if self._ram is None:
            ram = []
            for track in self.tracks:
                ram.append({s: sf.read(track.stem_path(s), dtype="int16", always_2d=True)[0] for s in track.stems})
            self._ram = ram

    # ----- reading --------------------------------------------------------------------------
    def _read(self, t: int, stem: str, offset: int) -> np.ndarray:
        """``segment`` samples of one stem from ``offset``, (2, T) float32, zero-padded past the end."""
        n = self.segment
        if self._ram is not None:
            audio = self._ram[t][stem][offset : offset + n].astype(np.float32) / np.float32(32768.0)
        else:
            audio = sf.read(self.tracks[t].stem_path(stem), start=offset, frames=n, dtype="float32", always_2d=True)[0]
        out = np.zeros((2, n), dtype=np.float32)
        if audio.shape[1] == 1:
            audio = np.repeat(audio, 2, axis=1)
        out[:, : len(audio)] = audio[:n, :2].T
        return out

    def _offset(self, rng: np.random.Generator, t: int) -> int:
        return int(rng.integers(0, max(1, int(self.frames[t]) - self.segment + 1)))

    def _draw(self, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        stems = np.zeros((len(STEMS), 2, self.segment), dtype=np.float32)
        if self.augment and len(self.four) >= 2 and rng.random() < self.remix_p:
            for k, name in enumerate(STEMS):
                t = int(self.four[rng.choice(len(self.four), p=self.four_weights)])
                stems[k] = self._read(t, name, self._offset(rng, t))
            return stems, False
        t = int(rng.choice(len(self.tracks), p=self.weights))
        offset = self._offset(rng, t)
        if self.layouts[t] == "four":
            for k, name in enumerate(STEMS):
                stems[k] = self._read(t, name, offset)
            return stems, False
        stems[0] = self._read(t, "vocals", offset)
        stems[STEMS.index("other")] = self._read(t, "accompaniment", offset)
        return stems, True

    def _augment(self, rng: np.random.Generator, stems: np.ndarray) -> np.ndarray:
        gains = 10.0 ** (rng.uniform(*_GAIN_DB, size=len(stems)) / 20.0)
        stems = stems * gains[:, None, None].astype(np.float32)
        swap = rng.random(len(stems)) < 0.5
        stems[swap] = stems[swap][:, ::-1]
        if rng.random() < 0.5:
            stems = -stems
        if rng.random() < self.mono_p:
            stems = np.repeat(stems.mean(axis=1, keepdims=True), 2, axis=1)
        return np.ascontiguousarray(stems, dtype=np.float32)

    def example(self, index: int, stream: int = 0) -> dict:
        """Example ``index`` of ``stream`` (0: training; other streams: statistics, tests)."""
        rng = np.random.default_rng([self.seed, int(stream), int(index)])
        floor = 10.0 ** (_SILENCE_DBFS / 20.0)
        for _ in range(_MAX_TRIES):
            stems, two_stem = self._draw(rng)
            if self.augment:
                stems = self._augment(rng, stems)
            mixture = stems.sum(axis=0, dtype=np.float32)
            if float(np.sqrt(np.mean(np.square(mixture, dtype=np.float64)))) >= floor:
                break  # else near-silent: draw again (after _MAX_TRIES, keep the last)
        known = np.array([True, not two_stem, not two_stem, not two_stem])
        return {"stems": stems, "mixture": mixture, "known": known, "two_stem": np.bool_(two_stem)}

    def __getitem__(self, index: int) -> dict:
        return self.example(index)

    def batch(self, step: int, batch_size: int, stream: int = 0) -> dict[str, torch.Tensor]:
        """The examples of training step ``step``, collated: stems (B, 4, 2, T), mixture
        (B, 2, T), known (B, 4), two_stem (B,)."""
        items = [self.example(step * batch_size + i, stream) for i in range(batch_size)]
        return torch.utils.data.default_collate(items)


# ----- loss and metric ------------------------------------------------------------------------
def separation_loss(net: SeparatorNet, stems: torch.Tensor, known: torch.Tensor | None = None, two_stem: torch.Tensor | None = None,
                    karaoke_weight: float = 0.0) -> torch.Tensor:
    """The training loss of ``net`` on a batch: a scalar (magnitude units of the model's STFT).

    ``stems`` (B, 4, 2, T) in :data:`STEMS` order (the mixture is their sum); ``known`` bool
    (B, 4) (default: all); ``two_stem`` bool (B,) (default: none). Per stem ``s`` and example:
    ``mean | m_s |X| - |Y_s| |`` over channels, bins and frames, where ``m_s`` is the model's mask,
    ``X`` the mixture's and ``Y_s`` the target's spectrum. The masks are real, so a magnitude loss
    is what they can meet (as Open-Unmix trains), and it costs a third of a complex one on a CPU.
    An example averages this over its known stems; a two-stem example over vocals and
    accompaniment (mask ``1 - m_vocals``, target the accompaniment in the "other" slot). The
    batch loss is the mean over examples.

    ``karaoke_weight`` ``w`` in [0, 1] mixes in what karaoke needs:
    ``(1 - w) * loss + w * (vocals term + accompaniment term) / 2``, the accompaniment term
    ``mean | (1 - m_vocals) |X| - |A| |`` with ``A`` the spectrum of mixture minus vocals (every
    example; the four-stem terms give the vocals a quarter of the weight).
    """
    b, s, c, t = stems.shape
    mixture = stems.sum(dim=1)
    spec = net.analyse(mixture)  # (B, C, F, N)
    mag = spec.abs()
    masks, _ = net.masks(net.features(spec), n_bins=spec.shape[2])  # (B, S, C, F, N)
    est = masks * mag.unsqueeze(1)
    target = net.analyse(stems.reshape(b * s, c, t)).abs().reshape(est.shape)
    if known is None:
        known = torch.ones(b, s, dtype=torch.bool, device=stems.device)
    if two_stem is None:
        two_stem = torch.zeros(b, dtype=torch.bool, device=stems.device)
    known = known.to(stems.device).bool()
    two_stem = two_stem.to(stems.device).bool().reshape(b)
    terms = (est - target).abs().mean(dim=(2, 3, 4))  # (B, S)
    if bool(two_stem.any()):  # the accompaniment term, only when an example needs it
        acc = ((1.0 - masks[:, 0]) * mag - target[:, 1:].sum(dim=1)).abs().mean(dim=(1, 2, 3))
        terms = torch.cat([terms, acc[:, None]], dim=1)
    weights = torch.cat([known & ~two_stem[:, None], two_stem[:, None]], dim=1)
    weights[:, 0] |= two_stem
    weights = weights[:, : terms.shape[1]].float()
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    loss = (terms * weights).sum(dim=1).mean()
    if karaoke_weight > 0.0:
        accompaniment = net.analyse(mixture - stems[:, 0]).abs()
        karaoke = 0.5 * (terms[:, 0] + ((1.0 - masks[:, 0]) * mag - accompaniment).abs().mean(dim=(1, 2, 3)))
        loss = (1.0 - karaoke_weight) * loss + karaoke_weight * karaoke.mean()
    return loss


def global_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``10 log10(sum s^2 / sum (s - s_hat)^2)`` over the whole signal, dB (a cheap global SDR;
    a tiny floor keeps silence finite)."""
    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(estimate, dtype=np.float64)
    eps = 1e-10
    return float(10.0 * np.log10((np.sum(ref * ref) + eps) / (np.sum(err * err) + eps)))


class _ValidSet:
    """The first ``count`` valid tracks with vocals, their first ``seconds``, in RAM."""

    def __init__(self, root: Path, count: int, seconds: float = VALID_SECONDS):
        self.items: list[tuple[str, np.ndarray, np.ndarray]] = []  # id, mixture (2, T), vocals (2, T)
        if count <= 0 or not (root / "valid").is_dir():
            return
        n = int(round(seconds * SEPARATION_RATE))
        for track in separation_tracks(root, "valid"):
            if len(self.items) >= count:
                break
            if track.instrumental or "vocals" not in track.stems:
                continue
            mix = track.load("mixture")[:n].T  # a packed set has no mixture file: load sums the stems
            voc = track.load("vocals")[:n].T
            self.items.append((track.id, np.ascontiguousarray(mix), np.ascontiguousarray(voc)))

    @torch.no_grad()
    def evaluate(self, net: SeparatorNet, device: torch.device) -> dict | None:
        """Median global SDRs (dB) of vocals and accompaniment over the tracks; None without tracks."""
        if not self.items:
            return None
        was_training = net.training
        net.eval()
        vocals, accomp = [], []
        try:
            for _, mix, voc in self.items:
                out = net(torch.from_numpy(mix)[None].to(device))[0, 0].float().cpu().numpy()
                vocals.append(global_sdr(voc, out))
                accomp.append(global_sdr(mix - voc, mix - out))
        finally:
            net.train(was_training)
        return {
            "vocals_sdr": float(np.median(vocals)),
            "accompaniment_sdr": float(np.median(accomp)),
            "tracks": len(self.items),
        }


# ----- checkpoints ----------------------------------------------------------------------------
def _rng_states() -> dict:
    np_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": random.getstate(),
    }


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state({
        "bit_generator": n["bit_generator"],
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
        "has_gauss": n["has_gauss"], "gauss": n["gauss"],
    })
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def _load(path: Path, device: str | torch.device = "cpu") -> dict:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"{path}: not a readable NoisyNeuron separator file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


# ----- training -------------------------------------------------------------------------------
def _check(config: TrainConfig) -> TrainConfig:
    for name in ("steps", "batch_size", "valid_every", "checkpoint_every", "hidden", "layers"):
        if int(getattr(config, name)) < 1:
            raise UserError(f"{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if not config.segment_seconds > 0:
        raise UserError(f"segment-seconds must be positive, got {config.segment_seconds}")
    if not config.lr > 0:
        raise UserError(f"lr must be positive, got {config.lr}")
    if not 0.0 <= config.karaoke_weight <= 1.0:
        raise UserError(f"karaoke-weight must be between 0 and 1, got {config.karaoke_weight}")
    if config.workers < 0:
        raise UserError(f"workers must be 0 or more, got {config.workers}")
    data = Path(config.data)
    if not data.is_dir():
        raise UserError(f"--data {data}: no such folder")
    if config.init_from is not None and not Path(config.init_from).is_file():
        raise UserError(f"--init-from {config.init_from}: no such weights file")
    if config.valid_data is not None and not (Path(config.valid_data) / "valid").is_dir():
        raise UserError(f"--valid-data {config.valid_data}: no valid split there (build one with `noisyneuron data build realworld`)")
    return config


@torch.no_grad()
def _init_normalisation(net: SeparatorNet, segments: StemSegments, device: torch.device, examples: int = 32, start: int = 0) -> None:
    """Set the network's input normalisation to the mean and 1/std of the training mixtures'
    features, per plane and bin (from ``examples`` examples of a separate data stream); with
    ``start``, only the features from that index on (the planes a widening added)."""
    batch = segments.batch(0, examples, stream=1)
    feats = net.raw_features(net.analyse(batch["mixture"].to(device))).reshape(-1, net.input_mean.numel())
    net.input_mean[start:].copy_(feats[:, start:].mean(dim=0))
    net.input_scale[start:].copy_(1.0 / (feats[:, start:].std(dim=0) + 1e-3))


@torch.no_grad()
def widen_features(net: SeparatorNet, features: str) -> tuple[SeparatorNet, int]:
    """``net`` rebuilt with the input design ``features``, whose planes start with ``net``'s:
    every weight copied, the new planes' encoder columns zero (so it computes ``net``'s
    function) and their normalisation neutral (to be measured). Returns the network and the
    first new feature index (``net``'s feature count; no new planes: ``net`` itself)."""
    old = net.config
    if features == old.features:
        return net, net.input_mean.numel()
    old_planes, new_planes = FEATURE_DESIGNS[old.features], FEATURE_DESIGNS[features]
    if new_planes[: len(old_planes)] != old_planes:
        raise UserError(f"--features {features}: cannot start from weights with features {old.features!r} (their planes are not its first)")
    wide = SeparatorNet(SeparatorConfig.from_dict({**old.as_dict(), "features": features}))
    wide.export_meta = getattr(net, "export_meta", {})
    start = net.input_mean.numel()
    state = net.state_dict()
    for name, tensor in wide.state_dict().items():
        src = state[name]
        if name == "encode.weight":
            tensor.zero_()
            tensor[:, :start].copy_(src)
        elif name in ("input_mean", "input_scale"):
            tensor.copy_(torch.zeros_like(tensor) if name == "input_mean" else torch.ones_like(tensor))
            tensor[:start].copy_(src)
        else:
            tensor.copy_(src)
    return wide.to(net.input_mean.device), start


def _train_hours(data: Path) -> float | None:
    """Hours of audio in the data set's train split, from its manifest (None if it says not)."""
    import json

    try:
        totals = json.loads((data / "manifest.json").read_text()).get("totals", {})
        return float(totals["train"]["hours"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _initial_weights(path: Path, device: torch.device) -> tuple[SeparatorNet, list[dict]]:
    """The network of exported weights (float32, on ``device``) and the runs that made them
    (their ``training_history``, or one entry for a file from before histories were kept)."""
    net = load_separator(path)
    meta = net.export_meta
    history = list(meta.get("training_history") or [])
    if not history:
        history = [{"steps": int(meta.get("training_steps", 0)), "data_manifest_hash": meta.get("data_manifest_hash"), "data_train_hours": None}]
    history.append({"init_from_sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    return net.to(device).train(), history


def train(config: TrainConfig, progress: bool = True, *, force: bool = False, stop_at: int | None = None) -> dict:
    """Train (or continue training) the separator; returns a summary.

    Continues from ``out/checkpoint.pt`` when it exists: the settings that shape training
    (steps, batch size, segment, lr, seed, model size, augmentation) must be the same (a
    one-line :class:`UserError` otherwise), and so must the data set's manifest hash unless
    ``force``. ``stop_at``: stop, with a checkpoint, once this step is done (the schedule still
    runs to ``config.steps``; a later call continues). Ctrl-C finishes the current step, writes a
    checkpoint and raises ``KeyboardInterrupt``.

    Returns ``{"steps", "best_vocals_sdr", "best_step", "last_valid", "seconds", "out",
    "completed"}`` (SDRs in dB, seconds of training wall time over every session of the run).
    """
    cfg = _check(config)
    device = choose_device(cfg.device)
    out, data = Path(cfg.out), Path(cfg.data)
    data_hash = manifest_hash(data)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.jsonl"

    with torch_threads(device, cfg.torch_threads):
        torch.manual_seed(cfg.seed)
        net = SeparatorNet(cfg.model_config()).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, cfg.steps, cfg.warmup_steps))
        state = {"step": 0, "best_sdr": None, "best_step": None, "elapsed": 0.0, "loss_sum": 0.0, "loss_count": 0, "last_valid": None}
        history: list[dict] = []  # earlier runs this one continues (from --init-from weights)
        widened_from = None  # first feature index a --features widening of --init-from added

        if ckpt_path.is_file():
            ckpt = _load(ckpt_path, device)
            if ckpt.get("format") != CHECKPOINT_FORMAT:
                raise UserError(f"{ckpt_path}: not a separator training checkpoint; choose another --out")
            defaults = {k: getattr(TrainConfig(data=cfg.data), k) for k in _TRAJECTORY_FIELDS}
            check_trajectory(ckpt_path, {**defaults, **ckpt["config"]}, {k: getattr(cfg, k) for k in _TRAJECTORY_FIELDS}, _TRAJECTORY_FIELDS)
            if ckpt["data_manifest_hash"] != data_hash and not force:
                raise UserError(f"{ckpt_path} was trained on a different data set (manifest hash {ckpt['data_manifest_hash'][:12]} != {data_hash[:12]} of {data}); use the same data, force=True (--force), or another --out")
            # the run's own network (an --init-from run has its weights' size and design)
            net = SeparatorNet(SeparatorConfig.from_dict(ckpt["model_config"])).to(device)
            net.load_state_dict(ckpt["model"])
            history = list(ckpt.get("history", []))
            opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, cfg.steps, cfg.warmup_steps))
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            _set_rng_states(ckpt["rng"])
            for key in state:
                state[key] = ckpt["state"][key]
            truncate_log(log_path, state["step"])  # validations logged after the checkpoint are redone
        elif cfg.init_from is not None:
            net, history = _initial_weights(Path(cfg.init_from), device)
            net, widened_from = widen_features(net, cfg.features or net.config.features)
            net.train()
            opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, cfg.steps, cfg.warmup_steps))

        segments = StemSegments(
            data, "train", cfg.segment_seconds, cfg.seed,
            preload=cfg.preload if cfg.preload is not None else device.type == "cuda",
            remix_p=cfg.remix_p, mono_p=cfg.mono_p,
        )
        if state["step"] == 0:
            log_path.unlink(missing_ok=True)
            best_path.unlink(missing_ok=True)
            if cfg.init_from is None:  # exported weights bring their own normalisation
                _init_normalisation(net, segments, device)
            elif widened_from is not None and widened_from < net.input_mean.numel():  # but not for the planes a widening added
                _init_normalisation(net, segments, device, start=widened_from)
        valid = _ValidSet(Path(cfg.valid_data) if cfg.valid_data else data, cfg.valid_tracks)
        run = {"data_manifest_hash": data_hash, "data_train_hours": _train_hours(data), "data": str(data)}

        def checkpoint(step: int) -> None:
            state["elapsed"] = elapsed()
            save_atomic({
                "format": CHECKPOINT_FORMAT, "version": noisyneuron_version(), "step": step,
                "model": net.state_dict(), "model_config": net.config.as_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "config": cfg.as_dict(), "rng": _rng_states(), "data_manifest_hash": data_hash,
                "state": dict(state), "history": history, "run": {**run, "steps": step},
            }, ckpt_path)

        started, base_elapsed = time.monotonic(), state["elapsed"]

        def elapsed() -> float:
            return base_elapsed + time.monotonic() - started

        def validate(step: int) -> None:
            result = valid.evaluate(net, device)
            row = {
                "step": step,
                "loss": state["loss_sum"] / state["loss_count"] if state["loss_count"] else None,
                "lr": opt.param_groups[0]["lr"],
                "seconds": round(elapsed(), 3),
                "valid_vocals_sdr": result["vocals_sdr"] if result else None,
                "valid_accompaniment_sdr": result["accompaniment_sdr"] if result else None,
            }
            state["loss_sum"], state["loss_count"] = 0.0, 0
            state["last_valid"] = result
            if result and (state["best_sdr"] is None or result["vocals_sdr"] > state["best_sdr"]):
                state["best_sdr"], state["best_step"] = result["vocals_sdr"], step
                save_atomic({
                    "format": CHECKPOINT_FORMAT + "-best", "version": noisyneuron_version(), "step": step,
                    "model": net.state_dict(), "model_config": net.config.as_dict(), "config": cfg.as_dict(),
                    "data_manifest_hash": data_hash, "valid": result, "history": history, "run": {**run, "steps": step},
                }, best_path)
            append_log(log_path, row)
            plot_run(read_log(log_path), out / "loss.png", _PLOT_SERIES, "valid SDR, median (dB)", log_loss=True)

        stop = cfg.steps if stop_at is None else max(state["step"], min(int(stop_at), cfg.steps))
        step = state["step"]
        if step < stop:
            loader = torch.utils.data.DataLoader(
                segments, batch_size=cfg.batch_size, sampler=range(step * cfg.batch_size, stop * cfg.batch_size),
                num_workers=cfg.workers, pin_memory=device.type == "cuda", drop_last=True,
                persistent_workers=False,
            )
            from tqdm.auto import tqdm

            bar = tqdm(total=stop, initial=step, desc="train separator", unit="step", disable=not progress, dynamic_ncols=True)
            net.train()
            consistent = True  # False while an update is half done
            with Interrupt() as interrupt:
                try:
                    for batch in loader:
                        consistent = False
                        loss = _train_step(net, opt, sched, batch, device, cfg.grad_clip, cfg.karaoke_weight)
                        step += 1
                        state["step"] = step
                        consistent = True
                        state["loss_sum"] += loss
                        state["loss_count"] += 1
                        if step % cfg.valid_every == 0 or step == cfg.steps:
                            validate(step)
                        if step % cfg.checkpoint_every == 0 or step == stop:
                            checkpoint(step)
                        post = {"loss": f"{loss:.4f}"}
                        if state["last_valid"]:
                            post["vocals_sdr"] = f"{state['last_valid']['vocals_sdr']:.2f}"
                        bar.set_postfix(post, refresh=False)
                        bar.update(1)
                        if interrupt.requested:
                            raise KeyboardInterrupt
                except KeyboardInterrupt:
                    if consistent:  # between steps (a second Ctrl-C mid-step keeps the last checkpoint)
                        checkpoint(step)
                        bar.write(f"interrupted: checkpoint at step {step} in {ckpt_path}", file=sys.stderr)
                    raise
                finally:
                    bar.close()
        return {
            "steps": state["step"],
            "completed": state["step"] >= cfg.steps,
            "best_vocals_sdr": state["best_sdr"],
            "best_step": state["best_step"],
            "last_valid": state["last_valid"],
            "seconds": round(elapsed(), 3),
            "out": str(out),
        }


def _train_step(net: SeparatorNet, opt, sched, batch: dict, device: torch.device, grad_clip: float, karaoke_weight: float = 0.0) -> float:
    """One optimiser step on a collated batch; the loss before the update."""
    stems = batch["stems"].to(device, non_blocking=True)
    loss = separation_loss(net, stems, batch["known"].to(device), batch["two_stem"].to(device), karaoke_weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    opt.step()
    sched.step()
    return float(loss.detach())


# ----- export ---------------------------------------------------------------------------------
def export_separator(checkpoint_path: str | os.PathLike, dest_path: str | os.PathLike, data_manifest_hash: str | None = None, dtype: str = "float32") -> dict:
    """Write a compact inference file from a training checkpoint (``checkpoint.pt`` or ``best.pt``).

    The file (``torch.save``; tensors and plain types only, so ``weights_only`` loading works)
    holds the state dict in ``dtype`` ("float32" or "float16") and metadata: model config,
    stems, sample_rate (Hz), n_fft, hop and latency_samples (samples), noisyneuron version,
    training steps, data manifest hash (``data_manifest_hash`` overrides the checkpoint's), the
    valid SDRs (dB) and the creation date (UTC, ISO 8601). Returns the metadata plus ``bytes``.
    Raises :class:`UserError` when the result would reach 20 MB.
    """
    src, dest = Path(checkpoint_path), Path(dest_path)
    ckpt = _load(src)
    if "model" not in ckpt or "model_config" not in ckpt:
        raise UserError(f"{src}: not a separator training checkpoint")
    model_cfg = SeparatorConfig.from_dict(ckpt["model_config"])
    state = cast_state(ckpt["model"], dtype)
    valid = ckpt.get("valid") or (ckpt.get("state") or {}).get("last_valid")
    history = [h for h in ckpt.get("history", []) if "steps" in h] + ([ckpt["run"]] if ckpt.get("run") else [])
    own_steps = int(ckpt.get("step", 0))
    meta = {
        "format": EXPORT_FORMAT,
        "format_version": 1,
        "config": model_cfg.as_dict(),
        "stems": list(model_cfg.stems),
        "sample_rate": model_cfg.sample_rate,
        "n_fft": model_cfg.n_fft,
        "hop": model_cfg.hop,
        "latency_samples": model_cfg.latency_samples,
        "noisyneuron_version": noisyneuron_version(),
        # every optimiser step behind these weights, over all the runs they continue
        "training_steps": sum(int(h["steps"]) for h in history) if history else own_steps,
        "training_history": history,
        "data_manifest_hash": data_manifest_hash or ckpt.get("data_manifest_hash"),
        "valid": dict(valid) if valid else None,
        "dtype": dtype,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    size = write_export(dest, meta, state, _EXPORT_LIMIT_BYTES, "model", "export with dtype float16 or train a smaller model")
    return {**meta, "bytes": size}


# ----- command line ---------------------------------------------------------------------------
def cli_main(args: argparse.Namespace) -> int:
    """Run ``noisyneuron train separator`` from parsed ``args``; prints a summary. Returns 0."""
    config = TrainConfig(
        data=Path(args.data), out=Path(args.out), steps=args.steps, batch_size=args.batch_size,
        segment_seconds=args.segment_seconds, lr=args.lr, valid_every=args.valid_every,
        checkpoint_every=getattr(args, "checkpoint_every", 250), valid_tracks=getattr(args, "valid_tracks", 8),
        device=args.device, seed=args.seed, workers=getattr(args, "workers", 0), hidden=args.hidden, layers=args.layers, features=args.features,
        karaoke_weight=args.karaoke_weight,
        torch_threads=getattr(args, "threads", None), preload=getattr(args, "preload", None),
        init_from=Path(args.init_from) if getattr(args, "init_from", None) else None,
        valid_data=Path(args.valid_data) if getattr(args, "valid_data", None) else None,
    )
    if getattr(args, "export_only", False):
        if not args.export:
            raise UserError("--export-only needs --export PATH")
    else:
        summary = train(config, progress=not getattr(args, "quiet", False), force=getattr(args, "force", False))
        best = summary["best_vocals_sdr"]
        print(
            f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; best valid vocals SDR "
            + (f"{best:.2f} dB at step {summary['best_step']}" if best is not None else "n/a (no valid tracks with vocals)")
            + f"; run folder {summary['out']}"
        )
    if args.export:
        out = Path(args.out)
        source = out / "best.pt" if (out / "best.pt").is_file() else out / "checkpoint.pt"
        if not source.is_file():
            raise UserError(f"{out}: no checkpoint to export (train first)")
        meta = export_separator(source, args.export, dtype=getattr(args, "export_dtype", "float32"))
        print(f"exported {source.name} (step {meta['training_steps']}) to {args.export} ({meta['bytes'] / 1e6:.1f} MB)")
    return 0
