"""Every hook has a page in docs/hooks with its exact signature, and each page's example runs."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench import hookspecs, plugins
from codecbench.testing import check_codec, synthetic_image

HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks"
SPECS = sorted(name for name, f in vars(hookspecs).items()
               if callable(f) and hasattr(f, "codecbench_spec"))


def example(hook: str, tmp_path: Path) -> ModuleType:
    """The first Python block of ``docs/hooks/<hook>.md``, imported as a module."""
    code = re.search(r"```python\n(.*?)```", (HOOKS / f"{hook}.md").read_text(), re.S).group(1)
    path = tmp_path / f"docs_example_{hook}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hooks_are_the_four_documented() -> None:
    assert SPECS == ["register_codecs", "register_commands", "register_datasets", "register_metrics"]


@pytest.mark.parametrize("hook", SPECS)
def test_every_hook_has_a_page_with_its_signature(hook: str) -> None:
    signature = f"{hook}({', '.join(inspect.signature(getattr(hookspecs, hook)).parameters)})"
    page = HOOKS / f"{hook}.md"
    assert page.is_file() and page.read_text().startswith(f"# `{signature}`")


def test_hook_register_codecs(tmp_path: Path, registered_plugin) -> None:
    module = registered_plugin(example("register_codecs", tmp_path), "docs-codecs")
    codec = plugins.codecs().get("levels")
    check_codec(codec)
    image = synthetic_image(33, 57)
    assert np.array_equal(codec.decode(codec.encode(image, 8)), image)
    sizes = [len(codec.encode(image, point)) for point in codec.points]
    assert sizes == sorted(sizes) and module.Levels.name == "levels"


def test_hook_register_datasets(tmp_path: Path, registered_plugin) -> None:
    from codecbench import DatasetError

    registered_plugin(example("register_datasets", tmp_path), "docs-datasets")
    dataset = plugins.datasets().get("clic-mini")
    with pytest.raises(DatasetError, match="Crop eight images"):
        dataset.images(tmp_path / "data", download=False)
    (tmp_path / "data" / "clic-mini").mkdir(parents=True)
    for i in range(8):
        Image.fromarray(synthetic_image(16, 16, i)).save(tmp_path / "data" / "clic-mini" / f"{i}.png")
    assert [ref.name for ref in dataset.images(tmp_path / "data")] == [f"{i}.png" for i in range(8)]


def test_hook_register_metrics(tmp_path: Path, registered_plugin) -> None:
    registered_plugin(example("register_metrics", tmp_path), "docs-metrics")
    metric = plugins.metrics().get("mae")
    a = np.zeros((4, 4, 3), np.uint8)
    assert metric.compute(a, a + 2) == {"mae": 2.0}
    assert metric.columns["mae"].higher_is_better is False


def test_hook_register_commands(tmp_path: Path, image_folder: Path) -> None:
    module = example("register_commands", tmp_path)
    group = click.Group("codecbench")
    module.register_commands(cli=group)
    result = CliRunner().invoke(group, ["pixels", str(image_folder)])
    assert result.exit_code == 0, result.output
    assert result.output == f"3 images, {(64 * 96 + 48 * 48 + 33 * 57) / 1e6:.2f} megapixels\n"
