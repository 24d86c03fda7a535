"""The checkpoints the plugin ships: declared, small, verified by sha256, and coding real bytes."""

from __future__ import annotations

import pytest

from codecbench.learned.checkpoints import file_sha256
from codecbench.testing import check_codec, synthetic_image
from codecbench_cheng2020 import Cheng2020Anchor, Cheng2020Attention


@pytest.mark.parametrize("codec_class", [Cheng2020Anchor, Cheng2020Attention])
def test_shipped_checkpoints(codec_class):
    codec = codec_class()
    specs = codec.shipped_checkpoints()
    assert len(specs) >= 3 and codec.points == tuple(range(1, len(specs) + 1))
    assert [s.lmbda for s in specs] == sorted(s.lmbda for s in specs)  # points ordered by rate
    for spec in specs:
        assert spec.file.stat().st_size < 25 * 2**20
        assert file_sha256(spec.file) == spec.sha256
        assert spec.training_command.startswith(f"codecbench train {codec.name} ")
        assert "--data /work/shared/datasets/train-photos" in spec.training_command  # never Kodak
    assert codec.unavailable_reason() is None
    check_codec(codec, synthetic_image(64, 96))
