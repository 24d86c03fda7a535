"""Shrink a ``codecbench train`` checkpoint for shipping: floating-point tensors stored as float16.

``python -m codecbench_hific.export OUT/model.pt checkpoints/hific-lo.pt`` writes the same
payload (codec, model config, training record) with a half-precision state dict, half the size;
``load_state_dict`` casts the tensors back to float32 when the codec loads it. The codec encodes
and decodes with the loaded weights, so the bitstreams stay consistent.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codecbench.errors import CodecError
from codecbench.learned.checkpoints import is_exported, read_checkpoint, write_atomic


def export_half(source: Path, destination: Path) -> None:
    payload = read_checkpoint(source)
    if not is_exported(payload):
        raise CodecError(f"{source} is not a checkpoint written by codecbench train")
    state = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    write_atomic({**payload, "state_dict": state, "stored_as": "float16"}, destination)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m codecbench_hific.export SOURCE.pt DESTINATION.pt")
    export_half(Path(sys.argv[1]), Path(sys.argv[2]))
