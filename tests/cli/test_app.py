"""The command group: commands that plugins add."""

from __future__ import annotations

from gensr_bench.cli import main
from gensr_bench.testing import write_plugin_file


def test_a_plugin_can_add_a_command(tmp_path, capsys):
    plugins = tmp_path / "plugins"
    write_plugin_file(
        plugins,
        """
        import click
        from gensr_bench import hookimpl

        @click.command(name="hello")
        @click.argument("who")
        def hello(who):
            click.echo(f"hello {who}")

        @hookimpl
        def gensr_register_commands(cli):
            cli.add_command(hello)
    """,
    )
    assert main(["--plugins-dir", str(plugins), "hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
