"""The container every learned codec writes: a small header, the entropy-coded streams, a CRC.

Layout (all integers big-endian)::

    magic  b"CBLC"                        4 bytes
    format version                        1 byte  (FORMAT_VERSION)
    codec name length, codec name (utf-8) 1 + n bytes
    checkpoint id                         8 bytes (first 8 bytes of the checkpoint's sha256)
    image height, width                   2 x 2 bytes
    latent shape: rank, dims              1 + 2 x rank bytes (CompressAI's ``shape``)
    stream count, then per stream:        1 byte
        length, bytes                     4 + n bytes
    CRC-32 of everything above            4 bytes

Range/ANS decoders (CompressAI's included) do not detect damage; they decode garbage into a wrong
image or fail in native code. The CRC catches corruption and the length fields catch truncation
before any stream reaches the decoder, so a bad bitstream always ends in ``BitstreamError``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from codecbench.errors import BitstreamError

MAGIC = b"CBLC"
FORMAT_VERSION = 1
CHECKPOINT_ID_BYTES = 8
MAX_SIDE = 0xFFFF


@dataclass(frozen=True)
class Bitstream:
    """The decoded contents of a container.

    ``checkpoint`` is the hex id of the weights that wrote it (:func:`checkpoint_id`);
    ``latent_shape`` is the spatial shape CompressAI's ``decompress`` needs; ``streams`` are the
    entropy-coded strings, one per entropy model, for a single image.
    """

    codec: str
    checkpoint: str
    height: int
    width: int
    latent_shape: tuple[int, ...]
    streams: tuple[bytes, ...]

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
        parts = [MAGIC, struct.pack(">BB", FORMAT_VERSION, len(name)), name, ckpt,
                 struct.pack(">HHB", self.height, self.width, len(self.latent_shape)),
                 struct.pack(f">{len(self.latent_shape)}H", *self.latent_shape),
                 struct.pack(">B", len(self.streams))]
        for stream in self.streams:
            parts += [struct.pack(">I", len(stream)), bytes(stream)]
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
        if version != FORMAT_VERSION:
            raise BitstreamError(
                f"bitstream format version {version} is not supported (this codecbench reads "
                f"version {FORMAT_VERSION}); re-encode with this version"
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
        if reader.remaining:
            raise BitstreamError(f"bitstream has {reader.remaining} unexpected trailing bytes")
        if height == 0 or width == 0:
            raise BitstreamError(f"bitstream declares an empty image ({width}x{height})")
        return cls(name, checkpoint, height, width, tuple(latent_shape), tuple(streams))


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
