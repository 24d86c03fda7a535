"""A HiFiC stream encoded under an older CPU's kernels decodes here, to the same bytes.

Float32 arithmetic rounds differently there (``codecbench.testing.OTHER_CPU_KERNELS``): with the
CDF tables and ``h_s`` in float32, the shipped point 2's hyper-latent tables differed between the
two, and none of its 24 Kodak streams decoded; in float64 all do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codecbench.image import read_image
from codecbench.testing import check_other_cpu_decoding
from codecbench_hific import HiFiCCodec

KODIM01 = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "kodak" / "kodim01.png"


def test_shipped_model_on_a_kodak_crop():
    if not KODIM01.is_file():
        pytest.skip(f"shared Kodak image not found at {KODIM01}")
    codec, image = HiFiCCodec(), np.ascontiguousarray(read_image(KODIM01)[:128, :192])
    data = check_other_cpu_decoding(codec, image, point=2)
    # The latents round alike on both CPUs, so the same symbols coded with the same CDFs make the
    # same bytes: a CDF built differently would change them even where rANS still decodes.
    assert data == codec.encode(image, 2)
