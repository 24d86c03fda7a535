"""The test kit for codecbench plugins (also a pytest plugin: ``pytest11``, so its fixture loads).

A plugin's test suite asserts the contracts in one line each::

    from codecbench.testing import check_checkpoint_manifest, check_damaged_streams, check_learned_codec

    def test_round_trip(): check_learned_codec(MyCodec())
    def test_damaged_streams(): check_damaged_streams(MyCodec())
    def test_shipped_checkpoints(): check_checkpoint_manifest(MyCodec())

* :func:`check_codec`: the codec contract on synthetic images (any codec);
* :func:`check_learned_codec`: that, plus the learned container (codec name, checkpoint id, image
  size, symbol digest) and an image whose sides are not multiples of the model's stride;
* :func:`check_damaged_streams`: every :func:`damaged_streams` copy of a real stream (truncated,
  flipped, forged with a valid CRC) raises ``BitstreamError``, and the intact one still decodes;
* :func:`check_checkpoint_manifest`: the shipped checkpoints' TOML manifest (fields, points
  ``1..k``, files and sha256, the codec each was exported for) and, with ``load=True``, that
  every checkpoint loads strictly into the model;
* :func:`check_thread_independence`: a learned codec's bytes and images do not depend on torch's
  thread count;
* :func:`check_other_cpu_decoding`: a stream encoded under another CPU's kernels
  (:func:`encode_on_other_cpu`, :data:`OTHER_CPU_KERNELS`) decodes here;
* :func:`synthetic_image`; :func:`registered` registers a plugin object (a module or any object
  with ``@hookimpl`` functions) for a ``with`` block, as if it were installed, so ``codecbench``
  commands invoked in-process see it; the ``registered_plugin`` fixture does so for one test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pytest

from codecbench.codec import Codec, check_image_array
from codecbench.errors import BitstreamError
from codecbench.plugins import registered_plugin as registered

if TYPE_CHECKING:
    from codecbench.learned import LearnedCodec


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


OTHER_CPU_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                     "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
"""Environment under which torch, oneDNN and MKL run an older x86 CPU's kernels (no AVX), whose
float32 arithmetic rounds differently in the last bit: another CPU, emulated on this one."""

_ENCODE_ON_OTHER_CPU = """
import importlib, pickle, sys
module, name, config, image, point = pickle.load(sys.stdin.buffer)
codec = getattr(importlib.import_module(module), name)()
codec.configure(**config)
sys.stdout.buffer.write(codec.encode(image, point))
"""


def encode_on_other_cpu(codec: Codec, image: np.ndarray, point: float) -> bytes:
    """``codec.encode(image, point)`` in a subprocess running :data:`OTHER_CPU_KERNELS`.

    The subprocess builds the codec from its class (importable from this process's ``sys.path``)
    and its options, so any codec a test can import works, registered or not."""
    import os
    import pickle
    import subprocess
    import sys

    env = {**os.environ, **OTHER_CPU_KERNELS, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    kind = type(codec)
    request = pickle.dumps((kind.__module__, kind.__qualname__, dict(codec.config), image, point))
    done = subprocess.run([sys.executable, "-c", _ENCODE_ON_OTHER_CPU], input=request, env=env,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, f"encoding on the emulated CPU failed:\n{done.stderr.decode()[-2000:]}"
    return done.stdout


def check_other_cpu_decoding(codec: Codec, image: np.ndarray | None = None, point: float = 1) -> bytes:
    """Assert that a stream ``codec`` encodes on another CPU (:func:`encode_on_other_cpu`) decodes
    here: a learned codec's decoder must choose the encoder's CDFs from its own floats (its symbol
    digest raises ``BitstreamError`` otherwise). Returns the stream."""
    image = synthetic_image() if image is None else image
    data = encode_on_other_cpu(codec, image, point)
    decoded = codec.decode(data)
    assert decoded.shape == image.shape
    return data


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


def check_learned_codec(codec: LearnedCodec, image: np.ndarray | None = None) -> None:
    """:func:`check_codec`, then, at every point, that the container names the codec, the
    checkpoint serving that point and the image size, carries the symbol digest, and that an
    image whose sides are not multiples of ``codec.stride`` comes back at its own size."""
    from codecbench.learned import Bitstream

    image = synthetic_image() if image is None else image
    check_codec(codec, image)
    odd = synthetic_image(codec.stride + 7, 2 * codec.stride - 3, seed=1)
    for point in codec.points:
        for picture in (image, odd):
            data = codec.encode(picture, point)
            container = Bitstream.from_bytes(data, codec=codec.name)
            assert container.checkpoint == codec.model_for_point(point).checkpoint, \
                f"{codec.name}: point {point} is not coded by its own checkpoint"
            assert (container.height, container.width) == picture.shape[:2]
            assert container.symbol_digest is not None, f"{codec.name}: no digest of the coded symbols"
            assert codec.decode(data).shape == picture.shape, f"{codec.name}: decoded size differs"


def damaged_streams(data: bytes) -> dict[str, bytes]:
    """Damaged copies of a learned codec's stream ``data``, named by what was done to them.

    Some break the bytes (the CRC or the length fields catch them); the others are forgeries with
    a valid CRC: another codec's name, an unknown checkpoint, the image size swapped (a latent
    shape that does not match it), a stream dropped."""
    from codecbench.learned import Bitstream

    container = Bitstream.from_bytes(data)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    return {
        "empty": b"",
        "header only": data[:8],
        "truncated by half": data[: len(data) // 2],
        "last byte missing": data[:-1],
        "trailing byte": data + b"\0",
        "one bit flipped": bytes(flipped),
        "another codec's name": replace(container, codec=container.codec + "-other").to_bytes(),
        "unknown checkpoint": replace(container, checkpoint="0" * 16).to_bytes(),
        "size swapped": replace(container, height=container.width, width=container.height).to_bytes(),
        "stream dropped": replace(container, streams=container.streams[:-1]).to_bytes(),
    }


def check_damaged_streams(codec: LearnedCodec, image: np.ndarray | None = None) -> None:
    """Assert that every :func:`damaged_streams` copy of ``codec``'s stream of a non-square
    ``image`` at its first point raises ``BitstreamError`` (never another error, never an image),
    and that the intact stream decodes afterwards."""
    image = synthetic_image() if image is None else image
    assert image.shape[0] != image.shape[1], "check_damaged_streams needs a non-square image"
    data = codec.encode(image, codec.points[0])
    for what, damaged in damaged_streams(data).items():
        try:
            codec.decode(damaged)
        except BitstreamError:
            continue
        except Exception as exc:  # noqa: BLE001 - the assertion names it
            raise AssertionError(f"{codec.name}: a stream with {what} raised {type(exc).__name__} "
                                 f"({exc}), not BitstreamError") from exc
        raise AssertionError(f"{codec.name}: a stream with {what} decoded without an error")
    assert codec.decode(data).shape == image.shape


def check_checkpoint_manifest(codec: LearnedCodec, load: bool = True) -> None:
    """Assert that ``codec``'s shipped checkpoints are declared and shipped as the toolkit reads them.

    The manifest exists and declares points ``1..k`` in order under distinct names, each with a
    ``training_command`` (a ``codecbench train`` command) and a ``budget``; each file exists and
    matches its sha256, loads as tensors and plain values, and, when exported by ``codecbench
    train``, was trained for this codec (or one of its ``checkpoint_codecs``). With ``load``,
    every point's model is built and loaded strictly."""
    from codecbench.learned import is_exported, read_checkpoint, sha256_of

    assert codec.manifest is not None and codec.manifest.is_file(), f"{codec.name}: no manifest"
    specs = codec.shipped_checkpoints()
    assert specs, f"{codec.name}: {codec.manifest} declares no checkpoint"
    assert [spec.point for spec in specs] == list(range(1, len(specs) + 1)), \
        f"{codec.name}: points {[spec.point for spec in specs]} are not 1..{len(specs)}"
    assert len({spec.name for spec in specs}) == len(specs), f"{codec.name}: duplicate checkpoint names"
    for spec in specs:
        assert "codecbench train" in spec.training_command and spec.budget, \
            f"{spec.name}: training_command and budget say how it was made"
        assert spec.file.is_file(), f"{spec.name}: {spec.file} is missing"
        assert sha256_of(spec.file) == spec.sha256, f"{spec.name}: {spec.file} does not match its sha256"
        payload = read_checkpoint(spec.file, spec.sha256)
        if is_exported(payload):
            assert payload["codec"] in (codec.name, *codec.checkpoint_codecs), \
                f"{spec.name}: exported for codec {payload['codec']!r}"
    if load:
        codec.load()


@pytest.fixture
def registered_plugin() -> Iterator[Callable[[object, str], object]]:
    """Register plugin objects for one test: ``registered_plugin(module_or_object, "name")``."""
    stack = []

    def register(plugin: object, name: str) -> object:
        ctx = registered(plugin, name)
        ctx.__enter__()
        stack.append(ctx)
        return plugin

    yield register
    while stack:
        stack.pop().__exit__(None, None, None)
