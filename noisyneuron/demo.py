"""A deterministic synthetic demo song: a centred singing voice over a wide stereo band.

:func:`make_demo_mix` renders, from a seed, a short pop-like song at 96 BPM in A minor
(Am - F - C - G, one chord per bar) whose stems are known exactly, for the README demo, tests
and benchmarks:

- ``vocals``: a singing-like voice, identical in both channels (dead centre, dry): a harmonic
  source (about ``1 / h`` harmonic roll-off up to 8 kHz) with vibrato (5.5 Hz, +-30 cents, fading
  in), gliding between the notes of a melody, shaped by vowel formants (three resonances per
  vowel, one vowel per note), with attack/release envelopes, short sibilant "s" noise bursts at
  some note onsets, and phrases separated by rests.
- ``accompaniment``: the band, mostly WIDE: a plucked chord pattern panned left and a
  differently voiced keys pattern panned right, a string pad rendered independently per side
  (different detune, vibrato and random phases: decorrelated), hi-hats panned right, a shaker
  panned left, claps with a decorrelated stereo room, and a stereo reverb (independent noise
  tails per side) on the band; plus a CENTRED bass line (fundamentals 41-65 Hz, kept below
  ~130 Hz) and a centred kick drum (110 -> 45 Hz sweep with a short click).

Only numpy. Equal seeds give identical audio.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_demo_mix", "DEMO_BPM"]

#: Tempo of the demo song, beats per minute.
DEMO_BPM = 96.0

_A_MINOR_SCALE = (57, 59, 60, 62, 64, 65, 67, 69, 71, 72)  # MIDI A3 .. C5
_CHORDS = (  # (root MIDI for the bass, chord tones as MIDI notes), one per bar
    (33, (57, 60, 64)),  # Am: bass A1 (55 Hz)
    (29, (57, 60, 65)),  # F: bass F1 (43.7 Hz)
    (36, (55, 60, 64)),  # C: bass C2 (65.4 Hz)
    (31, (55, 59, 62)),  # G: bass G1 (49 Hz)
)
_VOWELS = (  # formant frequencies (Hz), bandwidths (Hz) and relative gains
    ((800.0, 1150.0, 2900.0), (80.0, 90.0, 120.0), (1.0, 0.5, 0.25)),  # a
    ((400.0, 1600.0, 2700.0), (60.0, 80.0, 120.0), (1.0, 0.35, 0.3)),  # e
    ((350.0, 2000.0, 2800.0), (50.0, 100.0, 120.0), (1.0, 0.25, 0.3)),  # i
    ((450.0, 800.0, 2830.0), (70.0, 80.0, 100.0), (1.0, 0.6, 0.15)),  # o
    ((325.0, 700.0, 2530.0), (50.0, 60.0, 170.0), (1.0, 0.4, 0.12)),  # u
)


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _envelope(n: int, sr: float, attack: float, release: float) -> np.ndarray:
    env = np.ones(n)
    a = min(n, max(1, int(attack * sr)))
    r = min(n - a, max(1, int(release * sr))) if n > a else 0
    env[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    if r > 0:
        env[n - r :] *= np.linspace(1.0, 0.0, r)
    return env


def _fft_lowpass(x: np.ndarray, sr: float, cutoff: float) -> np.ndarray:
    """Cheap FFT-domain low-pass (brick wall with a short cosine edge) for noise shaping."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.shape[0], 1.0 / sr)
    edge = np.clip((cutoff * 1.2 - f) / (cutoff * 0.4), 0.0, 1.0)
    return np.fft.irfft(spec * edge, n=x.shape[0])


def _bandpass_noise(rng: np.random.Generator, n: int, sr: float, lo: float, hi: float) -> np.ndarray:
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec *= (f >= lo) & (f <= hi)
    out = np.fft.irfft(spec, n=n)
    return out / (np.std(out) + 1e-12)


def _fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = x.shape[0] + h.shape[0] - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return y[: x.shape[0]]


def _render_voice(rng: np.random.Generator, sr: float, total: int, beat: float, bars: int) -> np.ndarray:
    out = np.zeros(total)
    t_bar = 4 * beat
    nyquist_guard = min(8000.0, 0.45 * sr)
    prev_note = None
    bar = 0
    while bar < bars:
        # a phrase: 2 bars of melody, then a rest of half a bar to one bar
        phrase_start = bar * t_bar + (0.5 * beat if bar % 4 == 0 else 0.0)
        phrase_end = min((bar + 2) * t_bar - 0.5 * beat, total / sr)
        t = phrase_start
        while t < phrase_end - 0.2:
            dur = float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])) * beat
            dur = min(dur, phrase_end - t)
            chord = _CHORDS[int(t // t_bar) % 4][1]
            if rng.random() < 0.6:
                note = float(rng.choice(chord)) + 12.0 * float(rng.integers(0, 2))
                note = min(note, 72.0)
            else:
                note = float(rng.choice(_A_MINOR_SCALE))
            start = int(t * sr)
            n = min(int(dur * sr), total - start)
            if n <= 16:
                break
            tt = np.arange(n) / sr
            f_note = _midi_hz(note)
            # glide from the previous note (40 ms), vibrato fading in after 150 ms
            glide = 0.0 if prev_note is None else (prev_note - note) * np.exp(-tt / 0.04)
            vib_depth = 0.30 * np.clip((tt - 0.15) / 0.25, 0.0, 1.0)  # semitones
            vibrato = vib_depth * np.sin(2 * np.pi * 5.5 * tt + rng.uniform(0, 2 * np.pi))
            f0 = f_note * 2.0 ** ((glide + vibrato) / 12.0)
            phase = 2 * np.pi * np.cumsum(f0) / sr
            formants, bands, gains = _VOWELS[int(rng.integers(0, len(_VOWELS)))]
            voice = np.zeros(n)
            for h in range(1, int(nyquist_guard // f_note) + 1):
                fh = h * f_note
                shape = sum(g / (1.0 + ((fh - fc) / (0.5 * bw)) ** 2) for fc, bw, g in zip(formants, bands, gains))
                amp = (0.04 + shape) / h
                voice += amp * np.sin(h * phase + 0.3 * h)
            env = _envelope(n, sr, 0.03, 0.07) * (1.0 + 0.08 * vibrato)
            voice *= env
            if rng.random() < 0.3:  # a sibilant consonant at the onset
                s_len = min(n, int(0.06 * sr))
                s = _bandpass_noise(rng, s_len, sr, 4000.0, 9000.0) * _envelope(s_len, sr, 0.005, 0.03)
                voice[:s_len] += 0.25 * s
            out[start : start + n] += voice
            prev_note = note
            t += dur
        bar += 2 + (1 if rng.random() < 0.3 else 0)
    return out


def _pluck(sr: float, f: float, n: int, brightness: float, rng: np.random.Generator) -> np.ndarray:
    tt = np.arange(n) / sr
    tone = np.zeros(n)
    for h in range(1, int(min(6000.0, 0.45 * sr) // f) + 1):
        decay = np.exp(-tt * (2.0 + 1.5 * h / brightness))
        tone += decay * np.sin(2 * np.pi * h * f * tt + rng.uniform(0, 2 * np.pi)) / h
    return tone * _envelope(n, sr, 0.002, 0.02)


def _render_band(rng: np.random.Generator, sr: float, total: int, beat: float, bars: int):
    """Returns (wide stereo band (total, 2), centred low part (total,))."""
    t_bar = 4 * beat
    wide = np.zeros((total, 2))
    low = np.zeros(total)
    tt_all = np.arange(total) / sr
    for bar in range(bars):
        bass_root, chord = _CHORDS[bar % 4]
        bar_start = bar * t_bar
        # plucked chord pattern, panned left (gains 0.95 / 0.3), voicing in octave 3-4
        for step, strum in enumerate((0.0, 1.5, 2.0, 3.0, 3.5)):
            start = int((bar_start + strum * beat) * sr)
            n = min(int(1.2 * beat * sr), total - start)
            if n <= 0:
                continue
            for i, note in enumerate(chord):
                s0 = start + int(0.012 * i * sr)
                m = min(n, total - s0)
                tone = 0.22 * _pluck(sr, _midi_hz(note - 12 * (i == 0)), m, 8.0, rng)
                wide[s0 : s0 + m, 0] += 0.97 * tone
                wide[s0 : s0 + m, 1] += 0.15 * tone
        # keys pattern an octave up, different voicing and rhythm, panned right (0.3 / 0.95)
        for strum in (0.5, 1.0, 2.5, 3.25):
            start = int((bar_start + strum * beat) * sr)
            n = min(int(0.9 * beat * sr), total - start)
            if n <= 0:
                continue
            for note in (chord[1] + 12, chord[2] + 12, chord[0] + 24):
                tone = 0.15 * _pluck(sr, _midi_hz(note), n, 4.0, rng)
                wide[start : start + n, 0] += 0.15 * tone
                wide[start : start + n, 1] += 0.97 * tone
        # bass line, centred: 8ths on the root (an octave jump on the last one)
        for eighth in range(8):
            start = int((bar_start + eighth * 0.5 * beat) * sr)
            n = min(int(0.45 * beat * sr), total - start)
            if n <= 0:
                continue
            f = _midi_hz(bass_root + (12 if eighth == 7 and bass_root < 31 else 0))
            tt = np.arange(n) / sr
            tone = np.sin(2 * np.pi * f * tt) + 0.25 * np.sin(4 * np.pi * f * tt)
            low[start : start + n] += 0.35 * tone * _envelope(n, sr, 0.005, 0.03)
        # kick on 1 and 3 (and the "and" of 4 every other bar), centred
        for pos in (0.0, 2.0) + ((3.5,) if bar % 2 else ()):
            start = int((bar_start + pos * beat) * sr)
            n = min(int(0.35 * sr), total - start)
            if n <= 0:
                continue
            tt = np.arange(n) / sr
            freq = 45.0 + 65.0 * np.exp(-tt / 0.03)
            body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-tt / 0.12)
            click_len = min(n, int(0.003 * sr))
            body[:click_len] += 0.3 * _bandpass_noise(rng, click_len, sr, 1000.0, 5000.0) * np.linspace(1, 0, click_len)
            low[start : start + n] += 0.7 * body
        # hi-hats (8ths) panned right, shaker (16ths) panned left
        for eighth in range(8):
            start = int((bar_start + eighth * 0.5 * beat) * sr)
            n = min(int(0.05 * sr), total - start)
            if n <= 0:
                continue
            hat = _bandpass_noise(rng, n, sr, 7000.0, 16000.0) * np.exp(-np.arange(n) / (0.012 * sr))
            level = 0.06 if eighth % 2 else 0.09
            wide[start : start + n, 0] += 0.25 * level * hat
            wide[start : start + n, 1] += 0.95 * level * hat
        for sixteenth in range(16):
            start = int((bar_start + sixteenth * 0.25 * beat) * sr)
            n = min(int(0.04 * sr), total - start)
            if n <= 0:
                continue
            shaker = _bandpass_noise(rng, n, sr, 5000.0, 12000.0) * _envelope(n, sr, 0.01, 0.03)
            wide[start : start + n, 0] += 0.95 * 0.03 * shaker
            wide[start : start + n, 1] += 0.25 * 0.03 * shaker
        # claps on 2 and 4: independent noise per side (a wide room)
        for pos in (1.0, 3.0):
            start = int((bar_start + pos * beat) * sr)
            n = min(int(0.15 * sr), total - start)
            if n <= 0:
                continue
            decay = np.exp(-np.arange(n) / (0.04 * sr))
            for side in range(2):
                wide[start : start + n, side] += 0.12 * decay * _bandpass_noise(rng, n, sr, 800.0, 6000.0)
    # string pad: rendered independently per side (detune, vibrato, phases differ)
    for bar in range(bars):
        chord = _CHORDS[bar % 4][1]
        start = int(bar * t_bar * sr)
        n = min(int(t_bar * sr), total - start)
        if n <= 0:
            continue
        tt = tt_all[start : start + n]
        env = _envelope(n, sr, 0.25, 0.3)
        for side, detune in ((0, -9.0), (1, +11.0)):
            pad = np.zeros(n)
            for note in chord:
                f = _midi_hz(note + detune / 100.0)
                vib = 0.004 * np.sin(2 * np.pi * rng.uniform(4.0, 6.5) * tt + rng.uniform(0, 2 * np.pi))
                phase = 2 * np.pi * f * tt * (1.0 + vib)
                for h in range(1, int(min(4000.0, 0.45 * sr) // f) + 1):
                    pad += np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / (h * h)
            wide[start : start + n, side] += 0.05 * pad * env
    # stereo reverb on the wide band: independent exponentially decaying noise tails per side
    ir_len = int(1.2 * sr)
    decay = np.exp(-np.arange(ir_len) / (0.25 * sr))
    for side in range(2):
        ir = rng.standard_normal(ir_len) * decay
        ir = _fft_lowpass(ir, sr, 6000.0)
        ir *= 0.12 / np.sqrt(np.sum(ir * ir))
        ir[0] = 0.0
        wide[:, side] += _fft_convolve(wide[:, side].copy(), ir)
    return wide, low


def make_demo_mix(sample_rate: int = 44100, seconds: float = 20.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Render the demo song; every array is float32 ``(frames, 2)`` at ``sample_rate`` Hz.

    Returns:
        ``{"mix", "vocals", "accompaniment", "wide", "low"}`` with ``vocals`` identical in both
        channels, ``accompaniment = wide + low`` (the wide band and the centred bass + kick),
        and ``mix = vocals + accompaniment``, all exactly in float32. The mix peaks at
        -1.5 dBFS (below -1 dBFS). Same arguments, same samples.
    """
    if sample_rate <= 0 or seconds <= 0:
        raise ValueError(f"need a positive sample_rate (Hz) and duration (seconds), got {sample_rate}, {seconds}")
    sr = float(sample_rate)
    total = int(round(seconds * sr))
    rng = np.random.default_rng(seed)
    beat = 60.0 / DEMO_BPM
    bars = int(np.ceil(seconds / (4 * beat)))
    voice = _render_voice(rng, sr, total, beat, bars)
    wide, low = _render_band(rng, sr, total, beat, bars)
    # balance: the voice about 3 dB above the band (a vocal-forward pop mix)
    band_rms = np.sqrt(np.mean((wide + low[:, None]) ** 2)) + 1e-12
    voice *= 1.4 * band_rms / (np.sqrt(np.mean(voice**2)) + 1e-12)
    mix64 = voice[:, None] + wide + low[:, None]
    scale = 10.0 ** (-1.5 / 20.0) / (np.max(np.abs(mix64)) + 1e-12)
    vocals = np.repeat((voice * scale).astype(np.float32)[:, None], 2, axis=1)
    wide32 = (wide * scale).astype(np.float32)
    low32 = np.repeat((low * scale).astype(np.float32)[:, None], 2, axis=1)
    accompaniment = wide32 + low32
    mix = vocals + accompaniment
    peak = float(np.max(np.abs(mix)))
    if peak > 10.0 ** (-1.0 / 20.0):  # float32 rounding cannot move it this far; guard anyway
        factor = np.float32(10.0 ** (-1.5 / 20.0) / peak)
        vocals *= factor
        wide32 *= factor
        low32 *= factor
        accompaniment = wide32 + low32
        mix = vocals + accompaniment
    return {"mix": mix, "vocals": vocals, "accompaniment": accompaniment, "wide": wide32, "low": low32}
