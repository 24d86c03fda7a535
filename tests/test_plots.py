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
