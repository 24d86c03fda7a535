"""A run killed with SIGKILL halfway resumes without recomputing the rows it had committed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from codecbench import plugins
from codecbench.testing import synthetic_image


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_minus_nine_then_rerun_completes_without_recomputing(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(40):
        Image.fromarray(synthetic_image(256, 256, seed=i)).save(folder / f"{i:02d}.png")
    db = tmp_path / "r.sqlite"
    command = [sys.executable, "-m", "codecbench", "run", "-c", "jpeg", "-d", f"folder:{folder}",
               "-m", "psnr", "--db", str(db), "-q"]
    total = 40 * len(plugins.codecs().get("jpeg").points)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while count_rows(db) < 30 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    committed = count_rows(db)
    assert 0 < committed < total, f"kill came too late or too early: {committed} rows"
    with sqlite3.connect(db) as conn:
        before = dict(conn.execute("SELECT id, created || run_id FROM results").fetchall())

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{total - committed} computed, {committed} already stored" in rerun.stderr
    with sqlite3.connect(db) as conn:
        after = dict(conn.execute("SELECT id, created || run_id FROM results").fetchall())
        assert conn.execute("SELECT count(*) FROM results WHERE status='ok'").fetchone()[0] == total
    assert all(after[i] == stamp for i, stamp in before.items())
