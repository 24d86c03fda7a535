"""A Cheng2020 stream encoded under an older CPU's kernels decodes here, to the same bytes.

Float32 arithmetic rounds differently there (``codecbench.testing.OTHER_CPU_KERNELS``); the codec
computes what chooses the CDFs in float64, so both CPUs build the same ones. With the float32
context path, the shipped checkpoint's stream of a 128x128 crop of kodim01 had other bytes there
and was refused here (and 0 of 6 Kodak images decoded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codecbench.image import read_image
from codecbench.testing import check_other_cpu_decoding, synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor

from cheng2020_tiny import SINGLE, configured, save_exported

KODIM01 = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "kodak" / "kodim01.png"


def assert_same_stream_on_both_cpus(codec, image):
    data = check_other_cpu_decoding(codec, image)
    # The latent rounds alike on both CPUs, so the same symbols coded with the same CDFs make the
    # same bytes: a CDF built differently would change them even where rANS still decodes.
    assert data == codec.encode(image, 1)


def test_shipped_mixture_model_on_a_kodak_crop():
    if not KODIM01.is_file():
        pytest.skip(f"shared Kodak image not found at {KODIM01}")
    assert_same_stream_on_both_cpus(Cheng2020Anchor(), np.ascontiguousarray(read_image(KODIM01)[:128, :128]))


def test_single_gaussian_model(tmp_path):
    codec = configured(Cheng2020Anchor, save_exported(Cheng2020Anchor(), tmp_path / "model.pt", config=SINGLE))
    assert_same_stream_on_both_cpus(codec, synthetic_image(128, 128))
