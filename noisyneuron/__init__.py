"""NoisyNeuron: a real-time audio host for live karaoke, stem control and source monitoring.

Floors, bottom up; each imports only those below it (the import-linter contract in
``pyproject.toml``, run by ``tests/test_layers.py``):

- ``noisyneuron.errors``: the one-line error types every floor may raise.
- ``noisyneuron.dsp``: numba-accelerated signal processing (STFT, masks, centre extraction,
  features, meters).
- ``noisyneuron.audio``: audio file I/O (read, stream, write atomically); ``noisyneuron.demo``,
  the bundled demo song.
- ``noisyneuron.datasets``: the data set builders (separation, real-world, classification).
- ``noisyneuron.models``: the neural models and their training.
- ``noisyneuron.realtime``: the processor contract, the chain, the audio engine, devices, the
  display tap, recording takes.
- ``noisyneuron.control``: the control surface, OSC, MIDI, config, the live session and the
  engine host process.
- ``noisyneuron.tui``, ``noisyneuron.separate``, ``noisyneuron.classify``,
  ``noisyneuron.evaluation``: the terminal UI and the file commands.
- ``noisyneuron.live``: the ``live`` command (the session, printed and waited on).
- ``noisyneuron.bench``, then ``noisyneuron.cli`` on top.
"""

__version__ = "0.1.0"
