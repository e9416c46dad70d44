"""The terminal UI of ``noisyneuron live`` (Textual): :mod:`.app` (the screen and its keys),
:mod:`.widgets` (the panels), :mod:`.screens` (help, devices, presets), :mod:`.spectrum` (the
output tap and the spectrum), :mod:`.host` (the engine in its own process, the UI talking to it
over OSC and shared memory)."""
