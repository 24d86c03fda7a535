"""The container every learned codec writes: a small header, the entropy-coded streams, a CRC.

Layout (all integers big-endian)::

    magic  b"CBLC"                        4 bytes
    format version                        1 byte  (1 or 2; FORMAT_VERSION is written)
    codec name length, codec name (utf-8) 1 + n bytes
    checkpoint id                         8 bytes (first 8 bytes of the checkpoint's sha256)
    image height, width                   2 x 2 bytes
    latent shape: rank, dims              1 + 2 x rank bytes (CompressAI's ``shape``)
    stream count, then per stream:        1 byte
        length, bytes                     4 + n bytes
    symbol digest (version 2 only)        4 bytes (:class:`SymbolDigest` of the coded symbols)
    CRC-32 of everything above            4 bytes

Range/ANS decoders (CompressAI's included) do not detect damage; they decode garbage into a wrong
image or fail in native code. The CRC catches corruption and the length fields catch truncation
before any stream reaches the decoder, so a bad bitstream always ends in ``BitstreamError``.

Intact bytes can still decode to garbage: the decoder must rebuild every CDF the encoder used
bit for bit, from floats computed by the model's entropy-parameter networks, and another CPU
instruction set, library version or thread count can round one of them differently; rANS then
desynchronises silently. So version 2 carries a digest of the integer symbols the encoder coded;
the decoder recomputes it over the symbols it decoded (:func:`recording_symbols`) and raises
``BitstreamError`` on a mismatch instead of returning a wrong image. Version 1 streams (no digest)
are still read and decode as before, unchecked (``LearnedCodec`` now codes on one thread, as
``codecbench run``'s workers always did, so version-1 streams coded there decode right; one coded
in-process on several threads may not). ``LearnedCodec`` writes version 1 only for a model whose
entropy coders report no symbols.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from codecbench.errors import BitstreamError

MAGIC = b"CBLC"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CHECKPOINT_ID_BYTES = 8
DIGEST_BYTES = 4
MAX_SIDE = 0xFFFF

ARITHMETIC_MISMATCH = (
    "decoded to other symbols than the encoder coded: the bitstream is intact (its CRC matches), so "
    "it was decoded on a machine whose arithmetic differs from the encoder's (CPU instruction set, "
    "torch/CompressAI version or a model computation that depends on the thread count), and the "
    "entropy decoder desynchronised; decode it where it was encoded, or re-encode it here (or the "
    "stream was forged: altered and its CRC recomputed)"
)


@dataclass(frozen=True)
class Bitstream:
    """The decoded contents of a container.

    ``checkpoint`` is the hex id of the weights that wrote it (:func:`checkpoint_id`);
    ``latent_shape`` is the spatial shape CompressAI's ``decompress`` needs; ``streams`` are the
    entropy-coded strings, one per entropy model, for a single image; ``symbol_digest`` is the
    :class:`SymbolDigest` of the symbols they code (``None``: a version-1 stream, no check).
    """

    codec: str
    checkpoint: str
    height: int
    width: int
    latent_shape: tuple[int, ...]
    streams: tuple[bytes, ...]
    symbol_digest: bytes | None = None

    @property
    def version(self) -> int:
        """The format version ``to_bytes`` writes: 2 with a symbol digest, 1 (the old layout) without."""
        return 1 if self.symbol_digest is None else FORMAT_VERSION

    def to_bytes(self) -> bytes:
        """Serialize; raises ``BitstreamError`` for values the format cannot hold."""
        name = self.codec.encode("utf-8")
        if not 0 < len(name) < 256:
            raise BitstreamError(f"codec name {self.codec!r} must be 1..255 bytes")
        try:
            ckpt = bytes.fromhex(self.checkpoint)
        except ValueError:
            raise BitstreamError(f"checkpoint id {self.checkpoint!r} is not hexadecimal") from None
        if len(ckpt) != CHECKPOINT_ID_BYTES:
            raise BitstreamError(f"checkpoint id {self.checkpoint!r} must be {2 * CHECKPOINT_ID_BYTES} hex digits")
        if not (0 < self.height <= MAX_SIDE and 0 < self.width <= MAX_SIDE):
            raise BitstreamError(f"image size {self.width}x{self.height} exceeds {MAX_SIDE} pixels a side")
        if len(self.latent_shape) > 255 or any(not 0 <= d <= MAX_SIDE for d in self.latent_shape):
            raise BitstreamError(f"latent shape {self.latent_shape} cannot be stored")
        if len(self.streams) > 255:
            raise BitstreamError(f"{len(self.streams)} streams; at most 255 fit")
        if self.symbol_digest is not None and len(self.symbol_digest) != DIGEST_BYTES:
            raise BitstreamError(f"symbol digest must be {DIGEST_BYTES} bytes, not {len(self.symbol_digest)}")
        parts = [MAGIC, struct.pack(">BB", self.version, len(name)), name, ckpt,
                 struct.pack(">HHB", self.height, self.width, len(self.latent_shape)),
                 struct.pack(f">{len(self.latent_shape)}H", *self.latent_shape),
                 struct.pack(">B", len(self.streams))]
        for stream in self.streams:
            parts += [struct.pack(">I", len(stream)), bytes(stream)]
        if self.symbol_digest is not None:
            parts.append(bytes(self.symbol_digest))
        body = b"".join(parts)
        return body + struct.pack(">I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, codec: str | None = None) -> Bitstream:
        """Parse and verify ``data``; with ``codec``, also check that this codec wrote it."""
        data = bytes(data)
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise BitstreamError("not a codecbench learned-codec bitstream (bad magic number)")
        if len(data) < len(MAGIC) + 1 + 4:
            raise BitstreamError(f"bitstream truncated: {len(data)} bytes")
        version = data[len(MAGIC)]
        if version not in READABLE_VERSIONS:
            raise BitstreamError(
                f"bitstream format version {version} is not supported (this codecbench reads "
                f"versions {', '.join(map(str, READABLE_VERSIONS))}); re-encode with this version"
            )
        body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
        reader = _Reader(body)
        reader.take(len(MAGIC) + 1)
        name_len = reader.unpack(">B")[0]
        try:
            name = reader.take(name_len).decode("utf-8")
        except UnicodeDecodeError:
            name = None
        if zlib.crc32(body) != crc:
            raise BitstreamError("bitstream corrupted or truncated (CRC-32 mismatch)")
        if name is None:
            raise BitstreamError("bitstream corrupted: codec name is not utf-8")
        if codec is not None and name != codec:
            raise BitstreamError(f"bitstream was written by codec {name!r}, not {codec!r}")
        checkpoint = reader.take(CHECKPOINT_ID_BYTES).hex()
        height, width, rank = reader.unpack(">HHB")
        latent_shape = reader.unpack(f">{rank}H")
        streams = []
        for _ in range(reader.unpack(">B")[0]):
            streams.append(reader.take(reader.unpack(">I")[0]))
        digest = reader.take(DIGEST_BYTES) if version >= 2 else None
        if reader.remaining:
            raise BitstreamError(f"bitstream has {reader.remaining} unexpected trailing bytes")
        if height == 0 or width == 0:
            raise BitstreamError(f"bitstream declares an empty image ({width}x{height})")
        return cls(name, checkpoint, height, width, tuple(latent_shape), tuple(streams), digest)

    def check_symbols(self, digest: SymbolDigest) -> None:
        """Raise ``BitstreamError`` unless ``digest`` (the decoder's) matches the encoder's digest.

        Version-1 streams carry no digest and always pass."""
        if self.symbol_digest is not None and digest.value() != self.symbol_digest:
            raise BitstreamError(f"{self.codec} bitstream {ARITHMETIC_MISMATCH}")


class SymbolDigest:
    """A digest of the integer symbols entropy coders code, kept per named source of symbols.

    The encoder records the symbols it hands the coder, the decoder the symbols the coder returns.
    Each ``key`` (an entropy model, e.g. ``"entropy_bottleneck"``) digests its symbols in call order;
    keys are combined in sorted order, so the encoder and the decoder may visit the entropy models
    in different orders. Symbols are digested as 64-bit integers, whatever their container.
    """

    def __init__(self) -> None:
        self._sources: dict[str, hashlib.blake2b] = {}

    def update(self, key: str, symbols: Sequence[int] | np.ndarray) -> None:
        """Add ``symbols`` (a list, array or CPU tensor of integers) to source ``key``."""
        array = np.asarray(symbols)
        source = self._sources.setdefault(key, hashlib.blake2b(digest_size=16))
        source.update(np.ascontiguousarray(array.reshape(-1), dtype="<i8").tobytes())

    @property
    def empty(self) -> bool:
        """Whether nothing was recorded (a model whose coders do not report their symbols)."""
        return not self._sources

    def value(self) -> bytes:
        combined = hashlib.blake2b(digest_size=DIGEST_BYTES)
        for key in sorted(self._sources):
            combined.update(key.encode("utf-8") + b"\0" + self._sources[key].digest())
        return combined.digest()


_recording: ContextVar[tuple[SymbolDigest, bool] | None] = ContextVar("codecbench_symbol_digest",
                                                                     default=None)


@contextmanager
def recording_symbols(decoding: bool) -> Iterator[SymbolDigest]:
    """Collect, in the returned digest, what :func:`record_symbols` reports inside the block.

    ``LearnedCodec`` wraps ``compress`` (``decoding=False``) and ``decompress`` (``True``) in it."""
    digest = SymbolDigest()
    token = _recording.set((digest, decoding))
    try:
        yield digest
    finally:
        _recording.reset(token)


def record_symbols(key: str, symbols: Sequence[int] | np.ndarray, *, decoded: bool) -> None:
    """Report symbols to the digest being recorded, if any.

    Models call it with the symbols they hand an entropy coder (``decoded=False``) and with those a
    decoder returns (``decoded=True``); only the kind matching the recording counts, so an encoder
    that decodes a stream of its own (e.g. the hyper-latent, to condition on it) does not add it
    twice. ``LearnedCodec`` records CompressAI's ``EntropyModel`` coders itself; a model that runs a
    rANS coder directly (a context model) reports its symbols with this function.
    """
    active = _recording.get()
    if active is not None and active[1] == decoded:
        active[0].update(key, symbols)


class _Reader:
    """Sequential reads that raise ``BitstreamError`` instead of running past the end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise BitstreamError(
                f"bitstream truncated: needed {n} more bytes at offset {self.pos}, {self.remaining} left"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))
