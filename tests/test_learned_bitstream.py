"""The learned-codec container: round trip, and a clear BitstreamError for every kind of damage;
the symbol digest of version 2, and version-1 streams (no digest) still read."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from codecbench import BitstreamError
from codecbench.learned.bitstream import (
    FORMAT_VERSION,
    MAGIC,
    Bitstream,
    SymbolDigest,
    record_symbols,
    recording_symbols,
)

V1 = Bitstream(codec="toy-learned", checkpoint="0123456789abcdef", height=512, width=768,
               latent_shape=(8, 12), streams=(b"\x01\x02\x03" * 5, b"yz"))
SAMPLE = Bitstream(**{**V1.__dict__, "symbol_digest": b"\x9a\xbc\xde\xf0"})


@pytest.mark.parametrize("sample", [SAMPLE, V1], ids=["v2", "v1"])
def test_round_trip(sample):
    data = sample.to_bytes()
    assert data.startswith(MAGIC) and data[len(MAGIC)] == sample.version
    assert Bitstream.from_bytes(data, codec="toy-learned") == sample


def test_header_overhead_is_small():
    overhead = len(SAMPLE.to_bytes()) - sum(len(s) for s in SAMPLE.streams)
    assert overhead <= 52
    assert len(SAMPLE.to_bytes()) == len(V1.to_bytes()) + 4  # the symbol digest


def old_format(bitstream: Bitstream) -> bytes:
    """``bitstream`` serialized by the version-1 writer (before the symbol digest), field by field."""
    name = bitstream.codec.encode()
    body = (MAGIC + bytes([1, len(name)]) + name + bytes.fromhex(bitstream.checkpoint)
            + struct.pack(">HHB", bitstream.height, bitstream.width, len(bitstream.latent_shape))
            + struct.pack(f">{len(bitstream.latent_shape)}H", *bitstream.latent_shape)
            + bytes([len(bitstream.streams)])
            + b"".join(struct.pack(">I", len(s)) + s for s in bitstream.streams))
    return body + struct.pack(">I", zlib.crc32(body))


def test_version_1_streams_still_read():
    assert FORMAT_VERSION == 2
    parsed = Bitstream.from_bytes(old_format(V1), codec="toy-learned")
    assert parsed == V1 and parsed.symbol_digest is None
    assert V1.to_bytes() == old_format(V1)  # without a digest, the old layout is written
    parsed.check_symbols(SymbolDigest())  # no digest: nothing to check


def test_symbol_digest_mismatch_names_the_arithmetic():
    digest = SymbolDigest()
    digest.update("y", [1, -2, 3])
    good = Bitstream(**{**V1.__dict__, "symbol_digest": digest.value()})
    Bitstream.from_bytes(good.to_bytes()).check_symbols(digest)
    other = SymbolDigest()
    other.update("y", [1, -2, 4])
    with pytest.raises(BitstreamError, match="on a machine whose arithmetic differs from the encoder's"):
        Bitstream.from_bytes(good.to_bytes()).check_symbols(other)


def test_symbol_digest_follows_symbols_not_containers():
    def value(*updates):
        digest = SymbolDigest()
        for key, symbols in updates:
            digest.update(key, symbols)
        return digest.value()

    reference = value(("y", [0, 5, -7, 2**20]), ("z", [1]))
    assert value(("z", [1]), ("y", [0, 5]), ("y", np.array([-7, 2**20], dtype=np.int32))) == reference
    assert value(("y", torch.tensor([[0, 5], [-7, 2**20]], dtype=torch.int32)), ("z", (1,))) == reference
    assert value(("y", [5, 0, -7, 2**20]), ("z", [1])) != reference  # order within a source counts
    assert value(("y", [0, 5, -7, 2**20]), ("w", [1])) != reference  # so do the names
    assert value(("y", [0, 5, -7, 2**20])) != reference
    assert len(reference) == 4 and SymbolDigest().empty


def test_only_symbols_of_the_recorded_direction_count():
    record_symbols("y", [1, 2], decoded=False)  # not recording: ignored
    with recording_symbols(decoding=True) as digest:
        record_symbols("y", [1, 2], decoded=True)
        record_symbols("z", [9], decoded=False)  # an encoder's symbol, while decoding: ignored
    expected = SymbolDigest()
    expected.update("y", [1, 2])
    assert digest.value() == expected.value()


def test_foreign_bytes_rejected():
    with pytest.raises(BitstreamError, match="bad magic"):
        Bitstream.from_bytes(b"\xff\xd8\xff\xe0 a JPEG file")
    with pytest.raises(BitstreamError, match="bad magic"):
        Bitstream.from_bytes(b"")


def test_other_codec_rejected():
    with pytest.raises(BitstreamError, match="written by codec 'toy-learned', not 'cheng2020-anchor'"):
        Bitstream.from_bytes(SAMPLE.to_bytes(), codec="cheng2020-anchor")


@pytest.mark.parametrize("sample", [SAMPLE, V1], ids=["v2", "v1"])
def test_every_truncation_rejected(sample):
    data = sample.to_bytes()
    for length in range(len(data)):
        with pytest.raises(BitstreamError):
            Bitstream.from_bytes(data[:length])


@pytest.mark.parametrize("sample", [SAMPLE, V1], ids=["v2", "v1"])
def test_every_bit_flip_rejected(sample):
    data = sample.to_bytes()
    for pos in range(len(data)):
        for bit in (0x01, 0x80):
            damaged = bytearray(data)
            damaged[pos] ^= bit
            with pytest.raises(BitstreamError):
                Bitstream.from_bytes(bytes(damaged), codec="toy-learned")


def test_trailing_bytes_rejected_even_with_valid_crc():
    body = SAMPLE.to_bytes()[:-4] + b"extra"
    with pytest.raises(BitstreamError, match="trailing"):
        Bitstream.from_bytes(body + struct.pack(">I", zlib.crc32(body)))


def test_newer_format_version_named():
    data = bytearray(SAMPLE.to_bytes())
    data[len(MAGIC)] = FORMAT_VERSION + 1
    with pytest.raises(BitstreamError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        Bitstream.from_bytes(bytes(data))


@pytest.mark.parametrize("field, value, message", [
    ("height", 70_000, "exceeds"),
    ("codec", "", "1..255 bytes"),
    ("checkpoint", "xyz", "not hexadecimal"),
    ("checkpoint", "abcd", "16 hex digits"),
    ("symbol_digest", b"\x01\x02", "symbol digest must be 4 bytes"),
])
def test_unstorable_values_rejected(field, value, message):
    values = {**SAMPLE.__dict__, field: value}
    with pytest.raises(BitstreamError, match=message):
        Bitstream(**values).to_bytes()
