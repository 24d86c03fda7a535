"""``codecbench report``: a self-contained HTML report folder from the results store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from codecbench import plugins
from codecbench.cli.options import (
    data_dir_option,
    dataset_option,
    db_option,
    positive_bpp,
    split_names,
    threads_option,
)
from codecbench.dataset import resolve_dataset
from codecbench.hookspecs import hookimpl
from codecbench.report.presets import PRESETS
from codecbench.results import ResultStore, default_db_path


def crop_position(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """``--crop-at X,Y`` as two integers."""
    if value is None:
        return None
    try:
        x, y = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not X,Y (two integers)") from None
    return x, y


@click.command("report")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: reports/<dataset>).")
@dataset_option("Dataset name, or folder:PATH (its images are read for the visual comparison).")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None,
              help="Named option set; 'paper': " + PRESETS["paper"].description + ". Options given "
                   "explicitly override it.")
@click.option("--bpp", "target", type=float, default=None, callback=positive_bpp,
              help="Target rate of the rate-matched table and the visual comparison [default: 0.5].")
@click.option("--codecs", "-c", "codec_names", default=None,
              help="Comma-separated codecs to report (default: every codec in the store).")
@click.option("--anchor", default=None,
              help="Anchor of the BD-rate table: a codec, a curve label, or a published curve's file "
                   "(CSV or CompressAI JSON, see --published) [default: bpg/hevc-heif, else jpeg].")
@click.option("--published", "published", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A published curve to draw and BD-rate beside the measured ones, labelled as "
                   "published: a CSV of bpp and metric columns (e.g. benchmarks/published/*.csv) or a "
                   "CompressAI results JSON. Repeatable.")
@click.option("--weights", "weights", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A checkpoint file that coded stored rows (a trained model moved or renamed since "
                   "its run); found by its sha256. Repeatable.")
@click.option("--log-bpp/--linear-bpp", "log_bpp", default=None,
              help="bpp axis of the plots [default: logarithmic when --bpp or the lowest rate is below 0.1].")
@click.option("--images", "n_visual", type=click.IntRange(min=0), default=None,
              help="Number of images in the visual comparison [default: 3].")
@click.option("--image", "image_names", default=None,
              help="Comma-separated images of the visual comparison (names or stems, e.g. kodim04,kodim23).")
@click.option("--crop", type=click.IntRange(min=16), default=None,
              help="Side of the square crop shown for each codec, in pixels [default: 192].")
@click.option("--crop-at", callback=crop_position, default=None, metavar="X,Y",
              help="Top-left corner of the crop (default: centred).")
@click.option("--zoom", type=click.IntRange(min=1, max=16), default=None,
              help="Enlargement of the crops, nearest neighbour (no smoothing) [default: 2].")
@data_dir_option
@threads_option
@db_option
def report_command(out: Path | None, dataset_name: str, preset: str | None, target: float | None,
                   codec_names: str | None, anchor: str | None, published: tuple[Path, ...],
                   weights: tuple[Path, ...], log_bpp: bool | None,
                   n_visual: int | None, image_names: str | None, crop: int | None,
                   crop_at: tuple[int, int] | None, zoom: int | None, data_dir: Path | None,
                   db: Path | None) -> None:
    """Write an HTML report (rate-matched tables, BD-rates, plots, visual comparison, leaderboard)
    from stored results.

    Nothing is encoded: crops are decoded from the bitstreams in the results database, each by its
    codec configured with the options it was stored with. The paper's figure and table:

    \b
      codecbench report --preset paper
      (= --bpp 0.03 -c bpg,hevc-heif,jpeg2000,aedc,hific,gan,ot,ot_gan --log-bpp --crop 128 --zoom 3)
    """
    from codecbench.report.html import build_report

    chosen = PRESETS[preset] if preset else None

    def pick(value: Any, name: str, default: Any) -> Any:
        """The option given, else the preset's, else the default."""
        preset_value = getattr(chosen, name) if chosen else None
        return value if value is not None else preset_value if preset_value is not None else default

    path = db or default_db_path()
    if not path.exists():
        raise click.ClickException(f"No results database at {path}; run `codecbench run` first.")
    names = split_names(codec_names) or (list(chosen.codecs) if chosen else None)
    visual_names = split_names(image_names)
    n_visual = pick(n_visual, "images", 3)
    dataset = resolve_dataset(dataset_name, plugins.datasets().items)
    images = dataset.images(data_dir, download=False) if n_visual or visual_names else []
    out = out or Path("reports") / dataset.name.replace(":", "-").replace("/", "-")
    codecs = plugins.codecs().items
    with ResultStore(path) as store:
        index = build_report(store, out, dataset.name, images, codecs, target=pick(target, "bpp", 0.5),
                             anchor=pick(anchor, "anchor", None), n_visual=n_visual,
                             crop=pick(crop, "crop", 192), zoom=pick(zoom, "zoom", 2),
                             codec_names=names, log_bpp=pick(log_bpp, "log_bpp", None),
                             crop_at=crop_at, image_names=visual_names or None,
                             published=published, weights=weights)
    click.echo(f"Report written to {index}")


@hookimpl
def register_commands(cli: click.Group) -> None:
    cli.add_command(report_command)
