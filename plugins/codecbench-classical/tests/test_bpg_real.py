"""BPG with the real libbpg 0.9.8 binaries that ``scripts/build_bpg.sh`` builds (``scripts/setup.sh``
runs it when a C/C++ toolchain and the libbpg tarball are present).

Without the binaries these tests skip, naming the build script; in CI (``CI`` set) with the shared
tarball present they fail instead, because setup must have built them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from codecbench import BitstreamError, CodecError, CodecUnavailableError
from codecbench.metrics.psnr import psnr
from codecbench_classical import bpg
from codecbench_classical.bpg import BPG, BPG_MAGIC, qp_of

ROOT = Path(__file__).resolve().parents[3]
SHARED_TARBALL = ROOT.parent / "shared" / "vendor" / "libbpg" / "libbpg-0.9.8-src.tar.xz"


@pytest.fixture(scope="module")
def encoders() -> tuple[str, ...]:
    """The encoders of the real ``bpgenc`` found without options (venv folder, then PATH)."""
    codec = BPG()
    bpgenc, bpgdec = codec.binary("bpgenc"), codec.binary("bpgdec")
    offered = bpg.bpgenc_encoders(bpgenc) if bpgenc else None
    if not (bpgenc and bpgdec and offered and bpg.bpgenc_version(bpgenc) == "0.9.8"):
        reason = ("the real libbpg 0.9.8 bpgenc/bpgdec are not installed: "
                  "run 'bash scripts/build_bpg.sh' (scripts/setup.sh does when a C/C++ toolchain is present)")
        if os.environ.get("CI") and SHARED_TARBALL.is_file():
            pytest.fail(f"CI with {SHARED_TARBALL} present: {reason}")
        pytest.skip(reason)
    return offered


@pytest.fixture(scope="module")
def kodak_crops() -> list[np.ndarray]:
    """Two real Kodak crops (384x256), a textured one and a smooth one."""
    from codecbench.image import read_image

    kodak = ROOT.parent / "shared" / "datasets" / "kodak"
    if not kodak.is_dir():
        pytest.skip(f"shared Kodak set not found at {kodak}")
    return [read_image(kodak / "kodim01.png")[:256, :384], read_image(kodak / "kodim23.png")[128:384, 192:576]]


def test_real_build_offers_both_encoders(encoders: tuple[str, ...]) -> None:
    assert set(encoders) == {"x265", "jctvc"}
    assert BPG().unavailable_reason() is None
    assert BPG().version() == "libbpg-0.9.8"


@pytest.mark.parametrize("chroma", ["444", "420"])
@pytest.mark.parametrize("encoder", ["x265", "jctvc"])
def test_round_trip_of_kodak_images_at_several_qps(
    encoders: tuple[str, ...], kodak_crops: list[np.ndarray], encoder: str, chroma: str
) -> None:
    if encoder not in encoders:
        pytest.skip(f"this bpgenc has no {encoder} encoder")
    codec = BPG().with_options(encoder=encoder, chroma=chroma)
    for image in kodak_crops:
        sizes, qualities = [], []
        for point in (4, 14, 24):  # QP 47, 37, 27
            data = codec.encode(image, point)
            decoded = codec.decode(data)
            assert data.startswith(BPG_MAGIC) and decoded.shape == image.shape and decoded.dtype == np.uint8
            sizes.append(len(data))
            qualities.append(psnr(image, decoded))
        assert sizes == sorted(sizes) and len(set(sizes)) == 3, sizes  # a lower QP costs more bytes
        assert qualities == sorted(qualities), qualities  # and gives a better image
        assert qualities[0] > 20 and qualities[-1] > 33, (encoder, chroma, qualities)


def test_bpp_counts_the_bytes_bpgenc_writes(encoders: tuple[str, ...], kodak_crops: list[np.ndarray]) -> None:
    from PIL import Image

    codec, image = BPG(), kodak_crops[0]
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.png", Path(folder) / "out.bpg"
        Image.fromarray(image).save(source)
        subprocess.run(codec.encode_command(source, target, 4), check=True, capture_output=True)
        on_disk = target.read_bytes()
    assert codec.encode(image, 4) == on_disk
    assert f"-q {qp_of(4)} -f 444 -e x265" in " ".join(codec.encode_command(source, target, 4))


def test_corrupt_bpg_is_a_bitstream_error(encoders: tuple[str, ...], kodak_crops: list[np.ndarray]) -> None:
    codec = BPG()
    data = codec.encode(kodak_crops[1], 14)
    for damaged in (data[:12], data[:4] + bytes(len(data) - 4), BPG_MAGIC + b"\xff" * 40):
        with pytest.raises(BitstreamError, match="bpgdec could not decode"):
            codec.decode(damaged)


def test_missing_binary_names_the_build_script(encoders: tuple[str, ...]) -> None:
    codec = BPG().with_options(bpgdec="/no/such/bpgdec")
    with pytest.raises(CodecUnavailableError) as error:
        codec.decode(BPG().encode(np.zeros((32, 32, 3), np.uint8), 4))
    message = str(error.value)
    assert "\n" not in message and "scripts/build_bpg.sh" in message and "/no/such/bpgdec" in message


def test_narrow_images_are_refused_by_x265_and_coded_by_jctvc(encoders: tuple[str, ...]) -> None:
    narrow = np.random.default_rng(0).integers(0, 256, (40, 20, 3), dtype=np.uint8)
    with pytest.raises(CodecError, match="narrower than 25 px .* -o encoder=jctvc"):
        BPG().encode(narrow, 4)
    if "jctvc" in encoders:
        jctvc = BPG().with_options(encoder="jctvc")
        assert jctvc.decode(jctvc.encode(narrow, 4)).shape == narrow.shape
