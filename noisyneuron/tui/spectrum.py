"""The spectrum the TUI draws from the recent output (:class:`noisyneuron.realtime.tap.SampleTap`).

:class:`SpectrumAnalyser` turns the tap's samples into a level per display column in dB on a
logarithmic frequency axis: Hann window (:func:`noisyneuron.dsp.stft.make_window`), one FFT,
log-spaced bands (one per column), a fall-back of ``decay_db_per_second`` so the display does
not flicker. All of it runs in the UI thread (about 0.1 ms per update).
"""

from __future__ import annotations

import numpy as np

from noisyneuron.dsp.stft import make_window
from noisyneuron.realtime.tap import SampleTap

__all__ = ["SpectrumAnalyser"]


class SpectrumAnalyser:
    """Levels per display column, dB, from the tap's recent samples.

    Columns are log-spaced bands (equal shares of an octave) between ``fmin`` and ``fmax``; each
    shows the highest bin in its band (a low band narrower than one bin shows that bin), so a
    full-scale sine reads 0 dB wherever it is.

    Args:
        sample_rate: Hz.
        columns: frequency bands (one per character column).
        n_fft: FFT length (4096 at 48 kHz: 11.7 Hz bins, an 85 ms window).
        fmin, fmax: lowest and highest band edge, Hz.
        floor_db, ceiling_db: the display range, dB relative to a full-scale sine.
        decay_db_per_second: how fast a band's displayed level may fall.
    """

    def __init__(self, sample_rate: float, columns: int, n_fft: int = 4096, fmin: float = 40.0,
                 fmax: float = 16000.0, floor_db: float = -90.0, ceiling_db: float = 0.0,
                 decay_db_per_second: float = 60.0) -> None:
        self.sample_rate = float(sample_rate)
        self.columns = max(1, int(columns))
        self.n_fft = int(n_fft)
        self.floor_db = floor_db
        self.ceiling_db = ceiling_db
        self.decay_db_per_second = decay_db_per_second
        fmax = min(fmax, 0.5 * sample_rate)
        hz_per_bin = self.sample_rate / self.n_fft
        edges = np.geomspace(fmin, fmax, self.columns + 1) / hz_per_bin
        lo = np.clip(np.floor(edges[:-1]).astype(np.int64), 1, self.n_fft // 2)
        hi = np.clip(np.ceil(edges[1:]).astype(np.int64), 1, self.n_fft // 2 + 1)
        self._lo = lo
        self._hi = np.maximum(hi, lo + 1)
        self.fmin, self.fmax = float(fmin), float(fmax)
        # |X|^2 of a full-scale sine through a Hann window peaks at (n_fft / 4)^2
        self._full_scale = (self.n_fft / 4.0) ** 2
        self.window = make_window("hann", self.n_fft)
        self._samples = np.zeros(self.n_fft, dtype=np.float32)
        self._bands = np.zeros(self.columns, dtype=np.float64)
        #: the displayed levels, dB (floor_db .. ceiling_db)
        self.levels = np.full(self.columns, floor_db, dtype=np.float32)

    def update(self, tap: SampleTap, dt: float) -> np.ndarray:
        """Analyse the tap's latest ``n_fft`` samples; ``dt``: seconds since the last update."""
        return self.update_from(tap.latest(self.n_fft, self._samples), dt)

    def update_from(self, samples: np.ndarray, dt: float) -> np.ndarray:
        x = np.zeros(self.n_fft, dtype=np.float32)
        tail = samples[-self.n_fft:]
        x[self.n_fft - len(tail):] = tail
        spec = np.fft.rfft(x * self.window)
        power = spec.real ** 2 + spec.imag ** 2
        for i in range(self.columns):
            self._bands[i] = power[self._lo[i]:self._hi[i]].max()
        bands = 10.0 * np.log10(np.maximum(self._bands / self._full_scale, 1e-30))
        np.clip(bands, self.floor_db, self.ceiling_db, out=bands)
        fallen = self.levels - self.decay_db_per_second * max(dt, 0.0)
        np.maximum(bands.astype(np.float32), fallen, out=self.levels)
        return self.levels
