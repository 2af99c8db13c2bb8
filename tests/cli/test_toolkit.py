"""Shared option types: every --seed is the toolkit's SEED."""

from __future__ import annotations

import click
import pytest


def test_every_seed_option_refuses_a_negative_seed():
    from gensr_bench.cli import SEED, CliState, cli

    # Plugin commands (align, pairs ...) register themselves when main starts.
    CliState(()).pm.hook.gensr_register_commands(cli=cli)

    def commands(group, path=()):
        for name, command in group.commands.items():
            yield (*path, name), command
            if isinstance(command, click.Group):
                yield from commands(command, (*path, name))

    seeded = {
        path: param
        for path, command in commands(cli)
        for param in command.params
        if "--seed" in param.opts
    }
    expected = {("run",), ("check",), ("train",), ("align",), ("pairs", "build")}
    assert expected <= set(seeded)
    for path, param in seeded.items():
        assert param.type is SEED, f"{' '.join(path)} --seed accepts {param.type}"
        with pytest.raises(click.BadParameter):
            param.type.convert(-5, param, None)
