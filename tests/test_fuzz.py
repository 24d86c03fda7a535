"""Fuzzing every available decoder with truncated, bit-flipped and random bitstreams.

A bounded budget with a fixed seed (the same few hundred cases on every run). Each case is decoded
in a pebble worker process, so a decoder that segfaults or hangs fails its case instead of taking
the test session down. A hostile bitstream must end in a ``CodecbenchError`` subclass; only a bit
flip that the format cannot detect (no checksum), or a truncation of a format that conceals it
(``CONCEALS_TRUNCATION``), may instead give a well-formed ``uint8`` image.
Huge declared sizes (decompression bombs) must be refused before any pixel is decoded.

The CRC of a learned codec's container catches damage, not forgery, so learned streams are also
forged with their CRC recomputed (declared size, latent shape, stream lengths and contents, stream
count, digest, checkpoint): each must end in a clean error or an image of the declared size, within
the case's time limit and without a large allocation.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError
from pathlib import Path

import numpy as np
import pytest
from fuzz_worker import decode_case, decode_measured
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


def test_a_learned_stream_far_too_short_for_its_declared_size_is_refused_not_a_crash(
    pool: ProcessPool, learned: Codec
) -> None:
    # The native rANS decoder reads a word per symbol without bounds checks: 98k symbols from a
    # 40x56 image's stream read ~400 KB past its end (a segfault) unless the decoder pads it.
    # (A version-1 stream, without a symbol digest, so it may decode to an image.)
    forged = learned_stream_declaring(learned, 2048, 3072)
    [outcome] = decode_all(pool, learned.with_options(), [forged])
    assert outcome.startswith("refused BitstreamError") or outcome == "image (2048, 3072, 3)", outcome


FORGED_PEAK_BYTES = 1 << 30  # what one forged stream may add to a worker's peak memory


def forgeries(codec: Codec, stream: bytes, rng: np.random.Generator,
              large: tuple[int, int]) -> Iterator[tuple[str, bytes]]:
    """Valid-CRC variants of a learned ``stream``: header fields and streams altered as a forger
    would (``large``: a declared height and width a few hundred stream bytes cannot fill), the
    container re-written so that its CRC matches."""
    from codecbench.learned.bitstream import Bitstream

    real = Bitstream.from_bytes(stream)

    def forged(**changes: object) -> bytes:
        return dataclasses.replace(real, **changes).to_bytes()

    h, w = real.height, real.width
    for height, width in [(4 * h, 4 * w), large, (1, 1)]:
        yield f"declares {width}x{height}", forged(height=height, width=width,
                                                  latent_shape=codec.latent_shape(height, width))
        yield f"declares {width}x{height}, latent unchanged", forged(height=height, width=width)
    yield "latent shape doubled", forged(latent_shape=tuple(2 * d for d in real.latent_shape))
    yield "latent shape of rank 3", forged(latent_shape=(*real.latent_shape, 1))
    yield f"declares {large[1]}x{large[0]} with a 400-byte random stream", forged(
        height=large[0], width=large[1], latent_shape=codec.latent_shape(*large),
        streams=(rng.bytes(400), *real.streams[1:]))
    yield f"declares {large[1]}x{large[0]}, every stream random", forged(
        height=large[0], width=large[1], latent_shape=codec.latent_shape(*large),
        streams=tuple(rng.bytes(len(s)) for s in real.streams))
    for i, s in enumerate(real.streams):
        def with_stream(new: bytes, i: int = i) -> bytes:
            return forged(streams=(*real.streams[:i], new, *real.streams[i + 1:]))

        yield f"stream {i} emptied", with_stream(b"")
        yield f"stream {i} cut by one byte", with_stream(s[:-1])
        yield f"stream {i} cut to half its words", with_stream(s[: len(s) // 8 * 4])
        yield f"stream {i} zeroed", with_stream(bytes(len(s)))
        yield f"stream {i} all ones", with_stream(b"\xff" * len(s))
        yield f"stream {i} random, same length", with_stream(rng.bytes(len(s)))
        yield f"stream {i} random, 4x as long", with_stream(rng.bytes(4 * len(s) + 4))
        yield f"stream {i} bits flipped", with_stream(bytes(b ^ int(rng.integers(1, 256)) for b in s))
    yield "one stream more", forged(streams=(*real.streams, real.streams[0]))
    yield "last stream dropped", forged(streams=real.streams[:-1])
    yield "streams in reverse order", forged(streams=real.streams[::-1])
    if real.symbol_digest is not None:
        yield "symbol digest changed", forged(symbol_digest=bytes(b ^ 0xFF for b in real.symbol_digest))
    yield "checkpoint id changed", forged(checkpoint="0" * 16)


def fuzz_forged(pool: ProcessPool, codec: Codec, point: float, sent: str | Codec,
                large: tuple[int, int]) -> None:
    """Decode valid-CRC forgeries of a small image's stream in workers: each is refused or decodes
    to an image of its declared size, within ``CASE_TIMEOUT_S`` and ``FORGED_PEAK_BYTES``."""
    from codecbench.learned.bitstream import Bitstream

    stream = codec.encode(synthetic_image(40, 56, seed=1), point)
    rng = np.random.default_rng([SEED, 13, *codec.name.encode()])
    cases = list(forgeries(codec, stream, rng, large))
    futures = [pool.schedule(decode_measured, (sent, data), timeout=CASE_TIMEOUT_S) for _, data in cases]
    bad = []
    for (label, data), future in zip(cases, futures):
        try:
            outcome, seconds, grown = future.result()
        except ProcessExpired as exc:
            bad.append(f"{label}: crashed the process ({describe_exit(exc.exitcode)})")
            continue
        except TimeoutError:
            bad.append(f"{label}: hung for more than {CASE_TIMEOUT_S} s")
            continue
        declared = Bitstream.from_bytes(data)
        if not (outcome.startswith("refused BitstreamError")
                or outcome == f"image {(declared.height, declared.width, 3)}"):
            bad.append(f"{label}: {outcome}")
        elif grown > FORGED_PEAK_BYTES:
            bad.append(f"{label}: {outcome} after allocating {grown / 2**20:.0f} MiB")
    assert not bad, f"{codec.name} ({len(cases)} forgeries):\n" + "\n".join(bad)


def test_forged_learned_streams_with_valid_crc_are_refused_cleanly(pool: ProcessPool, learned: Codec) -> None:
    fuzz_forged(pool, learned, 1, learned.with_options(), large=(512, 768))  # Kodak's size


@pytest.mark.parametrize("name", [n for n in available_codecs()
                                  if plugins.codecs().get(n).family == "learned"])
def test_forged_streams_of_every_learned_codec_are_refused_cleanly(pool: ProcessPool, name: str) -> None:
    codec = plugins.codecs().get(name)
    fuzz_forged(pool, codec, codec.points[0], name, large=(128, 192))  # real models: a quick size


def test_a_declared_size_whose_decoding_does_not_fit_in_memory_is_refused_before_loading(
    learned: Codec, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codecbench.executors import memory

    bomb = learned_stream_declaring(learned, 3000, 4000)  # 12 Mpx: 11.2 GiB at 1000 B/px
    monkeypatch.setattr(memory, "available_bytes", lambda: 8 << 30)
    fresh = learned.with_options()  # nothing loaded: the refusal comes first
    with pytest.raises(BitstreamError, match=r"4000x3000 image; decoding it with toy-learned needs about "
                                             r"11\.2 GiB, more than the 8\.0 GiB available"):
        fresh.decode(bomb)
    assert not fresh._models
