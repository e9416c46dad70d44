"""Training the streaming classifier (:class:`~noisyneuron.models.classifier.ClassifierNet`).

Data (:func:`discover`): a folder of folders, ``DIR/<label>/*.wav|flac|ogg|mp3`` (one subfolder
per label; each label's files are split into train and valid by a hash of the file name), or a
built classification set, ``DIR/<split>/<label>/...`` with train / valid splits. Any label
names: the network learns one class per folder, except ``silence``, which by default is left to
the level gate (``learn_silence`` makes it a class). Files are decoded once, mixed to mono,
resampled to 16 kHz (soxr) and turned into log-mel frames by the product's own front end
(:func:`~noisyneuron.models.classifier.log_mel_frames`); the frames are cached in the run folder.

Examples are 1-second windows (``context_frames``) of a random file of a random label (labels
equally often, files in proportion to their length), drawn from ``(seed, step)`` alone, so a
resumed run draws exactly the batches the uninterrupted run would have. Augmentation, on the
log-mel frames (dB), in this order:

- **splice** (``splice_p``): the window's first part comes from another window (any label, or
  digital silence as at a stream's start); the last 0.4-1.0 s keep the label: the network
  learns to follow the newest audio, which is what makes a change of source show quickly;
- **gain**: a random gain (``gain_db``), floored at the front end's floor;
- **random EQ / microphone colouring** (``eq_p``): a smooth random curve over the mel bands
  (+-6 dB), a high-pass (corner 60-400 Hz, 12 dB/octave), a low-pass (corner 3-7.5 kHz) and a
  presence peak (2-5 kHz, 0-8 dB), as a laptop or phone microphone colours sound;
- **noise floors** (``noise_p``): white, pink or brown noise, or a window of the train split's
  noise label (for the other labels), power-added 6-40 dB below the window's level;
- **SpecAugment** (``specaugment_p``): 1-2 frequency masks (up to 8 bands) and 1-2 time masks
  (up to 6 frames), filled with the window's mean;
- **mixup** (``mixup_p``): a convex mix of two windows' dB frames with the same mix of labels.

Loss: cross-entropy against the (soft) labels, label smoothing 0.05. AdamW, warm-up then cosine
decay. Validation (every ``valid_every`` steps and at the end) runs the full streaming decision
path (gate, network, smoothing, hysteresis; :func:`~noisyneuron.models.classifier.decide_frames`)
over each valid file and labels it by the majority of its decisions after the first 0.5 s, as
``noisyneuron eval classifier`` does; the best validation accuracy is kept in ``best.pt``.

A run lives in one folder: ``checkpoint.pt`` (everything to continue), ``best.pt``,
``log.jsonl`` (a JSON line per validation), ``loss.png`` and ``features-<hash>.npz``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from noisyneuron.audio.atomic import atomic_path
from noisyneuron.audio.resampling import resample
from noisyneuron.errors import UserError
from noisyneuron.models.classifier import (
    DEFAULT_STREAM,
    SILENCE,
    ClassifierConfig,
    ClassifierNet,
    decide_frames,
    export_classifier,
    log_mel_frames,
)
from noisyneuron.models.classifier_options import TRAJECTORY_FIELDS, ClassifierTrainConfig, config_from_args
from noisyneuron.models.run_folder import (
    Interrupt,
    append_log,
    check_trajectory,
    choose_device,
    load_checkpoint,
    lr_factor,
    plot_run,
    read_log,
    save_atomic,
    torch_threads,
    truncate_log,
)

__all__ = [
    "TRAIN_RATE",
    "AUDIO_EXTENSIONS",
    "LabelledFile",
    "discover",
    "load_audio",
    "FeatureSet",
    "Augmenter",
    "validate",
    "train",
    "export_run",
    "cli_main",
]

#: Rate the training features are computed at, Hz.
TRAIN_RATE = 16000
#: File types read as examples.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
CHECKPOINT_FORMAT = "noisyneuron-classifier-checkpoint"
#: Decisions this early in a file are ignored for its file-level label, seconds.
CLIP_SKIP_SECONDS = 0.5


# ----- data -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledFile:
    """One example file: its path, label and split ("train" or "valid" or "test")."""

    path: Path
    label: str
    split: str


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith(".") and ".partial" not in p.name)


def _hash_fraction(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 2.0**32


def discover(data: str | os.PathLike, valid_fraction: float = 0.15) -> tuple[list[LabelledFile], str, str]:
    """The labelled files under ``data``: ``(files, data_hash, layout)``.

    ``layout`` is "built" (``data/<split>/<label>/``) or "folders" (``data/<label>/``; each
    label's files split into train / valid by a hash of their name, at least one of each when a
    label has two or more files). ``data_hash``: the sha256 of ``manifest.json`` for a built set,
    else of the sorted ``relative path:size`` lines. One-line :class:`UserError` when the folder
    is missing or has fewer than two labels with files.
    """
    root = Path(data)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder (give a folder with one subfolder of audio files per label)")
    files: list[LabelledFile] = []
    train_dir = root / "train"
    built = train_dir.is_dir() and any(p.is_dir() and _audio_files(p) for p in train_dir.iterdir())
    if built:
        layout = "built"
        for split in ("train", "valid", "test"):
            base = root / split
            if base.is_dir():
                for label_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    files += [LabelledFile(f, label_dir.name, split) for f in _audio_files(label_dir)]
        if not any(f.split == "valid" for f in files):  # no valid split: hold some train files out
            files = [LabelledFile(f.path, f.label, "valid" if f.split == "train" and _hash_fraction(f.path.name) < valid_fraction else f.split) for f in files]
    else:
        layout = "folders"
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found = _audio_files(label_dir)
            if not found:
                continue
            scored = sorted(found, key=lambda p: _hash_fraction(p.name))
            valid = {p for p in found if _hash_fraction(p.name) < valid_fraction}
            if len(found) >= 2 and not valid:
                valid = {scored[0]}
            if len(valid) == len(found):
                valid.discard(scored[-1])
            files += [LabelledFile(p, label_dir.name, "valid" if p in valid else "train") for p in found]
    labels = sorted({f.label for f in files if f.split == "train"})
    if len(labels) < 2:
        raise UserError(f"{root}: found {len(labels)} label folder(s) with audio files; need at least two (DIR/<label>/*.wav|flac|ogg|mp3)")
    manifest = root / "manifest.json"
    if built and manifest.is_file():
        data_hash = hashlib.sha256(manifest.read_bytes()).hexdigest()
    else:
        lines = sorted(f"{f.path.relative_to(root)}:{f.path.stat().st_size}" for f in files)
        data_hash = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return files, data_hash, layout


def load_audio(path: str | os.PathLike, rate: int = TRAIN_RATE) -> np.ndarray:
    """A whole file as float32 mono at ``rate`` Hz (channels averaged, soxr HQ resampling).

    One-line :class:`UserError` for a missing, unreadable or empty file."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile's many error types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: cannot read audio ({reason})") from None
    if len(audio) == 0:
        raise UserError(f"{path}: the file has no audio")
    mono = audio.mean(axis=1)
    mono = resample(mono, sr, rate)
    if not np.all(np.isfinite(mono)):
        raise UserError(f"{path}: the file contains NaN or infinite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


class FeatureSet:
    """Log-mel frames (float16, dB) and hop mean squares of every file, concatenated.

    ``mel[offsets[i] : offsets[i + 1]]`` are file ``i``'s frames; cached as an ``.npz``.
    """

    def __init__(self, files: list[LabelledFile], config: ClassifierConfig, cache: Path | None = None, progress: bool = False):
        self.files = list(files)
        if cache is not None and cache.is_file():
            z = np.load(cache)
            if len(z["offsets"]) == len(self.files) + 1:
                self.mel, self.ms, self.offsets = z["mel"], z["ms"], z["offsets"]
                return
        mels, mss = [], []
        iterator = self.files
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(self.files, desc="features", unit="file", file=sys.stderr, dynamic_ncols=True)
        for f in iterator:
            mel, ms = log_mel_frames(load_audio(f.path), TRAIN_RATE, config)
            mels.append(mel.astype(np.float16))
            mss.append(ms.astype(np.float32))
        self.offsets = np.concatenate([[0], np.cumsum([len(m) for m in mels])]).astype(np.int64)
        self.mel = np.concatenate(mels) if mels else np.zeros((0, config.n_mels), np.float16)
        self.ms = np.concatenate(mss) if mss else np.zeros(0, np.float32)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache, keep_suffix=True, unique=False) as tmp:  # np.savez adds .npz to other names
                np.savez(tmp, mel=self.mel, ms=self.ms, offsets=self.offsets)

    def frames(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """File ``i``: (mel float32 (frames, n_mels), ms float64 (frames,))."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.mel[a:b].astype(np.float32), self.ms[a:b].astype(np.float64)


# ----- augmentation ---------------------------------------------------------------------------
def _mel_centres(config: ClassifierConfig) -> np.ndarray:
    from noisyneuron.dsp.features import hz_to_mel, mel_to_hz

    m = np.linspace(hz_to_mel(config.fmin), hz_to_mel(config.fmax), config.n_mels + 2)
    return np.asarray(mel_to_hz(m[1:-1]), dtype=np.float64)


def _noise_templates(config: ClassifierConfig, seconds: float = 8.0) -> np.ndarray:
    """Log-mel frames of white, pink and brown noise at 0 dBFS RMS: (3, frames, n_mels)."""
    from noisyneuron.datasets import noise as nz

    rng = np.random.default_rng(1234)
    out = []
    for exponent in (0.0, 1.0, 2.0):
        x = nz.coloured_noise(rng, seconds, TRAIN_RATE, exponent, 0.0).astype(np.float32)
        out.append(log_mel_frames(x, TRAIN_RATE, config)[0][10:])
    n = min(len(o) for o in out)
    return np.stack([o[:n] for o in out])


def _level_db(x: np.ndarray) -> np.ndarray:
    """Per-window level, dB of the mean mel power: (B, T, M) -> (B,)."""
    return 10.0 * np.log10(np.maximum(np.mean(10.0 ** (x / 10.0), axis=(1, 2)), 1e-30))


def _power_add(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (10.0 * np.log10(10.0 ** (x / 10.0) + 10.0 ** (n / 10.0))).astype(np.float32)


class Augmenter:
    """Draws the training batch of a step (see the module docstring); a pure function of
    ``(seed, step)`` and the data."""

    def __init__(self, features: FeatureSet, train_index: list[int], label_of: dict[int, int], n_labels: int,
                 config: ClassifierConfig, settings: ClassifierTrainConfig, noise_label: int | None, prefix_index: list[int]):
        self.f = features
        self.cfg = config
        self.s = settings
        self.n_labels = n_labels
        self.by_label: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        for k in range(n_labels):
            idx = np.array([i for i in train_index if label_of[i] == k], dtype=np.int64)
            lengths = (features.offsets[idx + 1] - features.offsets[idx]).astype(np.float64)
            self.by_label.append(idx)
            self.weights.append(lengths / lengths.sum())
        self.noise_label = -1 if noise_label is None else int(noise_label)
        self.noise_files = self.by_label[noise_label] if noise_label is not None else np.zeros(0, np.int64)
        self.prefix_files = np.array(prefix_index, dtype=np.int64)
        self.templates = _noise_templates(config)
        self.centres = _mel_centres(config)

    def _window(self, rng: np.random.Generator, i: int) -> np.ndarray:
        t = self.cfg.context_frames
        a, b = int(self.f.offsets[i]), int(self.f.offsets[i + 1])
        n = b - a
        if n >= t:
            s = a + int(rng.integers(0, n - t + 1))
            return self.f.mel[s : s + t].astype(np.float32)
        out = np.full((t, self.cfg.n_mels), self.cfg.floor_db, dtype=np.float32)
        if n:
            out[t - n :] = self.f.mel[a:b]
        return out

    def _eq(self, rng: np.random.Generator) -> np.ndarray:
        f = self.centres
        logf = np.log2(f / 1000.0)
        curve = np.zeros_like(f)
        for k in range(1, 4):  # smooth random tilt and ripple
            curve += rng.uniform(-6, 6) / k * np.cos(np.pi * k * (logf - logf[0]) / (logf[-1] - logf[0]) + rng.uniform(0, np.pi))
        if rng.random() < 0.7:  # microphone: high-pass, low-pass, presence peak
            hp = rng.uniform(60, 400)
            curve += -10 * np.log10(1 + (hp / f) ** 4)
            lp = rng.uniform(3000, 7500)
            curve += -10 * np.log10(1 + (f / lp) ** rng.choice([2, 4]))
            fc, gain = rng.uniform(2000, 5000), rng.uniform(0, 8)
            curve += gain * np.exp(-0.5 * (np.log2(f / fc) / 0.4) ** 2)
        return curve.astype(np.float32)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step ``step``'s inputs (B, T, M) dB and soft targets (B, labels)."""
        s, cfg = self.s, self.cfg
        rng = np.random.default_rng([s.seed, 7, int(step)])
        bsz, t, floor = s.batch_size, cfg.context_frames, cfg.floor_db
        x = np.zeros((bsz, t, cfg.n_mels), dtype=np.float32)
        y = np.zeros((bsz, self.n_labels), dtype=np.float32)
        for b in range(bsz):
            k = int(rng.integers(self.n_labels))
            i = int(self.by_label[k][rng.choice(len(self.by_label[k]), p=self.weights[k])])
            w = self._window(rng, i)
            if rng.random() < s.splice_p:  # the window starts with other audio
                keep = int(rng.integers(int(0.4 * t), t))
                if rng.random() < 0.2 or not len(self.prefix_files):
                    w[: t - keep] = floor
                else:
                    j = int(self.prefix_files[rng.integers(len(self.prefix_files))])
                    w[: t - keep] = self._window(rng, j)[: t - keep] + rng.uniform(-10, 10)
            w = np.maximum(w + rng.uniform(*s.gain_db), floor)
            if rng.random() < s.eq_p:
                w = np.maximum(w + self._eq(rng)[None, :], floor)
            if rng.random() < s.noise_p:
                level = float(_level_db(w[None])[0])
                snr = rng.uniform(6.0, 40.0)
                if len(self.noise_files) and k != self.noise_label and rng.random() < 0.5:
                    n = self._window(rng, int(self.noise_files[rng.integers(len(self.noise_files))]))
                else:
                    tpl = self.templates[int(rng.integers(3))]
                    s0 = int(rng.integers(0, len(tpl) - t + 1))
                    n = tpl[s0 : s0 + t].copy()
                nl = float(_level_db(n[None])[0])
                if nl > floor + 1:
                    w = _power_add(w, n + (level - snr - nl))
            if rng.random() < s.specaugment_p:
                fill = float(w.mean())
                for _ in range(int(rng.integers(1, 3))):
                    width = int(rng.integers(1, 9))
                    f0 = int(rng.integers(0, cfg.n_mels - width + 1))
                    w[:, f0 : f0 + width] = fill
                for _ in range(int(rng.integers(1, 3))):
                    width = int(rng.integers(1, 7))
                    t0 = int(rng.integers(0, t - width + 1))
                    w[t0 : t0 + width] = fill
            x[b] = w
            y[b, k] = 1.0
        mix = rng.random(bsz) < s.mixup_p
        if mix.any():
            perm = rng.permutation(bsz)
            lam = rng.beta(0.4, 0.4, bsz).astype(np.float32)
            lam = np.maximum(lam, 1.0 - lam)  # the window keeps most of its own label
            lam[~mix] = 1.0
            x = lam[:, None, None] * x + (1.0 - lam[:, None, None]) * x[perm]
            y = lam[:, None] * y + (1.0 - lam[:, None]) * y[perm]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)


# ----- validation -----------------------------------------------------------------------------
def _clip_label(index: np.ndarray, decision_seconds: float, n_labels: int) -> int:
    times = (np.arange(len(index)) + 1) * decision_seconds
    late = index[times > CLIP_SKIP_SECONDS] if np.any(times > CLIP_SKIP_SECONDS) else index
    if len(late) == 0:
        return n_labels - 1
    counts = np.bincount(late, minlength=n_labels)
    return int(np.argmax(counts))


def validate(net: ClassifierNet, features: FeatureSet, index: list[int], labels: tuple[str, ...], silence_dbfs: float | None) -> dict:
    """File-level accuracy of the full decision path on files ``index`` (see the module docstring).

    ``labels``: the decision labels (the network's, plus "silence" from the gate). Returns
    ``{"accuracy", "per_class": {label: {"recall", "count"}}, "window_accuracy", "files"}``.
    """
    cfg = net.config
    decision_frames = int(round(0.1 / cfg.hop_seconds))
    correct = 0
    per: dict[str, list[int]] = {lab: [0, 0] for lab in labels}
    win_ok = win_n = 0
    for i in index:
        label = features.files[i].label
        if label not in labels:
            continue
        mel, ms = features.frames(i)
        out = decide_frames(net, mel, ms, labels, decision_frames=decision_frames, context_frames=cfg.context_frames,
                            gate_frames=int(round(DEFAULT_STREAM["gate_seconds"] / cfg.hop_seconds)), silence_dbfs=silence_dbfs)
        truth = labels.index(label)
        decided = _clip_label(out["index"], decision_frames * cfg.hop_seconds, len(labels))
        per[label][1] += 1
        if decided == truth:
            correct += 1
            per[label][0] += 1
        raw_best = np.argmax(out["raw"], axis=1)
        win_ok += int(np.sum(raw_best == truth))
        win_n += len(raw_best)
    n = sum(v[1] for v in per.values())
    return {
        "accuracy": correct / n if n else None,
        "window_accuracy": win_ok / win_n if win_n else None,
        "files": n,
        "per_class": {lab: {"recall": (v[0] / v[1]) if v[1] else None, "count": v[1]} for lab, v in per.items()},
    }


# ----- training loop --------------------------------------------------------------------------
# The validation series drawn under the loss in loss.png: (log.jsonl key, legend label).
_PLOT_SERIES = (("valid_accuracy", "valid file accuracy"), ("valid_window_accuracy", "valid window accuracy"))


class _Plan:
    """What a run trains on: files, labels, features, augmenter."""

    def __init__(self, cfg: ClassifierTrainConfig, out: Path, progress: bool):
        files, self.data_hash, self.layout = discover(cfg.data, cfg.valid_fraction)
        all_labels = sorted({f.label for f in files if f.split == "train"})
        model_labels = [lab for lab in all_labels if cfg.learn_silence or lab != SILENCE]
        if len(model_labels) < 2:
            raise UserError(f"{cfg.data}: need at least two labels besides silence to train a classifier")
        order = {"music": 0, "speech": 1, "noise": 2}  # the shipped order first, then alphabetical
        model_labels.sort(key=lambda lab: (order.get(lab, 9), lab))
        self.model_labels = tuple(model_labels)
        gate_label = () if SILENCE in self.model_labels else (SILENCE,)
        self.decision_labels = self.model_labels + gate_label
        self.model_config = ClassifierConfig(
            labels=self.model_labels, n_mels=cfg.n_mels, context_frames=cfg.context_frames,
            channels=tuple(cfg.channels), head_hidden=cfg.head_hidden,
        )
        self.files = [f for f in files if f.split in ("train", "valid") and f.label in all_labels]
        cache = out / f"features-{self.data_hash[:12]}.npz"
        self.features = FeatureSet(self.files, self.model_config, cache, progress)
        label_of = {i: self.model_labels.index(f.label) for i, f in enumerate(self.files) if f.label in self.model_labels}
        self.train_index = [i for i, f in enumerate(self.files) if f.split == "train" and i in label_of]
        self.valid_index = [i for i, f in enumerate(self.files) if f.split == "valid"]
        prefix = [i for i, f in enumerate(self.files) if f.split == "train"]
        noise = self.model_labels.index("noise") if "noise" in self.model_labels else None
        self.augmenter = Augmenter(self.features, self.train_index, label_of, len(self.model_labels), self.model_config, cfg, noise, prefix)


def train(config: ClassifierTrainConfig, progress: bool = True, *, force: bool = False, stop_at: int | None = None) -> dict:
    """Train (or continue) a classifier; returns a summary.

    Continues from ``out/checkpoint.pt`` when it exists: the settings that shape training must be
    the same (one-line :class:`UserError` otherwise), and so must the data unless ``force``.
    ``stop_at``: stop with a checkpoint once this step is done. Ctrl-C finishes the step, writes
    a checkpoint and raises ``KeyboardInterrupt``.

    Returns ``{"steps", "completed", "best_accuracy", "best_step", "last_valid", "labels",
    "seconds", "out"}``.
    """
    cfg = config
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise UserError("--steps and --batch-size must be at least 1")
    device = choose_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.jsonl"
    with torch_threads(device, cfg.torch_threads):
        plan = _Plan(cfg, out, progress)
        torch.manual_seed(cfg.seed)
        net = ClassifierNet(plan.model_config).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, cfg.steps, cfg.warmup_steps))
        state = {"step": 0, "best_accuracy": None, "best_step": None, "elapsed": 0.0, "loss_sum": 0.0, "loss_count": 0, "last_valid": None}
        if ckpt_path.is_file():
            ckpt = load_checkpoint(ckpt_path, "classifier training checkpoint", device)
            if ckpt.get("format") != CHECKPOINT_FORMAT:
                raise UserError(f"{ckpt_path}: not a classifier training checkpoint; choose another --out")
            check_trajectory(ckpt_path, ckpt["config"], cfg.as_dict(), TRAJECTORY_FIELDS)
            if ckpt["data_hash"] != plan.data_hash and not force:
                raise UserError(f"{ckpt_path} was trained on different data (hash {ckpt['data_hash'][:12]} != {plan.data_hash[:12]}); use the same data, --force, or another --out")
            net.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            torch.set_rng_state(ckpt["torch_rng"])
            state.update(ckpt["state"])
            truncate_log(log_path, state["step"])
        elif log_path.exists():
            log_path.unlink()
            best_path.unlink(missing_ok=True)

        started, base = time.monotonic(), state["elapsed"]

        def elapsed() -> float:
            return base + time.monotonic() - started

        def payload(step: int) -> dict:
            return {"format": CHECKPOINT_FORMAT, "step": step, "model": net.state_dict(), "model_config": net.config.as_dict(),
                    "config": cfg.as_dict(), "data_hash": plan.data_hash, "decision_labels": list(plan.decision_labels)}

        def checkpoint(step: int) -> None:
            state["elapsed"] = elapsed()
            save_atomic({**payload(step), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                          "torch_rng": torch.get_rng_state(), "state": dict(state)}, ckpt_path)

        def run_validation(step: int) -> None:
            cpu_net = net if device.type == "cpu" else ClassifierNet(plan.model_config).eval()
            if cpu_net is not net:
                cpu_net.load_state_dict({k: v.cpu() for k, v in net.state_dict().items()})
            result = validate(cpu_net, plan.features, plan.valid_index, plan.decision_labels, cfg.silence_dbfs)
            row = {"step": step, "loss": state["loss_sum"] / state["loss_count"] if state["loss_count"] else None,
                   "lr": opt.param_groups[0]["lr"], "seconds": round(elapsed(), 2),
                   "valid_accuracy": result["accuracy"], "valid_window_accuracy": result["window_accuracy"],
                   "valid_per_class": {k: v["recall"] for k, v in result["per_class"].items()}}
            state["loss_sum"], state["loss_count"] = 0.0, 0
            state["last_valid"] = result
            acc = result["accuracy"]
            if acc is not None and (state["best_accuracy"] is None or acc >= state["best_accuracy"]):
                state["best_accuracy"], state["best_step"] = acc, step
                save_atomic({**payload(step), "valid": result}, best_path)
            append_log(log_path, row)
            plot_run(read_log(log_path), out / "loss.png", _PLOT_SERIES, "accuracy",
                     loss_label="train loss (mean since last validation)", figsize=(7, 6))

        stop = cfg.steps if stop_at is None else max(state["step"], min(int(stop_at), cfg.steps))
        step = state["step"]
        if step < stop:
            from tqdm.auto import tqdm

            bar = tqdm(total=stop, initial=step, desc="train classifier", unit="step", disable=not progress, dynamic_ncols=True, file=sys.stderr)
            net.train()
            with Interrupt() as interrupt:
                try:
                    while step < stop:
                        x, y = plan.augmenter.batch(step)
                        x, y = x.to(device), y.to(device)
                        logits = net(x)
                        target = y * 0.95 + 0.05 / y.shape[1]
                        loss = -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                        opt.step()
                        sched.step()
                        step += 1
                        state["step"] = step
                        value = float(loss.detach())
                        state["loss_sum"] += value
                        state["loss_count"] += 1
                        if step % cfg.valid_every == 0 or step == cfg.steps:
                            run_validation(step)
                            net.train()
                        if step % cfg.checkpoint_every == 0 or step == stop:
                            checkpoint(step)
                        post = {"loss": f"{value:.3f}"}
                        if state["last_valid"] and state["last_valid"]["accuracy"] is not None:
                            post["valid_acc"] = f"{state['last_valid']['accuracy']:.3f}"
                        bar.set_postfix(post, refresh=False)
                        bar.update(1)
                        if interrupt.requested:
                            raise KeyboardInterrupt
                except KeyboardInterrupt:
                    checkpoint(step)
                    bar.write(f"interrupted: checkpoint at step {step} in {ckpt_path}", file=sys.stderr)
                    raise
                finally:
                    bar.close()
        return {"steps": state["step"], "completed": state["step"] >= cfg.steps, "best_accuracy": state["best_accuracy"],
                "best_step": state["best_step"], "last_valid": state["last_valid"], "labels": list(plan.decision_labels),
                "seconds": round(elapsed(), 2), "out": str(out)}


def export_run(run: str | os.PathLike, dest: str | os.PathLike, dtype: str = "float16", silence_dbfs: float | None = None) -> dict:
    """Export a run folder's best model (or its latest checkpoint) as an inference file; returns
    its metadata plus ``bytes`` and ``source``. ``silence_dbfs``: the gate threshold stored
    (default: the run's). One-line :class:`UserError` if there is nothing to export."""
    run = Path(run)
    source = run / "best.pt" if (run / "best.pt").is_file() else run / "checkpoint.pt"
    if not source.is_file():
        raise UserError(f"{run}: no checkpoint to export (train first)")
    ckpt = load_checkpoint(source, "classifier training checkpoint")
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{source}: not a classifier training checkpoint")
    net = ClassifierNet(ClassifierConfig.from_dict(ckpt["model_config"]))
    net.load_state_dict(ckpt["model"])
    valid = ckpt.get("valid") or (ckpt.get("state") or {}).get("last_valid")
    cfg = ckpt["config"]
    meta = export_classifier(
        net, dest, dtype,
        training_steps=int(ckpt["step"]), data_manifest_hash=ckpt["data_hash"], valid=valid,
        training={"data": Path(cfg["data"]).name, "steps": cfg["steps"], "batch_size": cfg["batch_size"], "seed": cfg["seed"]},
        stream={**DEFAULT_STREAM, "silence_dbfs": float(silence_dbfs if silence_dbfs is not None else cfg.get("silence_dbfs", DEFAULT_STREAM["silence_dbfs"]))},
    )
    return {**meta, "source": str(source)}


# ----- command line ---------------------------------------------------------------------------
def cli_main(args) -> int:
    """Run ``noisyneuron train classifier`` from parsed ``args``; prints a summary. Returns 0."""
    config = config_from_args(args)
    if getattr(args, "export_only", False):
        if not args.export:
            raise UserError("--export-only needs --export PATH")
    else:
        summary = train(config, progress=not getattr(args, "quiet", False), force=getattr(args, "force", False))
        best = summary["best_accuracy"]
        print(
            f"trained {summary['steps']} steps in {summary['seconds']:.0f} s on labels {', '.join(summary['labels'])}; best valid accuracy "
            + (f"{best:.3f} at step {summary['best_step']}" if best is not None else "n/a (no valid files)")
            + f"; run folder {summary['out']}"
        )
    if args.export:
        meta = export_run(args.out, args.export, getattr(args, "export_dtype", "float16"), silence_dbfs=args.silence_dbfs)
        print(f"exported {Path(meta['source']).name} (step {meta['training_steps']}) to {args.export} ({meta['bytes'] / 1e3:.0f} kB)")
    return 0
