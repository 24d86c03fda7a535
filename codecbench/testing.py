"""Helpers for testing codecbench and its plugins (also a pytest plugin: ``pytest11``).

``check_codec(codec)`` asserts the codec contract on synthetic images; the ``registered_plugin``
fixture registers a plugin object for one test and always unregisters it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from codecbench.codec import Codec, check_image_array
from codecbench.plugins import registered_plugin as _registered_plugin


def synthetic_image(height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    """A deterministic ``H x W x 3`` ``uint8`` test image: gradients, edges and some noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 100 * np.sin(x / max(width, 1) * 6.0 + seed)
    g = 127 + 100 * np.cos(y / max(height, 1) * 4.0)
    b = np.where((x // 16 + y // 16) % 2 == 0, 200.0, 60.0)
    image = np.stack([r, g, b], axis=-1) + rng.normal(0, 8, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def check_codec(codec: Codec, image: np.ndarray | None = None) -> None:
    """Assert the codec contract: bytes out, same shape and dtype back, deterministic bytes,
    a decoder that needs only the bytes, and no fewer bytes at the highest point than the lowest."""
    image = synthetic_image() if image is None else image
    assert codec.points, f"{codec.name}: no operating points"
    assert list(codec.points) == sorted(codec.points), f"{codec.name}: points not ordered by rate"
    codec.load()
    sizes = []
    for point in (codec.points[0], codec.points[-1]):
        data = codec.encode(image, point)
        assert isinstance(data, bytes) and data, f"{codec.name}: encode() must return non-empty bytes"
        assert codec.encode(image, point) == data, f"{codec.name}: encode() is not deterministic"
        decoded = codec.decode(data)
        check_image_array(decoded, f"{codec.name}.decode() output")
        assert decoded.shape == image.shape, f"{codec.name}: decoded shape {decoded.shape}"
        sizes.append(len(data))
    assert sizes[0] <= sizes[1], f"{codec.name}: highest point gives fewer bytes than lowest"


@pytest.fixture
def registered_plugin() -> Iterator[Callable[[object, str], object]]:
    """Register plugin objects for one test: ``registered_plugin(module_or_object, "name")``."""
    stack = []

    def register(plugin: object, name: str) -> object:
        ctx = _registered_plugin(plugin, name)
        ctx.__enter__()
        stack.append(ctx)
        return plugin

    yield register
    while stack:
        stack.pop().__exit__(None, None, None)
