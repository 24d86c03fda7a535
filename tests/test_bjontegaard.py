"""Bjontegaard deltas against hand-computable cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from codecbench.bjontegaard import bd_quality, bd_rate, bd_table, default_anchor

RATES = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
PSNR = np.array([26.0, 29.0, 32.0, 35.5, 39.0])
# PSNR linear in log10(rate): every piecewise cubic through its points is that line.
LINE = 30 + 10 * np.log10(RATES / 0.5)


def test_a_curve_shifted_by_a_rate_factor_has_that_bd_rate() -> None:
    assert bd_rate(RATES, PSNR, RATES * 0.8, PSNR) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(RATES, PSNR, RATES * 1.5, PSNR) == pytest.approx(50.0, abs=1e-9)


def test_a_curve_shifted_by_a_quality_offset_has_that_bd_psnr() -> None:
    assert bd_quality(RATES, PSNR, RATES, PSNR + 1.25) == pytest.approx(1.25, abs=1e-9)
    assert bd_quality(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-12)


def test_only_the_overlapping_range_counts() -> None:
    # The test codec covers only the upper part of the anchor's range, at half the rate there.
    assert bd_rate(RATES, LINE, RATES[2:] * 0.5, LINE[2:]) == pytest.approx(-50.0, abs=1e-9)
    # Half the rate on a 10 dB/decade line is 10 log10(2) dB more at equal rate.
    assert bd_quality(RATES, LINE, RATES[2:] * 0.5, LINE[2:]) == pytest.approx(10 * np.log10(2))


def test_too_few_points_or_no_overlap_give_nan() -> None:
    assert math.isnan(bd_rate(RATES, PSNR, [0.5], [30.0]))
    assert math.isnan(bd_rate(RATES, PSNR, RATES, PSNR + 100))


def test_table_against_the_default_anchor() -> None:
    rows = []
    for codec, factor, offset in (("jpeg", 1.0, 0.0), ("better", 0.5, 0.0), ("sharper", 1.0, 0.5)):
        for rate, psnr in zip(RATES, LINE):
            rows.append({"dataset": "kodak", "codec": codec, "bpp": rate * factor,
                         "psnr": psnr + offset, "ms-ssim-db": psnr / 2 + offset})
    table = bd_table(pd.DataFrame(rows)).set_index("codec")
    assert list(table.index) == ["better", "sharper"] and set(table["anchor"]) == {"jpeg"}
    assert table.loc["better", "bd-rate-psnr"] == pytest.approx(-50.0)
    assert table.loc["better", "bd-psnr"] == pytest.approx(10 * np.log10(2))
    assert table.loc["sharper", "bd-psnr"] == pytest.approx(0.5)
    assert table.loc["sharper", "bd-ms-ssim-db"] == pytest.approx(0.5)
    assert table.loc["sharper", "bd-rate-psnr"] < 0


def test_default_anchor_prefers_hevc_then_jpeg() -> None:
    assert default_anchor(["webp", "jpeg", "hevc-heif"]) == "hevc-heif"
    assert default_anchor(["webp", "jpeg"]) == "jpeg"
    assert default_anchor(["webp", "avif"]) == "avif"


def test_dominated_points_are_left_out_instead_of_failing() -> None:
    # A point with more bits and lower quality than its neighbour (a non-monotone curve) would stop
    # the interpolation ("x must be strictly increasing"); it is dominated, so it is dropped.
    rates = np.append(RATES, RATES[2] * 1.01)
    psnr = np.append(PSNR, PSNR[2] - 1.0)
    assert bd_rate(RATES, PSNR, rates, psnr) == pytest.approx(0.0, abs=1e-9)
    assert bd_quality(RATES, PSNR, rates, psnr) == pytest.approx(0.0, abs=1e-9)


def test_a_missing_value_comes_with_its_reason() -> None:
    from codecbench.bjontegaard import bd_reason

    assert bd_reason(RATES, PSNR, RATES * 0.8, PSNR) == ""
    assert bd_reason(RATES, PSNR, RATES, PSNR + 100, unit="dB") == (
        "quality ranges do not overlap (anchor 26-39 dB, this 126-139 dB)")
    assert bd_reason(RATES, PSNR, RATES * 100, PSNR).startswith("rate ranges do not overlap")
    assert bd_reason(RATES, PSNR, [0.5], [30.0]) == "fewer than 2 points where quality rises with rate"
    assert bd_reason([0.5], [30.0], RATES, PSNR).startswith("the anchor has fewer than 2 points")


def test_table_by_curve_tells_options_apart_and_notes_missing_values() -> None:
    rows = []
    for curve, factor, offset in (("bpg (encoder=x265)", 1.0, 0.0), ("bpg (encoder=jctvc)", 0.9, 0.0),
                                  ("ot", 1.0, 100.0)):
        for rate, psnr in zip(RATES, LINE):
            rows.append({"dataset": "kodak", "codec": curve.split()[0], "curve": curve,
                         "bpp": rate * factor, "psnr": psnr + offset})
    table = bd_table(pd.DataFrame(rows), "bpg (encoder=x265)", by="curve").set_index("curve")
    assert list(table.index) == ["bpg (encoder=jctvc)", "ot"]
    assert table.loc["bpg (encoder=jctvc)", "bd-rate-psnr"] == pytest.approx(-10.0)
    assert table.loc["bpg (encoder=jctvc)", "note"] == ""
    assert math.isnan(table.loc["ot", "bd-rate-psnr"])
    assert table.loc["ot", "note"].startswith("PSNR: quality ranges do not overlap")
    # A codec name as the anchor picks that codec's first curve.
    assert set(bd_table(pd.DataFrame(rows), "bpg", by="curve")["anchor"]) == {"bpg (encoder=jctvc)"}


def test_columns_where_lower_is_better_are_fitted_in_their_direction() -> None:
    from codecbench.metric import Column

    # "error" falls linearly in log10(rate); the test curve reaches each error at 0.8x the rate
    # and, at equal rate, has 0.05 less error: both deltas say it is better.
    error = 0.5 - 0.1 * np.log10(RATES / 0.1)
    rows = [{"dataset": "d", "codec": codec, "bpp": rate * factor, "error": value, "psnr": value}
            for codec, factor in (("anchor", 1.0), ("test", 0.8)) for rate, value in zip(RATES, error)]
    columns = {"error": Column("Error", higher_is_better=False), "psnr": Column("PSNR", "dB", bd=False)}
    table = bd_table(pd.DataFrame(rows), "anchor", columns).set_index("codec")
    assert list(table.columns) == ["dataset", "anchor", "bd-rate-error", "bd-error", "note"]  # not psnr: bd=False
    assert table.loc["test", "bd-rate-error"] == pytest.approx(-20.0, abs=1e-9)
    assert table.loc["test", "bd-error"] == pytest.approx(0.1 * math.log10(0.8), abs=1e-9)
    assert table.loc["test", "bd-error"] < 0 and table.loc["test", "note"] == ""
    # An error that rises with rate is no curve to fit, and the note says so in its direction.
    flipped = pd.DataFrame(rows).assign(error=lambda f: -f["error"])
    note = bd_table(flipped, "anchor", columns).set_index("codec").loc["test", "note"]
    assert note == "Error: the anchor has fewer than 2 points where quality falls with rate"
