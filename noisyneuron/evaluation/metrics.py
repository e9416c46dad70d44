"""Separation quality metrics: SI-SDR, BSS-eval v4 SDR (as SiSEC 2018 / museval report it), SNR.

All values are in dB. Audio is ``(frames, channels)`` float; every computation runs in float64.

**SI-SDR** (Le Roux, Wisdom, Erdogan, Hershey, "SDR - half-baked or well done?", ICASSP 2019)::

    alpha = <estimate, reference> / ||reference||^2
    SI-SDR = 10 log10(||alpha reference||^2 / ||alpha reference - estimate||^2)

over the whole signal with all channels concatenated into one vector. As in the paper's
definition no mean is removed (``zero_mean=True`` removes each channel's mean first, as some
toolkits do; audio rarely has enough DC for it to matter).

**BSS-eval v4 SDR** (Liutkus, Stoeter, Ito, "The 2018 Signal Separation Evaluation Campaign",
LVA/ICA 2018; the ``museval`` package): ``museval.evaluate`` with 1 s windows and 1 s hop, the
"images" version (``bsseval_sources_version=False``) with time-invariant distortion filters
(``mode="v4"``), then, per track and target, the median over windows ignoring NaN. In that
version a window's SDR is ``||s_true||^2 / ||e_spat + e_interf + e_artif||^2`` and the three
error terms add up to ``estimate - reference`` exactly (the distortion-filter projections cancel),
so the SDR of a window is its plain signal-to-error ratio
``10 log10(sum reference^2 / sum (estimate - reference)^2)``, independent of the 512-tap filters
and of the other sources (they only matter for SIR/ISR/SAR, which we do not report).
:func:`sdr_museval` therefore offers two backends giving the same numbers:

- ``"fast"`` (default): that closed form with museval's framing and NaN rules, about 1 ms per
  target per minute of audio. ``tests/test_eval_metrics.py`` checks it against museval to 1e-6 dB.
- ``"museval"``: museval's own ``bss_eval`` (about 2.7 s per target per 20 s stereo track on one
  core: 512-tap least-squares filters per channel pair). Each target is evaluated on its own and
  the joint-evaluation NaN rule below is applied afterwards, which gives the joint call's SDR at
  a cost linear (not quadratic) in the number of targets.

museval's rules, kept by both backends (targets in one call are evaluated *jointly*, as SiSEC
does: vocals/accompaniment as one pair, vocals/drums/bass/other as one group):

- windows of ``window`` samples every ``hop``; ``floor((n - window + hop) / hop)`` windows, so a
  trailing partial window is dropped (one window when the signal is shorter than ``window``);
- a window where *any* target's reference or estimate is silent (its samples sum to exactly 0
  across channels at every instant) is NaN for every target;
- a window whose error is exactly zero (estimate == reference) is ``+inf`` (museval's
  ``_safe_db``; museval's own projections leave rounding noise there instead, ~+300 dB);
- estimates are zero padded or truncated to the references' length.

museval itself raises ``ValueError`` when a whole reference or estimate is silent; here that
target set gives all-NaN windows instead (median NaN), so a silent vocal stem (instrumental
track) or a system that outputs silence never crashes a report.

Importing ``museval`` runs ``import musdb`` -> ``stempeg``, which raises without an ``ffmpeg``
binary; :func:`museval_bss_eval` loads museval's ``metrics`` module (numpy/scipy only) directly
from the installed package instead, so the museval backend works without ffmpeg.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable, Mapping
from types import ModuleType

import numpy as np

from noisyneuron.audio.resampling import fit_length

__all__ = [
    "SISEC_RATE",
    "si_sdr",
    "snr_db",
    "sdr_frames",
    "sdr_museval",
    "museval_bss_eval",
    "aggregate",
    "nanmedian",
]

#: Sample rate at which SiSEC 2018 windows are 44100 samples (1 s), Hz.
SISEC_RATE = 44100

BACKENDS = ("fast", "museval")


def _as_2d(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be (frames,) or (frames, channels), got shape {np.shape(x)}")
    return arr


def si_sdr(reference: np.ndarray, estimate: np.ndarray, zero_mean: bool = False) -> float:
    """Scale-invariant SDR of ``estimate`` against ``reference``, in dB.

    Both are ``(frames,)`` or ``(frames, channels)`` of the same shape; all channels are
    concatenated into one vector. ``alpha`` rescales the reference optimally, so any gain applied
    to the estimate (including a sign flip) leaves the value unchanged.

    Args:
        reference: the true source.
        estimate: the estimate, same shape.
        zero_mean: remove each channel's mean from both first (not in the paper's definition).

    Returns:
        SI-SDR in dB. ``nan`` when the reference is silent (all zeros: undefined); ``-inf`` when
        the reference is not silent but the estimate is (nothing of the target is there, or only
        something orthogonal to it); ``+inf`` when the estimate is an exact multiple of the
        reference.
    """
    ref = _as_2d(reference, "reference")
    est = _as_2d(estimate, "estimate")
    if ref.shape != est.shape:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} must have the same shape")
    if zero_mean:
        ref = ref - ref.mean(axis=0, keepdims=True)
        est = est - est.mean(axis=0, keepdims=True)
    ref_energy = float(np.sum(ref * ref))
    if ref_energy == 0.0:
        return math.nan
    alpha = float(np.sum(est * ref)) / ref_energy
    target = alpha * ref
    residual = est - target
    target_energy = float(np.sum(target * target))
    residual_energy = float(np.sum(residual * residual))
    if target_energy == 0.0:
        return -math.inf
    if residual_energy == 0.0:
        return math.inf
    return 10.0 * math.log10(target_energy / residual_energy)


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """``10 log10(sum signal^2 / sum noise^2)`` in dB, over all samples and channels.

    ``nan`` when both are silent, ``+inf`` when only the noise is, ``-inf`` when only the signal is.
    """
    s = float(np.sum(np.square(np.asarray(signal, dtype=np.float64))))
    n = float(np.sum(np.square(np.asarray(noise, dtype=np.float64))))
    if n == 0.0:
        return math.nan if s == 0.0 else math.inf
    if s == 0.0:
        return -math.inf
    return 10.0 * math.log10(s / n)


# ----- BSS-eval v4 SDR ------------------------------------------------------------------------
def _n_windows(length: int, window: int, hop: int) -> int:
    """museval's ``Framing.nwin``."""
    if window < length:
        return int(np.floor((length - window + hop) / hop))
    return 1


def _window_slices(length: int, window: int, hop: int) -> list[slice]:
    return [slice(t * hop, min(t * hop + window, length)) for t in range(_n_windows(length, window, hop))]


def _stack(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(targets, refs, ests)``: float64 ``(nsrc, frames, channels)``, estimates padded/truncated."""
    targets = list(references)
    missing = [t for t in targets if t not in estimates]
    if missing:
        raise KeyError(f"no estimate for target(s) {', '.join(missing)}")
    if not targets:
        raise ValueError("no targets to evaluate")
    refs = np.stack([_as_2d(references[t], f"reference {t!r}") for t in targets])
    ests = []
    n = refs.shape[1]
    for t in targets:
        e = _as_2d(estimates[t], f"estimate {t!r}")
        if e.shape[1] != refs.shape[2]:
            raise ValueError(f"estimate {t!r} has {e.shape[1]} channels, reference {refs.shape[2]}")
        ests.append(fit_length(e, n))
    return targets, refs, np.stack(ests)


def _channel_sum(sources: np.ndarray) -> np.ndarray:
    """``sources.sum(axis=2)`` (nsrc, frames), without numpy's slow reduction over a tiny last axis."""
    total = sources[:, :, 0].copy()
    for c in range(1, sources.shape[2]):
        total += sources[:, :, c]
    return total


def _silent_windows(summed: np.ndarray, slices: list[slice]) -> np.ndarray:
    """(nwin,) bool: some source's window is silent by museval's test (channel sum == 0 throughout).

    ``summed`` is :func:`_channel_sum` of the sources.
    """
    zero = summed == 0
    return np.array([bool(np.any(np.all(zero[:, sl], axis=1))) for sl in slices], dtype=bool)


def _whole_silent(summed: np.ndarray) -> bool:
    return bool(np.any(np.all(summed == 0, axis=1)))


def sdr_frames(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    window: int = SISEC_RATE,
    hop: int = SISEC_RATE,
    backend: str = "fast",
) -> dict[str, np.ndarray]:
    """Framewise BSS-eval v4 ("images") SDR of each target, in dB, as ``museval.evaluate`` gives.

    Args:
        references: target name -> true source ``(frames, channels)``; evaluated jointly.
        estimates: target name -> estimate (padded/truncated to the references' length).
        window, hop: window length and hop in samples (1 s at 44.1 kHz for SiSEC 2018).
        backend: ``"fast"`` (closed form) or ``"museval"`` (museval's ``bss_eval``); same numbers.

    Returns:
        target -> float64 ``(n_windows,)`` SDR per window (NaN where undefined, see module doc).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    window, hop = int(window), int(hop)
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be >= 1 sample, got {window}, {hop}")
    targets, refs, ests = _stack(references, estimates)
    length = refs.shape[1]
    slices = _window_slices(length, window, hop)
    nan = np.full(len(slices), np.nan)
    if length == 0:
        return {t: nan.copy() for t in targets}
    ref_sum, est_sum = _channel_sum(refs), _channel_sum(ests)
    if _whole_silent(ref_sum) or _whole_silent(est_sum):
        return {t: nan.copy() for t in targets}
    undefined = _silent_windows(ref_sum, slices) | _silent_windows(est_sum, slices)
    result: dict[str, np.ndarray] = {}
    for j, t in enumerate(targets):
        if backend == "museval":
            sdr = museval_bss_eval(refs[j : j + 1], ests[j : j + 1], window, hop)[0]
        else:
            ref_j = refs[j].reshape(-1)  # interleaved channels: a window is a contiguous slice
            err_j = (ests[j] - refs[j]).reshape(-1)
            channels = refs.shape[2]
            sdr = np.empty(len(slices))
            for k, sl in enumerate(slices):
                flat = slice(sl.start * channels, sl.stop * channels)
                num = float(np.dot(ref_j[flat], ref_j[flat]))
                den = float(np.dot(err_j[flat], err_j[flat]))
                sdr[k] = math.inf if den == 0.0 else (10.0 * math.log10(num / den) if num > 0 else -math.inf)
        sdr = np.asarray(sdr, dtype=np.float64).copy()
        sdr[undefined] = np.nan
        result[t] = sdr
    return result


def sdr_museval(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    sample_rate: int = SISEC_RATE,
    backend: str = "fast",
) -> dict[str, float]:
    """Per-target SDR of one track as SiSEC 2018 reports it, in dB.

    BSS-eval v4 over 1 s windows with 1 s hop (``sample_rate`` samples), the targets in
    ``references`` evaluated jointly, then the median over windows ignoring NaN. A target whose
    windows are all NaN gets NaN.

    Args:
        references: target -> true source, float ``(frames, 2)``.
        estimates: target -> estimate, float ``(frames, 2)`` (at least those targets).
        sample_rate: rate of the audio in Hz (sets the 1 s window).
        backend: ``"fast"`` or ``"museval"`` (see the module doc; same numbers).
    """
    frames = sdr_frames(references, estimates, window=int(sample_rate), hop=int(sample_rate), backend=backend)
    return {t: nanmedian(v) for t, v in frames.items()}


_MUSEVAL_METRICS: ModuleType | None = None


def _museval_metrics() -> ModuleType:
    """museval's ``metrics`` module, loaded without running ``museval/__init__`` (needs ffmpeg)."""
    global _MUSEVAL_METRICS
    if _MUSEVAL_METRICS is None:
        from noisyneuron.errors import UserError

        spec = importlib.util.find_spec("museval")
        if spec is None or not spec.submodule_search_locations:
            raise UserError("museval is not installed: run scripts/install-data-tools.sh")
        path = f"{list(spec.submodule_search_locations)[0]}/metrics.py"
        mspec = importlib.util.spec_from_file_location("_noisyneuron_museval_metrics", path)
        module = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(module)
        _MUSEVAL_METRICS = module
    return _MUSEVAL_METRICS


def museval_bss_eval(references: np.ndarray, estimates: np.ndarray, window: int = SISEC_RATE, hop: int = SISEC_RATE) -> np.ndarray:
    """museval's ``evaluate(references, estimates, win, hop, mode="v4")`` SDR, ``(nsrc, n_windows)``.

    ``references`` and ``estimates`` are ``(nsrc, frames, channels)`` of the same shape. Raises
    museval's ``ValueError`` when a whole source is silent.
    """
    metrics = _museval_metrics()
    sdr, _isr, _sir, _sar, _perm = metrics.bss_eval(
        np.asarray(references, dtype=np.float64),
        np.asarray(estimates, dtype=np.float64),
        window=int(window),
        hop=int(hop),
        compute_permutation=False,
        framewise_filters=False,
        bsseval_sources_version=False,
    )
    return np.asarray(sdr, dtype=np.float64)


# ----- aggregation ----------------------------------------------------------------------------
def nanmedian(values: Iterable[float]) -> float:
    """Median ignoring NaN (``+-inf`` count as values); NaN when nothing is left."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).reshape(-1)
    arr = arr[~np.isnan(arr)]
    return float(np.median(arr)) if arr.size else math.nan


def aggregate(values: Iterable[float]) -> dict[str, float | int]:
    """Summary over tracks of one metric (dB): ``median`` (the headline, as SiSEC), ``mean``,
    ``min``, ``max`` and ``n`` (tracks with a value), NaN ignored.

    ``+inf`` (an exact reconstruction) counts as a value: it can make ``mean`` and ``max`` infinite.
    """
    arr = np.asarray(list(values), dtype=np.float64).reshape(-1)
    arr = arr[~np.isnan(arr)]
    if not arr.size:
        return {"median": math.nan, "mean": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    with np.errstate(invalid="ignore"):
        mean = float(np.mean(arr))
    return {
        "median": float(np.median(arr)),
        "mean": mean,
        "min": float(np.min(arr)),
        "max": float(np.max(arr)),
        "n": int(arr.size),
    }
