"""Cheng2020 codecs on tiny single-Gaussian models (CompressAI's own classes, used for its official
files and for checkpoints trained before the mixture): real bitstreams decode to the model's
reconstruction, CompressAI-official state dicts load, checkpoints with a wrong checksum are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codecbench import CodecError
from codecbench.learned.bitstream import Bitstream
from codecbench.files import sha256_of
from codecbench.learned.padding import crop_to, image_to_tensor, pad_to_stride, tensor_to_image
from codecbench.testing import synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor, Cheng2020Attention, Cheng2020Codec

from cheng2020_tiny import SINGLE, TINY, configured, save_exported, tiny_model

CODECS = [Cheng2020Anchor, Cheng2020Attention]


def coded_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's eval-mode forward pass, with the quantization its range coder uses.

    CompressAI's ``forward`` rounds the latent as ``round(y)``, but ``compress`` codes
    ``round(y - mu) + mu`` with the mean ``mu`` that the masked-convolution context model predicts
    from the latents already coded. That is a fixed point: each pass of the context model over the
    whole latent fixes one more position in raster order, so ``height * width`` passes give exactly
    the latent the decoder rebuilds, here computed with the model's layers in parallel.
    """
    with torch.no_grad():
        y = model.g_a(x)
        z_hat, _ = model.entropy_bottleneck(model.h_a(y))  # eval: round(z - median) + median
        params = model.h_s(z_hat)
        y_hat = torch.round(y)
        for _ in range(y.shape[-2] * y.shape[-1]):
            context = model.context_prediction(y_hat)
            _, means = model.entropy_parameters(torch.cat((params, context), dim=1)).chunk(2, 1)
            y_hat = torch.round(y - means) + means
        return model.g_s(y_hat).clamp(0, 1)


@pytest.mark.parametrize("codec_class", CODECS)
@pytest.mark.parametrize("height, width", [(64, 96), (37, 71)])
def test_decoded_bytes_equal_the_models_reconstruction(codec_class, height, width, tmp_path):
    codec = configured(codec_class, save_exported(codec_class(), tmp_path / "model.pt", config=SINGLE))
    image = synthetic_image(height, width)
    data = codec.encode(image, 1)
    decoded = codec.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8

    model = tiny_model(codec_class(), config=SINGLE)
    x_hat = coded_forward(model, pad_to_stride(image_to_tensor(image), codec.stride))
    expected = tensor_to_image(crop_to(x_hat, height, width))
    # Same layers, different evaluation order (per-position convolutions in the coder): float
    # rounding may move a pixel by one level, never more.
    difference = np.abs(decoded.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01

    streams = Bitstream.from_bytes(data, codec=codec.name).streams
    assert len(streams) == 2 and all(streams)  # y (context-coded) and z (hyperprior)
    assert len(data) < sum(map(len, streams)) + 64  # the container adds a small header only


def legacy_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Key names of CompressAI's oldest published files (``ParameterList`` entries
    ``_biases.0``..., ``downsample`` for ``skip``), which CompressAI maps back when loading."""
    renamed = {}
    for key, value in state_dict.items():
        key = key.replace(".skip.", ".downsample.")
        for new, old in (("biases.", "_biases."), ("matrices.", "_matrices."), ("factors.", "_factors.")):
            if key.startswith(f"entropy_bottleneck.{new}"):
                key = key.replace(new, old)
        renamed[key] = value
    return renamed


@pytest.mark.parametrize("codec_class", CODECS)
def test_compressai_official_state_dict_loads(codec_class, tmp_path):
    exported = configured(codec_class, save_exported(codec_class(), tmp_path / "model.pt", config=SINGLE))
    official = tmp_path / f"{codec_class.name}-1-abcdef12.pth.tar"
    state_dict = legacy_keys(tiny_model(codec_class(), config=SINGLE).state_dict())
    assert "entropy_bottleneck._biases.0" in state_dict and "g_a.0.downsample.weight" in state_dict
    torch.save(state_dict, official)
    bare = configured(codec_class, official)  # N=8 is read from the weights, not the default 192
    image = synthetic_image(64, 64)
    data = bare.encode(image, 1)
    assert Bitstream.from_bytes(data).streams == Bitstream.from_bytes(exported.encode(image, 1)).streams
    assert Bitstream.from_bytes(data).checkpoint == sha256_of(official)[:16]
    assert bare.decode(data).shape == image.shape


def test_foreign_state_dict_is_refused(tmp_path):
    path = tmp_path / "other.pth.tar"
    torch.save({"g_a.0.weight": torch.zeros(8, 3, 5, 5)}, path)
    with pytest.raises(CodecError, match="does not fit codec 'cheng2020-anchor'"):
        configured(Cheng2020Anchor, path).load()


def shipped_codec(tmp_path: Path, sha256: str) -> Cheng2020Codec:
    """A Cheng2020 codec whose manifest declares one shipped checkpoint with ``sha256``."""
    save_exported(Cheng2020Anchor(), tmp_path / "q1.pt")
    (tmp_path / "manifest.toml").write_text(
        '[[checkpoint]]\nname = "tiny-q1"\npoint = 1\nfile = "q1.pt"\n'
        f'sha256 = "{sha256}"\nlmbda = 0.0067\ntraining_command = "codecbench train ..."\n'
        'budget = "none"\n')

    class Shipped(Cheng2020Anchor):
        manifest = tmp_path / "manifest.toml"

    return Shipped()


def test_shipped_checkpoint_is_verified(tmp_path):
    good = shipped_codec(tmp_path, sha256_of(save_exported(Cheng2020Anchor(), tmp_path / "q1.pt")))
    assert good.points == (1,)
    good.load()
    image = synthetic_image(64, 64)
    assert good.decode(good.encode(image, 1)).shape == image.shape


def test_checksum_mismatch_is_refused(tmp_path):
    codec = shipped_codec(tmp_path, "0" * 64)
    with pytest.raises(CodecError, match=r"has sha256 [0-9a-f]{64}, expected 0{64}.*git checkout"):
        codec.load()


@pytest.mark.parametrize("codec_class", CODECS)
def test_faster_coding_is_identical_to_compressai(codec_class):
    import compressai.models

    model = tiny_model(codec_class(), config=SINGLE)
    original = getattr(compressai.models, codec_class.architecture)(**SINGLE).eval()
    original.load_state_dict(model.state_dict())
    for m in (model, original):
        m.update(force=True)
    x = pad_to_stride(image_to_tensor(synthetic_image(64, 96)), 64)
    with torch.no_grad():
        out = original.compress(x)
        assert model.compress(x)["strings"] == out["strings"]
        assert torch.equal(model.decompress(out["strings"], out["shape"])["x_hat"],
                           original.decompress(out["strings"], out["shape"])["x_hat"])


def test_searchsorted_indexes_equal_compressai():
    from compressai.entropy_models import GaussianConditional
    from compressai.models.base import get_scale_table

    from codecbench_cheng2020.context_decoding import SearchsortedGaussianConditional

    table = get_scale_table()  # CompressAI's default 64 scales
    original, fast = GaussianConditional(table.tolist()), GaussianConditional(table.tolist())
    fast.__class__ = SearchsortedGaussianConditional
    scales = torch.cat([table, table * (1 - 1e-6), table * (1 + 1e-6), torch.logspace(-3, 3, 1000),
                        torch.zeros(1)]).reshape(1, -1, 1, 1)
    assert torch.equal(fast.build_indexes(scales), original.build_indexes(scales))


def test_attention_model_starts_from_anchor_checkpoint():
    from compressai.layers import AttentionBlock

    from codecbench.learned.checkpoints import export_payload

    anchor = tiny_model(Cheng2020Anchor(), seed=1)
    model = tiny_model(Cheng2020Attention(), seed=2)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    Cheng2020Attention().load_init_weights(model, export_payload("cheng2020-anchor", TINY, anchor.state_dict()))
    assert torch.equal(model.entropy_parameters[-1].weight, anchor.entropy_parameters[-1].weight)
    assert torch.equal(model.g_a[0].conv1.weight, anchor.g_a[0].conv1.weight)
    assert torch.equal(model.g_a[4].conv1.weight, anchor.g_a[3].conv1.weight)  # after an attention block
    assert torch.equal(model.g_s[1].conv1.weight, anchor.g_s[0].conv1.weight)
    assert torch.equal(model.context_prediction.weight, anchor.context_prediction.weight)
    attention = [n for n, m in model.named_modules() if isinstance(m, AttentionBlock)]
    assert attention and all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items()
                             if any(k.startswith(a + ".") for a in attention))
