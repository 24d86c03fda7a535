"""Published CompressAI weights by name (codecbench.learned.zoo), fetched from a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codecbench.errors import CodecError, CodecUnavailableError
from codecbench.learned import zoo

pytest.importorskip("compressai")

PAYLOAD = bytes(range(256)) * 2048  # 512 KiB
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]


class Server(http.server.ThreadingHTTPServer):
    """Serves PAYLOAD at every path; the first ``truncate`` requests get half of it, then the
    connection closes (an interrupted download)."""

    truncate = 0
    requests = 0


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.server.truncate:
            self.server.truncate -= 1
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.close_connection = True
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server on 127.0.0.1, CompressAI's URL table pointing at it (a good file for quality 1,
    a file whose name carries a wrong hash for quality 2) and torch hub's cache in ``tmp_path``."""
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    table = {"cheng2020-anchor": {"mse": {1: f"{base}/cheng2020-anchor-1-{PREFIX}.pth.tar",
                                          2: f"{base}/cheng2020-anchor-2-0badf00d.pth.tar"}}}
    monkeypatch.setattr("compressai.zoo.image.model_urls", table)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def cache(tmp_path: Path) -> Path:
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_names_come_from_compressais_url_table():
    [anchor] = zoo.zoo_weights("compressai:cheng2020-anchor-3")
    assert anchor.url.endswith("/cheng2020-anchor-3-e49be189.pth.tar") and anchor.sha256_prefix == "e49be189"
    assert [w.quality for w in zoo.zoo_weights("compressai:cheng2020-attn")] == [1, 2, 3, 4, 5, 6]
    [ssim] = zoo.zoo_weights("compressai:cheng2020-attn-ms-ssim-6", ("cheng2020-attn",))
    assert ssim.metric == "ms-ssim" and ssim.name == "compressai:cheng2020-attn-ms-ssim-6"
    assert zoo.zoo_weights("compressai:mbt2018-mean-8")[0].architecture == "mbt2018-mean"
    with pytest.raises(CodecError, match='Invalid quality "7" in "compressai:cheng2020-anchor-7"; '
                                         "expected one of 1, 2, 3, 4, 5, 6"):
        zoo.zoo_weights("compressai:cheng2020-anchor-7")
    with pytest.raises(CodecError, match="expected one of compressai:cheng2020-anchor-QUALITY"):
        zoo.zoo_weights("compressai:mbt2018-3", ("cheng2020-anchor",))


def test_a_matching_download_lands_in_the_hub_cache_once(server: Server, tmp_path: Path):
    [weights] = zoo.zoo_weights("compressai:cheng2020-anchor-1")
    path = zoo.fetch(weights)
    assert path == cache(tmp_path) / f"cheng2020-anchor-1-{PREFIX}.pth.tar"
    assert path.read_bytes() == PAYLOAD
    assert zoo.fetch(weights) == path and server.requests == 1  # cached: not fetched again
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no .part-* file


def test_a_hash_mismatch_keeps_nothing(server: Server, tmp_path: Path):
    [weights] = zoo.zoo_weights("compressai:cheng2020-anchor-2")
    with pytest.raises(CodecUnavailableError, match="Checksum mismatch .* expected sha256 0badf00d"):
        zoo.fetch(weights)
    assert list(cache(tmp_path).iterdir()) == []


def test_an_interrupted_download_keeps_nothing_and_the_next_attempt_starts_again(server: Server, tmp_path: Path):
    server.truncate = 1
    [weights] = zoo.zoo_weights("compressai:cheng2020-anchor-1")
    with pytest.raises(CodecUnavailableError, match=f"closed after {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes"):
        zoo.fetch(weights)
    assert list(cache(tmp_path).iterdir()) == []
    assert zoo.fetch(weights).read_bytes() == PAYLOAD and server.requests == 2


def test_a_damaged_cached_file_is_named(server: Server, tmp_path: Path):
    [weights] = zoo.zoo_weights("compressai:cheng2020-anchor-1")
    zoo.fetch(weights).write_bytes(b"damaged")
    with pytest.raises(CodecError, match="does not match the sha256 prefix .* delete it"):
        zoo.fetch(weights)


def test_offline_the_error_names_the_url_and_the_file_to_place(server: Server, tmp_path: Path, monkeypatch):
    closed = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{closed.server_address[1]}/cheng2020-anchor-1-{PREFIX}.pth.tar"
    closed.server_close()  # nothing listens there any more
    monkeypatch.setattr("compressai.zoo.image.model_urls", {"cheng2020-anchor": {"mse": {1: url}}})
    [weights] = zoo.zoo_weights("compressai:cheng2020-anchor-1")
    dest = cache(tmp_path) / f"cheng2020-anchor-1-{PREFIX}.pth.tar"
    with pytest.raises(CodecUnavailableError) as error:
        zoo.fetch(weights)
    assert f"download {url} on another machine and place it at {dest}" in str(error.value)
