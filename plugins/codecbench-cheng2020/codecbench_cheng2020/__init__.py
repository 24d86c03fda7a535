"""Cheng et al. 2020 learned image codecs on CompressAI: ``cheng2020-anchor`` and ``cheng2020-attn``.

Both use CompressAI's architectures (``Cheng2020Anchor``, ``Cheng2020Attention``: residual
analysis/synthesis transforms, hyperprior, masked-convolution context model, and a Gaussian
conditional entropy model) and CompressAI's range coder. Shipped checkpoints are declared in
``checkpoints/<codec>.toml`` beside the weights and were trained with ``codecbench train``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

from codecbench import Codec, CodecError, hookimpl
from codecbench.learned.checkpoints import is_exported
from codecbench.learned import shipped_checkpoints_dir
from codecbench.learned.codec import LearnedCodec


def checkpoints_dir() -> Path:
    """The shipped checkpoints: inside the package in a wheel, beside it in a source checkout."""
    return shipped_checkpoints_dir(__file__)


class Cheng2020Codec(LearnedCodec):
    """Shared set-up of the two variants; ``architecture`` names the CompressAI model class."""

    architecture: str
    stride = 64  # g_a downsamples by 16, h_a by 4 more
    default_lmbda = 0.0067  # CompressAI's quality 3 (MSE)
    model_config: Mapping[str, Any] = {"N": 192}  # CompressAI's default (the paper's high rates)
    preset_model_configs: Mapping[str, Mapping[str, Any]] = {"small": {"N": 48}, "full": {"N": 192}}

    def model_class(self) -> type:
        """CompressAI's class ``architecture``, decoding with compact CDF lists (same output, faster)."""
        import compressai.models

        from codecbench_cheng2020.context_decoding import with_compact_cdf_decoding

        return with_compact_cdf_decoding(getattr(compressai.models, self.architecture))

    def build_model(self, **config: Any) -> Any:
        return self.model_class()(**config)

    def model_from_state_dict(self, state_dict: Mapping[str, Any]) -> Any:
        # CompressAI's official files: rename legacy keys, then infer N from the first conv.
        from compressai.zoo.pretrained import load_pretrained

        return self.model_class().from_state_dict(load_pretrained(dict(state_dict)))


class Cheng2020Anchor(Cheng2020Codec):
    name = "cheng2020-anchor"
    description = "Cheng2020 anchor (GMM-free Gaussian conditional, context model), CompressAI"
    architecture = "Cheng2020Anchor"
    manifest = checkpoints_dir() / "cheng2020-anchor.toml"


class Cheng2020Attention(Cheng2020Codec):
    name = "cheng2020-attn"
    description = "Cheng2020 with attention modules (context model), CompressAI"
    architecture = "Cheng2020Attention"
    manifest = checkpoints_dir() / "cheng2020-attn.toml"

    def load_init_weights(self, model: Any, payload: Mapping[str, Any]) -> None:
        """Also start from a ``cheng2020-anchor`` checkpoint: every layer but the attention blocks.

        The attention model is the anchor with attention blocks inserted in ``g_a`` and ``g_s``
        (residual, so the network starts close to the anchor); the anchor's layers keep their order.
        """
        if not (is_exported(payload) and payload.get("codec") == Cheng2020Anchor.name):
            super().load_init_weights(model, payload)
            return
        anchor = Cheng2020Anchor().build_model(**payload["model_config"])
        state_dict = anchor_state_in_attention_model(anchor, model, payload["state_dict"])
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        attention = {k for k in model.state_dict() if is_attention_key(model, k)}
        if unexpected or set(missing) != attention:
            raise CodecError(f"Cannot start {self.name} from the anchor checkpoint: missing "
                             f"{sorted(set(missing) - attention)}, unexpected {sorted(unexpected)}")


def is_attention_key(model: Any, key: str) -> bool:
    """Whether state-dict ``key`` of ``model`` belongs to an ``AttentionBlock``."""
    from compressai.layers import AttentionBlock

    parts = key.split(".")
    return len(parts) > 2 and parts[0] in ("g_a", "g_s") and isinstance(
        getattr(model, parts[0])[int(parts[1])], AttentionBlock)


def anchor_state_in_attention_model(anchor: Any, model: Any, state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """``state_dict`` of ``anchor`` with ``g_a``/``g_s`` keys renumbered to ``model``'s layers."""
    from compressai.layers import AttentionBlock

    renumber = {}
    for name in ("g_a", "g_s"):
        targets = [i for i, layer in enumerate(getattr(model, name)) if not isinstance(layer, AttentionBlock)]
        renumber.update({(name, str(i)): str(j) for i, j in zip(range(len(getattr(anchor, name))), targets)})
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if len(parts) > 1 and (parts[0], parts[1]) in renumber:
            parts[1] = renumber[(parts[0], parts[1])]
        out[".".join(parts)] = value
    return out


@hookimpl
def register_codecs(register: Callable[[Codec], None]) -> None:
    register(Cheng2020Anchor())
    register(Cheng2020Attention())
