"""``codecbench fit-ot``: fit the semi-discrete OT map to the latent codes of the training set."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("fit-ot")
@click.option("--checkpoint", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Autoencoder checkpoint (model.pt of `codecbench train ot`) whose latents to map.")
@click.option("--data", type=click.Path(file_okay=False, exists=True, path_type=Path), multiple=True,
              help="Folder of training images to encode with --checkpoint; repeat for several.")
@click.option("--latents", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Instead: a .pt file of latent codes (an N x d tensor, or a dict with 'targets').")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (latents.pt, state.pt, ot_map.pt, diagnostics.png); rerun to resume.")
@click.option("--crop", type=click.IntRange(min=16), default=64, show_default=True,
              help="Side of the training crops whose latents are the targets.")
@click.option("--count", type=click.IntRange(min=2), default=2048, show_default=True,
              help="Number of training crops (targets).")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Most Adam steps in all (raise it and rerun to go on).")
@click.option("--rel-tol", type=float, default=0.1, show_default=True,
              help="Stop when every cell's measure is within this fraction of 1/N.")
@click.option("--samples", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Monte Carlo samples per step at the start (doubled when progress stalls).")
@click.option("--max-samples", type=click.IntRange(min=1), default=2**22, show_default=True)
@click.option("--lr", type=float, default=1.0, show_default=True,
              help="Adam learning rate on h. AE-OT's 5e-2 suits latents of small magnitude; this "
                   "codec's are integers up to (levels-1)/2 per element, whose cells need larger steps.")
@click.option("--stall-lr-factor", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0,
              show_default=True,
              help="Multiply the learning rate by this whenever progress stalls (when the sample count "
                   "doubles); 1 keeps AE-OT's constant rate.")
@click.option("--source", type=click.Choice(["normal-cdf", "sobol"]), default="normal-cdf", show_default=True,
              help="Uniform source: N(0, I) through the normal CDF, or a Sobol sequence.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--verify-samples", type=click.IntRange(min=0), default=1_000_000, show_default=True,
              help="Fresh source samples that re-measure every cell after fitting (0: skip).")
@click.option("--save-every", type=click.IntRange(min=1), default=25, show_default=True,
              help="Save the solver state every N steps.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def fit_ot_command(checkpoint: Path | None, data: tuple[Path, ...], latents: Path | None, out: Path,
                   crop: int, count: int, steps: int, rel_tol: float, samples: int, max_samples: int,
                   lr: float, stall_lr_factor: float, source: str, device: str, threads: int | None, seed: int,
                   save_every: int, verify_samples: int, quiet: bool) -> None:
    """Fit AE-OT's semi-discrete OT map from the uniform cube to training latent codes.

    The map file OUT/ot_map.pt is what `codecbench train ot_gan -m ot_map=OUT/ot_map.pt` uses.
    """
    import torch

    from codecbench_otgan.fit import fit_ot, prepare_latents
    from codecbench_otgan.ot import OTConfig

    if threads:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    stored = prepare_latents(out, latents=latents, checkpoint=checkpoint, data=list(data), crop=crop,
                             count=count, seed=seed, progress=not quiet)
    config = OTConfig(lr=lr, samples=samples, max_samples=max(samples, max_samples), rel_tol=rel_tol,
                      stall_lr_factor=stall_lr_factor, max_steps=steps, source=source, seed=seed)
    payload = fit_ot(out, stored, config, device=device, save_every=save_every,
                     verify_samples=verify_samples, progress=not quiet)
    history = payload["history"]
    last = history[-1] if history else None
    state = "converged" if payload["converged"] else f"not converged after {steps} steps"
    click.echo(f"{stored['codes']} codes, {len(stored['targets'])} distinct targets of dimension "
               f"{stored['targets'].shape[1]}: {state}")
    if last:
        click.echo(f"step {last['step']}: max relative cell-measure error {last['max_rel_error']:.3g}, "
                   f"empty cells {100 * last['empty_share']:.2f}%, {last['samples']} samples/step")
    check = payload.get("verification")
    if check:
        click.echo(f"check on {check['samples']} fresh samples: max relative cell-measure error "
                   f"{check['max_rel_error']:.3g}, empty cells {100 * check['empty_share']:.2f}%")
    click.echo(f"map: {out / 'ot_map.pt'}; diagnostics plot: {out / 'diagnostics.png'}")
