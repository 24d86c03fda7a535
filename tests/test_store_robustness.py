"""The results store under attack: read-only files and folders, a full disk, a corrupted file,
damaged streams, replaced images and two runs writing one store at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench import results
from codecbench.cli import cli
from codecbench.dataset import FolderDataset
from codecbench.errors import StoreError, StreamChecksumError
from codecbench.metrics.psnr import PSNRMetric
from codecbench.results import ResultStore, RowKey
from codecbench.runner import Runner, plan_units
from codecbench.testing import synthetic_image

TESTS = Path(__file__).parent


def invoke(*args: str) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(cli, list(args))


def jpeg_store(image_folder: Path, db: Path) -> None:
    result = invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "20,80", "-m", "psnr",
                    "-j", "1", "-q", "--db", str(db))
    assert result.exit_code == 0, result.output


def one_line_error(result: "click.testing.Result", *fragments: str) -> None:  # noqa: F821
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


# -- read-only -------------------------------------------------------------------------------------


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a non-root user sees of a read-only file or folder (root ignores the mode bits)."""
    monkeypatch.setattr(results, "_writable", lambda path: False)


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_store_serves_read_commands_and_refuses_writes(
        what: str, image_folder: Path, tmp_path: Path, read_only: None) -> None:
    store_dir = tmp_path / "store"
    db = store_dir / "r.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results, "_writable", lambda path: True)
        jpeg_store(image_folder, db)
    (db if what == "file" else store_dir).chmod(0o444 if what == "file" else 0o555)
    try:
        listing = invoke("results", "--db", str(db), "--format", "json")
        assert listing.exit_code == 0, listing.output
        assert len(json.loads(listing.stdout)) == 2
        compared = invoke("compare", "--bpp", "8", "-c", "jpeg", "-d", f"folder:{image_folder}",
                          "-m", "psnr", "--no-probe", "-q", "--db", str(db))
        assert compared.exit_code == 0, compared.output
        assert invoke("db", "check", "--db", str(db)).exit_code == 0
        backup = invoke("db", "backup", str(tmp_path / "copy.sqlite"), "--db", str(db))
        assert backup.exit_code == 0, backup.output
        one_line_error(invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "50",
                              "-m", "psnr", "-j", "1", "-q", "--db", str(db)),
                       "read-only", "db backup")
    finally:
        store_dir.chmod(0o755)
        db.chmod(0o644)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_real_read_only_folder_of_a_wal_store(image_folder: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    db = store_dir / "r.sqlite"
    jpeg_store(image_folder, db)
    store_dir.chmod(0o555)
    try:
        with ResultStore(db) as store:  # mode=ro cannot create the WAL index: opened immutable
            assert store.read_only and len(store.frame()) == 4
    finally:
        store_dir.chmod(0o755)


def test_read_only_store_without_a_file(tmp_path: Path, read_only: None) -> None:
    with pytest.raises(StoreError, match="No results database"):
        ResultStore(tmp_path / "none.sqlite")


# -- disk full -------------------------------------------------------------------------------------


def fill_up(store: ResultStore) -> None:
    """Make the database full: no page beyond those it has (SQLITE_FULL, as on a full disk)."""
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count={pages}")


def test_full_disk_is_one_error_and_keeps_what_was_written(tmp_path: Path) -> None:
    key = RowKey("set", "a.png", "jpeg", "v1", 50.0, "{}")
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(key, run_id="r", status="ok", stream=b"x", metrics={"psnr": 30.0})
        fill_up(store)
        with pytest.raises(StoreError, match="the disk is full.*rerunning the command resumes"):
            store.put(RowKey("set", "b.png", "jpeg", "v1", 50.0, "{}"), run_id="r", status="ok",
                      stream=os.urandom(200_000))
        assert not store.conn.in_transaction
        assert store.get(key).metrics == {"psnr": 30.0}
        assert len(store.frame()) == 1


def test_full_disk_during_a_run_is_one_line(image_folder: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "r.sqlite"
    jpeg_store(image_folder, db)
    opened = ResultStore.__init__

    def full(self: ResultStore, *args: object, **kwargs: object) -> None:
        opened(self, *args, **kwargs)
        fill_up(self)

    monkeypatch.setattr(ResultStore, "__init__", full)
    one_line_error(invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "5,10,30,60",
                          "-m", "psnr", "-j", "1", "-q", "--db", str(db)), "disk is full", str(db))


# -- corrupted file --------------------------------------------------------------------------------


def test_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    db.write_bytes(b"this is not SQLite" * 500)
    with pytest.raises(StoreError, match="damaged or not a SQLite file"):
        ResultStore(db)
    for args in (["results"], ["db", "check"], ["db", "backup", str(tmp_path / "b.sqlite")]):
        one_line_error(invoke(*args, "--db", str(db)), str(db), "backup")


def test_damaged_pages_give_one_line_errors_and_db_check_finds_them(image_folder: Path,
                                                                     tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    jpeg_store(image_folder, db)
    sound = db.read_bytes()
    page = 4096
    found = 0
    for offset in range(page, len(sound), page):  # each page but the header's, damaged in turn
        data = bytearray(sound)
        data[offset + 8:offset + 300] = b"\xff" * 292
        db.write_bytes(bytes(data))
        checked = invoke("db", "check", "--db", str(db))
        assert checked.exit_code in (0, 1) and "Traceback" not in checked.output
        found += checked.exit_code
        listing = invoke("results", "--db", str(db))
        if listing.exit_code:
            one_line_error(listing, "damaged", "backup")
    assert found >= 2


# -- backup ----------------------------------------------------------------------------------------


def test_backup_includes_what_is_still_in_the_wal(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    key = RowKey("set", "a.png", "jpeg", "v1", 50.0, "{}")
    with ResultStore(db) as store:
        store.conn.execute("PRAGMA wal_autocheckpoint=0")  # rows stay in r.sqlite-wal
        store.put(key, run_id="r", status="ok", stream=b"abc", metrics={"psnr": 30.0})
        assert (tmp_path / "r.sqlite-wal").stat().st_size > 0
        result = invoke("db", "backup", str(tmp_path / "copy.sqlite"), "--db", str(db))
        assert result.exit_code == 0, result.output
    assert not list(tmp_path.glob("copy.sqlite-*")) and not list(tmp_path.glob(".copy*"))
    with ResultStore(tmp_path / "copy.sqlite") as copy:
        assert copy.get(key).stream == b"abc" and copy.get(key).metrics == {"psnr": 30.0}
    one_line_error(invoke("db", "backup", str(tmp_path / "copy.sqlite"), "--db", str(db)),
                   "already exists")


# -- damaged streams and replaced images ----------------------------------------------------------


def damage_stream(db: Path, image: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE results SET stream = CAST(x'deadbeef' AS BLOB) WHERE image=? AND "
                     "point=20", (image,))


def test_damaged_stream_is_named_listed_and_recomputed(image_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    jpeg_store(image_folder, db)
    damage_stream(db, "img1.png")
    with ResultStore(db) as store:
        key = next(RowKey(r.dataset, r.image, r.codec, r.codec_version, r.point, r.config)
                   for r in store.frame().itertuples() if r.image == "img1.png" and r.point == 20)
        row = store.get(key)
        assert row.status == "damaged" and "img1.png" in row.error
        with pytest.raises(StreamChecksumError, match=r"jpeg @ 20 on img1.png \(folder:") as caught:
            row.stream
        assert (caught.value.dataset, caught.value.image, caught.value.codec, caught.value.point) \
            == (key.dataset, "img1.png", "jpeg", 20.0)
        with pytest.raises(StreamChecksumError):
            list(store.streams(key.dataset, "jpeg", 20.0))
    checked = invoke("db", "check", "--db", str(db), "--format", "json")
    assert checked.exit_code == 1
    report = json.loads(checked.stdout)
    assert [d["image"] for d in report["damaged_streams"]] == ["img1.png"]
    rerun = invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "20,80", "-m", "psnr",
                   "-j", "1", "-q", "--db", str(db))
    assert rerun.exit_code == 0 and "1 computed, 5 already stored" in rerun.output
    assert invoke("db", "check", "--db", str(db)).exit_code == 0


def test_replaced_image_is_recomputed_and_said_once(image_folder: Path, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "r.sqlite"
    jpeg_store(image_folder, db)
    Image.fromarray(synthetic_image(48, 48, seed=99)).save(image_folder / "img1.png")
    with caplog.at_level("WARNING"):
        rerun = invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "20,80",
                       "-m", "psnr", "-j", "1", "-q", "--db", str(db))
    assert rerun.exit_code == 0 and "2 computed, 4 already stored" in rerun.output
    said = [r.message for r in caplog.records if "changed since its rows were stored" in r.message]
    assert len(said) == 1 and "img1.png" in said[0]


def test_another_folder_with_the_same_name_is_not_reused(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "r.sqlite"
    for seed, place in ((1, "a"), (2, "b")):
        folder = tmp_path / place / "imgs"
        folder.mkdir(parents=True)
        Image.fromarray(synthetic_image(32, 32, seed=seed)).save(folder / "x.png")
        monkeypatch.chdir(tmp_path / place)
        result = invoke("run", "-c", "jpeg", "-d", "folder:imgs", "-p", "50", "-m", "psnr", "-j", "1",
                        "-q", "--db", str(db))
        assert result.exit_code == 0 and "1 computed" in result.output, result.output


def test_old_rows_without_image_hash_are_trusted_once_and_stamped(image_folder: Path,
                                                                  tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    jpeg_store(image_folder, db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE results SET image_sha256 = NULL")
    rerun = invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "20,80", "-m", "psnr",
                   "-j", "1", "-q", "--db", str(db))
    assert "0 computed, 6 already stored" in rerun.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM results WHERE image_sha256 IS NULL").fetchone() == (0,)


# -- concurrent runs -------------------------------------------------------------------------------

SLOW_CODEC = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from toy_codecs import Quantizer

    class Slow(Quantizer):
        name = "slow"

        def encode(self, image, point):
            time.sleep(0.05)
            return super().encode(image, point)
""")

WORKER = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {here!r})
    from pathlib import Path
    from slowcodec import Slow
    from codecbench.dataset import FolderDataset
    from codecbench.metrics.psnr import PSNRMetric
    from codecbench.results import ResultStore
    from codecbench.runner import Runner, plan_units

    if __name__ == "__main__":
        go = Path({go!r})
        while not go.exists():
            time.sleep(0.01)
        dataset = FolderDataset(Path({folder!r}))
        codec = Slow()
        units = plan_units([codec], dataset, dataset.images(), {{codec.name: codec.points}})
        with ResultStore({db!r}) as store:
            summary = Runner(store, [PSNRMetric()], progress=False, jobs={jobs}).run(units)
        print(json.dumps({{"computed": summary.computed, "skipped": summary.skipped,
                          "failed": summary.failed, "encodes": Slow.encodes}}))
""")


@pytest.mark.parametrize("jobs", [1, 2])
def test_two_processes_on_one_store_split_the_work(jobs: int, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "CLAIM_POLL_S", 0.05)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(synthetic_image(24, 32, seed=i)).save(folder / f"{i}.png")
    db, go = tmp_path / "r.sqlite", tmp_path / "go"
    ResultStore(db).close()
    (tmp_path / "slowcodec.py").write_text(SLOW_CODEC.format(tests=str(TESTS)))
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(here=str(tmp_path), go=str(go), folder=str(folder), db=str(db),
                                    jobs=jobs))
    processes = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5 if jobs == 1 else 0.1)
    go.touch()
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert "Traceback" not in err
    done = [json.loads(out) for out, _ in outputs]
    units = 6 * 3
    assert sum(d["computed"] for d in done) == units  # every unit computed once, by one of them
    assert all(d["computed"] + d["skipped"] == units and d["failed"] == 0 for d in done)
    if jobs == 1:
        assert sum(d["encodes"] for d in done) == units
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), max(attempts) FROM results").fetchone() == (units, 1)
        assert conn.execute("SELECT count(*) FROM metric_values").fetchone() == (units,)
        assert conn.execute("SELECT count(*) FROM claims").fetchone() == (0,)


@pytest.fixture
def live_process() -> "subprocess.Popen[bytes]":
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def hold(db: Path, key: RowKey, pid: int, age: float = 0.0) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, 'other', ?, ?, ?)",
                     (*key.params(), pid, results.HOST, time.time() - age))


def test_claims_of_live_dead_and_expired_processes(tmp_path: Path, live_process) -> None:
    db = tmp_path / "r.sqlite"
    key = RowKey("set", "a.png", "jpeg", "v1", 50.0, "{}")
    with ResultStore(db) as store:
        hold(db, key, live_process.pid)
        held = store.claim(key)
        assert held is not None and held.pid == live_process.pid
        assert f"pid {live_process.pid}" in held.describe()
        hold(db, key, live_process.pid, age=results.CLAIM_TTL_S + 1)
        assert store.claim(key) is None  # expired: taken over
        store.release(key)
        hold(db, key, live_process.pid)
        live_process.kill()
        live_process.wait()
        assert store.claim(key) is None  # its process is gone: taken over
        assert store.put(key, run_id="r", status="ok", stream=b"x")  # writing releases it
        assert store.conn.execute("SELECT count(*) FROM claims").fetchone() == (0,)


def test_a_run_waits_for_units_another_run_holds(image_folder: Path, tmp_path: Path, live_process,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    sys.path.insert(0, str(TESTS))
    from toy_codecs import Quantizer

    monkeypatch.setattr(results, "CLAIM_POLL_S", 0.05)
    db = tmp_path / "r.sqlite"
    dataset = FolderDataset(image_folder)
    codec = Quantizer()
    units = plan_units([codec], dataset, dataset.images(), {codec.name: [8]})
    held = units[1]
    ResultStore(db).close()
    hold(db, held.key, live_process.pid)

    def said_waiting() -> bool:
        return any("being computed by another run" in r.message for r in caplog.records)

    def other_run_finishes() -> None:
        # Finish only once the run has deferred the held unit: a fixed delay raced a loaded machine
        # (the run reached the unit after the other run had already released it).
        deadline = time.monotonic() + 30
        while not said_waiting() and time.monotonic() < deadline:
            time.sleep(0.02)
        with ResultStore(db) as other:
            other.put(held.key, run_id="other", status="ok", stream=b"s", metrics={"psnr": 100.0},
                      image_sha256=held.image.sha256())
            other.conn.execute("DELETE FROM claims")

    thread = threading.Thread(target=other_run_finishes)
    thread.start()
    with caplog.at_level("WARNING"), ResultStore(db) as store:
        summary = Runner(store, [PSNRMetric()], progress=False).run(units)
    thread.join()
    assert (summary.computed, summary.skipped) == (len(units) - 1, 1)
    assert said_waiting()
    with ResultStore(db) as store:
        assert store.get(held.key).stream == b"s"  # its row, not recomputed


def test_metrics_added_to_a_row_replaced_meanwhile_are_dropped(tmp_path: Path) -> None:
    key = RowKey("set", "a.png", "jpeg", "v1", 50.0, "{}")
    with ResultStore(tmp_path / "r.sqlite") as store, ResultStore(tmp_path / "r.sqlite") as other:
        first = store.put(key, run_id="r", status="ok", stream=b"x")
        other.put(key, run_id="o", status="ok", stream=b"y", metrics={"psnr": 1.0})
        assert store.add_metrics(first, {"psnr": 2.0}) is False  # no IntegrityError
        assert store.get(key).metrics == {"psnr": 1.0}


def test_set_metrics_wait_for_the_run_computing_them(image_folder: Path, tmp_path: Path,
                                                     live_process, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    sys.path.insert(0, str(TESTS))
    from toy_codecs import CountingSetMetric, Quantizer

    count = CountingSetMetric()

    monkeypatch.setattr(results, "CLAIM_POLL_S", 0.05)
    db = tmp_path / "r.sqlite"
    dataset = FolderDataset(image_folder)
    codec = Quantizer()
    units = plan_units([codec], dataset, dataset.images(), {codec.name: [8]})
    with ResultStore(db) as store:
        Runner(store, [PSNRMetric()], progress=False).run(units)
    set_key = replace(units[0].key, image="")
    hold(db, set_key, live_process.pid)

    def other_run_finishes() -> None:
        time.sleep(0.5)
        with ResultStore(db) as other:
            other.put_set_metrics(set_key, {"count": 3.0}, n_images=3)
            other.conn.execute("DELETE FROM claims")

    thread = threading.Thread(target=other_run_finishes)
    thread.start()
    with ResultStore(db) as store:
        Runner(store, [PSNRMetric(), count], progress=False).run(units)
        assert store.get_set_metrics(units[0].key) == {"count": 3.0}
    thread.join()
    assert count.calls == 0  # the other run's value, not computed again


# -- pruning ---------------------------------------------------------------------------------------


def test_db_prune_stale_keeps_the_installed_version(image_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    jpeg_store(image_folder, db)
    with ResultStore(db) as store:
        rows = store.frame()
        current, n = rows["codec_version"].iloc[0], len(rows)
        store.put(RowKey(f"folder:{image_folder}", "a.png", "jpeg", "retired-1", 20.0, "{}"),
                  run_id="old", status="ok", stream=b"x", bpp=1.0, metrics={"psnr": 1.0})
    dry = invoke("db", "prune", "jpeg", "--stale", "--dry-run", "--db", str(db))
    assert dry.exit_code == 0, dry.output
    assert "Would remove 1 rows of jpeg" in dry.output and "retired-1" in dry.output
    assert f"Kept version {current}" in dry.output
    pruned = invoke("db", "prune", "jpeg", "--stale", "--db", str(db))
    assert pruned.exit_code == 0 and "Removed 1 rows" in pruned.output, pruned.output
    with ResultStore(db) as store:
        assert set(store.frame()["codec_version"]) == {current} and len(store.frame()) == n
    again = invoke("db", "prune", "jpeg", "--stale", "--db", str(db))
    assert "No rows of jpeg to remove" in again.output
    assert invoke("db", "prune", "jpeg", "--db", str(db)).exit_code == 2  # no rows named
    one_line_error(invoke("db", "prune", "no-such-codec", "--stale", "--db", str(db)),
                   "no-such-codec", "--version")
    everything = invoke("db", "prune", "jpeg", "--all-versions", "--db", str(db))
    assert f"Removed {n} rows" in everything.output


def test_db_prune_on_a_read_only_store_says_so_and_removes_nothing(
        image_folder: Path, tmp_path: Path, read_only: None) -> None:
    db = tmp_path / "r.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(results, "_writable", lambda path: True)
        jpeg_store(image_folder, db)
    one_line_error(invoke("db", "prune", "jpeg", "--all-versions", "--db", str(db)), "read-only")
    dry = invoke("db", "prune", "jpeg", "--all-versions", "--dry-run", "--db", str(db))
    assert dry.exit_code == 0 and "Would remove 6 rows" in dry.output, dry.output
    with ResultStore(db, read_only=True) as store:
        assert len(store.frame()) == 6
