"""The learned-codec container: round trip, and a clear BitstreamError for every kind of damage."""

from __future__ import annotations

import struct
import zlib

import pytest

from codecbench import BitstreamError
from codecbench.learned.bitstream import FORMAT_VERSION, MAGIC, Bitstream

SAMPLE = Bitstream(codec="toy-learned", checkpoint="0123456789abcdef", height=512, width=768,
                   latent_shape=(8, 12), streams=(b"\x01\x02\x03" * 5, b"yz"))


def test_round_trip():
    data = SAMPLE.to_bytes()
    assert data.startswith(MAGIC)
    assert Bitstream.from_bytes(data, codec="toy-learned") == SAMPLE


def test_header_overhead_is_small():
    overhead = len(SAMPLE.to_bytes()) - sum(len(s) for s in SAMPLE.streams)
    assert overhead <= 48


def test_foreign_bytes_rejected():
    with pytest.raises(BitstreamError, match="bad magic"):
        Bitstream.from_bytes(b"\xff\xd8\xff\xe0 a JPEG file")
    with pytest.raises(BitstreamError, match="bad magic"):
        Bitstream.from_bytes(b"")


def test_other_codec_rejected():
    with pytest.raises(BitstreamError, match="written by codec 'toy-learned', not 'cheng2020-anchor'"):
        Bitstream.from_bytes(SAMPLE.to_bytes(), codec="cheng2020-anchor")


def test_every_truncation_rejected():
    data = SAMPLE.to_bytes()
    for length in range(len(data)):
        with pytest.raises(BitstreamError):
            Bitstream.from_bytes(data[:length])


def test_every_bit_flip_rejected():
    data = SAMPLE.to_bytes()
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
])
def test_unstorable_values_rejected(field, value, message):
    values = {**SAMPLE.__dict__, field: value}
    with pytest.raises(BitstreamError, match=message):
        Bitstream(**values).to_bytes()
