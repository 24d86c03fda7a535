"""Rate-matched comparison: JPEG on small synthetic images, toy codecs on stored rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from toy_codecs import CountingSetMetric
from toy_codecs import Knob as ToyKnob

from codecbench import plugins
from codecbench.cli import cli
from codecbench.codec import Codec
from codecbench.compare import Knob, Search, closest_below, default_codecs, rate_matched, stored_curves
from codecbench.dataset import resolve_dataset
from codecbench.image import read_image
from codecbench.leaderboard import leaderboard
from codecbench.results import ResultStore, RowKey, config_json
from codecbench.runner import Runner, plan_units
from codecbench.unit import bits_per_pixel


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


def test_a_codec_that_cannot_reach_the_target_gets_a_row_with_its_lowest_bpp(
    image_folder: Path, tmp_path: Path
) -> None:
    codec = jpeg()
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    images = dataset.images()
    with ResultStore(tmp_path / "r.sqlite") as store:
        result = rate_matched(store, [codec], dataset, images, 0.01, [])
    (row,) = result.table.to_dict("records")
    lowest = [bpp_at(codec, read_image(ref.path), codec.points[0]) for ref in images]
    assert row["codec"] == "jpeg" and row["n"] == len(images) and row["images_over"] == len(images)
    assert row["bpp"] == pytest.approx(sum(lowest) / len(lowest))
    assert row["over_target"] == pytest.approx(row["bpp"] / 0.01 - 1)
    assert not row["at_target"] and row["match"].endswith("% OVER")
    assert result.matches["above_target"].all()  # each image's lowest bpp (quality 3 may tie with 1)
    assert sorted(result.matches["bpp"]) == pytest.approx(sorted(lowest))
    (unreachable,) = result.unreachable.to_dict("records")
    assert unreachable["codec"] == "jpeg" and unreachable["images_above_target"] == len(images)


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
    assert "at 3.5 bpp (3 images, tolerance 10%; best psnr first)" in result.output
    assert "jpeg" in result.output and "interp-psnr" in result.output
    rows = json.loads(CliRunner().invoke(cli, args + ["--format", "json"]).stdout)
    assert rows[0]["codec"] == "jpeg" and rows[0]["bpp"] <= 3.5 and "psnr-ci" in rows[0]
    assert rows[0]["match"] == "ok" and "interp-psnr" in rows[0]
    low = CliRunner().invoke(cli, ["compare", "--bpp", "0.01", "-c", "jpeg", "-d",
                                   f"folder:{image_folder}", "--db", str(db), "-q"])
    assert low.exit_code == 0, low.output
    (line,) = [line for line in low.output.splitlines() if line.startswith("jpeg ")]
    assert "% OVER" in line


def test_cli_compare_ranks_codecs_by_the_first_metric(image_folder: Path, tmp_path: Path) -> None:
    args = ["compare", "--bpp", "3.5", "-c", "jpeg,jpeg2000", "-d", f"folder:{image_folder}", "-m", "psnr",
            "--db", str(tmp_path / "r.sqlite"), "-q"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "at 3.5 bpp (3 images, tolerance 10%; best psnr first)" in result.output
    rows = json.loads(CliRunner().invoke(cli, args + ["--format", "json"]).stdout)
    assert len(rows) == 2 and rows[0]["psnr"] >= rows[1]["psnr"]


def test_ties_prefer_the_measured_point_and_partial_means_are_not_shown() -> None:
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


# -- stored points answer; probes start from them ------------------------------------------------


class Linear(Codec):
    """bpp grows with the point (about point / 8): a 4-byte header and point * pixels / 64 bytes."""

    name = "linear"
    points = (1, 8, 16, 32, 64)
    point_range = (1, 64)
    encoded: list[tuple[int, int]] = []  # (image height, point) of every encode
    decodes = 0

    def encode(self, image: np.ndarray, point: float) -> bytes:
        h, w = image.shape[:2]
        type(self).encoded.append((h, int(point)))
        return h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes(int(point) * h * w // 64)

    def decode(self, data: bytes) -> np.ndarray:
        type(self).decodes += 1
        h, w = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
        return np.full((h, w, 3), min(255, 2 * (len(data) - 4) * 64 // (h * w)), np.uint8)


class NoWork(ToyKnob):
    """Stored rows only: encoding or decoding fails the test."""

    name = "nowork"

    def encode(self, image: np.ndarray, point: float) -> bytes:
        raise AssertionError("encoded")

    def decode(self, data: bytes) -> np.ndarray:
        raise AssertionError("decoded")


def psnr():
    return plugins.metrics().get("psnr")


def folder(image_folder: Path):
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    return dataset, dataset.images()


def put_rows(store: ResultStore, codec: Codec, dataset, curve: dict[float, list[tuple[float, float]]]) -> None:
    """Store rows of ``codec`` as configured: per point, (bpp, psnr) per image in order."""
    for point, values in curve.items():
        for ref, (bpp, value) in zip(dataset.images(), values):
            key = RowKey(dataset.name, ref.name, codec.name, codec.version(), float(point),
                         config_json(codec.config))
            store.put(key, run_id="t", status="ok", stream=b"x", bpp=bpp, metrics={"psnr": value})


def sweep(store: ResultStore, codec: Codec, dataset, images) -> None:
    units = plan_units([codec], dataset, images, {codec.name: list(codec.points)})
    assert not Runner(store, [psnr()], progress=False).run(units).failures


def test_probes_start_inside_the_stored_bracket_and_are_never_repeated(
    image_folder: Path, tmp_path: Path
) -> None:
    codec = Linear()
    dataset, images = folder(image_folder)
    with ResultStore(tmp_path / "r.sqlite") as store:
        sweep(store, codec, dataset, images)
        Linear.encoded.clear()
        Linear.decodes = 0
        result = rate_matched(store, [codec], dataset, images, 2.6, [psnr()])
        probed = [point for _, point in Linear.encoded]
        assert probed and all(16 < p < 32 for p in probed)  # between the stored 16 (2.0) and 32 (4.0)
        assert len(probed) <= 4 * len(images)  # bisection of 15 values: at most 4 probes per image
        assert set(result.matches["point"]) == {20} and result.table["match"][0] == "ok"
        rows = store.frame()
        assert rows.loc[rows["probe"], "point"].between(17, 31).all()
        assert not rows.loc[rows["point"].isin(codec.points), "probe"].any()
        # The leaderboard leaves the probes out (even the measured point 20); they remain stored.
        assert list(leaderboard(rows)["point"]) == list(codec.points)
        assert 20 in set(leaderboard(rows, probes=True)["point"])
        Linear.encoded.clear()
        Linear.decodes = 0
        again = rate_matched(store, [codec], dataset, images, 2.6, [psnr()])
        assert Linear.encoded == [] and Linear.decodes == 0
        assert again.table["bpp"].tolist() == result.table["bpp"].tolist()


def test_an_image_without_stored_points_is_probed_first_where_the_others_meet_the_target(
    image_folder: Path, tmp_path: Path
) -> None:
    codec = Linear()
    dataset, images = folder(image_folder)
    with ResultStore(tmp_path / "r.sqlite") as store:
        sweep(store, codec, dataset, images[:2])
        Linear.encoded.clear()
        rate_matched(store, [codec], dataset, images, 2.6, [])
    unstored = read_image(images[2].path).shape[0]
    first = next(point for h, point in Linear.encoded if h == unstored)
    assert first == 16  # the stored point whose mean bpp (2.0) is nearest 2.6, not the knob's middle


def test_stored_rows_answer_without_encoding_or_decoding(image_folder: Path, tmp_path: Path) -> None:
    codec = NoWork()
    dataset, images = folder(image_folder)
    with ResultStore(tmp_path / "r.sqlite") as store:
        put_rows(store, codec, dataset, {1: [(0.032, 20.0), (0.0323, 20.0), (0.0326, 20.0)],
                                         2: [(0.06, 22.0)] * 3, 3: [(0.12, 24.0)] * 3})
        near = rate_matched(store, [codec], dataset, images, 0.03, [psnr()])
        strict = rate_matched(store, [codec], dataset, images, 0.03, [psnr()], tolerance=0.05)
        inside = rate_matched(store, [codec], dataset, images, 0.045, [psnr()])
    (row,) = near.table.to_dict("records")
    assert row["bpp"] == pytest.approx(0.0323) and row["images_over"] == 3 and row["n"] == 3
    assert row["over_target"] == pytest.approx(0.0323 / 0.03 - 1)
    assert row["at_target"] and row["match"] == "+7.7 % (within tol.)"
    assert math.isnan(row["interp-psnr"]) and "below the measured range" in row["interp-note"]
    assert any("nowork: no interpolated values" in note for note in near.notes)
    (row,) = strict.table.to_dict("records")
    assert not row["at_target"] and row["match"] == "+7.7 % OVER"
    (row,) = inside.table.to_dict("records")
    assert row["match"] == "ok" and row["psnr"] == 20.0 and row["bpp"] == pytest.approx(0.0323)
    expected = 20 + 2 * math.log(0.045 / 0.0323) / math.log(0.06 / 0.0323)
    assert row["interp-psnr"] == pytest.approx(expected)


def test_each_configuration_is_its_own_row(image_folder: Path, tmp_path: Path) -> None:
    dataset, images = folder(image_folder)
    plain, other = NoWork(), NoWork().with_options(mode="b")
    with ResultStore(tmp_path / "r.sqlite") as store:
        put_rows(store, plain, dataset, {p: [(0.1 * p, 20.0 + p)] * 3 for p in (1, 2, 3)})
        put_rows(store, other, dataset, {p: [(0.2 * p, 21.0 + p)] * 3 for p in (1, 2, 3)})
        curves = stored_curves(NoWork(), store.frame(dataset.name))
        assert [c.label for c in curves] == ["nowork", "nowork[mode=b]"]
        result = rate_matched(store, curves, dataset, images, 0.25, [psnr()])
    table = result.table.set_index("curve")
    assert table.loc["nowork", "bpp"] == pytest.approx(0.2)
    assert table.loc["nowork[mode=b]", "bpp"] == pytest.approx(0.2)
    assert table.loc["nowork", "psnr"] == 22.0 and table.loc["nowork[mode=b]", "psnr"] == 22.0
    assert table.loc["nowork", "interp-psnr"] == pytest.approx(22 + math.log(1.25) / math.log(1.5))
    assert set(result.matches["curve"]) == {"nowork", "nowork[mode=b]"}


def test_a_codec_without_any_result_still_gets_a_row(image_folder: Path, tmp_path: Path) -> None:
    dataset, images = folder(image_folder)
    with ResultStore(tmp_path / "r.sqlite") as store:
        result = rate_matched(store, [NoWork()], dataset, images, 0.5, [psnr()], probe=False)
    (row,) = result.table.to_dict("records")
    assert row["curve"] == "nowork" and row["n"] == 0 and row["match"] == "no result"


def test_default_codecs_are_the_stored_ones_of_the_dataset_domain() -> None:
    class Face(ToyKnob):
        name = "face"
        domain = "faces"

    class Gone(ToyKnob):
        name = "gone"

        def unavailable_reason(self) -> str:
            return "not here"

    registered = [ToyKnob(), Face(), Gone(), NoWork()]
    chosen, notes = default_codecs(registered, ["knob", "face", "gone", "deleted"], "photos")
    assert [c.name for c in chosen] == ["gone", "knob"]
    assert notes == ["stored but not installed here, left out: deleted",
                     "faces codecs left out on a photos dataset: face (name them with -c to include them)"]
    chosen, notes = default_codecs(registered, [], "photos", every=True)
    assert [c.name for c in chosen] == ["knob", "nowork"] and "face" in notes[0]
    chosen, _ = default_codecs(registered, ["face"], "faces")
    assert [c.name for c in chosen] == ["face"]


@pytest.mark.parametrize("range_, integer", [((0.0, 1.0), False), ((0, 100), True), (None, True)])
def test_knob_bisection_ends_next_to_the_target(range_, integer) -> None:
    class Toy(ToyKnob):
        points = tuple(range(0, 101, 7)) if range_ is None else (0, 1)
        point_range = range_
        integer_points = integer

    knob = Knob(Toy())
    scale = 1.0 if range_ == (0.0, 1.0) else 100.0
    for target in (-1.0, 0.123, 0.5, 0.999, 2.0):  # bpp = point / scale
        search = compare_search(knob, lambda p: p / scale, target)
        if target < 0:
            assert search.below is None and search.above == knob.low
        elif target >= knob.high / scale:
            assert search.below == knob.high and search.above is None
        else:
            assert search.below / scale <= target < search.above / scale
            assert knob.middle(search.below, search.above) is None


def compare_search(knob: Knob, bpp, target: float) -> Search:
    search = Search(None)  # type: ignore[arg-type]
    for _ in range(100):
        point = knob.middle(search.below, search.above)
        if point is None:
            return search
        search.add(point, bpp(point), target)
    raise AssertionError("bisection did not end")


def test_cli_default_codecs_formats_and_configurations(image_folder: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "r.sqlite")
    data = f"folder:{image_folder}"
    empty = CliRunner().invoke(cli, ["compare", "--bpp", "1", "-d", data, "--db", db, "-q"])
    assert empty.exit_code == 1 and "No results for dataset" in empty.output
    for sub in ("420", "444"):
        run = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", data, "-p", "10,50,90", "-m", "psnr",
                                       "-o", f"subsampling={sub}", "--db", db, "-q", "-j", "1"])
        assert run.exit_code == 0, run.output
    args = ["compare", "--bpp", "3", "-d", data, "-m", "psnr", "--no-probe", "--db", db, "-q"]
    rows = json.loads(CliRunner().invoke(cli, args + ["--format", "json"]).stdout)
    assert sorted(r["curve"] for r in rows) == ["jpeg", "jpeg[subsampling=444]"]  # only stored codecs
    assert all(r["bpp"] <= 3 and r["interp-psnr"] > 0 for r in rows)
    csv = CliRunner().invoke(cli, args + ["--format", "csv"]).stdout
    assert csv.splitlines()[0].startswith("codec,curve,family,codec_version,config,n,bpp,psnr")
    markdown = CliRunner().invoke(cli, args + ["--format", "markdown"]).stdout
    header = [cell.strip() for cell in markdown.splitlines()[0].strip("|").split("|")]
    assert header == ["curve", "n", "bpp", "match", "psnr", "interp-psnr"]
    assert "| jpeg[subsampling=444]" in markdown
    one = json.loads(CliRunner().invoke(cli, args + ["-c", "jpeg", "-o", "subsampling=444", "--format",
                                                     "json"]).stdout)
    assert [r["curve"] for r in one] == ["jpeg[subsampling=444]"]
    assert len(ResultStore(db).frame()) == 18  # --no-probe encoded nothing
    for method in ("0", "6"):
        run = CliRunner().invoke(cli, ["run", "-c", "webp", "-d", data, "-p", "10,50,90", "-m", "psnr",
                                       "-o", f"method={method}", "--db", db, "-q", "-j", "1"])
        assert run.exit_code == 0, run.output
    mixed = json.loads(CliRunner().invoke(cli, args + ["-c", "jpeg,webp", "-o", "subsampling=444",
                                                       "--format", "json"]).stdout)
    # the option configures jpeg only; webp, which does not accept it, keeps every stored curve
    assert sorted(r["curve"] for r in mixed) == ["jpeg[subsampling=444]", "webp",
                                                  "webp[method=0]"]


def test_a_set_metric_over_matched_points_is_stored_and_not_computed_again(image_folder: Path,
                                                                            tmp_path: Path) -> None:
    count = CountingSetMetric()
    codec = jpeg()
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    images = dataset.images()
    with ResultStore(tmp_path / "r.sqlite") as store:
        first = rate_matched(store, [codec], dataset, images, 3.5, [count])
        assert count.calls == 1 and first.matches["point"].nunique() > 1  # a per-image mix of points
        again = rate_matched(store, [codec], dataset, images, 3.5, [count])
        assert count.calls == 1 and again.table["count"].tolist() == first.table["count"].tolist() == [len(images)]
        rate_matched(store, [codec], dataset, images, 2.0, [count])  # other matches: computed
        assert count.calls == 2
