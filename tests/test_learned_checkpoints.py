"""Checkpoint manifests, checksum verification and safe loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from codecbench import CodecError, CodecUnavailableError
from codecbench.files import sha256_of
from codecbench.learned.checkpoints import (
    checkpoint_id,
    export_payload,
    is_exported,
    load_manifest,
    read_checkpoint,
    write_atomic,
)


def write_manifest(folder: Path, sha256: str) -> Path:
    manifest = folder / "toy.toml"
    manifest.write_text(f'''
[[checkpoint]]
name = "toy-q2"
point = 2
file = "b.pt"
sha256 = "{sha256}"
lmbda = 0.01
training_command = "codecbench train toy --lambda 0.01"
budget = "10 steps"
kodak_bpp = 0.3

[[checkpoint]]
name = "toy-q1"
point = 1
file = "a.pt"
sha256 = "{sha256}"
lmbda = 0.001
training_command = "codecbench train toy --lambda 0.001"
budget = "10 steps"
''')
    return manifest


def test_manifest_is_read_and_ordered_by_point(tmp_path):
    specs = load_manifest(write_manifest(tmp_path, "ab" * 32))
    assert [s.name for s in specs] == ["toy-q1", "toy-q2"]
    assert specs[0].file == tmp_path / "a.pt"
    assert specs[1].lmbda == 0.01 and specs[1].extra == {"kodak_bpp": 0.3}


def test_manifest_missing_field_named(tmp_path):
    manifest = tmp_path / "bad.toml"
    manifest.write_text('[[checkpoint]]\nname = "x"\npoint = 1\n')
    with pytest.raises(CodecError, match="'x' lacks"):
        load_manifest(manifest)


def test_write_and_read_verified(tmp_path):
    path = tmp_path / "model.pt"
    write_atomic(export_payload("toy", {"N": 8}, {"w": torch.ones(2)}, step=3), path)
    assert not (tmp_path / "model.pt.tmp").exists()
    payload = read_checkpoint(path, sha256_of(path))
    assert is_exported(payload) and payload["step"] == 3 and payload["model_config"] == {"N": 8}
    assert torch.equal(payload["state_dict"]["w"], torch.ones(2))
    assert checkpoint_id(sha256_of(path)) == sha256_of(path)[:16]


def test_checksum_mismatch_is_an_error(tmp_path):
    path = tmp_path / "model.pt"
    write_atomic({"w": torch.zeros(1)}, path)
    with pytest.raises(CodecError, match="expected 0000"):
        read_checkpoint(path, "0" * 64)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(CodecUnavailableError, match="not found"):
        read_checkpoint(tmp_path / "absent.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CodecError, match="Cannot load checkpoint"):
        read_checkpoint(junk)
    listing = tmp_path / "list.pt"
    torch.save([1, 2], listing)
    with pytest.raises(CodecError, match="holds a list"):
        read_checkpoint(listing)


def test_code_in_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Path("x")}, path)  # an arbitrary class: needs unpickling code
    with pytest.raises(CodecError, match="Cannot load checkpoint"):
        read_checkpoint(path)


def test_a_tensor_declaring_more_than_it_stores_is_refused(tmp_path):
    """A stride-0 view passes ``weights_only`` and declares a billion elements in a tiny file."""
    path = tmp_path / "forged.pt"
    torch.save({"g_a.0.weight": torch.zeros(1).expand(10**9)}, path)
    assert path.stat().st_size < 2000
    with pytest.raises(CodecError, match=r"tensor g_a\.0\.weight declares shape \(1000000000,\) "
                                         r"\(1000000000 elements\) but stores 1"):
        read_checkpoint(path)


def test_model_options_far_beyond_the_codecs_are_refused_before_building(tmp_path):
    """A tiny exported checkpoint asking for a huge model fails before the model is built."""
    learned_toy = pytest.importorskip("learned_toy")
    codec = learned_toy.ToyLearnedCodec()
    state = codec.build_model(**codec.model_config).state_dict()
    path = tmp_path / "huge.pt"
    write_atomic(export_payload(codec.name, {"N": 8, "M": 100_000}, state), path)
    built = []
    codec = learned_toy.toy_codec(path)
    codec.build_model = lambda **config: built.append(config)  # must not be reached
    with pytest.raises(CodecError, match=r"asks for M=100000, more than 4x the largest toy-learned "
                                         r"declares \(8\); refused before building it"):
        codec.load()
    assert not built
