"""Named chains the CLI and UI can build: ``--chain karaoke``.

One registry, so that ``live`` and ``process`` build the identical chain for the same name.
"""

from __future__ import annotations

from collections.abc import Callable

from noisyneuron.errors import UserError
from noisyneuron.realtime.chain import Chain

__all__ = ["CHAINS", "build_chain", "apply_settings"]


def _karaoke() -> Chain:
    from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

    return Chain([CentreCutKaraoke()], name="karaoke")


def _separator() -> Chain:
    from noisyneuron.realtime.processors.separator import NeuralSeparator

    return Chain([NeuralSeparator()], name="separator")


#: chain name -> (builder, one-line description)
CHAINS: dict[str, tuple[Callable[[], Chain], str]] = {
    "karaoke": (
        _karaoke,
        "remove the centre-panned vocal (DSP centre cut: stereo sources only; bass kept)",
    ),
    "separator": (
        _separator,
        "neural 4-stem separation with a gain per stem (vocals off by default: karaoke; mono too); needs the shipped weights",
    ),
}


def build_chain(name: str) -> Chain:
    """Build the chain called ``name``; a UserError lists the known names otherwise."""
    try:
        builder, _ = CHAINS[name]
    except KeyError:
        known = ", ".join(sorted(CHAINS))
        raise UserError(f"unknown chain {name!r}; choose one of: {known}") from None
    return builder()


def apply_settings(chain: Chain, settings: list[str]) -> None:
    """Apply ``PARAM=VALUE`` or ``PROCESSOR.PARAM=VALUE`` settings (values in the parameter's unit).

    ``mix`` and ``PROCESSOR.bypass`` are the chain's own parameters.
    """
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep:
            raise UserError(f"bad setting {setting!r}: write PARAM=VALUE, e.g. vocals=-20")
        try:
            value = float(raw)
        except ValueError:
            if raw.lower() in ("off", "-inf"):
                value = float("-inf")
            else:
                raise UserError(f"bad value in {setting!r}: {raw!r} is not a number") from None
        proc_name, dot, param_name = key.rpartition(".")
        parameter = None
        if param_name == "mix" and not dot:
            parameter = chain.mix
        elif param_name == "bypass" and dot:
            parameter = chain.bypass.get(proc_name)
        else:
            candidates = [p for p in chain.processors if not dot or p.name == proc_name]
            found = [p.parameters[param_name] for p in candidates if param_name in p.parameters]
            if len(found) > 1:
                raise UserError(f"{key!r} is ambiguous: write PROCESSOR.{param_name}")
            parameter = found[0] if found else None
        if parameter is None:
            names = ["mix"] + [f"{p.name}.{n}" for p in chain.processors for n in p.parameters]
            names += [f"{p.name}.bypass" for p in chain.processors]
            raise UserError(f"no parameter {key!r} in chain {chain.name!r}; known: {', '.join(names)}")
        if value == float("-inf"):
            value = parameter.minimum
        parameter.set(value)
