"""``codecbench fit-ot`` as a library: encode the training crops' latents, fit, save, plot, resume.

Files in the output folder:

* ``latents.pt``: the target codes (``N x d``: the flattened quantized latents of the training
  crops, repeated codes merged into one target whose weight is its count), the latent shape and
  where they came from; reused on resume;
* ``state.pt``: the solver state (``h``, Adam moments, sample count, RNG, history), saved every
  ``save_every`` steps and on Ctrl-C, so a rerun resumes where it stopped;
* ``ot_map.pt``: the artefact (:mod:`codecbench_otgan.artefact`) with the diagnostics;
* ``diagnostics.png``: energy, cell-measure error and share of empty cells over the steps.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from codecbench.learned import RandomCrops, is_exported, list_images, read_checkpoint, sha256_of, write_atomic
from codecbench_otgan.artefact import map_payload
from codecbench_otgan.ot import OTConfig, OTError, SemiDiscreteOTSolver, StepDiagnostics, verify_map

LATENTS_FORMAT = "codecbench.otgan.latents/1"
STATE_FORMAT = "codecbench.otgan.ot-state/1"


def load_autoencoder(checkpoint: Path) -> torch.nn.Module:
    """The model of a checkpoint written by ``codecbench train`` for a codec of this plugin, in eval mode."""
    from codecbench_otgan import OTGANFamilyCodec
    from codecbench_otgan.model import LatentAutoencoder

    family = sorted(cls.name for cls in OTGANFamilyCodec.__subclasses__())
    payload = read_checkpoint(checkpoint)
    if not is_exported(payload) or payload.get("codec") not in family:
        raise OTError(f"{checkpoint} is not a checkpoint of codec {', '.join(family)} "
                      "(train one with `codecbench train ot ...`)")
    model = LatentAutoencoder(**payload["model_config"])
    model.load_state_dict(payload["state_dict"])
    return model.float().eval()


def encode_latents(model: torch.nn.Module, data: list[Path], crop: int, count: int, seed: int = 0,
                   batch_size: int = 32, progress: bool = True) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Quantized latents of ``count`` random ``crop x crop`` training crops, flattened (``N x d``)."""
    if crop % model.stride:
        raise OTError(f"--crop {crop} must be a multiple of the model's stride {model.stride}")
    crops = RandomCrops(list_images(data), crop, seed=seed)
    codes = []
    with torch.no_grad(), tqdm(total=count, desc="encode latents", unit="crop", file=sys.stderr,
                               disable=not progress) as bar:
        for step, start in enumerate(range(0, count, batch_size)):
            batch = crops.batch(step, min(batch_size, count - start))
            codes.append(model(batch)["y_hat"])
            bar.update(batch.shape[0])
    latents = torch.cat(codes)
    return latents.flatten(1), tuple(latents.shape[1:])


def prepare_latents(out: Path, *, latents: Path | None, checkpoint: Path | None, data: list[Path],
                    crop: int, count: int, seed: int, progress: bool) -> dict[str, Any]:
    """``out/latents.pt``: reused if present (and from the same source), else encoded or copied."""
    path = out / "latents.pt"
    if latents is not None:
        source = {"latents": str(latents), "sha256": sha256_of(latents)}
    elif checkpoint is not None and data:
        source = {"checkpoint": str(checkpoint), "sha256": sha256_of(checkpoint),
                  "data": [str(d) for d in data], "crop": crop, "count": count, "seed": seed}
    else:
        raise OTError("Give --latents FILE, or --checkpoint MODEL.pt with --data DIR")
    if path.is_file():
        stored = torch.load(path, weights_only=True)
        if stored.get("source") != source:
            raise OTError(f"{out} holds latents from another source ({stored.get('source')}); "
                          "use the same inputs or a new --out folder")
        return stored
    if latents is not None:
        loaded = torch.load(latents, map_location="cpu", weights_only=True)
        if isinstance(loaded, dict):
            targets, shape = loaded["targets"], tuple(loaded.get("latent_shape", (loaded["targets"].shape[1],)))
        else:
            targets, shape = loaded, (loaded.shape[1],)
        targets = targets.reshape(targets.shape[0], -1)
    else:
        targets, shape = encode_latents(load_autoencoder(checkpoint), data, crop, count, seed,
                                        progress=progress)
    unique, counts = torch.unique(targets.float(), dim=0, return_counts=True)
    stored = {"format": LATENTS_FORMAT, "targets": unique, "weights": counts.double() / counts.sum(),
              "codes": int(targets.shape[0]), "latent_shape": list(shape), "source": source}
    write_atomic(stored, path)
    return stored


def plot_diagnostics(history: list[StepDiagnostics], path: Path) -> None:
    """Energy, max relative cell-measure error and share of empty cells against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [d.step for d in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, [d.energy for d in history])
    axes[0].set(title="energy E(h)", xlabel="step")
    axes[1].semilogy(steps, [max(d.max_rel_error, 1e-6) for d in history])
    axes[1].set(title="max_i |mu(W_i) - nu_i| / nu_i", xlabel="step")
    axes[2].plot(steps, [100 * d.empty_share for d in history])
    axes[2].set(title="empty cells (%)", xlabel="step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fit_ot(out: Path, stored: dict[str, Any], config: OTConfig, *, device: str = "cpu",
           save_every: int = 25, verify_samples: int = 1_000_000, progress: bool = True) -> dict[str, Any]:
    """Fit (or resume fitting) the map of ``stored`` latents; write the artefact and the plot.

    The solver stops on its own Monte Carlo estimate; ``verify_samples`` fresh source samples
    (another seed) then re-measure every cell, and the artefact records that check too
    (``verification``; skipped when 0).
    """
    out.mkdir(parents=True, exist_ok=True)
    solver = SemiDiscreteOTSolver(stored["targets"], config, device, weights=stored["weights"])
    state_path = out / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        saved = {k: v for k, v in state["solver"]["config"].items() if k != "max_steps"}
        now = {k: v for k, v in asdict(config).items() if k != "max_steps"}
        if saved != now:
            raise OTError(f"Cannot resume {state_path}: solver settings changed "
                          f"({json.dumps(saved)} then, {json.dumps(now)} now); use a new --out folder")
        solver.load_state_dict(state["solver"])

    def save() -> None:
        write_atomic({"format": STATE_FORMAT, "solver": solver.state_dict()}, state_path)

    bar = tqdm(total=config.max_steps, initial=solver.step_count, desc="fit-ot", unit="step",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def on_step(d: StepDiagnostics) -> None:
        bar.update(1 if not solver.converged else 0)
        bar.set_postfix(err=f"{d.max_rel_error:.3g}", empty=f"{100 * d.empty_share:.1f}%",
                        n=d.samples, refresh=False)
        if solver.step_count % save_every == 0:
            save()

    try:
        ot_map = solver.run(on_step)
    except KeyboardInterrupt:
        save()
        raise
    finally:
        bar.close()
    save()
    verification = (asdict(verify_map(ot_map, solver.nu, verify_samples, config.seed + 1))
                     if verify_samples else None)
    payload = map_payload(ot_map, tuple(stored["latent_shape"]), solver.history, solver.converged,
                          weights=stored["weights"], source=stored["source"], verification=verification)
    write_atomic(payload, out / "ot_map.pt")
    if solver.history:
        plot_diagnostics(solver.history, out / "diagnostics.png")
    return payload
