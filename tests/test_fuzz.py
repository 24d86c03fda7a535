"""Fuzzing every available decoder with truncated, bit-flipped and random bitstreams.

A bounded budget with a fixed seed (the same few hundred cases on every run). Each case is decoded
in a pebble worker process, so a decoder that segfaults or hangs fails its case instead of taking
the test session down. A hostile bitstream must end in a ``CodecbenchError`` subclass; only a bit
flip that the format cannot detect (no checksum), or a truncation of a format that conceals it
(``CONCEALS_TRUNCATION``), may instead give a well-formed ``uint8`` image.
Huge declared sizes (decompression bombs) must be refused before any pixel is decoded.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError
from pathlib import Path

import numpy as np
import pytest
from fuzz_worker import decode_case
from pebble import ProcessExpired, ProcessPool

from codecbench import plugins
from codecbench.codec import Codec
from codecbench.errors import BitstreamError
from codecbench.executors.local import describe_exit
from codecbench.testing import synthetic_image

SEED = 20261125
TRUNCATIONS, BIT_FLIPS, RANDOM_STREAMS = 16, 32, 12
CASE_TIMEOUT_S = 30
HEADER_BYTES = 64  # half of the bit flips land here, where sizes and tables are declared
# Formats that cannot tell a truncated stream from a complete one: such a stream may decode to an
# image. BPG declares no picture length (bpgenc writes 0, "up to the end of the file") and libbpg
# conceals the missing slice data; the results store checksums the streams it keeps.
CONCEALS_TRUNCATION = {"bpg"}


def available_codecs() -> list[str]:
    return [c.name for c in plugins.codecs() if c.unavailable_reason() is None]


def mutations(stream: bytes, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    """Truncations (including empty), bit flips (1 to 8 bits) and random byte strings."""
    for length in sorted({0, *rng.integers(1, len(stream), TRUNCATIONS - 1).tolist()}):
        yield f"truncated to {length} bytes", stream[:length]
    for i in range(BIT_FLIPS):
        data = bytearray(stream)
        span = min(HEADER_BYTES, len(stream)) if i % 2 == 0 else len(stream)
        bits = rng.integers(0, 8 * span, rng.integers(1, 9))
        for bit in bits:
            data[bit // 8] ^= 1 << (bit % 8)
        yield f"bits {sorted(bits.tolist())} flipped", bytes(data)
    for _ in range(RANDOM_STREAMS):
        yield "random bytes", rng.bytes(int(rng.integers(1, 2 * len(stream))))


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    pool = ProcessPool(max_workers=1, context=multiprocessing.get_context("spawn"))  # decoding is quick: one start-up
    try:
        yield pool
    finally:
        pool.stop()
        pool.join()


def decode_all(pool: ProcessPool, codec: str | Codec, streams: list[bytes]) -> list[str]:
    """The outcome of decoding each stream in a worker, a crash or a hang included; ``codec`` is a
    registered codec's name or an unregistered (picklable, preferably not loaded) instance."""
    futures = [pool.schedule(decode_case, (codec, data), timeout=CASE_TIMEOUT_S) for data in streams]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except ProcessExpired as exc:
            outcomes.append(f"crashed the process ({describe_exit(exc.exitcode)})")
        except TimeoutError:
            outcomes.append(f"hung for more than {CASE_TIMEOUT_S} s")
    return outcomes


def fuzz(pool: ProcessPool, codec: Codec, point: float, sent: str | Codec) -> None:
    """Encode a small image with ``codec`` here, check it decodes here, then decode the mutated
    streams in workers with ``sent`` (what travels: a name, or an instance)."""
    image = synthetic_image(40, 56, seed=1)
    stream = codec.encode(image, point)
    assert codec.decode(stream).shape == image.shape
    rng = np.random.default_rng([SEED, *codec.name.encode()])
    cases = list(mutations(stream, rng))
    start = time.perf_counter()
    outcomes = decode_all(pool, sent, [data for _, data in cases])
    elapsed = time.perf_counter() - start
    bad = [f"{label}: {outcome}" for (label, _), outcome in zip(cases, outcomes)
           if not (outcome.startswith("refused ") or outcome.startswith("image ") and (
               label.startswith("bits") or label.startswith("truncated") and codec.name in CONCEALS_TRUNCATION))]
    assert not bad, f"{codec.name} ({len(cases)} cases, {elapsed:.1f} s):\n" + "\n".join(bad)


@pytest.mark.parametrize("name", available_codecs())
def test_hostile_bitstreams_are_refused_or_decoded_never_crash(pool: ProcessPool, name: str) -> None:
    codec = plugins.codecs().get(name)
    fuzz(pool, codec, codec.points[len(codec.points) // 2], name)


def test_the_learned_container_refuses_damage(pool: ProcessPool, learned: Codec) -> None:
    fuzz(pool, learned, 1, learned.with_options())  # a copy without the loaded model


def jpeg_with_declared_size(stream: bytes, height: int, width: int) -> bytes:
    """``stream`` with the frame header (SOF0) claiming ``height x width``; the data stays small."""
    sof = stream.index(b"\xff\xc0")
    return stream[:sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + stream[sof + 9:]


@pytest.mark.parametrize("side", [10_000, 60_000])  # Pillow only warns for the first; codecbench refuses
def test_a_jpeg_declaring_a_huge_size_is_refused_before_decoding(
    side: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "jpeg" not in plugins.codecs().items:
        pytest.skip("the jpeg codec (codecbench-classical) is not installed")
    from PIL import ImageFile

    codec = plugins.codecs().get("jpeg")
    bomb = jpeg_with_declared_size(codec.encode(synthetic_image(40, 56), 50), side, side)

    def load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded (allocated) before the size was refused")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(BitstreamError, match="decompression bomb"):
        codec.decode(bomb)


@pytest.fixture
def learned(tmp_path: Path) -> Codec:
    learned_toy = pytest.importorskip("learned_toy")
    return learned_toy.toy_codec(learned_toy.save_toy_checkpoint(tmp_path / "toy.pt"))


def learned_stream_declaring(codec: Codec, height: int, width: int) -> bytes:
    """A real toy bitstream re-wrapped to declare another size, with a valid CRC (crafted, not damaged)."""
    from codecbench.learned.bitstream import Bitstream

    real = Bitstream.from_bytes(codec.encode(synthetic_image(40, 56), 1))
    return Bitstream(real.codec, real.checkpoint, height, width, codec.latent_shape(height, width),
                     real.streams).to_bytes()


def test_a_learned_bitstream_declaring_a_huge_size_is_refused_before_decoding(
    pool: ProcessPool, learned: Codec
) -> None:
    # In a worker: CompressAI's rANS decoder reads past the end of streams too short for the
    # declared size and crashes; the refusal must come before it runs.
    bomb = learned_stream_declaring(learned, 20_000, 20_000)
    [outcome] = decode_all(pool, learned.with_options(), [bomb])
    assert outcome.startswith("refused BitstreamError") and "decompression bomb" in outcome, outcome
