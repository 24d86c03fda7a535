"""RD and rate-perception plots: real PNG and SVG files with one line per codec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from codecbench.plots import curve_frame, plot_all

RATES = [0.1, 0.3, 0.6, 1.2]


def board() -> pd.DataFrame:
    rows = []
    for codec, shift in (("jpeg", 0.0), ("toy-learned", 2.0)):
        for i, bpp in enumerate(RATES):
            rows.append({"dataset": "kodak", "codec": codec, "point": i, "bpp": bpp,
                         "psnr": 25 + 5 * np.log2(bpp / 0.1) + shift, "lpips": 0.5 / (i + 1),
                         "fid": 80 / (i + 1)})
    return pd.DataFrame(rows)


def test_writes_png_and_svg_for_the_metrics_present(tmp_path: Path) -> None:
    plots = plot_all(board(), {"jpeg": "traditional", "toy-learned": "learned"}, tmp_path, "kodak")
    assert [p.metric for p in plots] == ["psnr", "lpips", "fid"]
    for plot in plots:
        png, svg = plot.files["png"], plot.files["svg"]
        with Image.open(png) as image:
            assert image.width > 400 and image.height > 300
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # not blank
        text = svg.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        assert "jpeg" in text and "toy-learned" in text  # legend entries, one per codec


def test_family_comes_from_the_codec_not_its_name() -> None:
    frame = curve_frame(board(), {"jpeg": "learned"})
    assert set(frame.loc[frame["codec"] == "jpeg", "family"]) == {"learned"}
    assert set(frame.loc[frame["codec"] == "toy-learned", "family"]) == {"unknown"}


def test_a_codec_keeps_its_colour_in_every_plot(tmp_path: Path) -> None:
    from codecbench.plots import codec_colors

    frame = board()
    frame.loc[frame["codec"] == "jpeg", "lpips"] = np.nan  # the LPIPS plot shows toy-learned only
    colors = codec_colors(frame["codec"])
    assert colors == codec_colors(list(reversed(frame["codec"]))) and len(set(colors.values())) == 2
    plots = {p.metric: p for p in plot_all(frame, {}, tmp_path)}
    rgb = "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in colors["toy-learned"]))
    assert rgb in plots["lpips"].files["svg"].read_text() and rgb in plots["psnr"].files["svg"].read_text()


def legend_texts(svg: str) -> list[str]:
    """The text items of a matplotlib SVG (each is written with its string in a comment)."""
    import re

    return re.findall(r"<!-- (.*?) -->", svg)


def test_the_legend_lists_curves_only_without_codec_or_family_headings(tmp_path: Path) -> None:
    plots = plot_all(board(), {"jpeg": "traditional", "toy-learned": "learned"}, tmp_path, "kodak")
    texts = legend_texts(plots[0].files["svg"].read_text())
    assert "jpeg" in texts and "toy-learned" in texts
    assert "codec" not in texts and "family" not in texts


def test_curves_with_other_options_are_separate_lines_with_their_labels(tmp_path: Path) -> None:
    frame = board()
    frame["curve"] = frame["codec"]
    other = frame[frame["codec"] == "jpeg"].assign(curve="jpeg (subsampling=444)", psnr=lambda f: f["psnr"] + 1)
    plots = plot_all(pd.concat([frame, other]), {}, tmp_path)
    texts = legend_texts(plots[0].files["svg"].read_text())
    assert {"jpeg", "jpeg (subsampling=444)", "toy-learned"} <= set(texts)


def axis_limits(plot_stem: Path, **kwargs: object) -> tuple[float, float, str]:
    """Draw the plots of :func:`board` (rates times ``scale``) and return the x limits and scale."""
    import matplotlib.pyplot as plt

    from codecbench import plots

    captured = {}
    original = plt.close

    def keep(fig: object) -> None:
        ax = fig.axes[0]
        captured.update(limits=ax.get_xlim(), scale=ax.get_xscale())
        original(fig)

    frame = board()
    frame["bpp"] *= kwargs.pop("scale", 1.0)
    plt.close = keep
    try:
        plots.plot_all(frame, {}, plot_stem, **kwargs)
    finally:
        plt.close = original
    return (*captured["limits"], captured["scale"])


def test_low_rates_get_a_log_bpp_axis_that_starts_at_the_lowest_rate(tmp_path: Path) -> None:
    low, high, scale = axis_limits(tmp_path / "low", scale=0.3, target=0.03)  # rates 0.03 .. 0.36
    assert scale == "log" and 0.025 < low < 0.03 and 0.36 < high < 0.42
    _, _, scale = axis_limits(tmp_path / "target", target=0.05)  # lowest rate 0.1, but a low target
    assert scale == "log"
    low, _, scale = axis_limits(tmp_path / "high", scale=4.0, target=0.5)  # rates 0.4 .. 4.8
    assert scale == "linear" and 0.2 < low < 0.4
    _, _, scale = axis_limits(tmp_path / "forced", scale=4.0, target=0.5, log_bpp=True)
    assert scale == "log"
    svg = (tmp_path / "forced" / "rd-psnr.svg").read_text()
    assert "bits per pixel (bpp, log scale)" in svg


def test_axis_labels_and_plotted_columns_come_from_the_metric_declarations(tmp_path: Path) -> None:
    from codecbench.metric import Column

    frame = board().assign(sharpness=lambda f: f["bpp"] * 2, restated=lambda f: f["bpp"])
    columns = {"sharpness": Column("Sharpness", "px"), "restated": Column("R", plotted=False),
               "fid": Column("FID", higher_is_better=False)}
    plots = plot_all(frame, {}, tmp_path, "faces", columns=columns)
    assert [(p.metric, p.title) for p in plots] == [("sharpness", "faces: bpp vs Sharpness"),
                                                    ("fid", "faces: bpp vs FID")]
    assert "Sharpness (px)" in legend_texts(plots[0].files["svg"].read_text())
    # The registered FID says its direction, not a patch size that small images do not have.
    registered = {p.metric: p for p in plot_all(board(), {}, tmp_path / "registered")}
    assert "FID (lower is better)" in legend_texts(registered["fid"].files["svg"].read_text())
