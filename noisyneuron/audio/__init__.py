"""Audio file I/O on the ground floor, beside ``dsp``: reading any file at any rate and channel
count with clear one-line errors (:func:`~noisyneuron.audio.files.read_audio_checked`),
streaming it from disk (:class:`~noisyneuron.audio.files.FileSource`), and writing it
atomically (:class:`~noisyneuron.audio.files.FileSink`); the one atomic-write helper every
writer uses (:mod:`~noisyneuron.audio.atomic`) and the one resample-and-fit helper for arrays in
memory (:mod:`~noisyneuron.audio.resampling`). Imports only ``dsp`` and ``errors``."""
