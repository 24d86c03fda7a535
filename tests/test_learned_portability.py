"""Entropy coding that another CPU repeats: a stream encoded with an older CPU's kernels decodes here.

The other CPU is this one with its vector kernels restricted (``codecbench.testing.OTHER_CPU_KERNELS``:
``ATEN_CPU_CAPABILITY=default``, oneDNN/MKL capped at SSE4): float32 convolutions there round
differently in the last bit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from learned_toy import ToyLearnedCodec, save_toy_checkpoint

from codecbench.errors import CodecError
from codecbench.testing import OTHER_CPU_KERNELS, check_other_cpu_decoding, synthetic_image


# Records what the decoder rebuilds from floats: the CDF tables and the scales h_s computes from
# a hyper-latent, in float64 (the codec's) and in plain float32.
PROBE = """
import sys, torch
from test_learned_portability import probe
torch.save(probe(sys.argv[1]), sys.argv[2])
"""


class Float64ToyCodec(ToyLearnedCodec):
    float64_modules = ("h_s",)


def probe(weights: str) -> dict[str, object]:
    """The floats that choose the CDFs, on this process's kernels."""
    codecs = [Float64ToyCodec(), ToyLearnedCodec()]
    for codec in codecs:
        codec.configure(weights=weights)
    model, float32_model = (codec.model_for_point(1).model for codec in codecs)
    z_hat = torch.randint(-4, 5, (1, 8, 8, 8), generator=torch.Generator().manual_seed(0)).float()
    with torch.no_grad():
        return {"tables": [model.entropy_bottleneck._quantized_cdf, model.gaussian_conditional._quantized_cdf],
                "scales": model.h_s(z_hat), "float32_scales": float32_model.h_s(z_hat)}


@pytest.fixture(scope="module")
def on_other_cpu(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("other-cpu")
    weights = save_toy_checkpoint(tmp_path / "toy.pt", seed=3)
    env = {**os.environ, **OTHER_CPU_KERNELS,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", PROBE, str(weights), str(tmp_path / "other.pt")],
                   env=env, check=True, timeout=300)
    return weights, torch.load(tmp_path / "other.pt")


def test_what_chooses_the_cdfs_is_computed_alike_on_another_cpu(on_other_cpu):
    weights, other = on_other_cpu
    here = probe(str(weights))
    if torch.equal(here["float32_scales"], other["float32_scales"]):
        pytest.skip("this CPU's restricted kernels round float32 like its own: nothing to compare")
    assert all(torch.equal(a, b) for a, b in zip(here["tables"], other["tables"]))
    assert here["scales"].dtype == torch.float32
    assert torch.equal(here["scales"], other["scales"])


def test_a_stream_encoded_on_another_cpu_decodes_here(on_other_cpu):
    weights, _ = on_other_cpu
    codec = Float64ToyCodec()
    codec.configure(weights=str(weights))
    check_other_cpu_decoding(codec, synthetic_image(256, 320, seed=5))  # the digest refuses a desynchronised one


def test_float64_modules_compute_in_float64_and_return_float32(tmp_path):
    codec = Float64ToyCodec()
    codec.configure(weights=str(save_toy_checkpoint(tmp_path / "toy.pt")))
    model = codec.model_for_point(1).model
    assert next(model.h_s.parameters()).dtype == torch.float64
    assert next(model.g_s.parameters()).dtype == torch.float32
    assert model.h_s(torch.zeros(1, 8, 2, 2)).dtype == torch.float32
    assert model.entropy_bottleneck.quantiles.dtype == torch.float32  # back after the float64 update


def test_a_float64_module_the_model_lacks_is_a_codec_error(tmp_path):
    class Misnamed(ToyLearnedCodec):
        float64_modules = ("hyper_synthesis",)

    codec = Misnamed()
    codec.configure(weights=str(save_toy_checkpoint(tmp_path / "toy.pt")))
    with pytest.raises(CodecError, match="Misnamed.float64_modules names a submodule the model lacks"):
        codec.model_for_point(1)
