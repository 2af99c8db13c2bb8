"""The ``gensr-bench`` click group and the console-script entry point ``main``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from gensr_bench.cli.toolkit import (
    EXIT_ERROR,
    EXIT_USAGE,
    CliState,
)
from gensr_bench.errors import (
    GensrError,
    UnknownNameError,
    is_disk_full,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugins-dir",
    "plugin_dirs",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder of local plugin files (*.py) to load; also GENSR_BENCH_PLUGINS_DIR.",
)
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder searched first for weight files; also GENSR_BENCH_WEIGHTS_DIR.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding local copies of data sets, one sub-folder per suite; also "
    "GENSR_BENCH_DATA.",
)
@click.version_option(package_name="gensr-bench")
@click.pass_context
def cli(
    ctx: click.Context, plugin_dirs: tuple[str, ...], weights_dir: str | None, data_dir: str | None
) -> None:
    """Evaluate, compare and align generative speech restoration models."""
    if data_dir:
        from gensr_bench.data import set_data_dir

        set_data_dir(data_dir)
    if weights_dir:
        from gensr_bench.weights import set_weights_dir

        set_weights_dir(weights_dir)
    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState(plugin_dirs)
    state.plugin_dirs = plugin_dirs or state.plugin_dirs
    ctx.obj = state


def _early_plugin_dirs(argv: Sequence[str]) -> tuple[str, ...]:
    """``--plugins-dir`` values, read before click parses, so plugin commands can register."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg == "--plugins-dir" and i + 1 < len(argv):
            dirs.append(argv[i + 1])
        elif arg.startswith("--plugins-dir="):
            dirs.append(arg.split("=", 1)[1])
    return tuple(dirs)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: runs the CLI and maps GensrError to messages and exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = CliState(_early_plugin_dirs(args))
    state.argv = tuple(args)
    try:
        state.pm.hook.gensr_register_commands(cli=cli)
        # Without standalone mode click returns a command's ``Exit`` code instead of raising.
        result = cli.main(args=args, obj=state, standalone_mode=False)
    except UnknownNameError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_USAGE
    except GensrError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_ERROR
    except Exception as exc:
        # The run store, cache, exports and saved audio raise DiskFullError themselves; this
        # catches a full disk under any other writer (leaderboard files, pairs, training state)
        # so that it too is one line instead of a traceback. Anything else is a bug: re-raised.
        if not is_disk_full(exc):
            raise
        where = getattr(exc, "filename", None) or "a file"
        detail = getattr(exc, "strerror", None) or str(exc)
        click.echo(
            f"error: cannot write {where}: the disk is full ({detail}); free some space and rerun "
            "the command (run and align continue what they saved with --resume)",
            err=True,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else 0
