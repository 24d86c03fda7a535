"""``codecbench compare``: codecs side by side at one target bitrate."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from codecbench import plugins
from codecbench.cli import cli, db_option, handle_errors, parse_options, split_names
from codecbench.cli.run import format_value, select_codecs, select_metrics
from codecbench.codec import format_point
from codecbench.dataset import resolve_dataset
from codecbench.results import ResultStore


@cli.command("compare")
@click.option("--bpp", "target", type=float, required=True,
              help="Target rate in bits per pixel (e.g. 0.03 or 0.5).")
@click.option("--dataset", "-d", "dataset_name", default="kodak", show_default=True,
              help="Dataset name, or folder:PATH.")
@click.option("--codecs", "-c", "codec_names", default=None,
              help="Comma-separated codecs (default: every available codec).")
@click.option("--metrics", "-m", "metric_names", default="psnr,ms-ssim", show_default=True,
              help="Comma-separated metrics computed at the matched points.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding datasets (default: $CODECBENCH_DATA, then the user cache).")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of local metric weights (default: $CODECBENCH_WEIGHTS).")
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="Codec option, repeatable.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N images of the dataset.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format of the comparison table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@db_option
@handle_errors
def compare_command(target: float, dataset_name: str, codec_names: str | None, metric_names: str,
                    data_dir: Path | None, weights_dir: Path | None,
                    option_pairs: tuple[str, ...], limit: int | None, fmt: str, quiet: bool,
                    db: Path | None) -> None:
    """Compare codecs at one rate: per image, the point closest to --bpp without exceeding it.

    Codecs with a continuous quality knob are searched by bisection; every probe is stored in the
    results database, so a rerun reuses them. The table shows the achieved mean bpp and the mean
    metrics (with 95% confidence half-widths, "-ci"); codecs that cannot get down to the target are
    listed with their lowest achievable bpp.
    """
    from codecbench.compare import rate_matched

    if weights_dir is not None:
        os.environ["CODECBENCH_WEIGHTS"] = str(weights_dir)
    names = split_names(codec_names) or [c.name for c in plugins.codecs() if not c.unavailable_reason()]
    codecs = select_codecs(names, parse_options(option_pairs))
    metrics = select_metrics(split_names(metric_names))
    dataset = resolve_dataset(dataset_name, plugins.datasets().items)
    images = dataset.images(data_dir)[:limit]
    command = "codecbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with ResultStore(db) as store:
        result = rate_matched(store, codecs, dataset, images, target, metrics,
                              progress=not quiet, command=command)
    table, ranked_by = ranked(result.table, metrics)
    table = table.drop(columns=[c for c in table.columns if c.endswith("-ci")] if fmt == "table" else [])
    if fmt == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(table.to_json(orient="records", indent=2))
    else:
        ranking = f", best {ranked_by} first" if ranked_by else ""
        click.secho(f"{dataset.name} at <= {target:g} bpp ({len(images)} images{ranking})", bold=True)
        click.echo(format_comparison(table))
    for row in result.unreachable.to_dict("records"):
        click.echo(f"{row['codec']}: cannot reach {target:g} bpp on {row['images_above_target']} "
                   f"image(s); lowest achievable: {row['lowest_bpp']:.4f} bpp mean, "
                   f"{row['lowest_bpp_max']:.4f} max (point {format_point(row['lowest_point'])})",
                   err=fmt != "table")
    for failure in result.failures[:20]:
        click.secho(f"  failed: {failure.codec} on {failure.image}: {failure.error}", fg="red", err=True)
    if result.failures:
        raise SystemExit(1)


def ranked(table: "pandas.DataFrame", metrics: list) -> tuple["pandas.DataFrame", str | None]:  # noqa: F821
    """``table`` best first by the first requested metric's first column, and that column's name."""
    for metric in metrics:
        for column, higher_is_better in metric.columns.items():
            if column in table.columns:
                order = table.sort_values(column, ascending=not higher_is_better, kind="stable")
                return order.reset_index(drop=True), column
    return table, None


def format_comparison(table: "pandas.DataFrame") -> str:  # noqa: F821
    """The comparison table as aligned text."""
    if table.empty:
        return "(no codec reaches the target)"
    return table.to_string(index=False, formatters={
        c: format_value for c in table.columns if table[c].dtype.kind == "f"})
