"""CompressAI's published weights by name: ``--weights compressai:cheng2020-anchor-3``.

A name is ``compressai:ARCHITECTURE[-METRIC][-QUALITY]``: an architecture of CompressAI's model zoo
(``cheng2020-anchor``, ``mbt2018-mean``...), optionally ``-mse`` (the default) or ``-ms-ssim``,
and a quality (1 = lowest rate); without a quality it names every quality of the architecture, in
order (``compressai:cheng2020-anchor`` is points 1-6). The URLs are those of the installed
CompressAI (``compressai.zoo.image.model_urls``). Files go to torch hub's cache
(``$TORCH_HOME/hub/checkpoints``, where ``compressai.zoo`` puts them too, so files either one
fetched serve both), downloaded by :func:`codecbench.files.download` (progress bar on stderr, a
temporary file renamed into place: an interrupted download leaves nothing, and the next attempt
starts again) and verified against the sha256 prefix in their names, as torch hub does. A learned
codec lists the architectures its model loads in a ``zoo_architectures`` class attribute;
``codecbench run`` replaces the names in ``--weights`` with the files (:func:`local_weights`) before
the codecs are configured, so rows record the files' paths and sha256 like any other weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from codecbench.errors import CodecError, CodecUnavailableError, FileError
from codecbench.files import cached_sha256, download

__all__ = ["PREFIX", "ZooWeights", "fetch", "is_zoo_name", "local_weights", "zoo_weights"]

PREFIX = "compressai:"
METRICS = ("mse", "ms-ssim")
_HASH = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's HASH_REGEX: the sha256 prefix in a file name


@dataclass(frozen=True)
class ZooWeights:
    """One published file: its zoo name, architecture, metric, quality and URL."""

    name: str
    architecture: str
    metric: str
    quality: int
    url: str

    @property
    def sha256_prefix(self) -> str:
        """The hex digits of the file's sha256 that its name carries."""
        match = _HASH.search(self.url.rsplit("/", 1)[-1])
        if match is None:
            raise CodecError(f"{self.url} carries no sha256 prefix in its file name")
        return match.group(1)

    def path(self) -> Path:
        """Where the file is kept: torch hub's checkpoint cache, under the URL's file name."""
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints" / self.url.rsplit("/", 1)[-1]


def is_zoo_name(value: str) -> bool:
    """Whether a ``--weights`` entry names published weights rather than a file."""
    return value.startswith(PREFIX)


def published_urls() -> Mapping[str, Mapping[str, Mapping[int, str]]]:
    """CompressAI's URL table: architecture -> metric -> quality -> URL."""
    try:
        from compressai.zoo.image import model_urls
    except ImportError as exc:
        raise CodecUnavailableError("compressai is not installed (pip install compressai)") from exc
    return model_urls


def zoo_weights(name: str, architectures: tuple[str, ...] | None = None) -> list[ZooWeights]:
    """The files ``name`` names (one, or every quality in order); ``architectures`` limits the
    architectures accepted (a codec's ``zoo_architectures``)."""
    urls = published_urls()
    rest = name[len(PREFIX):] if is_zoo_name(name) else name
    match = re.fullmatch(r"(?P<arch>[a-z0-9_-]+?)(?:-(?P<metric>mse|ms-ssim))?(?:-(?P<quality>\d+))?", rest)
    allowed = [a for a in urls if architectures is None or a in architectures]
    if match is None or match["arch"] not in allowed:
        expected = ", ".join(f"{PREFIX}{a}-QUALITY" for a in allowed) or "none"
        raise CodecError(f'Invalid published weights "{name}"; expected one of {expected} '
                         f"(with -ms-ssim before the quality for the MS-SSIM models)")
    architecture, metric = match["arch"], match["metric"] or "mse"
    table = urls[architecture].get(metric, {})
    if not table:
        raise CodecError(f'Invalid published weights "{name}": CompressAI publishes no {metric} '
                         f"models of {architecture}")
    if match["quality"] is None:
        qualities = sorted(table)
    elif int(match["quality"]) in table:
        qualities = [int(match["quality"])]
    else:
        raise CodecError(f'Invalid quality "{match["quality"]}" in "{name}"; expected one of '
                         f"{', '.join(map(str, sorted(table)))}")
    suffix = "" if metric == "mse" else "-ms-ssim"
    return [ZooWeights(f"{PREFIX}{architecture}{suffix}-{q}", architecture, metric, q, table[q])
            for q in qualities]


def fetch(weights: ZooWeights) -> Path:
    """The local file of ``weights``, downloaded into the cache first if absent.

    A cached file whose sha256 does not start with the prefix in its name is an error (naming the
    file to delete); without network access the error names the URL and where to put the file."""
    path = weights.path()
    prefix = weights.sha256_prefix
    if path.is_file():
        if not cached_sha256(path).startswith(prefix):
            raise CodecError(f"{path} (for {weights.name}) does not match the sha256 prefix {prefix} "
                             "in its name: delete it to download it again")
        return path
    try:
        download(weights.url, path, prefix)
    except FileError as exc:
        raise CodecUnavailableError(
            f"Cannot fetch {weights.name}: {exc}. Without network access, download {weights.url} "
            f"on another machine and place it at {path}") from exc
    return path


def local_weights(weights: str, codecs: Sequence[object]) -> str:
    """``--weights`` (comma-separated) with each published name replaced by its local files,
    fetched when absent. A name must be of an architecture one of ``codecs`` loads (their
    ``zoo_architectures``)."""
    architectures = tuple(a for codec in codecs for a in getattr(codec, "zoo_architectures", ()))
    entries = []
    for entry in (e.strip() for e in weights.split(",")):
        if is_zoo_name(entry):
            entries += [str(fetch(w)) for w in zoo_weights(entry, architectures)]
        elif entry:
            entries.append(entry)
    return ",".join(entries)
