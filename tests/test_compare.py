"""Rate-matched comparison with the JPEG codec on small synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codecbench import plugins
from codecbench.cli import cli
from codecbench.compare import closest_below, rate_matched
from codecbench.dataset import resolve_dataset
from codecbench.image import read_image
from codecbench.results import ResultStore
from codecbench.runner import bits_per_pixel


def jpeg():
    return plugins.codecs().get("jpeg")


def bpp_at(codec, image, point) -> float:
    return bits_per_pixel(codec.encode(image, point), *image.shape[:2])


def test_each_image_gets_the_largest_point_not_above_the_target(image_folder: Path, tmp_path: Path) -> None:
    codec = jpeg()
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    images = dataset.images()
    metrics = [plugins.metrics().get("psnr")]
    with ResultStore(tmp_path / "r.sqlite") as store:
        result = rate_matched(store, [codec], dataset, images, 3.5, metrics)
        assert not result.failures and result.unreachable.empty
        assert len(result.matches) == len(images)
        for match in result.matches.itertuples():
            image = read_image(image_folder / match.image)
            assert match.bpp <= 3.5
            assert match.bpp == pytest.approx(bpp_at(codec, image, int(match.point)))
            if match.point < 95:
                assert bpp_at(codec, image, int(match.point) + 1) > 3.5
            assert match.psnr > 0
        row = result.table.iloc[0]
        assert row["codec"] == "jpeg" and row["n"] == len(images)
        assert row["bpp"] == pytest.approx(result.matches["bpp"].mean())
        stored = len(store.frame())
        again = rate_matched(store, [codec], dataset, images, 3.5, metrics)
        assert len(store.frame()) == stored
        assert again.table["bpp"].tolist() == result.table["bpp"].tolist()


def test_a_codec_that_cannot_reach_the_target_reports_its_lowest_bpp(
    image_folder: Path, tmp_path: Path
) -> None:
    codec = jpeg()
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    images = dataset.images()
    with ResultStore(tmp_path / "r.sqlite") as store:
        result = rate_matched(store, [codec], dataset, images, 0.01, [])
    assert result.table.empty
    (row,) = result.unreachable.to_dict("records")
    lowest = [bpp_at(codec, read_image(ref.path), codec.points[0]) for ref in images]
    assert row["codec"] == "jpeg" and row["images_above_target"] == len(images)
    assert row["lowest_bpp"] == pytest.approx(sum(lowest) / len(lowest))


def test_discrete_points_are_searched_too(image_folder: Path, tmp_path: Path) -> None:
    base = type(jpeg())

    class DiscreteJPEG(base):
        name = "jpeg-discrete"
        points = (10, 30, 50, 70, 90)
        point_range = None

    codec = DiscreteJPEG()
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    images = dataset.images()
    with ResultStore(tmp_path / "r.sqlite") as store:
        result = rate_matched(store, [codec], dataset, images, 4.0, [])
    for match in result.matches.itertuples():
        image = read_image(image_folder / match.image)
        assert match.point in codec.points and match.bpp <= 4.0
        higher = [p for p in codec.points if p > match.point]
        assert not higher or bpp_at(codec, image, higher[0]) > 4.0


def test_closest_below_uses_stored_rows_only(image_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}",
                                      "-p", "10,50,90", "-m", "psnr", "--db", str(db), "-q"])
    assert result.exit_code == 0, result.output
    rows = ResultStore(db).frame()
    chosen = closest_below(rows, 1.0)
    assert len(chosen) == rows["image"].nunique()
    for row in chosen.itertuples():
        same = rows[rows["image"] == row.image]
        below = same[same["bpp"] <= 1.0]
        assert row.bpp == (below["bpp"].max() if len(below) else same["bpp"].min())
        assert row.above_target == below.empty


def test_cli_compare_table_and_json(image_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    args = ["compare", "--bpp", "3.5", "-c", "jpeg", "-d", f"folder:{image_folder}", "-m", "psnr",
            "--db", str(db), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "at <= 3.5 bpp (3 images, best psnr first)" in result.output and "jpeg" in result.output
    rows = json.loads(CliRunner().invoke(cli, args + ["--format", "json"]).stdout)
    assert rows[0]["codec"] == "jpeg" and rows[0]["bpp"] <= 3.5 and "psnr-ci" in rows[0]
    low = CliRunner().invoke(cli, ["compare", "--bpp", "0.01", "-c", "jpeg", "-d",
                                   f"folder:{image_folder}", "--db", str(db), "-q"])
    assert low.exit_code == 0 and "jpeg: cannot reach 0.01 bpp on 3 image(s)" in low.output


def test_cli_compare_ranks_codecs_by_the_first_metric(image_folder: Path, tmp_path: Path) -> None:
    args = ["compare", "--bpp", "3.5", "-c", "jpeg,jpeg2000", "-d", f"folder:{image_folder}", "-m", "psnr",
            "--db", str(tmp_path / "r.sqlite"), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "at <= 3.5 bpp (3 images, best psnr first)" in result.output
    rows = json.loads(CliRunner().invoke(cli, args + ["--format", "json"]).stdout)
    assert len(rows) == 2 and rows[0]["psnr"] >= rows[1]["psnr"]


def test_ties_prefer_the_measured_point_and_partial_means_are_not_shown() -> None:
    import math

    import pandas as pd

    from codecbench.compare import summarize

    base = dict(codec="c", codec_version="1", config="{}", status="ok")
    rows = pd.DataFrame([
        {**base, "image": "a", "point": 36.0, "bpp": 0.4, "psnr": 30.0, "lpips": 0.2},
        {**base, "image": "a", "point": 37.0, "bpp": 0.4, "psnr": None, "lpips": None},  # same bytes
        {**base, "image": "b", "point": 20.0, "bpp": 0.3, "psnr": 28.0, "lpips": None},
    ])
    chosen = closest_below(rows, 0.5).assign(family="traditional")
    assert list(chosen["point"]) == [36.0, 20.0]
    table, _ = summarize(rows, chosen[["codec", "family", "image", "point", "codec_version", "config"]],
                         ["psnr", "lpips"])
    assert table["psnr"][0] == 29.0 and math.isnan(table["lpips"][0]) and math.isnan(table["lpips-ci"][0])
