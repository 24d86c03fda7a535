"""scripts/plot_campaign.py: legs end to end, runs overlaid, and bad curve files named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "plot_campaign.py"
HEADER = "step,wall_s,time,bpp,bpp_coded,lpips,psnr\n"


def curve(path: Path, rows: list[tuple[int, float, float]]) -> str:
    path.write_text(HEADER + "".join(f"{s},{w},t,0.03,0.031,0.4,{p}\n" for s, w, p in rows))
    return str(path)


def plot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_legs_run_end_to_end_and_overlaid_runs_start_at_zero(tmp_path: Path) -> None:
    # the second curve validates step 1000 twice, as a resumed run does
    a = curve(tmp_path / "a.csv", [(500, 1800.0, 20.0), (1000, 3600.0, 21.0)])
    b = curve(tmp_path / "b.csv", [(500, 1800.0, 21.5), (1000, 3600.0, 22.0), (1000, 3601.0, 22.0)])
    legs = plot(f"one={a}", f"two={b}", "-o", str(tmp_path / "legs.png"))
    assert legs.returncode == 0, legs.stderr
    assert "two: 2.00 h, last step 1000" in legs.stdout  # after the first leg's hour
    overlay = plot("--overlay", f"one={a}", f"two={b}", "-o", str(tmp_path / "overlay.png"))
    assert overlay.returncode == 0, overlay.stderr
    assert "two: 1.00 h, last step 1000: 0.0310 bpp, 22.00 dB" in overlay.stdout
    assert (tmp_path / "legs.png").stat().st_size > 0 and (tmp_path / "overlay.png").stat().st_size > 0


def test_a_file_that_is_not_a_curve_is_named_without_a_traceback(tmp_path: Path) -> None:
    empty, other = tmp_path / "empty.csv", tmp_path / "other.csv"
    empty.write_text("")
    other.write_text("a,b\n1,2\n")
    for path, message in ((empty, "not a curve file"), (other, "lacks the columns")):
        result = plot(f"x={path}", "-o", str(tmp_path / "x.png"))
        assert result.returncode == 2 and str(path) in result.stderr and message in result.stderr
        assert "Traceback" not in result.stderr


def test_a_curve_without_lpips_plots_its_estimated_rate_and_a_label_may_hold_an_equals_sign(
        tmp_path: Path) -> None:
    path = tmp_path / "cheng.csv"  # what a codec that validates no LPIPS writes (Cheng2020)
    path.write_text("step,wall_s,time,bpp,loss,psnr\n500,1800.0,t,0.2,0.9,24.0\n1000,3600.0,t,0.18,0.8,25.0\n")
    result = plot(f"K=3={path}", "-o", str(tmp_path / "cheng.png"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("K=3: 1.00 h, last step 1000: 0.1800 bpp, 25.00 dB\n")
    assert (tmp_path / "cheng.png").stat().st_size > 0


def test_the_legs_of_one_overlaid_run_join_at_their_step_offset(tmp_path: Path) -> None:
    a = curve(tmp_path / "a.csv", [(500, 1800.0, 20.0)])
    leg1 = curve(tmp_path / "l1.csv", [(500, 1800.0, 21.0)])
    leg2 = curve(tmp_path / "l2.csv", [(500, 1800.0, 22.0), (1000, 3600.0, 23.0)])
    result = plot("--overlay", f"one={a}", f"two={leg1}", f"two@700={leg2}",
                  "-o", str(tmp_path / "o.png"))
    assert result.returncode == 0, result.stderr
    assert "two: 1.50 h, last step 1700: 0.0310 bpp, 23.00 dB" in result.stdout
    assert result.stdout.count("two:") == 1
    bad = plot("--overlay", f"two@x={leg2}", "-o", str(tmp_path / "b.png"))
    assert bad.returncode == 2 and "LABEL@STEPS" in bad.stderr
