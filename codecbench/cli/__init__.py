"""The ``codecbench`` command line: the only package that talks to the user.

Each sub-module adds commands to the :func:`cli` group; plugins add theirs through the
``register_commands`` hook.
"""

from __future__ import annotations

import logging
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from codecbench import plugins, threads
from codecbench.codec import Codec, format_point
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
    """The points to run for ``codec``: ``--points`` (comma list) or the codec's default sweep.

    A point given twice (``50,50``) is refused."""
    if not value:
        return list(codec.points)
    try:
        raw = [float(v) for v in split_names(value)]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers",
                                 param_hint="--points") from None
    points = [codec.validate_point(p) for p in raw]
    repeated = sorted({p for p in points if points.count(p) > 1})
    if repeated:
        raise click.BadParameter(
            f"point {', '.join(format_point(p) for p in repeated)} is given more than once in "
            f"{value!r}", param_hint="--points")
    return points


def command_line() -> str:
    """The command this process runs, as the user can paste it again."""
    return "codecbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Option callback refusing ``nan`` and ``inf`` (click's ``FloatRange`` lets ``nan`` through)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a finite number")
    return value


def positive_bpp(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Option callback refusing a target rate that is not a positive finite number (nan, inf, 0,
    negative)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"{value} is not a positive number of bits per pixel (e.g. 0.03 or 0.5)")
    return value


class ThreadCount(click.ParamType):
    """A number of threads, ``0`` or ``auto`` for torch's default."""

    name = "threads"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return threads.AUTO
        if not text.isdigit():
            self.fail(f"{value!r} is not a number of threads (0 or more) or 'auto'", param, ctx)
        return int(text)


def threads_option(func: F) -> F:
    """``--threads N|auto``: torch's thread count in the processes that run units or decode.

    Reusable by any command (``run``, ``compare``, ``report``): the option sets the count for the
    duration of the command (:func:`codecbench.threads.using`, applied lazily: only once torch is
    imported) and passes no argument to the command; a :class:`~codecbench.runner.Runner` created
    without ``threads`` uses it, in-process and in its workers. Default 1, the pool's one thread
    per unit: on a shared CPU torch's default (every core) is many times slower.
    """

    def use(ctx: click.Context, param: click.Parameter, value: int) -> int:
        ctx.with_resource(threads.using(value))
        return value

    return click.option(
        "--threads", type=ThreadCount(), default=threads.DEFAULT, show_default=True,
        metavar="N|auto", expose_value=False, callback=use,
        help="Torch threads per unit (each worker, or this process with -j 1); 0 or auto: "
             "torch's default (every core).",
    )(func)


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
    plugins.get_plugin_manager()
    for error in plugins.load_errors():
        click.secho(f"warning: {error.message()}", fg="yellow", err=True)




from codecbench.cli import run as _run  # noqa: E402,F401  (registers list, plugins, run, results)
from codecbench.cli import compare as _compare  # noqa: E402,F401  (registers compare)
from codecbench.cli import report as _report  # noqa: E402,F401  (registers report)
from codecbench.cli import train as _train  # noqa: E402,F401  (registers train)
from codecbench.cli import db as _db  # noqa: E402,F401  (registers db check, db backup)

plugins.get_plugin_manager().hook.register_commands(cli=cli)
