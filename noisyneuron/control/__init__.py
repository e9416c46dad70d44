"""Control on top of the engine: the control surface (one path for every parameter change),
OSC, MIDI, configuration and presets."""
