"""`codecbench run --codec jpeg --dataset kodak` against values computed here, independently."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench.cli import cli

POINTS = (10, 50, 90)


def independent_jpeg(path: Path, quality: int) -> tuple[float, float]:
    """bpp and PSNR of one image, with Pillow and numpy directly (4:2:0, no optimisation)."""
    original = np.asarray(Image.open(path).convert("RGB"))
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, format="JPEG", quality=quality, subsampling=2)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    mse = ((original.astype(float) - decoded.astype(float)) ** 2).mean()
    h, w = original.shape[:2]
    return len(buffer.getvalue()) * 8 / (h * w), 10 * np.log10(255**2 / mse)


@pytest.fixture
def kodak_rows(shared_datasets: Path, tmp_path: Path) -> tuple[list[dict], list[dict]]:
    db = str(tmp_path / "kodak.sqlite")
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", "kodak", "--data-dir", str(shared_datasets),
                                      "-p", ",".join(map(str, POINTS)), "-m", "psnr", "--db", db])
    assert result.exit_code == 0, result.output
    assert "kodak" in result.output and "jpeg" in result.output  # the leaderboard was printed
    per_image = json.loads(CliRunner().invoke(cli, ["results", "--db", db, "--format", "json",
                                                    "--per-image"]).output)
    board = json.loads(CliRunner().invoke(cli, ["results", "--db", db, "--format", "json"]).output)
    return per_image, board


def test_per_image_bpp_and_psnr_match_an_independent_computation(kodak_rows, shared_datasets: Path) -> None:
    per_image, _ = kodak_rows
    rows = {(r["image"], r["point"]): r for r in per_image}
    assert len(rows) == 24 * len(POINTS)
    for image in ("kodim01.png", "kodim04.png", "kodim23.png"):
        for quality in POINTS:
            bpp, psnr = independent_jpeg(shared_datasets / "kodak" / image, quality)
            row = rows[(image, float(quality))]
            assert row["bpp"] == pytest.approx(bpp, rel=1e-12)
            assert row["psnr"] == pytest.approx(psnr, rel=1e-9)


def test_leaderboard_means_match(kodak_rows, shared_datasets: Path) -> None:
    _, board = kodak_rows
    images = sorted((shared_datasets / "kodak").glob("kodim*.png"))
    for entry in board:
        values = np.array([independent_jpeg(p, int(entry["point"])) for p in images])
        assert entry["n"] == 24 and entry["failed"] == 0
        assert entry["bpp"] == pytest.approx(values[:, 0].mean(), rel=1e-12)
        assert entry["psnr"] == pytest.approx(values[:, 1].mean(), rel=1e-9)
    assert [e["point"] for e in board] == list(map(float, POINTS))
    assert board[0]["bpp"] < board[1]["bpp"] < board[2]["bpp"]
