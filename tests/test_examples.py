"""Every example in the README's command blocks and in the `--help` texts that needs no audio
device is checked: it parses, its `--set` keys and values exist on the chain it names (built for
a stereo input, as a song or a line input is), and the OSC addresses it sends to are controls of
the default chain. An example that a user would copy and see fail is a defect."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from noisyneuron.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, re.S):
        out += [line.strip() for line in block.splitlines() if line.strip().startswith("noisyneuron ")]
    return out


def _subparsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:  # argparse keeps subcommands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def _help_commands() -> list[str]:
    from noisyneuron.classify import calibrate_parser

    texts = [p.format_help() for p in _subparsers(build_parser())] + [calibrate_parser().format_help()]
    out = []
    for text in texts:
        out += [line.strip() for line in text.splitlines() if re.match(r"^\s+noisyneuron \S", line)]
    return sorted(set(out))


def _argv(command: str) -> list[str]:
    command = re.split(r"\s{2,}|\s#", command, maxsplit=1)[0] if ("  " in command or " #" in command) else command
    return shlex.split(command)[1:]


EXAMPLES = sorted(set(_readme_commands()) | set(_help_commands()))


def test_examples_were_found():
    assert len(_readme_commands()) >= 15 and len(_help_commands()) >= 15, (len(_readme_commands()), len(_help_commands()))


@pytest.mark.parametrize("command", EXAMPLES)
def test_example_works(command):
    argv = _argv(command)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if argv[:2] == ["classify", "calibrate"]:
                from noisyneuron.classify import calibrate_parser

                args = calibrate_parser().parse_args(argv[2:])
            else:
                args = build_parser().parse_args(argv)
    except SystemExit as exit:
        if exit.code:
            pytest.fail(f"{command!r} does not parse: {err.getvalue().strip().splitlines()[-1]}")
        return  # --help
    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.realtime.chains import build_chain

    if getattr(args, "set", None):
        chain = build_chain(getattr(args, "chain", None) or "karaoke", 2)
        ControlSurface(chain).apply_settings(args.set)
    if argv[:2] == ["osc", "send"] and args.address.startswith("/noisyneuron/") and args.address.count("/") >= 3:
        address = re.sub(r"/(n|f|s|toggle)$", "", args.address)
        ControlSurface(build_chain("karaoke", 2)).find(address)


def test_the_karaoke_chain_answers_to_karaoke_keys_whichever_processor_it_picked():
    """`--set karaoke.vocals=...` and /noisyneuron/karaoke/vocals reach the centre cut (stereo)
    and the neural separator (mono) alike."""
    from noisyneuron.control.surface import ControlSurface
    from noisyneuron.realtime.chains import build_chain

    for channels, processor in ((2, "karaoke"), (1, "separator")):
        surface = ControlSurface(build_chain("karaoke", channels))
        assert surface.find("karaoke.vocals").key == f"{processor}.vocals"
        assert surface.find("/noisyneuron/karaoke/vocals").key == f"{processor}.vocals"
        assert surface.find("karaoke.bypass").key == f"{processor}.bypass"
        assert all(c.processor in (processor, "chain") for c in surface)  # listed once, by their own names
