"""Core commands: ``list``, ``plugins``, ``run`` and ``results``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import click

from codecbench import plugins
from codecbench.cli.options import (
    _environment_variable,
    codec_options,
    command_line,
    data_dir_option,
    dataset_option,
    db_option,
    finite,
    limit_option,
    parse_points,
    split_names,
    threads_option,
    weights_dir_option,
)
from codecbench.codec import Codec, format_point
from codecbench.dataset import ManifestDataset, resolve_dataset
from codecbench.errors import CodecError, CodecUnavailableError, MetricError
from codecbench.hookspecs import hookimpl
from codecbench.results import ResultStore, default_db_path


@click.command("list")
@click.argument("what", type=click.Choice(["all", "codecs", "datasets", "metrics"]), default="all")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@data_dir_option
def list_command(what: str, fmt: str, data_dir: Path | None) -> None:
    """List codecs, datasets and metrics, with their availability.

    A dataset is "present" (a complete copy in the data folder or the user cache), "downloadable"
    (fetched with checksums on first use) or "missing" (a manual download; the line says where to
    put it). Nothing is downloaded and no network is used.
    """
    listing: dict[str, list[dict[str, Any]]] = {}
    if what in ("all", "codecs"):
        listing["codecs"] = codec_rows()
    if what in ("all", "datasets"):
        listing["datasets"] = dataset_rows(data_dir)
    if what in ("all", "metrics"):
        listing["metrics"] = metric_rows()
    if fmt == "json":
        click.echo(json.dumps(listing, indent=2, default=str))
        return
    if "codecs" in listing:
        click.secho("Codecs", bold=True)
        for row in listing["codecs"]:
            state = click.style("available", fg="green") if row["available"] else click.style(
                f"unavailable: {row['unavailable_reason']}", fg="red")
            points = ", ".join(format_point(p) for p in row["points"])
            click.echo(f"  {row['name']:<22} {row['family']:<12} {state}")
            click.echo(f"  {'':<22} {row['description']} [points: {points}] (plugin {row['plugin']})")
    if "datasets" in listing:
        click.secho("Datasets", bold=True)
        colours = {"present": "green", "downloadable": "yellow", "missing": "red"}
        for row in listing["datasets"]:
            state = click.style(f"{row['status']:<12}", fg=colours.get(row["status"]))
            click.echo(f"  {row['name']:<22} {state} {row['description']}")
            click.echo(f"  {'':<22} {row['where']}")
        click.echo(f"  {'folder:PATH':<22} {'':<12} every image file in the folder PATH")
    if "metrics" in listing:
        click.secho("Metrics", bold=True)
        for row in listing["metrics"]:
            state = "available" if row["available"] else f"unavailable: {row['unavailable_reason']}"
            click.echo(f"  {row['name']:<22} {row['kind']:<6} {state} - {row['description']}")


def codec_rows() -> list[dict[str, Any]]:
    """Every registered codec as a dict (``list --format json``)."""
    registry = plugins.codecs()
    rows = []
    for codec in registry:
        reason = codec.unavailable_reason()
        rows.append({
            "name": codec.name, "family": codec.family, "domain": codec.domain,
            "description": codec.description, "points": list(codec.points),
            "point_range": list(codec.point_range) if codec.point_range else None,
            "options": dict(codec.options), "available": reason is None,
            "unavailable_reason": reason, "plugin": registry.providers[codec.name],
        })
    return rows


def dataset_status(dataset: Any, data_dir: Path | None) -> tuple[str, str, Path | None]:
    """``(status, where, folder)`` of a dataset without downloading anything: ``present`` (with
    its folder), ``downloadable`` or ``missing`` (with where to put it). A dataset that is not a
    manifest is asked for its images with ``download=False``."""
    if not isinstance(dataset, ManifestDataset):
        try:
            refs = dataset.images(data_dir, download=False)
        except Exception as exc:  # DatasetError, or whatever a plugin's dataset raises
            return "missing", f"{exc}", None
        folder = Path(os.path.commonpath([r.path.parent for r in refs])) if refs else None
        return "present", f"{folder or dataset.location_hint()} ({len(refs)} images)", folder
    candidates = dataset._candidates(data_dir)
    for folder in candidates:
        refs = dataset._complete(folder)
        if refs is not None:
            return "present", f"{folder} ({len(refs)} images)", folder
    partial = next((f for f in candidates if f.is_dir()), None)
    note = f"; incomplete copy in {partial}" if partial else ""
    if dataset.downloadable():
        unverified = "; UNVERIFIED: no sha256 pinned in its manifest" if dataset.unverified() else ""
        return ("downloadable", f"downloaded into {candidates[-1]} on first use (or put it in "
                f"{dataset.location_hint()}){note}{unverified}", None)
    how = dataset.manual or (f"source: {dataset.homepage}" if dataset.homepage else "")
    return ("missing", f"put its images in {dataset.location_hint()} (--data-dir or "
            f"CODECBENCH_DATA){note}" + (f"; {how}" if how else ""), None)


def dataset_rows(data_dir: Path | None) -> list[dict[str, Any]]:
    """Every registered dataset with its availability (``list --format json``)."""
    registry = plugins.datasets()
    rows = []
    for dataset in registry:
        status, where, folder = dataset_status(dataset, data_dir)
        rows.append({"name": dataset.name, "description": dataset.description, "status": status,
                     "where": where, "path": str(folder) if folder else None,
                     "plugin": registry.providers[dataset.name]})
    return rows


def metric_rows() -> list[dict[str, Any]]:
    """Every registered metric as a dict (``list --format json``)."""
    registry = plugins.metrics()
    rows = []
    for metric in registry:
        reason = metric.unavailable_reason()
        rows.append({"name": metric.name, "kind": metric.kind, "description": metric.description,
                     "columns": {c: dataclasses.asdict(d) for c, d in metric.columns.items()},
                     "available": reason is None,
                     "unavailable_reason": reason, "plugin": registry.providers[metric.name]})
    return rows


@click.command("plugins")
def plugins_command() -> None:
    """Show loaded plugins as JSON: name, distribution, version and hooks (and those that failed
    to load, with their error)."""
    info = plugins.plugin_info()
    info += [{"name": e.name, "distribution": e.distribution, "version": None, "hooks": [],
              "error": e.error} for e in plugins.load_errors()]
    click.echo(json.dumps(info, indent=2))


def select_codecs(names: list[str], options: dict[str, str]) -> list[Codec]:
    """The named codecs, each configured with the options it accepts.

    Refused up front, in one line, rather than stored as failed rows: no codec, an option no named
    codec accepts, a weights file that does not exist, and an option value the codec rejects
    (:func:`check_option_values`)."""
    if not names:
        raise click.BadParameter("no codec named (see `codecbench list codecs`)", param_hint="--codec")
    registry = plugins.codecs()
    selected = [registry.get(n) for n in names]
    accepted = {k for codec in selected for k in codec.options}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise CodecError(
            f"Option {', '.join(unknown)} is not accepted by {', '.join(names)}; "
            f"accepted options: {', '.join(sorted(accepted)) or 'none'}"
        )
    missing = [p for p in split_names(options.get("weights")) if not Path(p).expanduser().is_file()]
    if missing:
        raise CodecError(f"Weights file not found: {', '.join(missing)}")
    configured = []
    for codec in selected:
        given = {k: v for k, v in options.items() if k in codec.options}
        configured.append(codec.with_options(**given))
        reason = configured[-1].unavailable_reason()
        if given and reason and not codec.unavailable_reason():
            pairs = " ".join(f"-o {k}={v}" for k, v in given.items())
            raise CodecError(f"{pairs}: {codec.name} is unavailable so configured: {reason}")
        check_option_values(configured[-1], given)
    return configured


PROBE_SIZE = 64  # side of the synthetic image an option check encodes (x265 needs 25 px or more)


def check_option_values(codec: Codec, given: dict[str, str]) -> None:
    """Encode a small synthetic image at the codec's first point to check the option values the
    user gave (``-o subsampling=999``), raising the codec's own message if it rejects them.

    Codecs read their options when they encode, so this is the one check every codec supports. It
    runs only for options given, only for available codecs, and it treats only a
    :class:`~codecbench.errors.CodecError` as a verdict on the options: anything else (a crash on
    a tiny image) is left to the run, which stores it per unit as before. A learned codec is not
    probed (the probe would run its model): its ``weights`` files are loaded instead, by a copy of
    the codec that is then dropped, so a file that is not a checkpoint for it is refused here.
    """
    checked = {k: v for k, v in given.items() if k != "weights" or codec.family == "learned"}
    if not checked or not codec.points or codec.unavailable_reason():
        return
    from codecbench.testing import synthetic_image

    try:
        if codec.family == "learned":
            codec.with_options().load()
        else:
            codec.load()
            codec.encode(synthetic_image(PROBE_SIZE, PROBE_SIZE), codec.points[0])
    except CodecUnavailableError:
        return
    except CodecError as exc:
        pairs = " ".join(f"-o {k}={v}" for k, v in checked.items())
        raise CodecError(f"{pairs} rejected by {codec.name}: {exc}") from exc
    except Exception:  # not about the options: the run reports it per unit
        return


def select_metrics(names: list[str]) -> list:
    if not names:
        raise click.BadParameter("no metric named (see `codecbench list metrics`)",
                                 param_hint="--metrics")
    registry = plugins.metrics()
    usable = []
    for metric in [registry.get(n) for n in names]:
        try:
            metric.load()  # fetches missing weights (list only looks for them)
        except MetricError as exc:
            click.secho(f"warning: metric {metric.name!r} unavailable, skipped: {exc}",
                        fg="yellow", err=True)
            continue
        usable.append(metric)
    return usable


def execution_options(func: Any) -> Any:
    """``--jobs``, ``--executor``, ``--ray-address``, ``--timeout`` and ``--retries``."""
    options = [
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                     help="Worker processes (default: the number of CPUs, at most 8 and as many "
                          "as the memory available fits; with --executor ray: the cluster's "
                          "CPUs). 1 runs in this process."),
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, help="Where units run: worker processes on this machine, "
                                             "or a Ray cluster (pip install 'codecbench[ray]')."),
        click.option("--ray-address", default=None, metavar="ADDRESS",
                     help="Ray cluster to join (default: $RAY_ADDRESS, else a local instance)."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                     callback=finite,
                     help="Seconds one unit (codec point on one image) may take; its worker is "
                          "killed and the unit retried, then stored as failed. A worker's first "
                          "unit of a codec includes loading its model."),
        click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Times a unit whose worker crashed or timed out is started again."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def device_option(func: Any) -> Any:
    """``--device cpu|cuda|auto``: where learned codecs run their transforms, for the duration of
    the command (``CODECBENCH_DEVICE``, inherited by the workers; :mod:`codecbench.learned.devices`)."""

    def use(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None:
            return
        if value != "cpu":
            import torch

            if value == "cuda" and not torch.cuda.is_available():
                raise click.BadParameter("torch sees no CUDA device here (use cpu or auto)",
                                         param_hint="--device")
            value = "cuda" if torch.cuda.is_available() else "cpu"
        ctx.with_resource(_environment_variable("CODECBENCH_DEVICE", value))

    return click.option(
        "--device", type=click.Choice(["cpu", "cuda", "auto"]), default=None, expose_value=False,
        callback=use,
        help="Where learned codecs run their analysis and synthesis transforms: cpu (default), "
             "cuda (each worker on one GPU, spread over them) or auto (cuda when available). "
             "Entropy coding stays on the CPU: a stream decodes the same on any device.")(func)


@click.command("run")
@click.option("--codec", "-c", "codec_names", required=True,
              help="Codec name, or several separated by commas (see `codecbench list codecs`).")
@dataset_option()
@click.option("--points", "-p", default=None,
              help="Comma-separated operating points (quality knob values); default: the codec's sweep.")
@click.option("--metrics", "-m", "metric_names", default="psnr,ms-ssim", show_default=True,
              help="Comma-separated metric names (see `codecbench list metrics`).")
@data_dir_option
@weights_dir_option
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file for a learned codec (same as -o weights=PATH; several "
                   "comma-separated), or CompressAI's published weights by name: "
                   "compressai:cheng2020-anchor-3, or compressai:cheng2020-anchor for qualities 1-6.")
@codec_options()
@limit_option
@click.option("--no-download", is_flag=True, help="Never download a dataset; fail if missing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no leaderboard.")
@execution_options
@device_option
@threads_option
@db_option
def run_command(codec_names: str, dataset_name: str, points: str | None, metric_names: str,
                data_dir: Path | None, weights: Path | None,
                options: dict[str, str], limit: int | None, no_download: bool, quiet: bool,
                jobs: int | None, executor: str, ray_address: str | None, timeout: float | None,
                retries: int, db: Path | None) -> None:
    """Benchmark codecs on a dataset; results go to the results database.

    Rows already in the database are skipped, so rerunning an interrupted command (Ctrl-C)
    resumes it. Exits with status 1 when any image or codec failed (failures are stored as rows
    too), 130 when interrupted.
    """
    from codecbench.metrics import showing_progress
    from codecbench.runner import Runner, plan_units

    click.get_current_context().with_resource(showing_progress(not quiet))  # FID's own bar too
    if weights is not None:
        options["weights"] = str(weights)
    if any(name.startswith("compressai:") for name in split_names(options.get("weights"))):
        from codecbench.learned.zoo import local_weights  # published weights by name, fetched

        options["weights"] = local_weights(options["weights"],
                                           [plugins.codecs().get(n) for n in split_names(codec_names)])
    codecs = select_codecs(split_names(codec_names), options)
    metrics = select_metrics(split_names(metric_names))
    dataset = resolve_dataset(dataset_name, plugins.datasets().items)
    images = dataset.images(data_dir, download=not no_download)[:limit]
    point_map = {c.name: parse_points(c, points) for c in codecs}
    with ResultStore(db) as store:
        runner = Runner(store, metrics, progress=not quiet,
                        jobs=jobs, executor=executor, ray_address=ray_address, timeout=timeout,
                        retries=retries)
        units = plan_units(codecs, dataset, images, point_map)
        command = command_line()
        try:
            summary = runner.run(units, command=command)
        except KeyboardInterrupt:
            done = runner.summary
            click.echo(f"\nInterrupted: {done.saved} row(s) saved by this run ({done.skipped} were "
                       f"already stored) in {db or default_db_path()}. Rerun the same command to "
                       f"resume:\n  {command}", err=True)
            raise SystemExit(130) from None
        if not quiet:
            from codecbench.leaderboard import leaderboard

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


def write_compressai(rows: "pandas.DataFrame", set_values: "pandas.DataFrame",  # noqa: F821
                     out: Path | None) -> None:
    """Stored curves in CompressAI's format: the one curve on stdout, or one file per curve in
    ``out``."""
    from codecbench.compressai_format import compressai_curves

    curves = compressai_curves(rows, set_values, {c.name: c.options for c in plugins.codecs()})
    if not curves:
        raise click.ClickException("No curve with points measured on every image to export.")
    if out is None:
        if len(curves) > 1:
            names = ", ".join(c.data["name"] for c in curves)
            raise click.ClickException(
                f"{len(curves)} curves ({names}): CompressAI's format holds one; pick one with "
                "-d/-c, or pass --out DIR for one file per curve.")
        click.echo(json.dumps(curves[0].data, indent=2))
        return
    out.mkdir(parents=True, exist_ok=True)
    for curve in curves:
        (out / curve.filename).write_text(json.dumps(curve.data, indent=2) + "\n", encoding="utf-8")
        click.echo(f"{curve.data['name']}: {out / curve.filename}")


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


@click.command("results")
@click.option("--dataset", "-d", default=None, help="Only this dataset.")
@click.option("--codec", "-c", "codec_names", default=None, help="Only these codecs (comma list).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "compressai"]),
              default="table", show_default=True,
              help="Output format; compressai: CompressAI's results JSON (one curve; --out DIR for "
                   "one file per curve), readable by `python -m compressai.utils.plot`.")
@click.option("--per-image", is_flag=True, help="One row per image instead of the leaderboard.")
@click.option("--failed", is_flag=True, help="List failed rows with their errors.")
@click.option("--probes", is_flag=True,
              help="Include the rate-search probes of `codecbench compare` (column 'probe').")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --format compressai: write one JSON file per curve into this folder.")
@db_option
def results_command(dataset: str | None, codec_names: str | None, fmt: str, per_image: bool,
                    failed: bool, probes: bool, out: Path | None, db: Path | None) -> None:
    """Show stored results as a leaderboard (mean bpp and metrics per codec and point).

    Search probes of `codecbench compare` are left out unless --probes is given.
    """
    from codecbench.leaderboard import leaderboard, without_probes

    path = db or default_db_path()
    if not path.exists():
        raise click.ClickException(f"No results database at {path}; run `codecbench run` first.")
    if out is not None and fmt != "compressai":
        raise click.UsageError("--out goes with --format compressai")
    with ResultStore(path) as store:
        rows = store.frame(dataset, split_names(codec_names) or None)
        set_values = store.set_frame(dataset)
    if fmt == "compressai":
        write_compressai(rows, set_values, out)
        return
    if failed:
        table = rows[rows["status"] != "ok"][["dataset", "codec", "point", "image", "error"]]
    elif per_image:
        table = (rows if probes else without_probes(rows)).drop(columns=["id", "run_id"])
    else:
        table = leaderboard(rows, set_values, probes=probes)
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(table.to_json(orient="records", indent=2, double_precision=15))
    else:
        click.echo(format_table(table))


@hookimpl
def register_commands(cli: click.Group) -> None:
    for command in (list_command, plugins_command, run_command, results_command):
        cli.add_command(command)
