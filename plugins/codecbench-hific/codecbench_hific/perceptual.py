"""The perceptual distance HiFiC trains with: LPIPS (the paper's) or ST-LPIPS (offline fallback).

Both come from codecbench's own metrics, so the networks and weights are the verified ones the
benchmark uses: LPIPS needs its AlexNet trunk (weights dir, torch hub cache or download);
ST-LPIPS (shift-tolerant LPIPS, AlexNet) ships its weights inside ``stlpips-pytorch``.
"""

from __future__ import annotations

from torch import nn

from codecbench.errors import CodecError

CHOICES = ("auto", "lpips", "st-lpips")


def resolve_perceptual(name: str) -> str:
    """``auto`` is ``lpips`` when its trunk weights can be found, else ``st-lpips``."""
    if name not in CHOICES:
        raise CodecError(f'Invalid perceptual loss "{name}"; expected one of {", ".join(CHOICES)}')
    if name != "auto":
        return name
    from codecbench.metrics.lpips import LPIPSMetric

    return "lpips" if LPIPSMetric("alex").unavailable_reason() is None else "st-lpips"


def perceptual_network(name: str) -> nn.Module:
    """The frozen network for ``lpips`` or ``st-lpips``: ``net(a, b)`` on images in ``[-1, 1]``."""
    if name == "lpips":
        from codecbench.metrics.lpips import LPIPSMetric

        metric = LPIPSMetric("alex")
    elif name == "st-lpips":
        from codecbench.metrics.stlpips import STLPIPSMetric

        metric = STLPIPSMetric()
    else:
        raise CodecError(f'Invalid perceptual loss "{name}"; expected "lpips" or "st-lpips"')
    reason = metric.unavailable_reason()
    if reason:
        raise CodecError(f"Perceptual loss {name} unavailable: {reason}")
    net = metric.model().eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net
