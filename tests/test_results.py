import math
import sqlite3
from pathlib import Path

import pytest

from codecbench.errors import StoreError
from codecbench.results import ResultStore, RowKey, config_json


def key(image: str = "a.png", point: float = 50.0) -> RowKey:
    return RowKey("set", image, "jpeg", "v1", point, config_json({"subsampling": "420"}))


def test_put_and_get_roundtrip(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        rid = store.put(key(), run_id="r1", status="ok", height=2, width=4, stream=b"abc",
                        bpp=3.0, encode_s=0.1, decode_s=0.2, metrics={"psnr": 30.0, "x": math.nan})
        row = store.get(key())
        assert row.id == rid and row.status == "ok" and row.stream == b"abc"
        assert row.metrics["psnr"] == 30.0 and math.isnan(row.metrics["x"])
        assert store.get(key(image="b.png")) is None


def test_put_replaces_and_counts_attempts(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(key(), run_id="r1", status="failed", error="boom")
        store.put(key(), run_id="r2", status="ok", stream=b"x", metrics={"psnr": 1.0})
        row = store.get(key())
        assert row.status == "ok" and row.attempts == 2 and row.error is None
        assert len(store.frame()) == 1


def test_rows_persist_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.put(key(), run_id="r1", status="ok", stream=b"x", metrics={"psnr": 1.0})
    with ResultStore(path) as store:
        assert store.get(key()).metrics == {"psnr": 1.0}


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(StoreError, match="CHECK constraint failed: status") as err:
            store.put(key(), run_id="r1", status="not-a-status")
        assert isinstance(err.value.__cause__, sqlite3.IntegrityError)
        assert store.get(key()) is None


def test_frame_has_one_column_per_metric(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(key("a"), run_id="r", status="ok", stream=b"x", bpp=1.0, metrics={"psnr": 30.0})
        store.put(key("b"), run_id="r", status="ok", stream=b"x", bpp=2.0,
                  metrics={"psnr": 32.0, "ms-ssim": 0.9})
        frame = store.frame(dataset="set")
        assert list(frame["image"]) == ["a", "b"]
        assert {"psnr", "ms-ssim"} <= set(frame.columns)
        assert store.frame(dataset="other").empty


def test_set_metrics(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put_set_metrics(key(), {"fid": 12.5}, n_images=3)
        assert store.get_set_metrics(key(image="ignored")) == {"fid": 12.5}
        assert store.set_frame("set")["fid"].tolist() == [12.5]


def test_probe_flag_mark_and_codec_names(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(key("a"), run_id="r", status="ok", stream=b"x", bpp=1.0)
        store.put(key("b"), run_id="r", status="ok", stream=b"x", bpp=2.0, probe=True)
        store.put(key("c"), run_id="r", status="failed", error="boom")
        assert store.frame().set_index("image")["probe"].to_dict() == {"a": False, "b": True, "c": False}
        store.mark_probes([key("a")])
        store.mark_probes([key("b")], probe=False)
        assert store.frame().set_index("image")["probe"].to_dict() == {"a": True, "b": False, "c": False}
        assert store.get(key("b")).bpp == 2.0
        assert store.codec_names("set") == ["jpeg"] and store.codec_names("other") == []


def test_a_store_without_the_probe_column_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    from codecbench.results import SCHEMA

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    probe INTEGER NOT NULL DEFAULT 0,\n", ""))
    old.execute("INSERT INTO results (dataset, image, codec, codec_version, point, config, status, "
                "bpp, created) VALUES ('set', 'a.png', 'jpeg', 'v1', 50.0, '{}', 'ok', 1.5, 'then')")
    old.commit()
    old.close()
    with ResultStore(path) as store:
        frame = store.frame()
        assert frame["probe"].tolist() == [False] and frame["bpp"].tolist() == [1.5]
        store.put(key("b"), run_id="r", status="ok", stream=b"x", bpp=2.0, probe=True)
        assert store.frame()["probe"].tolist() == [False, True]


def test_a_read_only_old_store_stays_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from codecbench import results
    from codecbench.results import SCHEMA

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    probe INTEGER NOT NULL DEFAULT 0,\n", ""))
    old.execute("INSERT INTO results (dataset, image, codec, codec_version, point, config, status, "
                "bpp, created) VALUES ('set', 'a.png', 'jpeg', 'v1', 50.0, '{}', 'ok', 1.5, 'then')")
    old.commit()
    old.close()
    monkeypatch.setattr(results, "_writable", lambda path: False)  # read-only even for root
    with ResultStore(path) as store:
        assert store.read_only
        assert store.frame()["probe"].tolist() == [False]
        assert store.get(RowKey("set", "a.png", "jpeg", "v1", 50.0, "{}")).bpp == 1.5


def test_streams_carry_a_checksum_and_a_damaged_one_reads_as_damaged(tmp_path: Path) -> None:
    import sqlite3

    from codecbench.errors import StreamChecksumError

    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        store.put(key(), run_id="r", status="ok", stream=b"abc", metrics={"psnr": 30.0})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE results SET stream = CAST('abd' AS BLOB)")
    with ResultStore(path) as store:
        row = store.get(key())
        assert row.status == "damaged" and row.metrics == {"psnr": 30.0}
        with pytest.raises(StreamChecksumError, match=r"jpeg @ 50 on a.png \(set\)"):
            row.stream
        assert [k.image for k in store.check().damaged] == ["a.png"]
        store.put(key(), run_id="r2", status="ok", stream=b"xyz")
        assert store.get(key()).stream == b"xyz" and store.check().ok


def test_rows_are_tied_to_the_image_content(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.put(key(), run_id="r", status="ok", stream=b"x", image_sha256="1" * 64)
        assert store.get(key(), image_sha256="1" * 64).status == "ok"
        stale = store.get(key(), image_sha256="2" * 64)
        assert stale.status == "stale" and "a.png" in stale.error
        assert store.get(key()).status == "ok"  # no hash given: not checked


def test_an_old_store_gets_checksums_and_its_rows_are_stamped_once(tmp_path: Path) -> None:
    import sqlite3

    from codecbench.results import SCHEMA

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    image_sha256 TEXT,\n    stream_sha256 TEXT,\n", "")
                      .split("CREATE TABLE IF NOT EXISTS claims")[0])
    old.execute("INSERT INTO results (dataset, image, codec, codec_version, point, config, status, "
                "stream, created) VALUES ('set', 'a.png', 'jpeg', 'v1', 50.0, ?, 'ok', "
                "CAST('abc' AS BLOB), 'then')", (config_json({"subsampling": "420"}),))
    old.commit()
    old.close()
    with ResultStore(path) as store:
        assert store.check().unhashed_images == 1 and not store.check().damaged
        assert store.get(key(), image_sha256="1" * 64).status == "ok"  # trusted once, stamped
        assert store.get(key(), image_sha256="2" * 64).status == "stale"
        assert store.check().unhashed_images == 0 and store.get(key()).stream == b"abc"


def test_claimed_waits_for_another_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import threading
    import time

    from codecbench import results

    monkeypatch.setattr(results, "CLAIM_POLL_S", 0.02)
    monkeypatch.setattr(results.Claim, "is_live", lambda self, now=None: True)
    with ResultStore(tmp_path / "r.sqlite") as a, ResultStore(tmp_path / "r.sqlite") as b:
        assert a.claim(key()) is None and a.claim(key()) is None  # again: still its own
        assert b.claim(key()).owner == a.owner

        def release() -> None:  # as the other process would, on its own connection
            with sqlite3.connect(tmp_path / "r.sqlite") as conn:
                conn.execute("DELETE FROM claims")

        threading.Timer(0.2, release).start()
        start = time.monotonic()
        with b.claimed(key()):
            assert time.monotonic() - start >= 0.15
            assert a.claim(key()) is not None
        assert a.claim(key()) is None


def test_prune_removes_versions_with_their_values(tmp_path: Path) -> None:
    old = RowKey("set", "a.png", "jpeg", "v1", 50.0, "{}")
    new = RowKey("set", "a.png", "jpeg", "v2", 50.0, "{}")
    other = RowKey("other", "a.png", "jpeg", "v1", 50.0, "{}")
    with ResultStore(tmp_path / "r.sqlite") as store:
        for k in (old, new, other):
            store.put(k, run_id="r", status="ok", stream=b"x", bpp=1.0, metrics={"psnr": 30.0})
            store.put_set_metrics(k, {"fid": 10.0}, n_images=1)
        dry = store.prune("jpeg", versions=["v1"], dry_run=True)
        assert dry == {("other", "v1"): 1, ("set", "v1"): 1}
        assert len(store.frame()) == 3
        assert store.prune("jpeg", keep_version="v2", dataset="set") == {("set", "v1"): 1}
        rows = store.frame()
        kept = sorted(zip(rows["dataset"], rows["codec_version"]))
        assert kept == [("other", "v1"), ("set", "v2")]
        assert sorted(store.set_frame()["codec_version"]) == ["v1", "v2"]
        assert store.conn.execute("SELECT count(*) FROM metric_values").fetchone()[0] == 2
        assert store.prune("jpeg", versions=["v9"]) == {}
