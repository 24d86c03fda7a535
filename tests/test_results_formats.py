"""`codecbench results`: probes only when asked, probes a run asks for become benchmark rows, and
CompressAI's results format as compressai.utils.plot reads it; published curves read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench.cli import cli
from codecbench.results import ResultStore, RowKey
from codecbench.testing import synthetic_image


def cli_ok(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(synthetic_image(64, 96, seed=i)).save(folder / f"img{i}.png")
    return folder


def test_the_probe_flag_is_cleared_only_by_a_run_outside_a_search(tmp_path: Path) -> None:
    key = RowKey("d", "a.png", "c", "1", 7.0, "{}")
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(key, run_id="r", status="ok", bpp=1.0, stream=b"x")
        store.mark_probes([key])
        store.get(key)  # a read that is no runner's request (report, compare's own look-up)
        with store.probing():
            store.get(key, image_sha256="ab" * 32)  # compare's search reading its probe back
        assert store.frame()["probe"].tolist() == [True]
        store.get(key, image_sha256="ab" * 32)  # a run asking for the unit
        assert store.frame()["probe"].tolist() == [False]


def test_results_shows_probes_when_asked_and_a_run_makes_a_probe_a_point(folder: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "r.sqlite")
    common = ["-d", f"folder:{folder}", "--db", db]
    cli_ok("run", "-c", "jpeg", "-p", "10,90", "-m", "psnr", "-q", "-j", "1", *common)
    with ResultStore(db) as store:
        target = float(store.frame()["bpp"].mean())
    cli_ok("compare", "--bpp", f"{target:.4f}", "-c", "jpeg", "-m", "psnr", "-q", *common)
    with ResultStore(db) as store:
        rows = store.frame()
    probes = sorted(set(rows.loc[rows["probe"], "point"]))
    points_run = set(rows["point"]) - set(probes)  # 10, 90 and the sweep points compare encoded
    assert probes and {10.0, 90.0} < points_run

    def points(*extra: str) -> dict[float, bool]:
        board = json.loads(cli_ok("results", "--db", db, "--format", "json", *extra))
        return {row["point"]: row.get("probe", False) for row in board}

    assert set(points()) == points_run
    shown = points("--probes")
    assert set(shown) == points_run | set(probes) and all(shown[p] for p in probes) and not shown[10.0]
    per_image = json.loads(cli_ok("results", "--db", db, "--format", "json", "--per-image"))
    assert {row["point"] for row in per_image} == points_run
    # The user runs one of the probed points: it is a benchmark point from now on.
    probe = probes[0]
    cli_ok("run", "-c", "jpeg", "-p", f"{probe:g}", "-m", "psnr", "-q", "-j", "1", *common)
    assert set(points()) == points_run | {probe}


def test_compressai_format_is_read_by_compressai_plot(folder: Path, tmp_path: Path) -> None:
    plot = pytest.importorskip("compressai.utils.plot.__main__")
    db = str(tmp_path / "r.sqlite")
    cli_ok("run", "-c", "jpeg", "-p", "30,60,90", "-m", "psnr,ms-ssim", "-d", f"folder:{folder}", "--db", db,
           "-q", "-j", "1")
    path = tmp_path / "jpeg.json"
    path.write_text(cli_ok("results", "--db", db, "--format", "compressai"))
    data = json.loads(path.read_text())
    assert data["name"] == "jpeg" and set(data["results"]) == {
        "bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db", "encoding_time", "decoding_time"}
    with ResultStore(db) as store:
        rows = store.frame()
    means = rows.groupby("point")[["bpp", "psnr", "ms-ssim"]].mean().sort_values("bpp")
    psnr = plot.parse_json_file(path, "psnr")  # as `python -m compressai.utils.plot -f FILE` reads it
    assert psnr["name"] == "jpeg" and np.allclose(psnr["xs"], means["bpp"]) and np.allclose(psnr["ys"], means["psnr"])
    msssim = plot.parse_json_file(path, "ms-ssim")
    assert np.allclose(msssim["ys"], -10 * np.log10(1 - means["ms-ssim"]))
    # Two curves: one file each with --out, and without it an error that names them.
    cli_ok("run", "-c", "jpeg", "-o", "subsampling=444", "-p", "30,60", "-m", "psnr", "-d", f"folder:{folder}",
           "--db", db, "-q", "-j", "1")
    result = CliRunner().invoke(cli, ["results", "--db", db, "--format", "compressai"])
    assert result.exit_code == 1 and "2 curves (jpeg, jpeg[subsampling=444])" in result.output
    listed = cli_ok("results", "--db", db, "--format", "compressai", "--out", str(tmp_path / "curves"))
    files = sorted(p.name for p in (tmp_path / "curves").iterdir())
    assert len(files) == 2 and "jpeg[subsampling=444]" in listed
    other = json.loads((tmp_path / "curves" / next(f for f in files if "444" in f)).read_text())
    assert other["name"] == "jpeg[subsampling=444]" and len(other["results"]["bpp"]) == 2
    assert "ms-ssim-rgb" not in other["results"]  # not measured there


def test_published_curves_read_from_csv_and_compressai_json(tmp_path: Path) -> None:
    from codecbench.errors import CodecbenchError
    from codecbench.published import read_published

    csv = Path(__file__).resolve().parents[1] / "benchmarks" / "published" / "bpg_444_x265_kodak_compressai.csv"
    curve = read_published(csv)
    assert curve.label == "bpg_444_x265_kodak_compressai (published)"
    assert list(curve.points["bpp"]) == sorted(curve.points["bpp"]) and curve.points["psnr"].iloc[0] == pytest.approx(26.195128)
    assert set(curve.rows("kodak")["curve"]) == {curve.label}
    data = {"name": "paper-x", "results": {"bpp": [0.5, 0.1], "psnr-rgb": [30.0, 25.0], "ms-ssim-rgb": [0.95, 0.9]}}
    (tmp_path / "x.json").write_text(json.dumps(data))
    json_curve = read_published(tmp_path / "x.json")
    assert json_curve.label == "paper-x (published)" and list(json_curve.points["psnr"]) == [25.0, 30.0]
    (tmp_path / "bad.csv").write_text("rate,psnr\n0.1,30\n")
    with pytest.raises(CodecbenchError, match="no 'bpp' column"):
        read_published(tmp_path / "bad.csv")
