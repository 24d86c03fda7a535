"""Options and values shared by commands, each declared once.

A command takes an option by decorating itself with it (``@dataset_option()``, ``@db_option``,
...); the helpers parse the values that several commands read (comma lists, ``KEY=VALUE`` pairs,
operating points) and record the command line of a run.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from codecbench import threads
from codecbench.codec import Codec, format_point

F = TypeVar("F", bound=Callable[..., Any])


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
    """The command this process runs, as the user can paste it again (recorded with runs)."""
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

    The option sets the count for the duration of the command (:func:`codecbench.threads.using`,
    applied lazily: only once torch is imported) and passes no argument to the command; a
    :class:`~codecbench.runner.Runner` created without ``threads`` uses it, in-process and in its
    workers. Default 1, the pool's one thread per unit: on a shared CPU torch's default (every
    core) is many times slower.
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
    """``--db PATH``: the results database."""
    return click.option(
        "--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Results database (default: $CODECBENCH_DB or ./codecbench.sqlite).",
    )(func)


def dataset_option(help: str = "Dataset name, or folder:PATH.") -> Callable[[F], F]:
    """``--dataset/-d NAME`` (default ``kodak``), passed as ``dataset_name``."""
    return click.option("--dataset", "-d", "dataset_name", default="kodak", show_default=True,
                        help=help)


def data_dir_option(func: F) -> F:
    """``--data-dir DIR``: where datasets are looked for."""
    return click.option(
        "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Folder holding datasets (default: $CODECBENCH_DATA, then the user cache).",
    )(func)


def weights_dir_option(func: F) -> F:
    """``--weights-dir DIR``: local metric weights, for the duration of the command.

    The folder is a value (:func:`codecbench.metrics.using_weights_dir`), not an environment
    variable: metrics in this process read it, and a run hands it to its workers in each task. The
    option passes no argument to the command."""

    def use(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        from codecbench.metrics import using_weights_dir

        ctx.with_resource(using_weights_dir(value))
        return value

    return click.option(
        "--weights-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        expose_value=False, callback=use,
        help="Folder of local metric weights (default: $CODECBENCH_WEIGHTS).",
    )(func)


def codec_options(help: str = "Codec option, repeatable (e.g. -o subsampling=444).") -> Callable[[F], F]:
    """``--option/-o KEY=VALUE`` (repeatable), passed as the dict ``options``."""

    def parse(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> dict[str, str]:
        return parse_options(value)

    return click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
                        callback=parse, help=help)


def limit_option(func: F) -> F:
    """``--limit N``: only the first N images of the dataset."""
    return click.option("--limit", type=click.IntRange(min=1), default=None,
                        help="Use only the first N images of the dataset.")(func)


@contextmanager
def _environment_variable(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
