"""``codecbench compare``: codecs side by side at one target bitrate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from codecbench import plugins
from codecbench.cli.options import (
    codec_options,
    command_line,
    data_dir_option,
    dataset_option,
    db_option,
    limit_option,
    positive_bpp,
    split_names,
    threads_option,
    weights_dir_option,
)
from codecbench.cli.run import format_value, select_codecs, select_metrics
from codecbench.dataset import resolve_dataset
from codecbench.hookspecs import hookimpl
from codecbench.results import ResultStore, default_db_path

if TYPE_CHECKING:
    import pandas

SHOWN = ["curve", "n", "bpp", "match"]  # text formats: these, then the metric columns


@click.command("compare")
@click.option("--bpp", "target", type=float, required=True, callback=positive_bpp,
              help="Target rate in bits per pixel (e.g. 0.03 or 0.5).")
@dataset_option()
@click.option("--codecs", "-c", "codec_names", default=None,
              help="Comma-separated codecs (default: those with results on the dataset in the "
                   "database).")
@click.option("--all", "every", is_flag=True,
              help="Every available registered codec made for the dataset's kind of images (face "
                   "models only on face datasets unless named with -c).")
@click.option("--metrics", "-m", "metric_names", default="psnr,ms-ssim", show_default=True,
              help="Comma-separated metrics computed at the matched points.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Relative excess over --bpp that still counts as at the target (0.1 = 10%): "
                   "a codec whose mean bpp at its lowest matched points is within it ranks with "
                   "the others, flagged with its excess.")
@click.option("--no-probe", is_flag=True,
              help="Answer from stored points only: encode nothing (metrics missing at the chosen "
                   "points are still computed from the stored bitstreams).")
@data_dir_option
@weights_dir_option
@codec_options("Codec option, repeatable: a codec that accepts it is compared in that "
               "configuration only; the others keep every stored configuration.")
@limit_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]),
              default="table", show_default=True, help="Output format of the comparison table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@threads_option
@db_option
def compare_command(target: float, dataset_name: str, codec_names: str | None, every: bool,
                    metric_names: str, tolerance: float, no_probe: bool, data_dir: Path | None,
                    options: dict[str, str], limit: int | None,
                    fmt: str, quiet: bool, db: Path | None) -> None:
    """Compare codecs at one rate, answering from the results database where it can.

    Every codec gets a row. "Matched" columns (bpp, metrics): per image, the point with the
    largest bpp not above --bpp, or the codec's lowest point where it cannot get that low ("match"
    then says how far the mean is over the target, within --tolerance or OVER). "interp-" columns:
    each metric on the codec's mean RD curve (points measured on every image) at exactly --bpp,
    linear in log(bpp); "-" outside the measured range (never extrapolated).

    Codecs with other options stored (e.g. bpg with -o encoder=jctvc) are separate rows, labelled
    with the options that differ from the defaults. Where the stored points leave an image's
    point open (a continuous knob between two stored points, or discrete points not run yet), the
    knob is bisected starting from those points; probes are stored, reused by every later compare
    and left out of `codecbench results`.
    """
    from codecbench.compare import Curve, default_codecs, rate_matched, stored_curves
    from codecbench.metrics import showing_progress

    click.get_current_context().with_resource(showing_progress(not quiet))  # FID's own bar too
    metrics = select_metrics(split_names(metric_names))
    dataset = resolve_dataset(dataset_name, plugins.datasets().items)
    path = db or default_db_path()
    notes: list[str] = []
    with ResultStore(path) as store:
        names = split_names(codec_names)
        if not names:
            chosen, notes = default_codecs(list(plugins.codecs()), store.codec_names(dataset.name),
                                           getattr(dataset, "domain", "photos"), every=every)
            if not chosen:
                raise click.ClickException(
                    f"No results for dataset {dataset.name!r} in {path}: name codecs with -c, "
                    f"use --all, or run `codecbench run` first.")
            names = [c.name for c in chosen]
        codecs = select_codecs(names, options)
        images = dataset.images(data_dir)[:limit]
        rows = store.frame(dataset.name, names)
        curves = [curve for codec in codecs
                  for curve in ([Curve.of(codec)] if set(options) & set(codec.options)
                                else stored_curves(codec, rows))]
        command = command_line()
        result = rate_matched(store, curves, dataset, images, target, metrics, tolerance=tolerance,
                              probe=not no_probe, progress=not quiet, command=command)
    table, ranked_by = ranked(result.table, metrics)
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(table.to_json(orient="records", indent=2, double_precision=15))
    else:
        text = human_table(table, metrics)
        if fmt == "markdown":
            click.echo(text.to_markdown(index=False, disable_numparse=True))
        else:
            ranking = f"; best {ranked_by} first" if ranked_by else ""
            click.secho(f"{dataset.name} at {target:g} bpp ({len(images)} images, tolerance "
                        f"{tolerance:.0%}{ranking})", bold=True)
            click.echo(format_comparison(text))
            for line in legend(target, tolerance):
                click.echo(line)
    for note in notes + result.notes:
        click.echo(f"note: {note}", err=fmt != "table")
    for failure in result.failures[:20]:
        click.secho(f"  failed: {failure.codec} on {failure.image}: {failure.error}", fg="red", err=True)
    if result.failures:
        raise SystemExit(1)


def ranked(table: "pandas.DataFrame", metrics: list) -> tuple["pandas.DataFrame", str | None]:
    """``table`` with the curves at the target first, each group best first by the first requested
    metric's first column (matched); and that column's name."""
    if table.empty:
        return table, None
    group = ~table["at_target"].astype(bool) if "at_target" in table.columns else None
    for metric in metrics:
        for column, declared in metric.columns.items():
            if column in table.columns:
                value = table[column] if declared.higher_is_better else -table[column]
                order = table.assign(_group=group, _value=-value).sort_values(
                    ["_group", "_value"], kind="stable", na_position="last")
                return order.drop(columns=["_group", "_value"]).reset_index(drop=True), column
    return table, None


def human_table(table: "pandas.DataFrame", metrics: list) -> "pandas.DataFrame":
    """The columns a person reads (no confidence half-widths, versions or configurations), as
    formatted strings."""
    columns = [c for m in metrics for c in m.columns]
    shown = SHOWN + [c for c in columns if c in table.columns] + [
        f"interp-{c}" for c in columns if f"interp-{c}" in table.columns]
    text = table[[c for c in shown if c in table.columns]].copy()
    for column in text.columns:
        if text[column].dtype.kind == "f":
            text[column] = text[column].map(format_value)
        else:
            text[column] = text[column].map(str)
    return text


def format_comparison(text: "pandas.DataFrame") -> str:
    """The comparison table as aligned text."""
    if text.empty:
        return "(no codec)"
    header = list(text.columns)
    cells = [list(row) for row in text.itertuples(index=False)]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    align = [str.ljust if h in ("curve", "match") else str.rjust for h in header]
    lines = ["  ".join(a(h, w) for h, w, a in zip(header, widths, align)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(a(c, w) for c, w, a in zip(row, widths, align)).rstrip() for row in cells]
    return "\n".join(lines)


def legend(target: float, tolerance: float) -> list[str]:
    """What the columns of the text table mean."""
    return [
        f"bpp and metrics: means over each image's point closest to {target:g} bpp without "
        f"exceeding it (its lowest point where it cannot get that low: match shows the mean's "
        f"excess; up to {tolerance:.0%} counts as at the target).",
        f"interp-*: the codec's mean RD curve (points measured on every image) at exactly "
        f"{target:g} bpp, linear in log(bpp); '-' outside the measured range (not extrapolated).",
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(compare_command)
