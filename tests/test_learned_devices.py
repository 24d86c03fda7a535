"""``run --device``: transforms on a device, entropy coding on the CPU (codecbench.learned.devices)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from codecbench.errors import CodecUnavailableError
from codecbench.learned import devices
from codecbench.testing import synthetic_image

from learned_toy import save_toy_checkpoint, toy_codec

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_wrapped_transforms_decode_a_stream_of_the_plain_model(tmp_path: Path):
    weights = save_toy_checkpoint(tmp_path / "toy.pt")
    image = synthetic_image(64, 80)
    plain, wrapped = toy_codec(weights), toy_codec(weights)
    data = plain.encode(image, 1)
    model = wrapped.model_for_point(1).model
    for name in wrapped.device_modules:  # on the CPU, place_transforms leaves a model alone: wrap by hand
        setattr(model, name, devices.OnDevice(getattr(model, name), torch.device("cpu")))
    assert isinstance(model.g_a, devices.OnDevice) and not isinstance(model.h_s, devices.OnDevice)
    assert wrapped.encode(image, 1) == data
    assert np.array_equal(wrapped.decode(data), plain.decode(data))


def test_devices_by_name(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(devices.ENV, raising=False)
    assert devices.worker_device() == torch.device("cpu")
    monkeypatch.setenv(devices.ENV, "auto")
    assert devices.worker_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CodecUnavailableError, match='Invalid device "tpu"'):
        devices.worker_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(CodecUnavailableError, match="no CUDA device"):
            devices.worker_device("cuda")


def test_each_process_claims_the_lowest_free_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(devices, "_held", [])
    assert devices.device_slot(tmp_path) == 0 == devices.device_slot(tmp_path)  # kept for the process
    other = [sys.executable, "-c", f"from pathlib import Path; from codecbench.learned.devices import "
             f"device_slot; print(device_slot(Path({str(tmp_path)!r})))"]
    assert subprocess.run(other, capture_output=True, text=True, check=True).stdout.strip() == "1"
    devices._held[0][1].release()  # this process's slot freed: the next process gets 0
    assert subprocess.run(other, capture_output=True, text=True, check=True).stdout.strip() == "0"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_run_refuses_cuda_without_a_gpu(image_folder: Path):
    from codecbench.cli import cli

    result = CliRunner().invoke(cli, ["run", "--codec", "jpeg", "--dataset", f"folder:{image_folder}",
                                      "--device", "cuda", "-q"])
    assert result.exit_code == 2 and "torch sees no CUDA device here" in result.output


@needs_cuda
def test_a_stream_coded_on_one_device_decodes_on_the_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    weights = save_toy_checkpoint(tmp_path / "toy.pt")
    image = synthetic_image(96, 128)
    cpu = toy_codec(weights)
    monkeypatch.setenv(devices.ENV, "cuda")
    gpu = toy_codec(weights)
    assert isinstance(gpu.model_for_point(1).model.g_s, devices.OnDevice)
    from_cpu, from_gpu = cpu.encode(image, 1), gpu.encode(image, 1)
    for data in (from_cpu, from_gpu):  # the symbol digest would refuse a desynchronised decode
        on_cpu, on_gpu = cpu.decode(data), gpu.decode(data)
        assert np.abs(on_cpu.astype(int) - on_gpu.astype(int)).max() <= 1
