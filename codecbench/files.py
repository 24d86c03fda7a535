"""Files the harness fetches or trusts: sha256 checksums, confined paths and verified downloads.

Datasets (:mod:`codecbench.dataset`), learned checkpoints (:mod:`codecbench.learned.checkpoints`)
and metric weights (:mod:`codecbench.metrics.weights`) all go through these functions:

* :func:`sha256_of` hashes a file; :func:`cached_sha256` remembers the digest while the file's
  size, modification time and inode stay the same;
* :func:`safe_join` resolves a path from a manifest (or an archive member) inside its root folder;
* :func:`download` fetches a URL atomically (a temporary file renamed into place) with a progress
  bar on stderr, and verifies its sha256 before the file appears.

Errors are :class:`~codecbench.errors.FileError`; callers add what the file was for.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

from codecbench.errors import FileError

__all__ = ["cached_sha256", "download", "safe_join", "sha256_of"]

_CHUNK = 1 << 20
_DIGESTS: dict[str, tuple[tuple[int, int, int], str]] = {}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """:func:`sha256_of` ``path``, computed again only when its size, modification time or inode
    changed since the last call (``OSError`` when it cannot be read)."""
    stat = Path(path).stat()
    signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    key = str(Path(path).resolve())
    cached = _DIGESTS.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    digest = sha256_of(path)
    _DIGESTS[key] = (signature, digest)
    return digest


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that would escape ``root``."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise FileError(f"Refusing path {relative!r}: it would escape the data directory {root}")
    return root.joinpath(*rel.parts)


def download(url: str, dest: Path, sha256: str | None) -> None:
    """Download ``url`` to ``dest`` atomically, with a progress bar on stderr.

    ``sha256`` is the expected hex digest, or a prefix of it (torch hub file names carry 8 hex
    digits); ``None`` skips the check. Nothing is left at ``dest`` when the download fails or the
    digest differs (:class:`~codecbench.errors.FileError` naming the URL either way).
    """
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            if total is not None and out.tell() != total:  # the connection closed early
                raise FileError(f"Cannot download {url}: the connection closed after {out.tell()} "
                                f"of {total} bytes; nothing was kept, try again")
        if sha256:
            actual = sha256_of(tmp)
            if not actual.startswith(sha256.lower()):
                raise FileError(f"Checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
        tmp.replace(dest)
    except OSError as exc:  # URLError and HTTPError are OSErrors too
        raise FileError(f"Cannot download {url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
