"""Core commands: ``list``, ``plugins``, ``run`` and ``results``."""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from codecbench import plugins
from codecbench.cli import cli, db_option, handle_errors, parse_options, parse_points, split_names
from codecbench.codec import Codec, format_point
from codecbench.dataset import resolve_dataset
from codecbench.errors import CodecError
from codecbench.leaderboard import leaderboard
from codecbench.results import ResultStore, default_db_path


@cli.command("list")
@click.argument("what", type=click.Choice(["all", "codecs", "datasets", "metrics"]), default="all")
@handle_errors
def list_command(what: str) -> None:
    """List codecs, datasets and metrics, with their availability."""
    if what in ("all", "codecs"):
        click.secho("Codecs", bold=True)
        registry = plugins.codecs()
        for codec in registry:
            reason = codec.unavailable_reason()
            state = click.style("available", fg="green") if not reason else click.style(
                f"unavailable: {reason}", fg="red")
            points = ", ".join(format_point(p) for p in codec.points)
            click.echo(f"  {codec.name:<22} {codec.family:<12} {state}")
            click.echo(f"  {'':<22} {codec.description} [points: {points}] "
                       f"(plugin {registry.providers[codec.name]})")
    if what in ("all", "datasets"):
        click.secho("Datasets", bold=True)
        for dataset in plugins.datasets():
            click.echo(f"  {dataset.name:<22} {dataset.description} ({dataset.location_hint()})")
        click.echo(f"  {'folder:PATH':<22} every image file in the folder PATH")
    if what in ("all", "metrics"):
        click.secho("Metrics", bold=True)
        for metric in plugins.metrics():
            reason = metric.unavailable_reason()
            state = "available" if not reason else f"unavailable: {reason}"
            click.echo(f"  {metric.name:<22} {metric.kind:<6} {state} - {metric.description}")


@cli.command("plugins")
@handle_errors
def plugins_command() -> None:
    """Show loaded plugins as JSON: name, distribution, version and hooks."""
    click.echo(json.dumps(plugins.plugin_info(), indent=2))


def select_codecs(names: list[str], options: dict[str, str]) -> list[Codec]:
    """The named codecs, each configured with the options it accepts."""
    registry = plugins.codecs()
    selected = [registry.get(n) for n in names]
    accepted = {k for codec in selected for k in codec.options}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise CodecError(
            f"Option {', '.join(unknown)} is not accepted by {', '.join(names)}; "
            f"accepted options: {', '.join(sorted(accepted)) or 'none'}"
        )
    return [c.with_options(**{k: v for k, v in options.items() if k in c.options}) for c in selected]


def select_metrics(names: list[str]) -> list:
    registry = plugins.metrics()
    selected = [registry.get(n) for n in names]
    for metric in selected:
        reason = metric.unavailable_reason()
        if reason:
            click.secho(f"warning: metric {metric.name!r} unavailable, skipped: {reason}",
                        fg="yellow", err=True)
    return [m for m in selected if not m.unavailable_reason()]


def execution_options(func: Any) -> Any:
    """``--jobs``, ``--executor``, ``--ray-address``, ``--timeout`` and ``--retries``."""
    options = [
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                     help="Worker processes (default: the number of CPUs, at most 8; with "
                          "--executor ray: the cluster's CPUs). 1 runs in this process."),
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, help="Where units run: worker processes on this machine, "
                                             "or a Ray cluster (pip install 'codecbench[ray]')."),
        click.option("--ray-address", default=None, metavar="ADDRESS",
                     help="Ray cluster to join (default: $RAY_ADDRESS, else a local instance)."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Seconds one unit (codec point on one image) may take; its worker is "
                          "killed and the unit retried, then stored as failed. A worker's first "
                          "unit of a codec includes loading its model."),
        click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Times a unit whose worker crashed or timed out is started again."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def runner_settings(jobs: int | None, executor: str, ray_address: str | None,
                    timeout: float | None, retries: int) -> dict[str, Any]:
    """Keyword arguments for :class:`~codecbench.runner.Runner` from the execution options."""
    from codecbench.executors import default_jobs

    if jobs is None and executor == "local":
        jobs = default_jobs()
    return {"jobs": jobs, "executor": executor, "ray_address": ray_address, "timeout": timeout,
            "retries": retries}


@cli.command("run")
@click.option("--codec", "-c", "codec_names", required=True,
              help="Codec name, or several separated by commas (see `codecbench list codecs`).")
@click.option("--dataset", "-d", "dataset_name", default="kodak", show_default=True,
              help="Dataset name, or folder:PATH.")
@click.option("--points", "-p", default=None,
              help="Comma-separated operating points (quality knob values); default: the codec's sweep.")
@click.option("--metrics", "-m", "metric_names", default="psnr,ms-ssim", show_default=True,
              help="Comma-separated metric names (see `codecbench list metrics`).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding datasets (default: $CODECBENCH_DATA, then the user cache).")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of local metric weights (default: $CODECBENCH_WEIGHTS).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file for a learned codec (same as -o weights=PATH).")
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="Codec option, repeatable (e.g. -o subsampling=444).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N images of the dataset.")
@click.option("--no-download", is_flag=True, help="Never download a dataset; fail if missing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no leaderboard.")
@execution_options
@db_option
@handle_errors
def run_command(codec_names: str, dataset_name: str, points: str | None, metric_names: str,
                data_dir: Path | None, weights_dir: Path | None, weights: Path | None,
                option_pairs: tuple[str, ...], limit: int | None, no_download: bool, quiet: bool,
                jobs: int | None, executor: str, ray_address: str | None, timeout: float | None,
                retries: int, db: Path | None) -> None:
    """Benchmark codecs on a dataset; results go to the results database.

    Rows already in the database are skipped, so rerunning an interrupted command resumes it.
    Exits with status 1 when any image or codec failed (failures are stored as rows too).
    """
    from codecbench.runner import Runner, plan_units

    if weights_dir is not None:
        os.environ["CODECBENCH_WEIGHTS"] = str(weights_dir)
    options = parse_options(option_pairs)
    if weights is not None:
        options["weights"] = str(weights)
    codecs = select_codecs(split_names(codec_names), options)
    metrics = select_metrics(split_names(metric_names))
    dataset = resolve_dataset(dataset_name, plugins.datasets().items)
    images = dataset.images(data_dir, download=not no_download)[:limit]
    point_map = {c.name: parse_points(c, points) for c in codecs}
    with ResultStore(db) as store:
        runner = Runner(store, metrics, progress=not quiet,
                        **runner_settings(jobs, executor, ray_address, timeout, retries))
        units = plan_units(codecs, dataset, images, point_map)
        command = "codecbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        summary = runner.run(units, command=command)
        if not quiet:
            board = leaderboard(store.frame(dataset.name, [c.name for c in codecs]),
                                store.set_frame(dataset.name))
            click.echo(format_table(board))
    click.echo(f"{summary.computed} computed, {summary.skipped} already stored, "
               f"{summary.metrics_added} completed with new metrics, {summary.failed} failed "
               f"(database: {db or default_db_path()})", err=True)
    if summary.retried:
        click.echo(f"{summary.retried} unit restart(s) after a worker crash or timeout", err=True)
    if summary.failures:
        for f in summary.failures[:20]:
            click.secho(f"  failed: {f.codec} @ {format_point(f.point)} on {f.image}: {f.error}",
                        fg="red", err=True)
        if summary.failed > 20:
            click.echo(f"  ... and {summary.failed - 20} more (see `codecbench results --failed`)",
                       err=True)
        raise SystemExit(1)


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def format_table(board: "pandas.DataFrame") -> str:  # noqa: F821
    """A leaderboard as an aligned text table for the terminal."""
    if board.empty:
        return "(no results)"
    drop = [c for c in ("config", "codec_version") if c in board.columns and board[c].nunique() <= 1]
    board = board.drop(columns=drop)
    board = board.assign(point=board["point"].map(format_point))
    header = list(board.columns)
    cells = [[format_value(v) for v in row] for row in board.itertuples(index=False)]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


@cli.command("results")
@click.option("--dataset", "-d", default=None, help="Only this dataset.")
@click.option("--codec", "-c", "codec_names", default=None, help="Only these codecs (comma list).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--per-image", is_flag=True, help="One row per image instead of the leaderboard.")
@click.option("--failed", is_flag=True, help="List failed rows with their errors.")
@db_option
@handle_errors
def results_command(dataset: str | None, codec_names: str | None, fmt: str, per_image: bool,
                    failed: bool, db: Path | None) -> None:
    """Show stored results as a leaderboard (mean bpp and metrics per codec and point)."""
    path = db or default_db_path()
    if not path.exists():
        raise click.ClickException(f"No results database at {path}; run `codecbench run` first.")
    with ResultStore(path) as store:
        rows = store.frame(dataset, split_names(codec_names) or None)
        if failed:
            table = rows[rows["status"] != "ok"][["dataset", "codec", "point", "image", "error"]]
        elif per_image:
            table = rows.drop(columns=["id", "run_id"])
        else:
            table = leaderboard(rows, store.set_frame(dataset))
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(table.to_json(orient="records", indent=2, double_precision=15))
    else:
        click.echo(format_table(table))

