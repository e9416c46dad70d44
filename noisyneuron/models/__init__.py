"""Neural models (separator, classifier), built on :mod:`noisyneuron.dsp`."""
