"""The HTML report: built from the results store, then loaded in a real headless chromium."""

from __future__ import annotations

import hashlib

import math
import re
import shutil
import sqlite3
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import report_codecs
from report_codecs import Zip

from codecbench import Codec, Column, Metric, hookimpl
from codecbench.cli import cli
from codecbench.testing import synthetic_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def report(tmp_path: Path, registered_plugin) -> Path:
    """A report over two codecs at three points on three synthetic 160x224 images."""
    registered_plugin(report_codecs, "report-codecs")
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
    # jpeg444 vs the jpeg anchor: BD-rate in percent, or "-" with the reason beside it, and BD-PSNR.
    bd_row = re.search(r'<td class="text">jpeg444</td><td class="text">jpeg</td><td>([-+0-9.]+%|-)</td>'
                       r'<td>([-+0-9.]+)</td>(<td class="text wrap">([^<]*)</td>)?', html)
    assert bd_row and float(bd_row.group(2)) > 0
    if bd_row.group(1) == "-":
        assert "quality ranges do not overlap" in bd_row.group(4)
    assert "<td>10</td>" in html and "<td>10.00</td>" not in html  # points as typed
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
    # The crops are enlarged 2x on screen without smoothing.
    assert 'data-crop-rendering="pixelated"' in dom.stdout and 'data-crop-zoom="2"' in dom.stdout

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


# --- synthetic stores with toy codecs -----------------------------------------------------------

class ToyPlugin:
    def __init__(self, *codecs: Codec) -> None:
        self.codecs = codecs

    @hookimpl
    def register_codecs(self, register) -> None:
        for codec in self.codecs:
            register(codec)


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def write_images(folder: Path, arrays: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"img{i}.png")
    return folder


def noise(seed: int, size: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def section(html: str, anchor: str) -> str:
    """The page from heading ``id=anchor`` to the next h2."""
    start = html.index(f'<h2 id="{anchor}">')
    end = html.find("<h2", start + 1)
    return html[start:end if end > 0 else None]


def leaderboard_points(html: str, curve: str) -> list[str]:
    return re.findall(rf'<td class="text">{re.escape(curve)}</td><td>([^<]+)</td>', section(html, "leaderboard"))


def test_each_stored_configuration_is_its_own_curve_decoded_with_its_options(
        tmp_path: Path, registered_plugin) -> None:
    registered_plugin(report_codecs, "report-codecs")
    images = [synthetic_image(64, 96, seed=i) for i in range(2)]
    folder, db, out = write_images(tmp_path / "images", images), str(tmp_path / "r.sqlite"), tmp_path / "report"
    for offset in ("0", "64"):  # the same codec, points and images: only the options differ
        cli_ok("run", "-c", "zip", "-o", f"offset={offset}", "-d", f"folder:{folder}", "-p", "2,4,8",
               "-m", "psnr", "--db", db, "-q", "-j", "1")
    cli_ok("report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--bpp", "100",
           "--crop", "32", "--images", "2")
    html = (out / "index.html").read_text()
    # Labelled by the options that differ from the codec's defaults.
    assert leaderboard_points(html, "zip") == ["2", "4", "8"]
    assert leaderboard_points(html, "zip[offset=64]") == ["2", "4", "8"]
    svg = (out / "plots" / "rd-psnr.svg").read_text()
    assert "<!-- zip -->" in svg and "<!-- zip[offset=64] -->" in svg
    for i, image in enumerate(images):
        for offset, name in (("0", "zip"), ("64", "zip-offset-64")):
            codec = Zip().with_options(offset=offset)
            expected = codec.decode(codec.encode(image, 8))[16:48, 32:64]
            crop = np.asarray(Image.open(out / "crops" / f"img{i}-{name}.png"))
            assert np.array_equal(crop, expected), (i, offset)


def test_compare_probes_are_not_leaderboard_points(tmp_path: Path, registered_plugin) -> None:
    registered_plugin(report_codecs, "report-codecs")
    folder, db, out = write_images(tmp_path / "images", [noise(i) for i in range(3)]), str(tmp_path / "r.sqlite"), tmp_path / "report"
    common = ["-d", f"folder:{folder}", "--db", db, "-q"]
    cli_ok("run", "-c", "zip", "-p", "1,2,4,8", "-m", "psnr", "-j", "1", *common)
    cli_ok("compare", "--bpp", "14", "-c", "zip", "-m", "psnr", *common)
    from codecbench.results import ResultStore

    with ResultStore(db) as store:
        stored = sorted(set(store.frame()["point"]))
    assert stored == [1, 2, 4, 5, 6, 8]  # the bisection probed 5 and 6 on every image
    cli_ok("report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--bpp", "14", "--images", "1")
    html = (out / "index.html").read_text()
    assert leaderboard_points(html, "zip") == ["1", "2", "4", "8"]
    matched = section(html, "rate-matched")
    assert re.search(r'<td class="text">zip</td><td>3</td><td class="text">ok</td><td>1[23]\.\d+', matched)
    # A store written before the probe flag: the bare probe points (no metric) are still no points.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE results SET probe = 0")
    cli_ok("report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--bpp", "14", "--images", "1")
    assert leaderboard_points((out / "index.html").read_text(), "zip") == ["1", "2", "4", "8"]


def test_codecs_without_metrics_at_the_target_are_named_not_tabled(tmp_path: Path, registered_plugin) -> None:
    from codecbench.results import ResultStore, RowKey, config_json

    registered_plugin(report_codecs, "report-codecs")
    images = [synthetic_image(64, 96, seed=i) for i in range(2)]
    folder, db, out = write_images(tmp_path / "images", images), str(tmp_path / "r.sqlite"), tmp_path / "report"
    cli_ok("run", "-c", "zip", "-d", f"folder:{folder}", "-p", "2,4,8", "-m", "psnr", "--db", db, "-q", "-j", "1")
    codec = Zip().with_options(offset="32")
    with ResultStore(db) as store:  # another configuration, stored without metrics (bare probes)
        dataset = store.frame()["dataset"].iloc[0]
        for i, image in enumerate(images):
            for point in (2, 4, 8):
                data = codec.encode(image, point)
                store.put(RowKey(dataset, f"img{i}.png", "zip", codec.version(), float(point),
                                 config_json(codec.config)), run_id="probe", status="ok", height=64,
                          width=96, stream=data, bpp=8 * len(data) / (64 * 96))
    cli_ok("report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--bpp", "100", "--images", "0")
    matched = section((out / "index.html").read_text(), "rate-matched")
    assert '<td class="text">zip</td>' in matched
    assert '<td class="text">zip[offset=32]</td>' not in matched
    assert "zip[offset=32]: no metric stored at its matched points" in matched


def test_a_stream_that_cannot_be_decoded_is_skipped_and_named(tmp_path: Path, registered_plugin,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    registered_plugin(report_codecs, "report-codecs")
    folder = write_images(tmp_path / "images", [synthetic_image(64, 96, seed=i) for i in range(3)])
    db, out = tmp_path / "r.sqlite", tmp_path / "report"
    cli_ok("run", "-c", "zip", "-d", f"folder:{folder}", "-p", "2,8", "-m", "psnr", "--db", str(db), "-q", "-j", "1")
    # Streams that were stored so (checksums match) but do not decode: img0 truncated
    # (BitstreamError), img1 with a lying header (ValueError).
    with sqlite3.connect(db) as conn:
        for row_id, image, stream in conn.execute("SELECT id, image, stream FROM results").fetchall():
            bad = {"img0.png": b"\x00", "img1.png": stream[:1] + b"\x03\xe8" + stream[3:]}.get(image)
            if bad is not None:
                conn.execute("UPDATE results SET stream = ?, stream_sha256 = ? WHERE id = ?",
                             (bad, hashlib.sha256(bad).hexdigest(), row_id))
    cli_ok("report", "--db", str(db), "-d", f"folder:{folder}", "--out", str(out), "--bpp", "100", "--crop", "32")
    html = (out / "index.html").read_text()
    skipped = re.findall(r"<li>Not decoded: ([^<]+)</li>", html)
    assert len(skipped) == 2
    # Decoded in a guarded worker, which names the codec and the decoder's own error.
    assert skipped[0].startswith("img0.png, zip @ 8: zip could not decode the stored stream: "
                                 "BitstreamError: truncated zip stream")
    assert skipped[1].startswith("img1.png, zip @ 8: zip could not decode the stored stream: ValueError")
    assert (out / "crops" / "img2-zip.png").is_file() and not (out / "crops" / "img0-zip.png").exists()
    assert leaderboard_points(html, "zip") == ["2", "8"]

    # A codec whose version changed since the stream was stored still decodes it, and says so.
    monkeypatch.setattr(Zip, "version", lambda self: "2")
    cli_ok("report", "--db", str(db), "-d", f"folder:{folder}", "--out", str(out), "--bpp", "100", "--crop", "32")
    assert "; decoded by version 2 (stored by 0)" in (out / "index.html").read_text()


def test_one_failed_image_does_not_empty_the_leaderboard(image_folder: Path, tmp_path: Path,
                                                         registered_plugin) -> None:
    from toy_codecs import Broken, Quantizer

    registered_plugin(ToyPlugin(Broken(), Quantizer()), "toy-plugin")
    db = str(tmp_path / "r.sqlite")
    run = CliRunner().invoke(cli, ["run", "-c", "broken,quantizer", "-d", f"folder:{image_folder}",
                                   "-p", "2,8", "-m", "psnr", "--db", db, "-q", "-j", "1"])
    assert run.exit_code == 1  # broken fails on the 48-row image (img1)
    only_broken = tmp_path / "broken"
    cli_ok("report", "--db", db, "-d", f"folder:{image_folder}", "--out", str(only_broken), "-c", "broken",
           "--images", "0")
    html = (only_broken / "index.html").read_text()
    assert leaderboard_points(html, "broken") == ["2", "8"]
    assert '<p class="meta">2 images' in html and "img1.png (RuntimeError: cannot encode 48-row images" in html

    both = tmp_path / "both"
    cli_ok("report", "--db", db, "-d", f"folder:{image_folder}", "--out", str(both), "--images", "0")
    html = (both / "index.html").read_text()
    assert leaderboard_points(html, "quantizer") == ["2", "8"] and leaderboard_points(html, "broken") == []
    assert re.search(r"<li>broken: 2 point\(s\) measured on fewer than 3 images \(n = 2\).*failed on img1.png: "
                     r"RuntimeError: cannot encode 48-row images", html)


@pytest.mark.parametrize("command", ["report", "compare"])
@pytest.mark.parametrize("bpp", ["nan", "0", "-1", "inf"])
def test_a_target_that_is_not_a_positive_rate_is_refused(command: str, bpp: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [command, "--db", str(tmp_path / "none.sqlite"), "--bpp", bpp])
    assert result.exit_code == 2 and not (tmp_path / "none.sqlite").exists()
    assert "is not a positive number of bits per pixel" in result.output


def test_build_report_refuses_a_bad_target_too(tmp_path: Path) -> None:
    from codecbench.errors import CodecbenchError
    from codecbench.report.html import build_report
    from codecbench.results import ResultStore

    with ResultStore(tmp_path / "r.sqlite") as store, pytest.raises(CodecbenchError, match="Invalid target bpp nan"):
        build_report(store, tmp_path / "out", "kodak", [], {}, target=math.nan)


def test_an_anchor_without_a_curve_is_explained(report: Path, tmp_path: Path) -> None:
    db, folder = report.parent.parent / "r.sqlite", report.parent.parent / "images"
    out = tmp_path / "other"
    cli_ok("report", "--db", str(db), "-d", f"folder:{folder}", "--out", str(out), "--anchor", "bpg",
           "--images", "0")
    bd = section((out / "index.html").read_text(), "bd")
    assert "No BD-rates: the anchor &#39;bpg&#39; has no curve" in bd and "<table>" not in bd


def test_paper_preset_with_the_paper_codecs_that_are_stored(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "images", [synthetic_image(160, 224, seed=i) for i in range(2)])
    db, out = str(tmp_path / "r.sqlite"), tmp_path / "paper"
    common = ["-d", f"folder:{folder}", "-m", "psnr", "--db", db, "-q", "-j", "1"]
    cli_ok("run", "-c", "jpeg2000", "-p", "0.01,0.02,0.03,0.05,0.1", *common)
    cli_ok("run", "-c", "jpeg", "-p", "5,50", *common)
    cli_ok("report", "--preset", "paper", "--db", db, "-d", f"folder:{folder}", "--out", str(out))
    html = (out / "index.html").read_text()
    assert "Rate-matched comparison at &le; 0.03 bpp" in html
    assert "No stored results for: bpg, hevc-heif, aedc, hific, gan, ot, ot_gan." in html
    # On 160x224 images JPEG 2000's headers alone are above 0.03 bpp: its lowest point, flagged.
    assert re.search(r'<td class="text">jpeg2000</td><td>2</td><td class="text">\+3\d\.\d % OVER</td><td>0\.04',
                     section(html, "rate-matched"))
    assert ">jpeg<" not in html and not (out / "crops" / "img0-jpeg.png").exists()
    assert "bits per pixel (bpp, log scale)" in (out / "plots" / "rd-psnr.svg").read_text()
    assert Image.open(out / "crops" / "img0-jpeg2000.png").size == (128, 128)
    assert "width: 384px" in html and "(above target)" in html
    with Image.open(out / "visual-comparison.png") as figure:  # original + jpeg2000, 3x, two rows
        assert figure.size == (2 * (384 + 8) + 8, 2 * (384 + 36 + 8) + 8)
        tile = np.asarray(figure.convert("RGB"))[8:8 + 384, 8 + 392:8 + 392 + 384]
    assert np.array_equal(tile, np.repeat(np.repeat(np.asarray(Image.open(out / "crops" / "img0-jpeg2000.png")),
                                                    3, 0), 3, 1))

    # Explicit options win over the preset's.
    cli_ok("report", "--preset", "paper", "--bpp", "0.06", "--linear-bpp", "--db", db, "-d", f"folder:{folder}",
           "--out", str(out))
    html = (out / "index.html").read_text()
    assert re.search(r'<td class="text">jpeg2000</td><td>2</td><td class="text">ok</td><td>0\.0[45]',
                     section(html, "rate-matched"))
    assert "@ 0.05," in html
    assert "bits per pixel (bpp)<" in (out / "plots" / "rd-psnr.svg").read_text().replace(" -->", "<")


def test_captions_round_points_and_crops_can_be_placed() -> None:
    from codecbench.report.visual import crop, enlarge, point_text, rate_text

    assert point_text(0.49883178710937504) == "0.4988" and point_text(28.0) == "28" and point_text(26.15185546875) == "26.15"
    assert rate_text(0.031234) == "0.03123"
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    assert np.array_equal(crop(image, 4), image[3:7, 4:8])  # centred
    assert np.array_equal(crop(image, 4, at=(1, 2)), image[2:6, 1:5])  # x, y of the top-left corner
    assert np.array_equal(crop(image, 4, at=(50, 50)), image[6:10, 8:12])  # clamped into the image
    big = enlarge(image, 3)
    assert big.shape == (30, 36, 3) and (big[:3, :3] == image[0, 0]).all() and (big[3:6, 3:6] == image[1, 1]).all()


def test_chosen_images_and_crop_position(report: Path, tmp_path: Path) -> None:
    db, folder = report.parent.parent / "r.sqlite", report.parent.parent / "images"
    out = tmp_path / "picked"
    cli_ok("report", "--db", str(db), "-d", f"folder:{folder}", "--out", str(out), "--bpp", "2.5",
           "--image", "img2", "--crop", "32", "--crop-at", "10,20", "--zoom", "4")
    assert sorted(p.name for p in (out / "crops").iterdir()) == ["img2-jpeg.png", "img2-jpeg444.png", "img2-original.png"]
    original = np.asarray(Image.open(out / "crops" / "img2-original.png"))
    assert np.array_equal(original, synthetic_image(160, 224, seed=2)[20:52, 10:42])
    assert "width: 128px" in (out / "index.html").read_text()
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "-d", f"folder:{folder}", "--out", str(out),
                                      "--image", "nope"])
    assert result.exit_code == 1 and "Images not in dataset" in result.output and "nope" in result.output


def test_crop_files_are_unique_per_image_and_url_encoded(tmp_path: Path) -> None:
    """``x.png`` and ``x.jpg`` get their own crops; ``#``, ``?`` and ``%`` in a name are
    percent-encoded in the page, so each tile shows its own file."""
    from urllib.parse import unquote

    folder = tmp_path / "images"
    folder.mkdir()
    names = ["x.png", "x.jpg", "a#b?c%d.png"]
    for i, name in enumerate(names):
        Image.fromarray(synthetic_image(64, 64, seed=i)).save(folder / name, quality=100)
    db, out = tmp_path / "r.sqlite", tmp_path / "report"
    cli_ok("run", "-c", "jpeg", "-d", f"folder:{folder}", "-p", "90", "-m", "psnr", "--db", str(db), "-q", "-j", "1")
    cli_ok("report", "--db", str(db), "-d", f"folder:{folder}", "--out", str(out), "--bpp", "100",
           "--crop", "32", "--images", "3")
    sources = re.findall(r'<img src="(crops/[^"]+)"', (out / "index.html").read_text())
    assert len(sources) == 6 and len(set(sources)) == 6
    assert "crops/a%23b%3Fc%25d-original.png" in sources
    assert all((out / unquote(src)).is_file() for src in sources)
    originals = [np.asarray(Image.open(out / unquote(s))) for s in sources if s.endswith("-original.png")]
    assert not np.array_equal(originals[0], originals[1])  # x.png and x.jpg: two different crops


# --- a plugin's metric: plotted, tabled and BD-rated from its declaration -------------------------

class MeanAbsoluteError(Metric):
    """A metric no codecbench module knows by name: mean absolute error, lower is better."""

    name = "mae"
    description = "mean absolute error in 8-bit levels"
    columns = {"mae": Column("MAE", "levels", higher_is_better=False)}

    def compute(self, original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        return {"mae": float(np.abs(original.astype(float) - reconstruction.astype(float)).mean())}

    def note(self, sizes) -> str:
        return f"MAE: mean absolute error over {len(sizes)} images."


class MAEPlugin:
    @hookimpl
    def register_metrics(self, register) -> None:
        register(MeanAbsoluteError())


def test_a_plugin_metric_is_plotted_tabled_and_bd_rated(tmp_path: Path, registered_plugin) -> None:
    registered_plugin(report_codecs, "report-codecs")
    registered_plugin(MAEPlugin(), "mae-plugin")
    folder = write_images(tmp_path / "images", [synthetic_image(64, 96, seed=i) for i in range(2)])
    db, out = str(tmp_path / "r.sqlite"), tmp_path / "report"
    for offset in ("0", "100"):  # two curves of one codec: the offset changes what zlib can pack
        cli_ok("run", "-c", "zip", "-o", f"offset={offset}", "-d", f"folder:{folder}", "-p", "2,3,4,5,6",
               "-m", "psnr,mae", "--db", db, "-q", "-j", "1")
    cli_ok("report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--anchor", "zip",
           "--images", "0")
    html = (out / "index.html").read_text()
    assert (out / "plots" / "rd-mae.png").is_file() and "bpp vs MAE" in html
    assert '<th class="">mae</th>' in section(html, "leaderboard")
    bd = section(html, "bd")
    assert '<th class="">BD-rate (MAE)</th><th class="">BD-MAE (levels)</th>' in bd
    row = re.search(r'<td class="text">zip\[offset=100\]</td><td class="text">zip</td>(?:<td>[^<]*</td>){2}'
                    r'<td>([-+0-9.]+)%</td><td>([-+0-9.]+)</td>', bd)
    assert row, bd
    # The same values as BD on the MAE column declared "lower is better", and BD-MAE says how
    # much lower (better) or higher the error is at equal rate.
    from codecbench.bjontegaard import bd_table
    from codecbench.leaderboard import leaderboard
    from codecbench.report.points import curve_labels, with_curves
    from codecbench.results import ResultStore

    with ResultStore(db) as store:
        rows = store.frame()
    board = with_curves(leaderboard(rows), curve_labels(rows, {"zip": Zip.options}))
    table = bd_table(board, "zip", {"mae": MeanAbsoluteError.columns["mae"]}, by="curve").set_index("curve")
    assert float(row.group(1)) == pytest.approx(table.loc["zip[offset=100]", "bd-rate-mae"], abs=0.006)
    assert float(row.group(2)) == pytest.approx(table.loc["zip[offset=100]", "bd-mae"], abs=0.0006)
    assert table.loc["zip[offset=100]", "bd-rate-mae"] != 0
    assert "MAE: mean absolute error over 2 images." in html


# --- published curves and a user's own checkpoints ------------------------------------------------

def test_a_published_curve_is_drawn_and_can_be_the_bd_anchor(tmp_path: Path, registered_plugin) -> None:
    import pandas as pd

    from codecbench.leaderboard import leaderboard
    from codecbench.results import ResultStore

    registered_plugin(report_codecs, "report-codecs")
    folder = write_images(tmp_path / "images", [synthetic_image(64, 96, seed=i) for i in range(2)])
    db, out = str(tmp_path / "r.sqlite"), tmp_path / "report"
    cli_ok("run", "-c", "zip", "-d", f"folder:{folder}", "-p", "2,3,4,5,6", "-m", "psnr", "--db", db, "-q", "-j", "1")
    with ResultStore(db) as store:
        board = leaderboard(store.frame())
    paper = tmp_path / "paper-zip.csv"  # the same PSNR at 1.25x the rate: zip saves 20%
    paper.write_text("# a published curve\n" + pd.DataFrame(
        {"point": board["point"], "bpp": board["bpp"] * 1.25, "psnr": board["psnr"]}).to_csv(index=False))
    cli_ok("report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--images", "0",
           "--anchor", str(paper))
    html = (out / "index.html").read_text()
    bd = section(html, "bd")
    assert "Bjontegaard deltas against paper-zip (published)" in bd and "a published curve, not measured here" in bd
    assert '<td class="text">zip</td><td class="text">paper-zip (published)</td><td>-20.00%</td>' in bd
    assert "paper-zip (published)" in legend_texts((out / "plots" / "rd-psnr.svg").read_text())
    assert "published curves, not measured here (paper-zip (published) from paper-zip.csv)" in html
    assert "paper-zip" not in section(html, "leaderboard")  # published points are not measured points


def legend_texts(svg: str) -> list[str]:
    return re.findall(r"<!-- (.*?) -->", svg)


def test_a_report_of_ones_own_checkpoint_finds_it_by_sha256_or_names_it(tmp_path: Path,
                                                                        registered_plugin) -> None:
    pytest.importorskip("compressai")
    import report_learned
    from learned_toy import save_toy_checkpoint, toy_codec

    from codecbench.files import sha256_of

    registered_plugin(report_learned, "report-learned")
    image = synthetic_image(64, 64, seed=3)
    folder = write_images(tmp_path / "images", [image])
    trained = save_toy_checkpoint(tmp_path / "run" / "model.pt", seed=0)
    digest = sha256_of(trained)
    db, out = str(tmp_path / "r.sqlite"), tmp_path / "report"
    cli_ok("run", "-c", "toy-learned", "--weights", str(trained), "-d", f"folder:{folder}", "-m", "psnr",
           "--db", db, "-q", "-j", "1")
    report = ["report", "--db", db, "-d", f"folder:{folder}", "--out", str(out), "--bpp", "100",
              "--crop", "32", "--images", "1"]
    cli_ok(*report)  # the checkpoint is where it was: decoded with it
    crops = sorted(p.name for p in (out / "crops").iterdir())
    assert len(crops) == 2, crops  # the original and the model's crop
    # Retrained in place and the original moved away: the report names the file it needs.
    moved = tmp_path / "kept" / "model.pt"
    moved.parent.mkdir()
    trained.rename(moved)
    save_toy_checkpoint(trained, seed=1)
    cli_ok(*report)
    skipped = re.findall(r"<li>Not decoded: ([^<]+)</li>", (out / "index.html").read_text())
    assert len(skipped) == 1, skipped
    assert f"checkpoint {trained} (sha256 {digest}; the file there now has sha256" in skipped[0]
    assert "`codecbench report --weights FILE`" in skipped[0]
    # Given the moved file, it decodes the stored stream with it, the same image as before.
    shutil.rmtree(out)
    cli_ok(*report, "--weights", str(moved))
    html = (out / "index.html").read_text()
    assert "Not decoded" not in html
    tile = next(p for p in (out / "crops").iterdir() if "original" not in p.name)
    decoded = toy_codec(moved).decode(toy_codec(moved).encode(image, 1))
    assert np.array_equal(np.asarray(Image.open(tile)), decoded[16:48, 16:48])
