"""Entropy-coding arithmetic that another CPU repeats bit for bit: CDF tables and CDF choices in float64.

A decoder rebuilds the encoder's CDFs from floats: the tables ``update()`` builds from the entropy
models' parameters, and in a hyperprior the scales ``h_s`` computes from the decoded hyper-latent,
each of which picks a table. In float32 another instruction set (AVX-512 vs AVX2, another oneDNN
or MKL kernel) rounds those floats differently in the last bit; a table entry or a scale at a table
boundary then flips and the stream desynchronises (the container's symbol digest refuses it). Under
``ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2`` (the
kernels of an older CPU), HiFiC's float32 ``h_s`` outputs differed from this AVX2 machine's in
about 80% of elements and its hyper-latent tables in 13-14 entries; in float64 both were identical.

So :class:`~codecbench.learned.LearnedCodec` builds the tables in float64
(:func:`update_in_float64`) and evaluates the submodules a codec names in ``float64_modules`` in
float64 (:func:`evaluate_in_float64`), rounding their outputs to float32 once: a last-bit difference
of a float64 result changes that rounding only when it straddles a float32 rounding boundary (about
one element in 10^8), and then moves a CDF choice only at a table boundary. No library does this:
CompressAI builds its tables and runs ``h_s`` in the model's dtype.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["evaluate_in_float64", "update_in_float64"]


def update_in_float64(model: nn.Module) -> None:
    """``model.update(force=True)`` with every CompressAI entropy model's tables computed in float64.

    The entropy models are converted to float64 for the update and back to float32 after it (exact:
    their parameters are float32 values); a ``GaussianConditional``'s scale table, which CompressAI
    stores as float32 whatever the model's dtype, is widened before its tables are rebuilt."""
    from compressai.entropy_models import EntropyModel, GaussianConditional

    entropy_models = [m for m in model.modules() if isinstance(m, EntropyModel)]
    for module in entropy_models:
        module.double()
    try:
        model.update(force=True)
        for module in entropy_models:
            if isinstance(module, GaussianConditional):
                module.scale_table = module.scale_table.double()
                module.update()
    finally:
        for module in entropy_models:
            module.float()


def _inputs_to_float64(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


def _output_to_float32(_module: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
    return output.float() if torch.is_tensor(output) else output


def evaluate_in_float64(model: nn.Module, names: Iterable[str]) -> None:
    """Make each named submodule of ``model`` compute in float64 and return float32.

    For a loaded coding model (not one to train): the submodule's parameters become float64 and
    forward hooks cast its floating inputs to float64 and its output back to float32, so the
    model around it is unchanged. Raises ``AttributeError`` for a name ``model`` lacks."""
    for name in names:
        module = model.get_submodule(name)
        module.double()
        module.register_forward_pre_hook(_inputs_to_float64)
        module.register_forward_hook(_output_to_float32)
