"""The codec contract.

A codec turns an ``H x W x 3`` ``uint8`` RGB array into self-contained ``bytes`` and those bytes,
and nothing else, back into an image. The harness (never the codec) computes
``bpp = 8 * len(data) / (H * W)``, times the calls and computes every metric.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from codecbench.errors import CodecError

Point = float


class Codec(abc.ABC):
    """Base class of every codec.

    Subclasses set ``name``, ``description``, ``family`` and ``points`` (the quality-knob values of
    the default sweep, ordered from lowest to highest rate) and implement :meth:`encode` and
    :meth:`decode`. ``point_range`` (inclusive bounds) marks a knob that accepts any value in
    between, which rate-matched comparison searches by bisection; ``integer_points`` says the knob
    takes integers only. ``options`` maps each accepted option name to its default. ``domain``
    names the images the codec is made for: ``"photos"`` (the default) or e.g. ``"faces"`` for a
    model trained on faces only, which ``codecbench compare`` runs on other datasets only when asked.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    family: ClassVar[str] = "traditional"
    domain: ClassVar[str] = "photos"
    points: ClassVar[Sequence[Point]] = ()
    point_range: ClassVar[tuple[Point, Point] | None] = None
    integer_points: ClassVar[bool] = True
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self) -> None:
        self.config: dict[str, Any] = dict(self.options)

    def with_options(self, **options: Any) -> "Codec":
        """A copy of this codec with ``options`` set; the registered instance stays untouched."""
        configured = copy.copy(self)
        configured.config = dict(self.config)
        configured.configure(**options)
        return configured

    def configure(self, **options: Any) -> None:
        """Set options (e.g. ``weights`` or a binary path) in place; unknown names are rejected."""
        for key, value in options.items():
            if key not in self.options:
                accepted = ", ".join(sorted(self.options)) or "none"
                raise CodecError(
                    f"Codec {self.name!r} has no option {key!r}; accepted options: {accepted}"
                )
            self.config[key] = value

    def version(self) -> str:
        """Version of the library, binary or weights behind this codec (recorded with results)."""
        return "0"

    def unavailable_reason(self) -> str | None:
        """Why this codec cannot run here (with how to fix it), or ``None`` when it can."""
        return None

    def load(self) -> None:
        """Do heavy set-up (load weights); called once before the first encode. Idempotent."""

    def synchronize(self) -> None:
        """Wait for asynchronous work (GPU codecs call ``torch.cuda.synchronize()``)."""

    def validate_point(self, point: Point) -> Point:
        """Return ``point`` as the codec's knob type, or raise ``CodecError`` naming it."""
        low, high = self.point_range or (min(self.points), max(self.points))
        if not low <= point <= high:
            raise CodecError(
                f'Invalid point "{format_point(point)}" for codec {self.name!r}; '
                f"expected {format_point(low)}..{format_point(high)}"
            )
        if self.point_range is None and point not in self.points:
            raise CodecError(
                f'Invalid point "{format_point(point)}" for codec {self.name!r}; expected one of '
                f"{', '.join(format_point(p) for p in self.points)}"
            )
        if self.integer_points:
            if int(point) != point:
                raise CodecError(f'Invalid point "{point}" for codec {self.name!r}: not an integer')
            return int(point)
        return float(point)

    @abc.abstractmethod
    def encode(self, image: np.ndarray, point: Point) -> bytes:
        """Compress ``image`` (``H x W x 3`` ``uint8``) at operating point ``point``."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Reconstruct an ``H x W x 3`` ``uint8`` image from the bytes of :meth:`encode`."""


def format_point(point: Point) -> str:
    """A point as the user typed it: ``75`` rather than ``75.0``."""
    return str(int(point)) if float(point).is_integer() else repr(float(point))


def check_image_array(image: np.ndarray, what: str) -> None:
    """Raise ``CodecError`` unless ``image`` is an ``H x W x 3`` ``uint8`` array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise CodecError(f"{what} must be an H x W x 3 uint8 array, got {desc}")
