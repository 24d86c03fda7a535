"""``codecbench report``: a self-contained HTML report folder from the results store."""

from __future__ import annotations

from pathlib import Path

import click

from codecbench import plugins
from codecbench.cli import db_option, cli, handle_errors
from codecbench.dataset import resolve_dataset
from codecbench.results import ResultStore, default_db_path


@cli.command("report")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: reports/<dataset>).")
@click.option("--dataset", "-d", "dataset_name", default="kodak", show_default=True,
              help="Dataset name, or folder:PATH (its images are read for the visual comparison).")
@click.option("--bpp", "target", type=float, default=0.5, show_default=True,
              help="Target rate of the rate-matched table and the visual comparison.")
@click.option("--anchor", default=None,
              help="Anchor codec of the BD-rate table (default: hevc-heif/bpg, else jpeg).")
@click.option("--images", "n_visual", type=click.IntRange(min=0), default=3, show_default=True,
              help="Number of images in the visual comparison.")
@click.option("--crop", type=click.IntRange(min=16), default=192, show_default=True,
              help="Side of the square crop shown for each codec, in pixels.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding datasets (default: $CODECBENCH_DATA, then the user cache).")
@db_option
@handle_errors
def report_command(out: Path | None, dataset_name: str, target: float, anchor: str | None,
                   n_visual: int, crop: int, data_dir: Path | None, db: Path | None) -> None:
    """Write an HTML report (leaderboard, BD-rates, plots, visual comparison) from stored results.

    Nothing is encoded: crops are decoded from the bitstreams in the results database.
    """
    from codecbench.report.html import build_report

    path = db or default_db_path()
    if not path.exists():
        raise click.ClickException(f"No results database at {path}; run `codecbench run` first.")
    dataset = resolve_dataset(dataset_name, plugins.datasets().items)
    images = dataset.images(data_dir, download=False) if n_visual else []
    out = out or Path("reports") / dataset.name.replace(":", "-").replace("/", "-")
    codecs = plugins.codecs().items
    with ResultStore(path) as store:
        index = build_report(store, out, dataset.name, images, codecs, target=target,
                             anchor=anchor, n_visual=n_visual, crop=crop)
    click.echo(f"Report written to {index}")
