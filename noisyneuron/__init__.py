"""NoisyNeuron: a real-time audio host for live karaoke, stem control and source monitoring.

Packages, in import order (each imports only those above it):

- ``noisyneuron.dsp``: numba-accelerated signal processing (STFT, masks, centre extraction,
  features, meters). Imports nothing of ours.
- ``noisyneuron.models``: neural models built on ``dsp``.
- ``noisyneuron.realtime``: the processor contract, the chain (host), the audio engine, files.
- ``noisyneuron.tui`` and ``noisyneuron.cli``: control surfaces on top.

``noisyneuron.errors`` is a leaf module every layer may import.
"""

__version__ = "0.1.0"
