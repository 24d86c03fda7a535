"""Datasets: named manifests (``datasets/*.toml``) and plain folders.

A named dataset is looked up, in order, in ``--data-dir``/``CODECBENCH_DATA``, then in the user
cache (``CODECBENCH_CACHE``, default ``~/.cache/codecbench/datasets``), then downloaded from its
manifest's URLs with sha256 verification and a progress bar.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codecbench.errors import DatasetError, FileError, UnknownNameError
from codecbench.files import cached_sha256, download, safe_join, sha256_of

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")


def other_image_suffixes() -> set[str]:
    """Suffixes of image files a folder dataset leaves out (``.gif``: palette and animation; the
    other formats Pillow or its plugins know), so that skipping one is never silent."""
    from PIL import Image

    Image.init()
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    known = readable | {".gif", ".heic", ".heif", ".avif", ".jxl"}
    return known - set(IMAGE_SUFFIXES)


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: a stable name (its relative path) and where it lies."""

    name: str
    path: Path

    def sha256(self) -> str | None:
        """Hex sha256 of the file's content, ``None`` when it cannot be read (the run stores that
        as a failed row). Stored with every result row, so that rows are tied to the content they
        were computed from rather than to the name."""
        return content_sha256(self.path)


def content_sha256(path: Path) -> str | None:
    """:func:`~codecbench.files.cached_sha256` of ``path``; ``None`` when it cannot be read."""
    try:
        return cached_sha256(path)
    except OSError:
        return None


class Dataset:
    """Base class: a name, a description and a list of image files."""

    name: str
    description: str

    def images(self, data_dir: Path | None = None, download: bool = True) -> list[ImageRef]:
        """The dataset's images, sorted by name; fetching them first if needed."""
        raise NotImplementedError

    def location_hint(self) -> str:
        """Where the files are expected (shown by ``codecbench list``)."""
        return ""


def default_data_dir() -> Path | None:
    """``CODECBENCH_DATA`` as a path, if set."""
    value = os.environ.get("CODECBENCH_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The user cache where downloaded datasets are kept."""
    value = os.environ.get("CODECBENCH_CACHE")
    base = Path(value).expanduser() if value else Path.home() / ".cache" / "codecbench"
    return base / "datasets"


@dataclass(frozen=True)
class ManifestFile:
    name: str
    url: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Archive:
    url: str
    sha256: str | None = None
    into: str = ""


@dataclass
class ManifestDataset(Dataset):
    """A named dataset described by a TOML manifest.

    Manifest keys: ``name``, ``description``, ``homepage``, ``license``, ``folder`` (sub-folder of
    the data directory), ``files`` (each ``name``, ``url``, ``sha256``) or, for sets shipped as
    archives, ``archives`` (``url``, ``sha256``, ``into``: sub-folder to extract to) plus ``pattern`` (glob of the images
    inside ``folder``) and ``count`` (the number of images a complete copy has). ``manual`` holds
    instructions for sets that cannot be downloaded automatically.
    """

    name: str
    description: str
    folder: str
    homepage: str = ""
    license: str = ""
    files: Sequence[ManifestFile] = ()
    archives: Sequence[Archive] = ()
    pattern: str = "*"
    count: int | None = None
    manual: str = ""
    verify: bool = field(default=True, compare=False)

    @classmethod
    def from_toml(cls, path: Path) -> "ManifestDataset":
        try:
            data = tomllib.loads(path.read_text())
            for relative in [e["name"] for e in data.get("files", [])] + [data.get("pattern", "*")]:
                safe_join(Path("."), relative)
            return cls(
                name=data["name"],
                description=data.get("description", ""),
                folder=data.get("folder", data["name"]),
                homepage=data.get("homepage", ""),
                license=data.get("license", ""),
                files=tuple(ManifestFile(**f) for f in data.get("files", [])),
                archives=tuple(Archive(**a) for a in data.get("archives", [])),
                pattern=data.get("pattern", "*"),
                count=data.get("count"),
                manual=data.get("manual", ""),
            )
        except (KeyError, TypeError, tomllib.TOMLDecodeError, FileError) as exc:
            raise DatasetError(f"Invalid dataset manifest {path}: {exc}") from exc

    def location_hint(self) -> str:
        return f"<data-dir>/{self.folder}"

    def _candidates(self, data_dir: Path | None) -> list[Path]:
        roots = [r for r in (data_dir, default_data_dir()) if r is not None]
        return [safe_join(r, self.folder) for r in roots] + [safe_join(cache_dir(), self.folder)]

    def _complete(self, folder: Path) -> list[ImageRef] | None:
        if not folder.is_dir():
            return None
        if self.files:
            refs = []
            for f in self.files:
                path = safe_join(folder, f.name)
                if not path.is_file():
                    return None
                refs.append(ImageRef(f.name, path))
            return refs
        paths = sorted(
            p for p in folder.glob(self.pattern)
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not paths or (self.count is not None and len(paths) < self.count):
            return None
        return [ImageRef(p.relative_to(folder).as_posix(), p) for p in paths]

    def _verify(self, folder: Path) -> None:
        for f in self.files:
            if f.sha256 and sha256_of(safe_join(folder, f.name)) != f.sha256:
                raise DatasetError(
                    f"{safe_join(folder, f.name)} does not match the sha256 in the {self.name} "
                    f"manifest ({f.sha256}); replace the file with the original, or delete it to "
                    "download it again"
                )

    def downloadable(self) -> bool:
        """Whether the manifest gives URLs for everything (and no manual step)."""
        return not self.manual and bool(self.archives or (self.files and all(f.url for f in self.files)))

    def unverified(self) -> list[str]:
        """URLs the manifest pins no sha256 for: their downloads cannot be checked."""
        return [e.url for e in (*self.files, *self.archives) if e.url and not e.sha256]

    def _download(self, folder: Path) -> None:
        log.info("downloading dataset %s into %s", self.name, folder)
        if self.unverified():
            log.warning("%s: unverified download: its manifest pins no sha256 for %s; check the "
                        "files yourself, then pin their sha256 in the manifest", self.name,
                        ", ".join(self.unverified()))
        for f in self.files:
            dest = safe_join(folder, f.name)
            if not dest.is_file():
                download(f.url, dest, f.sha256)
        for archive in self.archives:
            with tempfile.TemporaryDirectory(dir=folder.parent if folder.parent.exists() else None) as tmp:
                zpath = Path(tmp) / "archive.zip"
                download(archive.url, zpath, archive.sha256)
                self._extract(zpath, safe_join(folder, archive.into) if archive.into else folder)

    @staticmethod
    def _extract(zpath: Path, folder: Path) -> None:
        with zipfile.ZipFile(zpath) as zf:
            for member in zf.infolist():
                if member.is_dir():
                    continue
                dest = safe_join(folder, member.filename)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)

    def _missing_message(self) -> str:
        where = " or ".join(str(c) for c in self._candidates(None))
        lines = [f"Dataset {self.name!r} is not available locally."]
        lines.append(f"Put its images in {self.location_hint()} (pass --data-dir or set "
                     f"CODECBENCH_DATA), or in {where}.")
        if self.manual:
            lines.append(self.manual)
        elif self.homepage:
            lines.append(f"Source: {self.homepage}")
        return " ".join(lines)

    def images(self, data_dir: Path | None = None, download: bool = True) -> list[ImageRef]:
        try:
            return self._find_or_fetch(data_dir, download)
        except FileError as exc:  # a folder or file name that would escape the data directory
            raise DatasetError(f"Dataset {self.name!r}: {exc}") from exc

    def _find_or_fetch(self, data_dir: Path | None, fetch: bool) -> list[ImageRef]:
        for folder in self._candidates(data_dir):
            refs = self._complete(folder)
            if refs is not None:
                if self.verify:
                    self._verify(folder)
                return refs
        if not fetch or not self.downloadable():
            raise DatasetError(self._missing_message())
        target = safe_join(cache_dir(), self.folder)
        try:
            self._download(target)
        except FileError as exc:
            raise DatasetError(f"{exc}. {self._missing_message()}") from exc
        refs = self._complete(target)
        if refs is None:
            raise DatasetError(f"Download of {self.name!r} into {target} is incomplete. "
                               + self._missing_message())
        return refs


@dataclass
class FolderDataset(Dataset):
    """Every image file directly in (or below, with ``recursive``) a folder: ``folder:PATH``.

    Files of :data:`IMAGE_SUFFIXES` count; other image files (``.gif``, ...) are left out with a
    warning naming them. Rows are tied to each file's content by its sha256
    (:meth:`ImageRef.sha256`), not to the folder's name, which is the path as typed.
    """

    path: Path
    recursive: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"folder:{self.path}"

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"images in {self.path}"

    def images(self, data_dir: Path | None = None, download: bool = True) -> list[ImageRef]:
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: no such folder (from dataset 'folder:{self.path}')")
        walker = self.path.rglob("*") if self.recursive else self.path.iterdir()
        files = sorted(p for p in walker if p.is_file())
        paths = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped = [p for p in files if p.suffix.lower() in other_image_suffixes()]
        if skipped:
            names = ", ".join(p.relative_to(self.path).as_posix() for p in skipped[:5])
            more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            log.warning("folder:%s: %d image file(s) skipped, not a benchmark format (%s): %s%s; "
                        "convert them to PNG to include them", self.path, len(skipped),
                        ", ".join(IMAGE_SUFFIXES), names, more)
        if not paths:
            raise DatasetError(
                f"{self.path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder"
            )
        return [ImageRef(p.relative_to(self.path).as_posix(), p) for p in paths]


def resolve_dataset(name: str, registered: dict[str, Dataset]) -> Dataset:
    """A registered dataset by name, or a :class:`FolderDataset` for ``folder:PATH``."""
    if name.startswith("folder:"):
        return FolderDataset(Path(name[len("folder:"):]).expanduser())
    if name not in registered:
        raise UnknownNameError("dataset", name, list(registered) + ["folder:PATH"])
    return registered[name]
