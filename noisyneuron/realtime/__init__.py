"""Real-time hosting: the processor contract, the chain, the audio engine, files and offline runs.

Builds on :mod:`noisyneuron.dsp`; hosts processors that wrap :mod:`noisyneuron.models`.
"""
