"""Cheng et al. 2020 learned image codecs on CompressAI: ``cheng2020-anchor`` and ``cheng2020-attn``.

Both use CompressAI's architectures (``Cheng2020Anchor``, ``Cheng2020Attention``: residual
analysis/synthesis transforms, hyperprior, masked-convolution context model) with the paper's
K=3 discretized Gaussian mixture likelihood (:mod:`codecbench_cheng2020.mixture`), and
CompressAI's rANS coder. Shipped checkpoints are declared in
``checkpoints/<codec>.toml`` beside the weights and were trained with ``codecbench train``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from codecbench import Codec, CodecError, hookimpl
from codecbench.learned import LearnedCodec, is_exported, shipped_checkpoints_dir


class Cheng2020Codec(LearnedCodec):
    """Shared set-up of the two variants; ``architecture`` names the CompressAI model class.

    The model config's ``mixtures`` is the number K of Gaussians per latent: the paper's 3 for the
    shipped checkpoints and new training runs, 1 (CompressAI's own class) for CompressAI's official
    files and checkpoints trained before the mixture existed (their config has no ``mixtures``).
    """

    architecture: str
    stride = 64  # g_a downsamples by 16, h_a by 4 more
    default_lmbda = 0.0067  # CompressAI's quality 3 (MSE)
    model_config: Mapping[str, Any] = {"N": 192, "mixtures": 3}  # CompressAI's default N
    preset_model_configs: Mapping[str, Mapping[str, Any]] = {
        "small": {"N": 48, "mixtures": 3}, "full": {"N": 192, "mixtures": 3}}
    raw_streams = (2,)  # a mixture model's side stream (abs_max, channel bitmap), not rANS
    # What chooses y's CDFs, in float64 when coding so that another CPU chooses alike.
    float64_modules = ("h_s", "context_prediction", "entropy_parameters")

    def model_class(self) -> type:
        """CompressAI's class ``architecture``, decoding with compact CDF lists (same output, faster)."""
        import compressai.models

        from codecbench_cheng2020.context_decoding import with_compact_cdf_decoding

        return with_compact_cdf_decoding(getattr(compressai.models, self.architecture))

    def build_model(self, mixtures: int = 1, **config: Any) -> Any:
        import compressai.models

        from codecbench_cheng2020.mixture import with_mixture

        if mixtures == 1:
            return self.model_class()(**config)
        return with_mixture(getattr(compressai.models, self.architecture))(mixtures=mixtures, **config)

    def model_from_state_dict(self, state_dict: Mapping[str, Any]) -> Any:
        # CompressAI's official files: rename legacy keys, then infer N from the first conv.
        from compressai.zoo.pretrained import load_pretrained

        return self.model_class().from_state_dict(load_pretrained(dict(state_dict)))

    def load_init_weights(self, model: Any, payload: Mapping[str, Any]) -> None:
        """Start from every layer of ``payload`` that fits ``model``.

        A single-Gaussian checkpoint (``codecbench train``'s or CompressAI's) starts a mixture
        model with its head widened (:func:`~codecbench_cheng2020.mixture.mixture_head_from_single`);
        :class:`Cheng2020Attention` also starts from ``cheng2020-anchor`` checkpoints.
        """
        from compressai.zoo.pretrained import load_pretrained

        from codecbench_cheng2020.mixture import GaussianMixtureContextModel, mixture_head_from_single

        if is_exported(payload):
            state_dict = dict(payload["state_dict"])
        else:  # a bare state dict, e.g. CompressAI's official file (legacy key names mapped)
            state_dict = load_pretrained(dict(payload.get("state_dict", payload)))
        state_dict, fresh = self.init_state_dict(model, payload, state_dict)
        if isinstance(model, GaussianMixtureContextModel):
            state_dict = mixture_head_from_single(state_dict, model)
        try:
            missing, unexpected = model.load_state_dict(state_dict, strict=False)
        except RuntimeError as exc:  # a layer of another size
            raise CodecError(f"Cannot start {self.name} from these weights: {exc}") from exc
        if unexpected or set(missing) != fresh:
            raise CodecError(f"Cannot start {self.name} from these weights: missing "
                             f"{sorted(set(missing) - fresh)}, unexpected {sorted(unexpected)}")

    def init_state_dict(self, model: Any, payload: Mapping[str, Any],
                        state_dict: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """``state_dict`` named for ``model``, and the keys of ``model`` it may leave untouched."""
        return state_dict, set()


class Cheng2020Anchor(Cheng2020Codec):
    name = "cheng2020-anchor"
    description = "Cheng2020 anchor (K=3 Gaussian mixture, context model), CompressAI"
    architecture = "Cheng2020Anchor"
    zoo_architectures = ("cheng2020-anchor",)  # --weights compressai:cheng2020-anchor[-ms-ssim]-1..6
    manifest = shipped_checkpoints_dir(__file__) / "cheng2020-anchor.toml"


class Cheng2020Attention(Cheng2020Codec):
    name = "cheng2020-attn"
    description = "Cheng2020 with attention modules (K=3 Gaussian mixture, context model), CompressAI"
    architecture = "Cheng2020Attention"
    zoo_architectures = ("cheng2020-attn",)  # --weights compressai:cheng2020-attn[-ms-ssim]-1..6
    manifest = shipped_checkpoints_dir(__file__) / "cheng2020-attn.toml"

    def init_state_dict(self, model: Any, payload: Mapping[str, Any],
                        state_dict: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """Also start from a ``cheng2020-anchor`` checkpoint: every layer but the attention blocks.

        The attention model is the anchor with attention blocks inserted in ``g_a`` and ``g_s``
        (residual, so the network starts close to the anchor); the anchor's layers keep their order.
        """
        if not (is_exported(payload) and payload.get("codec") == Cheng2020Anchor.name):
            return state_dict, set()
        anchor = Cheng2020Anchor().build_model(**payload["model_config"])
        attention = {k for k in model.state_dict() if is_attention_key(model, k)}
        return anchor_state_in_attention_model(anchor, model, state_dict), attention


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
