"""codecbench.files: checksums, confined paths and verified downloads from a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from codecbench.errors import FileError
from codecbench.files import cached_sha256, download, safe_join, sha256_of

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: more than one read chunk
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "blob.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_sha256_of_reads_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    assert sha256_of(path) == DIGEST


def test_cached_sha256_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    assert cached_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two!")  # another size (and modification time): hashed again
    assert cached_sha256(path) == hashlib.sha256(b"two!").hexdigest()
    with pytest.raises(OSError):
        cached_sha256(tmp_path / "missing.bin")


@pytest.mark.parametrize("relative", ["../x.png", "/etc/passwd", "a/../../x", ""])
def test_safe_join_refuses_escapes(tmp_path: Path, relative: str) -> None:
    with pytest.raises(FileError, match="would escape"):
        safe_join(tmp_path, relative)
    assert safe_join(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"


def test_download_verifies_the_full_digest_or_a_prefix(server: str, tmp_path: Path) -> None:
    full, prefixed = tmp_path / "out" / "full.bin", tmp_path / "out" / "prefix.bin"
    download(f"{server}/blob.bin", full, DIGEST)
    download(f"{server}/blob.bin", prefixed, DIGEST[:8].upper())
    assert full.read_bytes() == prefixed.read_bytes() == PAYLOAD
    assert sorted(p.name for p in full.parent.iterdir()) == ["full.bin", "prefix.bin"]  # no .part-*


def test_a_mismatch_leaves_nothing_behind(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(FileError, match=f"Checksum mismatch for {server}/blob.bin: expected sha256 0+, got {DIGEST}"):
        download(f"{server}/blob.bin", dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_http_errors_name_the_url(server: str, tmp_path: Path) -> None:
    with pytest.raises(FileError, match=f"Cannot download {server}/nope.bin: HTTP Error 404"):
        download(f"{server}/nope.bin", tmp_path / "nope.bin", None)
    assert not (tmp_path / "nope.bin").exists()
