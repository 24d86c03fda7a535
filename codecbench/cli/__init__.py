"""The ``codecbench`` command line: the only package that talks to the user.

Core commands arrive like plugins' commands, through the ``register_commands`` hook: each core
command module implements it, and :func:`add_commands` calls it for them and for every plugin. The
group turns any :class:`~codecbench.errors.CodecbenchError` a command raises into a one-line
message and exit status 1, so commands (plugins' included) need no error handling of their own.
Shared options live in :mod:`codecbench.cli.options`. Importing this package imports neither torch
nor pandas: commands import what they need when they run.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from codecbench import plugins
from codecbench.errors import CodecbenchError

CORE_COMMANDS = ("codecbench.cli.run", "codecbench.cli.compare", "codecbench.cli.report",
                 "codecbench.cli.train", "codecbench.cli.db")
"""Modules whose ``register_commands`` hook adds the core commands."""


class CodecbenchGroup(click.Group):
    """A group whose commands' :class:`~codecbench.errors.CodecbenchError` become clean one-line
    messages with exit status 1 (the one place errors meet the user)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodecbenchError as exc:
            raise click.ClickException(str(exc)) from exc


def configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


@click.group(cls=CodecbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="codecbench")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """Benchmark image codecs, classical and learned, with one metric engine.

    \b
    Typical use:
      codecbench list
      codecbench run --codec jpeg --dataset kodak
      codecbench results --format csv
    """
    configure_logging(verbose)
    plugins.get_plugin_manager()
    for error in plugins.load_errors():
        click.secho(f"warning: {error.message()}", fg="yellow", err=True)


def add_commands(group: click.Group) -> None:
    """Add the core commands, then every plugin's, through the ``register_commands`` hook."""
    core = [importlib.import_module(name).register_commands for name in CORE_COMMANDS]
    plugins.get_plugin_manager().hook.register_commands.call_extra(core, {"cli": group})


add_commands(cli)
