"""Errors a user can cause and fix (a bad file, a missing device).

The CLI prints these as one line and exits non-zero, with no traceback. Anything else is a bug
and keeps its traceback. This module imports nothing, so every layer may use it.
"""


class UserError(Exception):
    """A problem with the user's input or setup, explained in one line that says what to do."""

    exit_code = 2


class AudioFileError(UserError):
    """An audio file that cannot be read or written (missing, corrupt, empty, unsupported)."""


class DeviceError(UserError):
    """An audio device or server that is missing, busy or cannot run the requested settings."""
