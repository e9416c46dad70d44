"""Signal processing with numba (nogil, cached): STFT, masks, centre extraction, features, meters.

Imports nothing else of NoisyNeuron's.
"""
