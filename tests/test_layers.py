"""The floors are a contract: an upward import (say models importing realtime, or control
importing the terminal UI) fails here, and so fails CI. The layers are in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_only_go_down_the_floors(monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_contract_catches_an_upward_import(tmp_path, monkeypatch):
    """The same contract on a copy of the package with one upward import added must fail."""
    import shutil
    import sys

    from importlinter.cli import lint_imports

    copy = tmp_path / "noisyneuron"
    shutil.copytree(ROOT / "noisyneuron", copy, ignore=shutil.ignore_patterns("__pycache__", "weights", "*.nbc", "*.nbi"))
    (copy / "dsp" / "upward.py").write_text("from noisyneuron.realtime import chain  # noqa: F401\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT])
    for name in [m for m in sys.modules if m == "noisyneuron" or m.startswith("noisyneuron.")]:
        monkeypatch.delitem(sys.modules, name)
    assert lint_imports(config_filename=str(tmp_path / "pyproject.toml"), no_cache=True) == 1
