"""A learned categorical distribution per latent channel, coded with CompressAI's rANS coder.

AEDC's latent symbols take one of ``L`` centres, so their probability model is a table of ``L``
probabilities per channel (the paper's ``H(w_hat)`` term). CompressAI's entropy models are for
integer-quantized continuous latents (EntropyBottleneck, GaussianConditional), so this small
model is written here: it subclasses CompressAI's :class:`EntropyModel` to reuse its CDF
quantization and range coder, and only supplies the per-channel probability tables.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyModel
from torch import nn

ESCAPE_MASS = 1e-6  # probability reserved for CompressAI's out-of-range symbol (never used here)


class CategoricalEntropyModel(EntropyModel):
    """``channels`` learned distributions over the symbols ``0..levels-1``."""

    def __init__(self, channels: int, levels: int) -> None:
        super().__init__()
        self.channels, self.levels = channels, levels
        self.logits = nn.Parameter(torch.zeros(channels, levels))
        # The CDF tables are derived from the logits by update(): not saved with the weights.
        for name in ("_offset", "_quantized_cdf", "_cdf_length"):
            self.register_buffer(name, torch.IntTensor(), persistent=False)

    def forward(self, symbols: torch.Tensor, assignment: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood of each symbol of an ``N x channels x H x W`` integer tensor.

        With ``assignment`` (the quantizer's soft assignment, ``... x levels``), the value is the
        same but its gradient also reaches the assignment (straight-through: the hard one-hot
        forward, the soft assignment's gradient backward), so the rate trains the encoder."""
        log_p = F.log_softmax(self.logits.float(), dim=1)  # channels x levels
        one_hot = F.one_hot(symbols.long(), self.levels).to(log_p.dtype)  # N x C x H x W x L
        if assignment is not None:
            assignment = assignment.float()
            one_hot = one_hot + assignment - assignment.detach()
        return self.likelihood_lower_bound(torch.exp((one_hot * log_p[None, :, None, None, :]).sum(-1)))

    def update(self, force: bool = False) -> bool:
        """Quantized CDF tables for the coder, from the current probabilities."""
        if self._quantized_cdf.numel() > 0 and not force:
            return False
        pmf = F.softmax(self.logits.detach(), dim=1)
        tail = torch.full((self.channels, 1), ESCAPE_MASS)
        lengths = torch.full((self.channels,), self.levels, dtype=torch.int32)
        self._quantized_cdf = self._pmf_to_cdf(pmf, tail, lengths, self.levels)
        self._offset = torch.zeros(self.channels, dtype=torch.int32)
        self._cdf_length = lengths + 2
        return True

    def channel_indexes(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """The CDF index (the channel) of every symbol of a tensor of ``shape``."""
        return torch.arange(self.channels, dtype=torch.int32).view(1, -1, 1, 1).expand(*shape).contiguous()

    def compress(self, symbols: torch.Tensor) -> list[bytes]:  # type: ignore[override]
        """One rANS string per image of an ``N x channels x H x W`` symbol tensor."""
        return super().compress(symbols.float(), self.channel_indexes(symbols.shape))

    def decompress(self, strings: list[bytes], shape: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        """The symbols of ``strings`` (one per image), each ``channels x shape``."""
        indexes = self.channel_indexes((len(strings), self.channels, *shape))
        return super().decompress(strings, indexes).round().long()
