"""Exception hierarchy. Library code raises these; only the command line (:mod:`codecbench.cli`)
turns them into messages for the user."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CodecbenchError(Exception):
    """Base class of every error codecbench raises on purpose."""


class UnknownNameError(CodecbenchError, KeyError):
    """A codec, dataset or metric name that nothing registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=3, cutoff=0.75)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(self.known) if self.known else "(none registered)"
        super().__init__(f"Unknown {kind} {name!r}.{hint} Available: {listing}.")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class DuplicateNameError(CodecbenchError):
    """Two plugins registered the same name."""


class CodecError(CodecbenchError):
    """A codec failed to encode or decode, or was misconfigured."""


class CodecUnavailableError(CodecError):
    """A codec cannot run here (missing binary, weights or library)."""


class BitstreamError(CodecError):
    """A bitstream is truncated, corrupted or was written by another codec."""


class MetricError(CodecbenchError):
    """A metric cannot be computed (unavailable weights, incompatible images)."""


class ImageError(CodecbenchError):
    """An image file is missing, unreadable or of an unsupported kind."""


class DatasetError(CodecbenchError):
    """A dataset cannot be found, downloaded or verified."""


class FileError(CodecbenchError):
    """A file cannot be downloaded, fails its checksum, or its path would escape its folder
    (:mod:`codecbench.files`; the caller adds what the file was for)."""


class StoreError(CodecbenchError):
    """The results store cannot be opened, read or written (read-only, disk full, damaged)."""


class StreamChecksumError(StoreError):
    """A stored bitstream no longer matches the checksum stored with it (the store is damaged)."""

    def __init__(self, message: str, *, dataset: str = "", image: str = "", codec: str = "",
                 point: float = float("nan")):
        super().__init__(message)
        self.dataset, self.image, self.codec, self.point = dataset, image, codec, point

    def __reduce__(self) -> tuple:  # picklable with its fields (across worker processes)
        return type(self), (self.args[0],), self.__dict__
