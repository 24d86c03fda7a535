"""The HTML report: built from the results store, then loaded in a real headless chromium."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench import hookimpl, plugins
from codecbench.cli import cli
from codecbench.testing import synthetic_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


class JPEG444Plugin:
    """A second codec for the BD table: JPEG without chroma subsampling, under its own name."""

    def __init__(self) -> None:
        base = type(plugins.codecs().get("jpeg"))
        self.codec_class = type("JPEG444", (base,), {
            "name": "jpeg444", "options": {**base.options, "subsampling": "444"}})

    @hookimpl
    def register_codecs(self, register) -> None:
        register(self.codec_class())


@pytest.fixture
def report(tmp_path: Path, registered_plugin) -> Path:
    """A report over two codecs at three points on three synthetic 160x224 images."""
    registered_plugin(JPEG444Plugin(), "jpeg444-plugin")
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(synthetic_image(160, 224, seed=i)).save(folder / f"img{i}.png")
    db = tmp_path / "r.sqlite"
    run = CliRunner().invoke(cli, ["run", "-c", "jpeg,jpeg444", "-d", f"folder:{folder}",
                                   "-p", "10,40,70,90", "-m", "psnr", "--db", str(db), "-q", "-j", "1"])
    assert run.exit_code == 0, run.output
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "-d", f"folder:{folder}",
                                      "--out", str(out), "--bpp", "2.5", "--images", "2", "--crop", "96"])
    assert result.exit_code == 0, result.output
    return out / "index.html"


def test_report_folder_has_tables_plots_and_crops(report: Path) -> None:
    html = report.read_text()
    out = report.parent
    for heading in ("Rate-matched comparison at &le; 2.5 bpp", "Bjontegaard deltas against jpeg",
                    "Leaderboard", "Runs, configuration and versions", "Visual comparison"):
        assert heading in html
    assert (out / "plots" / "rd-psnr.png").is_file() and (out / "plots" / "rd-psnr.svg").is_file()
    crops = sorted(p.name for p in (out / "crops").iterdir())
    assert crops == ["img0-jpeg.png", "img0-jpeg444.png", "img0-original.png",
                     "img1-jpeg.png", "img1-jpeg444.png", "img1-original.png"]
    assert Image.open(out / "crops" / "img0-jpeg.png").size == (96, 96)
    # jpeg444 vs the jpeg anchor: BD-rate (may be "-" where the PSNR ranges do not overlap), BD-PSNR.
    bd_row = re.search(r'<td class="text">jpeg444</td><td class="text">jpeg</td><td>([-0-9.]+)</td>'
                       r'<td>([-0-9.]+)</td>', html)
    assert bd_row and float(bd_row.group(2)) > 0
    for src in re.findall(r'src="([^"]+)"', html):
        assert (out / src).is_file(), src
    assert '<span class="ci">&plusmn;' in html and "&lt;span" not in html  # half-widths are markup


def test_decoded_crop_is_the_stored_reconstruction(report: Path) -> None:
    crop = np.asarray(Image.open(report.parent / "crops" / "img0-original.png"))
    original = synthetic_image(160, 224, seed=0)
    assert np.array_equal(crop, original[32:128, 64:160])
    decoded = np.asarray(Image.open(report.parent / "crops" / "img0-jpeg.png"))
    assert decoded.shape == crop.shape and not np.array_equal(decoded, crop)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/setup.sh installs it "
                                              "with apt-get); the browser test needs it")
def test_page_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
                   report.as_uri(), profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r'<body data-images="(\d+)" data-images-loaded="(\d+)"', dom.stdout)
    assert body, "the page's load handler did not run"
    assert int(body.group(1)) > 0 and body.group(1) == body.group(2), "some images did not load"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console

    shot = tmp_path / "page.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars",
                      "--virtual-time-budget=10000", report.as_uri(), profile=tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 20 and len(np.unique(pixels)) > 50  # tables, plots and crops, not blank


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_a_missing_image_is_caught_by_the_browser_check(report: Path, tmp_path: Path) -> None:
    (report.parent / "plots" / "rd-psnr.png").unlink()
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", report.as_uri(),
                   profile=tmp_path / "profile")
    body = re.search(r'<body data-images="(\d+)" data-images-loaded="(\d+)"', dom.stdout)
    assert body and int(body.group(2)) == int(body.group(1)) - 1


def test_points_not_measured_on_every_image_stay_out_of_curves_and_tables() -> None:
    import pandas as pd

    from codecbench.leaderboard import leaderboard
    from codecbench.report.html import complete_points

    base = dict(dataset="d", codec="c", codec_version="1", config="{}", status="ok", error=None)
    rows = pd.DataFrame([
        {**base, "image": "a", "point": 10.0, "bpp": 0.1, "psnr": 25.0, "lpips": 0.3},
        {**base, "image": "b", "point": 10.0, "bpp": 0.2, "psnr": 27.0, "lpips": None},
        {**base, "image": "a", "point": 20.0, "bpp": 0.3, "psnr": 29.0, "lpips": 0.2},
        {**base, "image": "b", "point": 20.0, "bpp": 0.4, "psnr": 31.0, "lpips": 0.1},
        {**base, "image": "a", "point": 15.0, "bpp": 0.2, "psnr": None, "lpips": None},  # a compare probe
    ])
    board = complete_points(rows, leaderboard(rows, confidence=0.95))
    assert list(board["point"]) == [10.0, 20.0]
    assert list(board["psnr"]) == [26.0, 30.0]
    assert math.isnan(board["lpips"][0]) and math.isnan(board["lpips-ci"][0]) and board["lpips"][1] == pytest.approx(0.15)
