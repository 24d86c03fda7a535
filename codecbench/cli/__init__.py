"""The ``codecbench`` command line: the only package that talks to the user.

Each sub-module adds commands to the :func:`cli` group; plugins add theirs through the
``register_commands`` hook.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from codecbench import plugins
from codecbench.codec import Codec
from codecbench.errors import CodecbenchError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn codecbench errors into clean one-line messages and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CodecbenchError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def split_names(value: str | None) -> list[str]:
    """``"a,b, c"`` as ``["a", "b", "c"]``."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_options(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict, rejecting malformed ones."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key.strip()] = value
    return options


def parse_points(codec: Codec, value: str | None) -> list[float]:
    """The points to run for ``codec``: ``--points`` (comma list) or the codec's default sweep."""
    if not value:
        return list(codec.points)
    try:
        raw = [float(v) for v in split_names(value)]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers",
                                 param_hint="--points") from None
    return [codec.validate_point(p) for p in raw]


def db_option(func: F) -> F:
    return click.option(
        "--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Results database (default: $CODECBENCH_DB or ./codecbench.sqlite).",
    )(func)


def configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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




from codecbench.cli import run as _run  # noqa: E402,F401  (registers list, plugins, run, results)
from codecbench.cli import compare as _compare  # noqa: E402,F401  (registers compare)
from codecbench.cli import report as _report  # noqa: E402,F401  (registers report)
from codecbench.cli import train as _train  # noqa: E402,F401  (registers train)

plugins.get_plugin_manager().hook.register_commands(cli=cli)
