"""The learned-codec guide, followed to the letter: a tiny plugin written from docs/learned-codec.md
with only ``codecbench``, the ``codecbench.learned`` facade and the ``codecbench.testing`` kit,
trained by ``codecbench train``, shipped with a manifest and benchmarked by ``codecbench run``."""

from __future__ import annotations

import importlib
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from codecbench.cli import cli
from codecbench.results import ResultStore
from codecbench.testing import (
    check_checkpoint_manifest,
    check_damaged_streams,
    check_learned_codec,
    registered,
    synthetic_image,
)

pytest.importorskip("compressai")

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXAMPLE = DOCS / "examples" / "codecbench_tiny.py"


def test_the_guide_shows_the_example_as_it_is_tested() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "learned-codec.md").read_text(), re.S)
    assert EXAMPLE.read_text() in blocks


@pytest.fixture
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example as an importable package ``codecbench_tiny`` with a ``checkpoints`` folder."""
    package = tmp_path / "plugin" / "codecbench_tiny"
    (package / "checkpoints").mkdir(parents=True)
    shutil.copy(EXAMPLE, package / "__init__.py")
    monkeypatch.syspath_prepend(str(package.parent))
    yield package
    sys.modules.pop("codecbench_tiny", None)


def fresh_plugin() -> object:
    """The plugin module imported anew (its codec reads the manifest as it is now)."""
    sys.modules.pop("codecbench_tiny", None)
    return importlib.import_module("codecbench_tiny")


def test_a_learned_codec_from_the_guide(plugin_folder: Path, tmp_path: Path, registered_plugin) -> None:
    from PIL import Image

    from codecbench.learned import read_checkpoint, sha256_of

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(6):
        Image.fromarray(synthetic_image(48, 64, seed)).save(photos / f"{seed}.png")

    # Train it (the plugin registered as an installed one would be).
    out = tmp_path / "run"
    command = ["train", "tiny", "--data", str(photos), "--out", str(out), "--val-count", "2", "--steps", "6",
               "--crop", "32", "--batch-size", "2", "--val-every", "3", "-m", "target_bpp=2", "-q"]
    with registered(fresh_plugin(), "tiny"):
        trained = CliRunner().invoke(cli, command)
    assert trained.exit_code == 0, trained.output
    payload = read_checkpoint(out / "model.pt")
    assert payload["codec"] == "tiny" and payload["model_config"] == {"N": 8, "M": 8, "target_bpp": 2.0}
    assert payload["step"] == 6 and (out / "last.pt").is_file()

    # Ship it: the file beside a manifest entry with its sha256 and how it was made.
    shipped = plugin_folder / "checkpoints" / "tiny-q1.pt"
    shutil.copy(out / "model.pt", shipped)
    (plugin_folder / "checkpoints" / "tiny.toml").write_text(
        '[[checkpoint]]\nname = "tiny-q1"\npoint = 1\nfile = "tiny-q1.pt"\n'
        f'sha256 = "{sha256_of(shipped)}"\nlmbda = {payload["lmbda"]}\n'
        f"training_command = '{' '.join(['codecbench', *command])}'\n"
        f'budget = "{payload["step"]} steps, 32x32 crops, batch 2"\n')

    # The kit's three checks, on the shipped codec.
    plugin = fresh_plugin()
    check_learned_codec(plugin.TinyCodec())
    check_damaged_streams(plugin.TinyCodec())
    check_checkpoint_manifest(plugin.TinyCodec())

    # And a benchmark run, in-process, of the installed plugin.
    registered_plugin(plugin, "tiny")
    db = tmp_path / "results.sqlite"
    ran = CliRunner().invoke(cli, ["run", "-c", "tiny", "-d", f"folder:{photos}", "-m", "psnr", "-j", "1",
                                   "--db", str(db), "-q"])
    assert ran.exit_code == 0, ran.output
    frame = ResultStore(db).frame()
    assert len(frame) == 6 and set(frame["status"]) == {"ok"}
    assert (frame["bpp"] > 0).all() and (frame["psnr"] > 0).all()
