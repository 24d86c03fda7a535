"""Helpers for testing codecbench and its plugins (also a pytest plugin: ``pytest11``).

``check_codec(codec)`` asserts the codec contract on synthetic images;
``check_thread_independence(codec, image, point)`` that a learned codec's bytes and images do not
depend on torch's thread count; the ``registered_plugin`` fixture registers a plugin object for one
test and always unregisters it.
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


def on_threads(threads: int, call: Callable, *args: object) -> object:
    """``call(*args)`` with torch on ``threads`` intra-op threads; asserts the call leaves that count
    as it found it, then restores the caller's."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = call(*args)
        assert torch.get_num_threads() == threads, "the codec changed the caller's thread count"
        return result
    finally:
        torch.set_num_threads(previous)


def check_thread_independence(codec: Codec, image: np.ndarray, point: float) -> bytes:
    """Assert that ``codec`` codes ``image`` to the same bytes on 1 and 2 torch threads, that those
    bytes decode to the same image whatever the decoder's thread count (both directions), and that
    a learned codec's container carries the digest of its coded symbols. Returns the bytes."""
    data = {threads: on_threads(threads, codec.encode, image, point) for threads in (1, 2)}
    assert data[1] == data[2], "the bytes depend on the encoder's thread count"
    if getattr(codec, "family", "") == "learned":
        from codecbench.learned.bitstream import Bitstream

        assert Bitstream.from_bytes(data[1]).symbol_digest is not None
    decoded = [on_threads(dec, codec.decode, data[enc]) for enc in (2, 1) for dec in (1, 2)]
    for other in decoded[1:]:
        np.testing.assert_array_equal(other, decoded[0])
    return data[1]


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
