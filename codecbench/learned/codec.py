"""``LearnedCodec``: a CompressAI-style model as a codecbench codec, and as a trainable model.

A plugin subclasses :class:`LearnedCodec`, sets ``name``, ``stride`` and its ``manifest`` of
shipped checkpoints, and implements :meth:`LearnedCodec.build_model`. The base class does the rest:

* points ``1..k`` select the k shipped checkpoints (ordered by rate); ``--weights PATH[,PATH...]``
  replaces them with the user's files (points ``1..k`` in the order given). A file is either a
  checkpoint from ``codecbench train`` or a bare CompressAI state dict (an official pretrained file);
* ``encode`` pads the image to ``stride``, calls the model's ``compress`` (CompressAI entropy models
  and range coder, on CPU) and wraps the strings in a :class:`~codecbench.learned.bitstream.Bitstream`;
* ``decode`` verifies the container, picks the checkpoint by the id it records, calls
  ``decompress``, checks that it decoded the symbols the encoder coded (the container's symbol
  digest, see :mod:`codecbench.learned.bitstream`) and crops back;
* ``codecbench train`` builds the model with :meth:`build_model` and trains :meth:`training_task`.

The model must provide ``compress(x) -> {"strings", "shape"}``, ``decompress(strings, shape) ->
{"x_hat"}`` and ``update(force=True)``, as every ``compressai.models.CompressionModel`` does.

Coding runs on one torch thread (:func:`single_threaded`; the caller's count is restored after).
Decoding must rebuild every CDF the encoder used bit for bit, and the floats that choose them
(CDF tables from ``update``, the hyper-synthesis ``h_s``, a context model's per-position
``context_prediction`` and ``entropy_parameters``) change in the last bit with torch's thread count
(work split differently, vectorised or scalar tails, other reduction orders): kodim01 coded by
``cheng2020-anchor`` on 1 thread decoded to 9.5 dB on 2, and ``codecbench run``'s workers encode on
one thread while ``report`` and ``compare`` decode in-process on torch's default. On one thread
the bytes and the decoded image do not depend on the caller's thread count either (the synthesis
transform rounds differently on 2 threads too), and the per-position context-model loops, which
dominate Cheng2020's time, run faster on one thread than on several. Another instruction set
rounds float32 differently too: the CDF tables are built in float64, and so are the outputs of
the submodules a codec names in ``float64_modules`` (:mod:`codecbench.learned.portability`).
What remains (a model's own float32 CDF arithmetic, another library version) the container's
symbol digest detects.
"""

from __future__ import annotations

import abc
import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from codecbench.codec import Codec, Point, check_image_array
from codecbench.errors import BitstreamError, CodecError, CodecUnavailableError
from codecbench.files import sha256_of
from codecbench.learned.bitstream import FORMAT_VERSION, Bitstream, record_symbols, recording_symbols
from codecbench.learned.checkpoints import (
    CheckpointSpec,
    checkpoint_id,
    is_exported,
    load_manifest,
    load_weights,
    read_checkpoint,
)

if TYPE_CHECKING:  # torch is imported by the methods that run a model, so that plugins register without it
    import torch
    from torch import nn

    from codecbench.learned.tasks import TrainingTask


# Zero bytes after each rANS stream handed to the native decoder, per padded pixel: one 32-bit word
# for each of up to three symbols per pixel, and a word of slack for bypass-coded symbols.
ZERO_TAIL_BYTES_PER_PIXEL = 16
ENTROPY_ARITHMETIC = "f64"  # CDF tables and float64_modules in float64 (in the codec version)
MODEL_CONFIG_SCALE = 4  # how much larger than its declared sizes a checkpoint's model may be


def _is_size(value: Any) -> bool:
    """Whether a model option is a size (channels, blocks, levels): a positive integer. Float
    options (rates, loss weights) are training settings that build nothing."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with torch on one intra-op thread, then restore the caller's thread count.

    ``LearnedCodec`` codes inside it, so that the floats choosing the entropy coder's CDFs (and
    the decoded image) do not depend on how many threads the encoding or decoding process has."""
    import torch

    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _RecordingCoder:
    """Stands in for CompressAI's ``_EntropyCoder`` of one entropy model: reports its symbols.

    The symbols the encoder hands the coder and those the decoder gets back go to
    :func:`~codecbench.learned.bitstream.record_symbols` under the entropy model's name."""

    def __init__(self, coder: Any, key: str) -> None:
        self.coder, self.key = coder, key

    def encode_with_indexes(self, symbols: Any, *args: Any, **kwargs: Any) -> Any:
        record_symbols(self.key, symbols, decoded=False)
        return self.coder.encode_with_indexes(symbols, *args, **kwargs)

    def decode_with_indexes(self, *args: Any, **kwargs: Any) -> Any:
        values = self.coder.decode_with_indexes(*args, **kwargs)
        record_symbols(self.key, values, decoded=True)
        return values

    def __getattr__(self, name: str) -> Any:
        return getattr(self.coder, name)


@contextmanager
def recording_entropy_coders(model: nn.Module) -> Iterator[None]:
    """Inside the block, CompressAI entropy models of ``model`` report their coded symbols."""
    from compressai.entropy_models import EntropyModel

    wrapped = [m for m in model.modules() if isinstance(m, EntropyModel)
               and not isinstance(getattr(m, "entropy_coder", None), (_RecordingCoder, type(None)))]
    names = {id(m): name for name, m in model.named_modules()}
    for m in wrapped:
        m.entropy_coder = _RecordingCoder(m.entropy_coder, names[id(m)])
    try:
        yield
    finally:
        for m in wrapped:
            m.entropy_coder = m.entropy_coder.coder


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to code: its weights' id (recorded in bitstreams) and where they came from."""

    model: nn.Module
    checkpoint: str
    source: Path


class LearnedCodec(Codec):
    """Base class of learned codecs built on CompressAI-style models.

    Class attributes for subclasses: ``stride`` (the model's total downsampling, e.g. 64),
    ``manifest`` (path of the TOML file declaring shipped checkpoints, or ``None``),
    ``default_lmbda`` (for ``codecbench train`` without ``--lambda``), ``model_config`` (the
    constructor arguments of a model trained from scratch), ``preset_model_configs``
    (overrides per training preset, e.g. a smaller ``N`` for ``small``) and
    ``checkpoint_codecs`` (other codecs whose exported checkpoints this one also loads: the same
    model and bitstream trained under another name). What a stream may make the decoder do is
    bounded with ``decode_bytes_per_pixel`` and ``raw_streams`` (:meth:`check_decodable`).
    """

    family: ClassVar[str] = "learned"
    integer_points: ClassVar[bool] = True
    stride: ClassVar[int] = 64
    zoo_architectures: ClassVar[tuple[str, ...]] = ()
    """CompressAI zoo architectures whose published weights the model loads (``--weights
    compressai:NAME``, :mod:`codecbench.learned.zoo`)."""
    float64_modules: ClassVar[tuple[str, ...]] = ()
    """Submodules whose outputs choose the entropy coder's CDFs (a hyperprior's ``h_s``), evaluated
    in float64 when coding so that another CPU chooses the same ones
    (:mod:`codecbench.learned.portability`)."""
    device_modules: ClassVar[tuple[str, ...]] = ("g_a", "g_s")
    """Submodules moved to the GPU by ``run --device cuda`` (:mod:`codecbench.learned.devices`);
    whatever chooses the entropy coder's CDFs must stay out of it."""
    manifest: ClassVar[Path | None] = None
    default_lmbda: ClassVar[float] = 0.0067
    model_config: ClassVar[Mapping[str, Any]] = {}
    preset_model_configs: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    options: ClassVar[Mapping[str, Any]] = {"weights": ""}
    checkpoint_codecs: ClassVar[tuple[str, ...]] = ()
    decode_bytes_per_pixel: ClassVar[int] = 1000
    """Peak working memory of one decode per pixel of the image (float feature maps at full size).
    The default is conservative: the shipped models measured 125 (aedc) to 285 (cheng2020, N=48)
    bytes per pixel decoding 512x512 to 1024x1024, and memory grows with a model's width."""
    raw_streams: ClassVar[tuple[int, ...]] = ()
    """Indexes of the streams that are not CompressAI rANS strings (a plugin's side information)."""

    def __init__(self) -> None:
        super().__init__()
        self._models: dict[int, LoadedModel] = {}
        self.points = tuple(range(1, len(self.shipped_checkpoints()) + 1))

    # -- what a plugin implements -------------------------------------------------------------

    @abc.abstractmethod
    def build_model(self, **config: Any) -> nn.Module:
        """A new, untrained model built with the constructor arguments ``config``."""

    def model_from_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
        """A model holding a bare state dict (e.g. CompressAI's official pretrained files).

        The default builds ``build_model(**self.model_config)`` and loads the weights strictly;
        plugins whose model size varies override it (CompressAI's ``from_state_dict``).
        """
        model = self.build_model(**self.model_config)
        model.load_state_dict(dict(state_dict))
        return model

    def load_init_weights(self, model: nn.Module, payload: Mapping[str, Any]) -> None:
        """Load ``codecbench train --init`` weights into a new ``model`` (default: strictly).

        Plugins override it to start from a related model's checkpoint (e.g. another variant)."""
        load_weights(model, payload)

    def training_task(self, model: nn.Module, lmbda: float) -> TrainingTask:
        """How ``codecbench train`` optimises ``model`` (default: MSE rate-distortion)."""
        from codecbench.learned.tasks import RateDistortionTask

        return RateDistortionTask(model, lmbda, self.stride)

    def compressai_version(self) -> str:
        try:
            return metadata.version("compressai")  # the installed distribution's: no import (torch)
        except metadata.PackageNotFoundError:
            return "none"

    # -- checkpoints --------------------------------------------------------------------------

    def shipped_checkpoints(self) -> list[CheckpointSpec]:
        """The checkpoints the plugin declares in its manifest, ordered by point."""
        if self.manifest is None or not Path(self.manifest).is_file():
            return []
        return load_manifest(Path(self.manifest))

    def user_weights(self) -> list[Path]:
        """The files given with ``--weights`` / ``-o weights=PATH[,PATH...]``."""
        return [Path(p.strip()).expanduser() for p in str(self.config.get("weights") or "").split(",")
                if p.strip()]

    def configure(self, **options: Any) -> None:
        super().configure(**options)
        self._models = {}  # rebind: copies made by with_options() must not share loaded models
        weights = self.user_weights()
        self.points = tuple(range(1, len(weights or self.shipped_checkpoints()) + 1))

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("compressai") is None:  # looked up, not imported (slow: torch)
            return "compressai is not installed (pip install compressai)"
        missing = [str(p) for p in self.user_weights() if not p.is_file()]
        if missing:
            return f"weights file not found: {', '.join(missing)}"
        if not self.points:
            return (f"no shipped checkpoints; train one with `codecbench train {self.name} --data DIR "
                    f"--out DIR` and pass it with --weights DIR/model.pt")
        return None

    def version(self) -> str:
        weights = self.user_weights()
        if weights:
            ids = [checkpoint_id(sha256_of(p)) if p.is_file() else "missing" for p in weights]
        else:
            ids = [checkpoint_id(spec.sha256) for spec in self.shipped_checkpoints()]
        # The container format and the entropy arithmetic are part of the version: rows coded in an
        # older format (other bytes, no symbol digest) or with float32 CDF tables (which the float64
        # ones replaced, :mod:`codecbench.learned.portability`) are not reused as if this code had
        # produced them.
        return (f"compressai-{self.compressai_version()}/c{FORMAT_VERSION}/{ENTROPY_ARITHMETIC}/"
                + "+".join(ids))

    def _load_point(self, point: int) -> LoadedModel:
        weights = self.user_weights()
        if weights:
            path, sha256 = weights[point - 1], None
        else:
            spec = self.shipped_checkpoints()[point - 1]
            path, sha256 = spec.file, spec.sha256
        payload = read_checkpoint(path, sha256)
        if is_exported(payload):
            if payload["codec"] not in (self.name, *self.checkpoint_codecs):
                raise CodecError(f"Checkpoint {path} was trained for codec {payload['codec']!r}, "
                                 f"not {self.name!r}")
            self.check_model_config(payload["model_config"], path)
            model = self.build_model(**payload["model_config"])
            model.load_state_dict(payload["state_dict"])
        else:
            state_dict = payload.get("state_dict", payload)
            try:
                model = self.model_from_state_dict(state_dict)
            except (KeyError, RuntimeError, ValueError) as exc:
                raise CodecError(f"Checkpoint {path} does not fit codec {self.name!r}: {exc}") from exc
        model.eval()
        from codecbench.learned.portability import evaluate_in_float64, update_in_float64

        with single_threaded():
            update_in_float64(model)  # the CDF tables compress/decompress use
        try:
            evaluate_in_float64(model, self.float64_modules)
        except AttributeError as exc:  # a plugin naming a submodule its model lacks
            raise CodecError(f"{type(self).__name__}.float64_modules names a submodule the model "
                             f"lacks ({exc}); list only submodules of the model build_model returns") from exc
        from codecbench.learned.devices import place_transforms

        place_transforms(model, self.device_modules)  # on the CPU unless run --device says otherwise
        return LoadedModel(model, checkpoint_id(sha256 or sha256_of(path)), path)

    def check_model_config(self, config: Mapping[str, Any], path: Path) -> None:
        """Refuse a checkpoint's model options that would build a model far larger than this codec
        declares, before building it: a number more than ``MODEL_CONFIG_SCALE`` times the largest
        value of that integer option in ``model_config`` and ``preset_model_configs`` (a 1.4 KB file asking
        for a huge ``N`` reached 5.6 GiB before its state dict was found not to fit)."""
        declared = [self.model_config, *self.preset_model_configs.values()]
        for key, value in config.items():
            known = [c[key] for c in declared if _is_size(c.get(key))]
            if _is_size(value) and known and value > MODEL_CONFIG_SCALE * max(known):
                raise CodecError(
                    f"Checkpoint {path} asks for {key}={value}, more than {MODEL_CONFIG_SCALE}x the "
                    f"largest {self.name} declares ({max(known)}); refused before building it")

    def model_for_point(self, point: Point) -> LoadedModel:
        """The loaded model serving ``point`` (loaded on first use)."""
        index = int(self.validate_point(point))
        if index not in self._models:
            self._models[index] = self._load_point(index)
        return self._models[index]

    def load(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise CodecUnavailableError(f"Codec {self.name!r} is unavailable: {reason}")
        for point in self.points:
            self.model_for_point(point)

    # -- coding -------------------------------------------------------------------------------

    def encode(self, image: np.ndarray, point: Point) -> bytes:
        import torch

        from codecbench.learned.padding import image_to_tensor, pad_to_stride

        check_image_array(image, f"{self.name}.encode() input")
        loaded = self.model_for_point(point)
        height, width = image.shape[:2]
        with torch.no_grad(), single_threaded(), recording_symbols(decoding=False) as digest, \
                recording_entropy_coders(loaded.model):
            out = loaded.model.compress(pad_to_stride(image_to_tensor(image), self.stride))
        streams = tuple(strings[0] for strings in out["strings"])
        return Bitstream(self.name, loaded.checkpoint, height, width, tuple(int(d) for d in out["shape"]),
                         streams, None if digest.empty else digest.value()).to_bytes()

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        from codecbench.learned.padding import crop_to, tensor_to_image

        bitstream = Bitstream.from_bytes(data, codec=self.name)
        self.check_decodable(bitstream)
        if not self._models:
            self.load()
        loaded = next((m for m in self._models.values() if m.checkpoint == bitstream.checkpoint), None)
        if loaded is None:
            known = ", ".join(m.checkpoint for m in self._models.values())
            raise BitstreamError(
                f"bitstream was encoded with checkpoint {bitstream.checkpoint}, which is not loaded "
                f"(loaded: {known}); pass the weights that encoded it with --weights")
        try:
            with torch.no_grad(), single_threaded(), recording_symbols(decoding=True) as digest, \
                    recording_entropy_coders(loaded.model):
                out = loaded.model.decompress([[s] for s in self.padded_streams(bitstream)],
                                              bitstream.latent_shape)
        except Exception as exc:  # the entropy decoder rejects streams of the wrong count or kind
            raise BitstreamError(f"cannot decode {self.name} bitstream: {exc}") from exc
        bitstream.check_symbols(digest)  # a desynchronised decoder raises instead of returning garbage
        return tensor_to_image(crop_to(out["x_hat"], bitstream.height, bitstream.width))

    def check_decodable(self, bitstream: Bitstream) -> None:
        """Refuse, before any model runs, a stream that asks more of the decoder than this codec's
        encoder writes or this machine can decode (``BitstreamError`` naming what is out of bounds).

        The CRC catches damage, not forgery: a stream of a few hundred bytes with its CRC
        recomputed can declare any image. Checked here: the image is within Pillow's pixel limit
        and its decoding's estimated memory (pixels x :attr:`decode_bytes_per_pixel`) fits the
        memory available now; the latent shape is the one the encoder writes for that size; every
        rANS stream (all but :attr:`raw_streams`) is empty or whole 32-bit words, at least two
        (what CompressAI's encoder flushes; a shorter one makes the native decoder read past its
        end). The stream length cannot bound the image: rANS codes a near-certain symbol in a
        ten-thousandth of a bit, so a legitimate stream of a few hundred bytes can hold a large
        flat image. Decoding time grows with the declared size, as a real stream's does: the
        caller bounds it (``decode_guarded``'s timeout). A plugin bounds its own side information
        (e.g. a symbol range) where it reads it, with the same limit its encoder applies.
        """
        height, width = bitstream.height, bitstream.width
        pixels = height * width
        if pixels > (Image.MAX_IMAGE_PIXELS or float("inf")):
            raise BitstreamError(
                f"bitstream declares a {width}x{height} image, more than the "
                f"{Image.MAX_IMAGE_PIXELS} pixels codecbench reads (Pillow's limit): refused as a "
                "possible decompression bomb")
        expected = self.latent_shape(height, width)
        if bitstream.latent_shape != expected:
            raise BitstreamError(f"bitstream latent shape {bitstream.latent_shape} does not match "
                                 f"its {width}x{height} image (expected {expected})")
        for index, stream in enumerate(bitstream.streams):
            if index not in self.raw_streams and stream and (len(stream) < 8 or len(stream) % 4):
                raise BitstreamError(f"bitstream's stream {index} has {len(stream)} bytes, not an rANS "
                                     "string (whole 32-bit words, at least two)")
        from codecbench.executors.memory import available_bytes

        needed, available = pixels * self.decode_bytes_per_pixel, available_bytes()
        if needed > available:
            raise BitstreamError(
                f"bitstream declares a {width}x{height} image; decoding it with {self.name} needs "
                f"about {needed / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB available")

    def padded_streams(self, bitstream: Bitstream) -> tuple[bytes, ...]:
        """The rANS streams (all but :attr:`raw_streams`) followed by zero bytes, so that
        CompressAI's native decoder does not read past the end of its buffer.

        That decoder has no bounds checks: a forged stream too short for its declared size made it
        read unowned memory and crash. It reads two 32-bit words to start and at most one per
        decoded symbol; a bypass-coded (out-of-range) symbol reads more, but only while it finds
        set bits, which the zero tail soon ends. The tail is :data:`ZERO_TAIL_BYTES_PER_PIXEL` per
        padded pixel (enough for up to three symbols per pixel, four times what a 192-channel
        latent at stride 16 holds) plus 16 bytes per stream byte (bypass lengths read from the stream itself). Written
        here because no CompressAI option bounds the reads. A valid stream decodes identically:
        its decoder stops before the tail.
        """
        from codecbench.learned.padding import padded_size

        padded_h, padded_w = padded_size(bitstream.height, bitstream.width, self.stride)
        tail = ZERO_TAIL_BYTES_PER_PIXEL * padded_h * padded_w + 64
        return tuple(s if i in self.raw_streams else s + bytes(tail + 16 * len(s))
                     for i, s in enumerate(bitstream.streams))

    def latent_shape(self, height: int, width: int) -> tuple[int, ...]:
        """The ``shape`` CompressAI's ``compress`` returns for an image of this size."""
        from codecbench.learned.padding import padded_size

        padded_h, padded_w = padded_size(height, width, self.stride)
        return padded_h // self.stride, padded_w // self.stride

