"""Control surfaces on top of the engine: the Textual terminal UI, OSC and MIDI."""
