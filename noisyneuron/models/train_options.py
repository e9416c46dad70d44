"""Settings of ``noisyneuron train separator`` (no torch import: the CLI builds its parser from
these on every start; :mod:`noisyneuron.models.training` runs them)."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from noisyneuron.models.separator import SeparatorConfig

__all__ = ["DEFAULT_OUT", "TrainConfig", "add_cli_arguments"]

#: Default run folder.
DEFAULT_OUT = Path("runs/separator")

#: The separator's input designs (``separator.FEATURE_DESIGNS``'s keys; this module stays free of
#: torch, so the CLI parser builds fast; a test keeps the two equal).
FEATURE_DESIGN_NAMES = ("magnitudes", "mid-side", "mid-side-phase")


@dataclass
class TrainConfig:
    """Settings of a training run.

    Attributes:
        data: a separation data set (``noisyneuron data build separation``).
        out: the run folder (checkpoints, log, plot).
        steps: optimiser steps in all.
        batch_size: examples per step.
        segment_seconds: length of each training example, seconds.
        lr: peak learning rate (AdamW), reached after ``warmup_steps`` of linear warm-up, then a
            cosine decay to 2 % of it at ``steps``.
        warmup_steps: linear warm-up, steps (at most a tenth of ``steps``).
        weight_decay: AdamW's decoupled weight decay (0: plain Adam).
        grad_clip: maximum global gradient norm.
        valid_every: steps between validations (and one at the end).
        valid_tracks: how many valid tracks with vocals to validate on.
        checkpoint_every: steps between checkpoints (and one at the end).
        device: "cpu", or "cuda" (or "cuda:N"): a one-line error when there is no GPU.
        seed: seeds the model's initialisation and the data order.
        workers: data loader processes (0: load in the training process).
        hidden: width of the separator's recurrent layers.
        layers: GRU layers of the separator.
        features: the input design (a key of ``FEATURE_DESIGNS``; None: ``"magnitudes"``, or
            the ``init_from`` weights' own). A design with more planes than the ``init_from``
            weights widens them: the new planes' encoder weights start at zero (the network
            starts as the one it came from) and their normalisation is measured on the data.
        torch_threads: CPU threads for torch (None: every core). On a machine whose cores are
            busy with other work, use fewer: oversubscribed threads make the GRU's many small
            per-frame operations over 10x slower.
        preload: decode the whole train split into RAM once (16-bit, 2 bytes per sample and
            channel); None: only on a GPU.
        remix_p: probability of an example remixed from stems of different four-stem tracks.
        mono_p: probability of a mono example (both channels their mean).
        karaoke_weight: in [0, 1], how much of the loss is karaoke's own (vocals, and mixture
            minus vocals) rather than the four stems' mean (see ``training.separation_loss``).
        init_from: an exported separator (e.g. the shipped weights) to start a new run from
            instead of a random initialisation: its size wins over ``hidden``/``layers``, and its
            training history (steps, data) carries on into this run's export. A new machine has
            no run folder; the shipped weights are always there.
        valid_data: a data set whose ``valid`` split validates (and picks the best checkpoint)
            instead of ``data``'s own: the real-world set (``noisyneuron data build realworld``),
            so checkpoints are chosen on held-out voices, never on the test split.
    """

    data: Path
    out: Path = DEFAULT_OUT
    steps: int = 20000
    batch_size: int = 8
    segment_seconds: float = 6.0
    lr: float = 1e-3
    warmup_steps: int = 500
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    valid_every: int = 500
    valid_tracks: int = 8
    checkpoint_every: int = 250
    device: str = "cpu"
    seed: int = 0
    workers: int = 0
    hidden: int = 256
    layers: int = 2
    features: str | None = None
    torch_threads: int | None = None
    preload: bool | None = None
    remix_p: float = 0.5
    mono_p: float = 0.15
    karaoke_weight: float = 0.0
    init_from: Path | None = None
    valid_data: Path | None = None

    def as_dict(self) -> dict:
        """Plain types only (paths as strings): safe for JSON and ``torch.load(weights_only=True)``."""
        d = asdict(self)
        for key in ("data", "out", "init_from", "valid_data"):
            d[key] = None if d[key] is None else str(d[key])
        return d

    def model_config(self) -> SeparatorConfig:
        from noisyneuron.models.separator import SeparatorConfig

        return SeparatorConfig(hidden=self.hidden, layers=self.layers, features=self.features or "magnitudes")



def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``noisyneuron train separator``."""
    d = TrainConfig(data=Path("."))
    parser.add_argument("--data", required=True, metavar="DIR", help="a separation data set (noisyneuron data build separation)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"run folder; an existing checkpoint there is continued (default: {DEFAULT_OUT})")
    parser.add_argument("--steps", type=int, default=d.steps, metavar="N", help=f"optimiser steps (default: {d.steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N", help=f"examples per step (default: {d.batch_size})")
    parser.add_argument("--segment-seconds", type=float, default=d.segment_seconds, metavar="S", help=f"example length, seconds (default: {d.segment_seconds})")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default: {d.lr})")
    parser.add_argument("--valid-every", type=int, default=d.valid_every, metavar="N", help=f"steps between validations (default: {d.valid_every})")
    parser.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="N", help=f"steps between checkpoints (default: {d.checkpoint_every})")
    parser.add_argument("--valid-tracks", type=int, default=d.valid_tracks, metavar="N", help=f"valid tracks with vocals to validate on (default: {d.valid_tracks})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--hidden", type=int, default=d.hidden, metavar="N", help=f"recurrent width (default: {d.hidden})")
    parser.add_argument("--layers", type=int, default=d.layers, metavar="N", help=f"GRU layers (default: {d.layers})")
    parser.add_argument(
        "--features", choices=list(FEATURE_DESIGN_NAMES), default=None,
        help="input design: magnitudes (left, right), mid-side (adds mid and side magnitudes), mid-side-phase "
             "(adds inter-channel phase coherence) (default: magnitudes, or the --init-from weights' own; a wider "
             "design than theirs widens them, starting from the same function)",
    )
    parser.add_argument(
        "--karaoke-weight", type=float, default=d.karaoke_weight, metavar="W",
        help="share of the loss on vocals and mixture-minus-vocals instead of the four stems' mean, 0..1 (default: 0)",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"model and data seed (default: {d.seed})")
    parser.add_argument("--workers", type=int, default=d.workers, metavar="N", help="data loader processes (default: 0)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for torch (default: all cores)")
    parser.add_argument("--preload", action=argparse.BooleanOptionalAction, default=None, help="decode the train split into RAM (default: only with cuda)")
    parser.add_argument(
        "--init-from", metavar="WEIGHTS", default=None,
        help="start a new run from exported weights (e.g. noisyneuron/models/weights/separator.pt: fine-tune the shipped "
             "model on a machine with no run folder); their steps and data history carry on into the export",
    )
    parser.add_argument(
        "--valid-data", metavar="DIR", default=None,
        help="validate on this data set's valid split instead of --data's (the real-world set: noisyneuron data build realworld)",
    )
    parser.add_argument("--force", action="store_true", help="continue a checkpoint even if the data set changed")
    parser.add_argument("--export", metavar="PATH", default=None, help="after training, write the inference model (best valid vocals SDR) here")
    parser.add_argument("--export-only", action="store_true", help="export the run folder's best (or latest) model without training")
    parser.add_argument("--export-dtype", choices=["float32", "float16"], default="float32", help="weights precision of the exported file (default float32; float16 halves it)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


