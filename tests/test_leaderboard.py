import math

import pandas as pd
import pytest

from codecbench.leaderboard import (
    closest_below,
    complete_points,
    curve_label,
    interpolate_log_bpp,
    leaderboard,
    mean_curve,
    metric_columns,
    summarize,
)


def rows() -> pd.DataFrame:
    base = dict(dataset="d", codec="c", codec_version="1", config="{}", error=None)
    return pd.DataFrame([
        {**base, "id": 1, "image": "a", "point": 10.0, "status": "ok", "bpp": 0.5, "psnr": 30.0},
        {**base, "id": 2, "image": "b", "point": 10.0, "status": "ok", "bpp": 1.5, "psnr": 34.0},
        {**base, "id": 3, "image": "c", "point": 10.0, "status": "failed", "bpp": None, "psnr": None},
        {**base, "id": 4, "image": "a", "point": 20.0, "status": "ok", "bpp": 2.0, "psnr": 40.0},
    ])


def test_means_over_successful_images_and_failure_counts() -> None:
    board = leaderboard(rows())
    first = board.iloc[0]
    assert first["point"] == 10.0 and first["n"] == 2 and first["failed"] == 1
    assert first["bpp"] == pytest.approx(1.0) and first["psnr"] == pytest.approx(32.0)
    assert list(board["point"]) == [10.0, 20.0]


def test_metric_columns() -> None:
    assert metric_columns(rows()) == ["psnr"]


def test_probe_points_stay_out_unless_a_run_measured_the_point_too() -> None:
    frame = rows().assign(probe=False)
    probes = pd.DataFrame([
        {**frame.iloc[0].to_dict(), "id": 5, "point": 15.0, "probe": True, "bpp": 1.0},  # probe only
        {**frame.iloc[0].to_dict(), "id": 6, "image": "c", "point": 20.0, "probe": True, "bpp": 2.2},
    ])
    frame = pd.concat([frame, probes], ignore_index=True)
    assert list(leaderboard(frame)["point"]) == [10.0, 20.0]
    assert leaderboard(frame).set_index("point").loc[20.0, "n"] == 2  # the run's point keeps its probe row
    assert list(leaderboard(frame, probes=True)["point"]) == [10.0, 15.0, 20.0]
    assert list(leaderboard(rows())["point"]) == [10.0, 20.0]  # frames without the flag


def test_curve_label_names_the_options_that_differ_from_the_defaults() -> None:
    defaults = {"chroma": "444", "encoder": "x265", "bpgenc": ""}
    assert curve_label("bpg", '{"bpgenc": "", "chroma": "444", "encoder": "x265"}', defaults) == "bpg"
    assert curve_label("bpg", {"chroma": "420", "encoder": "jctvc", "bpgenc": ""},
                       defaults) == "bpg[chroma=420,encoder=jctvc]"


def test_interpolation_is_linear_in_log_bpp_and_never_extrapolated() -> None:
    value, why = interpolate_log_bpp([0.1, 0.4], [30.0, 34.0], 0.2)
    assert value == pytest.approx(32.0) and why is None
    assert interpolate_log_bpp([0.1, 0.4], [30.0, 34.0], 0.4) == (34.0, None)
    value, why = interpolate_log_bpp([0.1, 0.4], [30.0, 34.0], 0.05)
    assert math.isnan(value) and "below the measured range (lowest mean point 0.1 bpp)" in why
    value, why = interpolate_log_bpp([0.1, 0.4], [30.0, 34.0], 0.5)
    assert math.isnan(value) and "above" in why
    value, why = interpolate_log_bpp([0.1], [math.nan], 0.1)
    assert math.isnan(value) and why == "no point measured on every image"


def test_mean_curve_keeps_points_measured_on_every_image() -> None:
    curve = mean_curve(rows(), ["a", "b"], ["psnr"])
    assert list(curve["point"]) == [10.0] and curve["psnr"][0] == pytest.approx(32.0)
    assert list(mean_curve(rows(), ["a"], ["psnr"])["point"]) == [10.0, 20.0]


def test_aggregation_helpers_live_here_and_stay_importable_from_compare() -> None:
    from codecbench import compare

    assert compare.closest_below is closest_below and compare.summarize is summarize
    two = rows()[rows()["image"] != "c"]
    board = complete_points(two, leaderboard(two))
    assert list(board["point"]) == [10.0]  # point 20 is measured on one image of two
    assert complete_points(rows(), leaderboard(rows())).empty  # image c failed at point 10
    assert list(complete_points(rows(), leaderboard(rows()), n_images=1)["point"]) == [20.0]
