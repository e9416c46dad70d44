"""Settings of ``noisyneuron train classifier`` (no torch import: the CLI builds its parser from
these on every start; :mod:`noisyneuron.models.classifier_training` runs them)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_OUT", "ClassifierTrainConfig", "add_cli_arguments", "config_from_args"]

#: Default run folder.
DEFAULT_OUT = Path("runs/classifier")


@dataclass
class ClassifierTrainConfig:
    """Settings of a classifier training run.

    Attributes:
        data: a folder of folders (``DIR/<label>/*.wav|flac|ogg|mp3``) or a built
            classification set (``DIR/<split>/<label>/...``: train / valid / test).
        out: the run folder (checkpoints, log, loss plot, feature cache).
        steps: optimiser steps.
        batch_size: windows per step.
        lr: peak learning rate (AdamW), linear warm-up over ``warmup_steps``, then cosine
            decay to 2 % of it.
        warmup_steps: warm-up, steps.
        weight_decay: AdamW's decoupled weight decay.
        valid_every: steps between validations (and one at the end).
        checkpoint_every: steps between checkpoints (and one at the end).
        valid_fraction: for a folder of folders, the fraction of each label's files held out
            for validation (by a hash of the file name: stable as files are added).
        learn_silence: train "silence" as a network class; by default a ``silence`` folder is
            left to the level gate (its clips still count in validation).
        silence_dbfs: the level gate's threshold, RMS dBFS, stored in the export.
        mixup_p: probability that a window is mixed with another (mixup; soft labels).
        splice_p: probability that a window starts with another clip's audio (a change of
            source inside the window: teaches the network to follow the newest audio).
        specaugment_p: probability of frequency and time masks.
        eq_p: probability of a random EQ / microphone colouring.
        noise_p: probability of an added noise floor or background noise.
        gain_db: random gain range, dB.
        channels, head_hidden, n_mels, context_frames: model size (see ``ClassifierConfig``).
        device: "cpu", or "cuda" / "cuda:N" (one-line error when there is none).
        seed: model initialisation and the data order.
        torch_threads: CPU threads for torch (None: all cores).
    """

    data: Path
    out: Path = DEFAULT_OUT
    steps: int = 8000
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 1e-3
    valid_every: int = 500
    checkpoint_every: int = 250
    valid_fraction: float = 0.15
    learn_silence: bool = False
    silence_dbfs: float = -58.0
    mixup_p: float = 0.3
    splice_p: float = 0.3
    specaugment_p: float = 0.5
    eq_p: float = 0.6
    noise_p: float = 0.5
    gain_db: tuple[float, float] = (-30.0, 10.0)
    channels: tuple[int, ...] = field(default_factory=lambda: (12, 24, 48, 96))
    head_hidden: int = 64
    n_mels: int = 64
    context_frames: int = 50
    device: str = "cpu"
    seed: int = 0
    torch_threads: int | None = None

    def as_dict(self) -> dict:
        """Plain types only (paths as strings, tuples as lists)."""
        d = asdict(self)
        d["data"], d["out"] = str(self.data), str(self.out)
        d["gain_db"], d["channels"] = list(self.gain_db), list(self.channels)
        return d


#: Fields that shape the training trajectory: a resumed run must match them.
TRAJECTORY_FIELDS = (
    "steps", "batch_size", "lr", "warmup_steps", "weight_decay", "valid_fraction", "learn_silence", "mixup_p",
    "splice_p", "specaugment_p", "eq_p", "noise_p", "gain_db", "channels", "head_hidden", "n_mels", "context_frames", "seed",
)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``noisyneuron train classifier``."""
    d = ClassifierTrainConfig(data=Path("."))
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="a folder of folders (DIR/<label>/*.wav|flac|ogg|mp3, one subfolder per label) or a built classification set")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"run folder; an existing checkpoint there is continued (default: {DEFAULT_OUT})")
    parser.add_argument("--steps", type=int, default=d.steps, metavar="N", help=f"optimiser steps (default: {d.steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N", help=f"1-second windows per step (default: {d.batch_size})")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default: {d.lr})")
    parser.add_argument("--valid-every", type=int, default=d.valid_every, metavar="N", help=f"steps between validations (default: {d.valid_every})")
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="N", help=f"steps between checkpoints (default: {d.checkpoint_every})")
    parser.add_argument("--valid-fraction", type=float, default=d.valid_fraction, metavar="F",
                        help=f"folder of folders: fraction of each label's files held out for validation (default: {d.valid_fraction})")
    parser.add_argument("--learn-silence", action="store_true", help="train 'silence' as a network class (default: a silence folder is left to the level gate)")
    parser.add_argument("--silence-dbfs", type=float, default=d.silence_dbfs, metavar="DB", help=f"level gate threshold stored with the model, RMS dBFS (default: {d.silence_dbfs})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"model and data seed (default: {d.seed})")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch (default: all cores)")
    parser.add_argument("--force", action="store_true", help="continue a checkpoint even if the data changed")
    parser.add_argument("--export", metavar="PATH", default=None, help="after training, write the inference model (best validation accuracy) here")
    parser.add_argument("--export-only", action="store_true", help="export the run folder's best (or latest) model without training")
    parser.add_argument("--export-dtype", choices=["float32", "float16"], default="float16", help="weights precision of the exported file (default float16)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> ClassifierTrainConfig:
    """The run settings from parsed ``train classifier`` arguments."""
    return ClassifierTrainConfig(
        data=Path(args.data), out=Path(args.out), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        valid_every=args.valid_every, checkpoint_every=args.checkpoint_every, valid_fraction=args.valid_fraction,
        learn_silence=args.learn_silence, silence_dbfs=args.silence_dbfs, device=args.device, seed=args.seed,
        torch_threads=args.threads,
    )
