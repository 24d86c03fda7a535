"""Losses and the three training tasks (ot, gan, ot_gan)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from codecbench.learned.checkpoints import export_payload, write_atomic
from codecbench.learned.training import TrainingError
from codecbench_otgan.model import LatentAutoencoder
from codecbench_otgan.training import (
    OTGANTask,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)
from otgan_tiny import TINY, save_exported, save_tiny_map, tiny_model


def test_adversarial_losses() -> None:
    zero = torch.zeros(2, 1, 4, 4)
    assert float(generator_adversarial_loss(zero)) == pytest.approx(math.log(2))
    assert float(discriminator_adversarial_loss(zero, zero)) == pytest.approx(2 * math.log(2))
    confident = torch.full((2, 1, 4, 4), 20.0)
    assert float(discriminator_adversarial_loss(confident, -confident)) < 1e-6
    assert float(generator_adversarial_loss(-confident)) == pytest.approx(20.0, abs=1e-6)


def test_ot_task_has_no_discriminator_and_optimises_distortion() -> None:
    task = OTGANTask(tiny_model().train(), lmbda=0.01, variant="ot")
    assert task.discriminator_parameters() == []
    batch = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)  # the entropy model's quantization noise, the same for both losses
    loss, stats = task.loss(batch)
    assert set(stats) == {"loss", "bpp", "psnr"}
    loss.backward()
    assert task.model.encoder[0].weight.grad.abs().sum() > 0  # the distortion reaches the encoder
    assert task.model.decoder[-1].weight.grad.abs().sum() > 0
    torch.optim.SGD(task.main_parameters(), lr=1e-3).step()
    torch.manual_seed(0)
    assert task.loss(batch)[0].item() < loss.item()  # one step down the gradient lowers it


def test_ot_gan_needs_a_map() -> None:
    with pytest.raises(TrainingError, match="fit-ot"):
        OTGANTask(tiny_model(), lmbda=0.01, variant="ot_gan")
    with pytest.raises(TrainingError, match="variant"):
        OTGANTask(tiny_model(), lmbda=0.01, variant="vae")


def test_ot_gan_trains_the_generator_on_ot_latents(tmp_path: Path) -> None:
    model = tiny_model(ot_map=str(save_tiny_map(tmp_path / "ot_map.pt"))).train()
    task = OTGANTask(model, lmbda=0.0, variant="ot_gan")
    assert task.pool.shape[1:] == (2, 2, 2)
    codes = task.sample_generated(5, torch.device("cpu"))
    offsets = codes - model.medians()
    assert torch.equal(offsets, offsets.round())  # quantized like coded latents
    batch = torch.rand(2, 3, 32, 32)
    loss, stats = task.loss(batch)
    assert {"g_adv", "psnr", "bpp"} <= set(stats)
    assert len(task._fakes) == 2  # decoded encoder latents and decoded OT latents
    loss.backward()  # lmbda 0: only the adversarial terms reach the generator
    assert task.model.decoder[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in task.discriminator_parameters())
    d_loss, d_stats = task.discriminator_loss(batch)
    d_loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in task.discriminator_parameters())
    assert d_stats["d_loss"] > 0


def test_gan_uses_encoder_latents_only() -> None:
    task = OTGANTask(tiny_model().train(), lmbda=0.01, variant="gan")
    task.loss(torch.rand(2, 3, 32, 32))
    assert task.pool is None and len(task._fakes) == 1


def test_the_gan_stage_trains_the_decoder_and_keeps_the_encoder() -> None:
    model = tiny_model().train()
    task = OTGANTask(model, lmbda=0.01, variant="gan")
    assert {id(p) for p in task.main_parameters()} == {id(p) for p in model.decoder.parameters()}
    batch = torch.rand(2, 3, 32, 32)
    loss, _ = task.loss(batch)
    loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert model.decoder[-1].weight.grad.abs().sum() > 0
    encoder = [p.detach().clone() for p in model.encoder.parameters()]
    torch.optim.SGD(task.main_parameters(), lr=1e-3).step()
    assert task.loss(batch)[0].item() < loss.item()  # the decoder learns against a fixed critic
    assert all(torch.equal(a, b) for a, b in zip(encoder, model.encoder.parameters()))
    ot_task = OTGANTask(tiny_model(), lmbda=0.01, variant="ot")
    assert len(ot_task.main_parameters()) > len(list(ot_task.model.decoder.parameters()))


def test_the_cycle_term_pulls_decoded_ot_codes_back_to_their_codes(tmp_path: Path) -> None:
    model = tiny_model(ot_map=str(save_tiny_map(tmp_path / "ot_map.pt")), adversarial_weight=0.0,
                       cycle_weight=1.0).train()
    task = OTGANTask(model, lmbda=0.0, variant="ot_gan")
    batch = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)  # the same OT codes for both losses
    loss, stats = task.loss(batch)
    assert stats["cycle"] > 0
    assert loss.item() == pytest.approx(stats["bpp"] + stats["cycle"], rel=1e-4)  # lmbda 0, no critic
    loss.backward()  # lmbda 0, adversarial weight 0: the cycle term alone reaches the decoder
    assert task.model.decoder[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.encoder.parameters())  # the encoder stays frozen
    torch.optim.SGD(task.main_parameters(), lr=1e-2).step()
    torch.manual_seed(0)
    assert task.loss(batch)[1]["cycle"] < stats["cycle"]


@pytest.mark.parametrize("term", ["cycle_weight", "anchor_weight"])
def test_the_ot_code_terms_are_for_ot_gan_only(term: str) -> None:
    with pytest.raises(TrainingError, match=f"only ot_gan decodes; drop -m {term}"):
        OTGANTask(tiny_model(**{term: 1.0}), lmbda=0.01, variant="gan")


def test_the_anchor_holds_decoded_ot_codes_to_the_stage_one_decoder(tmp_path: Path) -> None:
    stage1 = save_exported("ot", tmp_path / "stage1.pt", seed=0)
    ot_map = str(save_tiny_map(tmp_path / "ot_map.pt"))
    model = tiny_model(seed=0, ot_map=ot_map, adversarial_weight=0.0, anchor_weight=1.0,
                       anchor=str(stage1)).train()
    task = OTGANTask(model, lmbda=1.0, variant="ot_gan")
    torch.manual_seed(0)
    loss, stats = task.loss(torch.rand(2, 3, 32, 32))
    assert stats["anchor"] == pytest.approx(0.0, abs=1e-6)  # the decoder is still stage 1's
    with torch.no_grad():  # a decoder stage 2 has moved (as when continued with --init of a snapshot)
        for p in model.decoder.parameters():
            p.add_(1e-3)
    batch = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    loss, stats = task.loss(batch)
    assert stats["anchor"] > 0
    loss.backward()
    assert task.model.decoder[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in task.anchor.parameters())  # the reference stays frozen
    task.anchor_weight = 0.5
    torch.manual_seed(0)
    half, _ = task.loss(batch)
    assert loss.item() - half.item() == pytest.approx(0.5 * stats["anchor"], abs=2e-3)  # lmbda 1


def test_the_anchor_needs_a_stage_one_file_of_this_model(tmp_path: Path) -> None:
    ot_map = str(save_tiny_map(tmp_path / "ot_map.pt"))
    with pytest.raises(TrainingError, match="-m anchor=PATH"):
        OTGANTask(tiny_model(ot_map=ot_map, anchor_weight=1.0), lmbda=0.01, variant="ot_gan")
    with pytest.raises(TrainingError, match="-m anchor=.*nowhere"):
        OTGANTask(tiny_model(ot_map=ot_map, anchor_weight=1.0, anchor=str(tmp_path / "nowhere.pt")),
                  lmbda=0.01, variant="ot_gan")
    other = tmp_path / "other.pt"
    wider = LatentAutoencoder(**{**TINY, "latent_channels": TINY["latent_channels"] + 1})
    write_atomic(export_payload("ot", {**TINY, "latent_channels": TINY["latent_channels"] + 1},
                                wider.state_dict()), other)
    with pytest.raises(TrainingError, match="anchor to this model's stage 1"):
        OTGANTask(tiny_model(ot_map=ot_map, anchor_weight=1.0, anchor=str(other)), lmbda=0.01,
                  variant="ot_gan")
    with pytest.raises(TrainingError, match="must be >= 0"):
        OTGANTask(tiny_model(ot_map=ot_map, cycle_weight=-1.0), lmbda=0.01, variant="ot_gan")
