"""``--weights compressai:cheng2020-anchor-1``: a published file fetched by name and benchmarked.

CompressAI's URL table is pointed at a server on 127.0.0.1 that serves a tiny single-Gaussian
model saved the way CompressAI publishes its files (a bare state dict named with its sha256 prefix).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from codecbench.testing import synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor

from cheng2020_tiny import SINGLE, tiny_model


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A tiny official-style file served on 127.0.0.1 as cheng2020-anchor quality 1; yields the
    path it must land at in torch hub's cache (``TORCH_HOME`` in ``tmp_path``)."""
    buffer = io.BytesIO()
    torch.save(tiny_model(Cheng2020Anchor(), config=SINGLE).state_dict(), buffer)
    name = f"cheng2020-anchor-1-{hashlib.sha256(buffer.getvalue()).hexdigest()[:8]}.pth.tar"
    www = tmp_path / "www"
    www.mkdir()
    (www / name).write_bytes(buffer.getvalue())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    monkeypatch.setattr("compressai.zoo.image.model_urls", {"cheng2020-anchor": {"mse": {1: url}},
                                                            "cheng2020-attn": {"mse": {1: url}}})
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    try:
        yield tmp_path / "torch" / "hub" / "checkpoints" / name
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_run_fetches_published_weights_by_name(published: Path, tmp_path: Path):
    from codecbench.cli import cli

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(synthetic_image(64, 64)).save(images / "a.png")
    args = ["run", "--codec", "cheng2020-anchor", "--dataset", f"folder:{images}", "--jobs", "1",
            "-m", "psnr", "-q", "--db", str(tmp_path / "r.sqlite")]
    result = CliRunner().invoke(cli, [*args, "--weights", "compressai:cheng2020-anchor-1"])
    assert result.exit_code == 0, result.output
    assert "1 computed" in result.output and published.is_file()
    wrong = CliRunner().invoke(cli, [*args, "--weights", "compressai:cheng2020-attn-1"])
    assert wrong.exit_code == 1
    assert 'Invalid published weights "compressai:cheng2020-attn-1"; expected one of ' \
           "compressai:cheng2020-anchor-QUALITY" in wrong.output
