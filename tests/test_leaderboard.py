import pandas as pd
import pytest

from codecbench.leaderboard import leaderboard, metric_columns


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
