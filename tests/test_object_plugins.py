"""A plugin registered as an object (not a module, not an entry point) works in worker processes
exactly as a built-in one: in a pool (``run -j 2``), in the guarded worker that completes stored
rows with a new metric (``run -j 1``), and in :func:`~codecbench.executors.decode_guarded`; one that
cannot travel to workers is named, and the workers keep working."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from object_plugin import MeanAbsoluteError, ToyObjectPlugin

import codecbench
from codecbench import plugins
from codecbench.cli import cli
from codecbench.executors import GuardedDecodeError, decode_guarded
from codecbench.image import read_image
from codecbench.results import ResultStore
from codecbench.testing import synthetic_image


@pytest.fixture
def object_codec(registered_plugin) -> codecbench.Codec:
    """``ToyObjectPlugin`` registered as an object, as a third-party plugin written from the docs
    may be; its codec from the registry."""
    registered_plugin(ToyObjectPlugin(), "toy-object")
    return plugins.codecs().get("object-quantizer")


def run(db: Path, folder: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["run", "-c", "object-quantizer", "-d", f"folder:{folder}",
                                      "-q", "--db", str(db), *args])
    assert result.exit_code == 0, result.output


def expected_mae(codec: codecbench.Codec, folder: Path, image: str, point: float) -> float:
    original = read_image(folder / image)
    reconstruction = codec.decode(codec.encode(original, point))
    return MeanAbsoluteError().compute(original, reconstruction)["mean-abs"]


def test_run_j2_computes_an_object_plugins_codec_and_metric_in_workers(
    object_codec: codecbench.Codec, image_folder: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    run(db, image_folder, "-m", "psnr,mean-abs", "-j", "2")
    frame = ResultStore(db).frame()
    assert len(frame) == 6 and set(frame["status"]) == {"ok"}, frame[["status", "error"]]
    for _, row in frame.iterrows():
        assert row["mean-abs"] == expected_mae(object_codec, image_folder, row["image"], row["point"])


def test_run_j1_completes_stored_rows_with_an_object_plugins_metric(
    object_codec: codecbench.Codec, image_folder: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    run(db, image_folder, "-m", "psnr", "-j", "1")
    run(db, image_folder, "-m", "psnr,mean-abs", "-j", "1")  # decoded in the guarded worker
    frame = ResultStore(db).frame()
    assert len(frame) == 6 and frame["mean-abs"].notna().all()
    for _, row in frame.iterrows():
        assert row["mean-abs"] == expected_mae(object_codec, image_folder, row["image"], row["point"])


def test_decode_guarded_decodes_an_object_plugins_codec(object_codec: codecbench.Codec) -> None:
    image = synthetic_image(24, 40)
    stream = object_codec.encode(image, 3)
    decoded = decode_guarded(object_codec, stream, image.shape, timeout=60)
    assert np.array_equal(decoded, object_codec.decode(stream))


def test_a_plugin_object_that_cannot_be_pickled_is_named_and_the_worker_goes_on(
    registered_plugin, object_codec: codecbench.Codec
) -> None:
    class LocalQuantizer(type(object_codec)):  # defined in a function: cannot be pickled
        name = "local-quantizer"

    class LocalPlugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(LocalQuantizer())

    registered_plugin(LocalPlugin(), "local-plugin")
    codec = plugins.codecs().get("local-quantizer")
    image = synthetic_image(24, 40)
    with pytest.raises(GuardedDecodeError) as caught:
        decode_guarded(codec, codec.encode(image, 3), image.shape, timeout=60)
    message = str(caught.value)
    assert "Unknown codec 'local-quantizer'" in message
    assert "plugin 'local-plugin' cannot be registered in worker processes: it cannot be pickled" in message
    # the other plugins (the picklable object one included) still decode in the same worker
    stream = object_codec.encode(image, 6)
    assert np.array_equal(decode_guarded(object_codec, stream, image.shape, timeout=60),
                          object_codec.decode(stream))
