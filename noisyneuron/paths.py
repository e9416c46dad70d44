"""Where NoisyNeuron keeps the user's files: one rule for every platform (``platformdirs``).

- :func:`config_dir`: the config file, presets, MIDI maps, the classifier's calibration profile.
  Linux ``$XDG_CONFIG_HOME/noisyneuron`` (default ``~/.config/noisyneuron``), macOS
  ``~/Library/Application Support/noisyneuron``, Windows ``%APPDATA%\\noisyneuron``.
- :func:`cache_dir`: things that can be made again (decoded sound sources, rendered scores).
  ``$NOISYNEURON_CACHE_DIR`` when set; else Linux ``$XDG_CACHE_HOME/noisyneuron`` (default
  ``~/.cache/noisyneuron``), macOS ``~/Library/Caches/noisyneuron``, Windows
  ``%LOCALAPPDATA%\\noisyneuron\\Cache``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "CACHE_ENV", "cache_dir", "config_dir"]

APP_NAME = "noisyneuron"

#: Environment variable that moves :func:`cache_dir`.
CACHE_ENV = "NOISYNEURON_CACHE_DIR"


def config_dir() -> Path:
    """NoisyNeuron's folder in the platform's user config directory (not created)."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True))


def cache_dir() -> Path:
    """NoisyNeuron's cache folder: ``$NOISYNEURON_CACHE_DIR``, else the platform's (not created)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env) if env else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
