"""BPG through bpgenc/bpgdec: command construction and output parsing against a stand-in
executable written by the test, and the unavailable path when the binaries are missing.

The real libbpg binaries are in no registry reachable from CI, so these tests run the codec
against ``fake-bpgenc``/``fake-bpgdec``: small Python scripts, written below, that record their
command line and wrap the input PNG after the BPG magic number. They are stand-ins for testing
the harness side only; they do not compress anything.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench import BitstreamError, CodecError, CodecUnavailableError
from codecbench.cli import cli
from codecbench.testing import synthetic_image
from codecbench_classical import bpg
from codecbench_classical.bpg import BPG, BPG_MAGIC, qp_of

# A stand-in for bpgenc (NOT libbpg): logs argv, answers -h like bpgenc 0.9.8, and writes
# BPG_MAGIC + the input PNG to the -o file. FAKE_BPG_FAIL=1 makes it fail like a real error.
FAKE_BPGENC = """#!{python}
# fake-bpgenc: a test stand-in for libbpg's bpgenc; it does not compress.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_BPG_LOG"], "a") as log:
    log.write(json.dumps(["bpgenc"] + args) + "\\n")
if args == ["-h"]:
    print("BPG Image Encoder version 0.9.8\\nusage: bpgenc [options] infile.[jpg|png]\\n"
          "-e encoder           select the HEVC encoder (" + os.environ.get("FAKE_BPG_ENCODERS", "x265 jctvc")
          + ", default = x265)")
    sys.exit(1)
if os.environ.get("FAKE_BPG_FAIL"):
    sys.stderr.write("stand-in failure: could not encode\\n")
    sys.exit(1)
with open(args[-1], "rb") as source, open(args[args.index("-o") + 1], "wb") as target:
    target.write(b"BPG\\xfb" + source.read())
"""

# A stand-in for bpgdec (NOT libbpg): logs argv and writes back the PNG after the magic number.
FAKE_BPGDEC = """#!{python}
# fake-bpgdec: a test stand-in for libbpg's bpgdec.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_BPG_LOG"], "a") as log:
    log.write(json.dumps(["bpgdec"] + args) + "\\n")
data = open(args[-1], "rb").read()
if not data[4:].startswith(b"\\x89PNG"):
    sys.stderr.write("stand-in bpgdec: could not decode\\n")
    sys.exit(1)
with open(args[args.index("-o") + 1], "wb") as target:
    target.write(data[4:])
"""


def write_script(path: Path, text: str) -> Path:
    path.write_text(text.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """``fake-bpgenc`` and ``fake-bpgdec`` in a folder, their argv log, and no real BPG on PATH."""
    folder = tmp_path / "stand-in"
    folder.mkdir()
    log = tmp_path / "bpg-calls.jsonl"
    monkeypatch.setenv("FAKE_BPG_LOG", str(log))
    monkeypatch.setenv("PATH", str(folder) + os.pathsep + os.defpath)
    monkeypatch.setattr(bpg, "installed_dir", lambda: folder)  # hide binaries built into the venv
    for var in bpg.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    return {
        "bpgenc": write_script(folder / "fake-bpgenc", FAKE_BPGENC),
        "bpgdec": write_script(folder / "fake-bpgdec", FAKE_BPGDEC),
        "log": log,
    }


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def stand_in_codec(stand_in: dict[str, Path], **options: str) -> BPG:
    return BPG().with_options(bpgenc=str(stand_in["bpgenc"]), bpgdec=str(stand_in["bpgdec"]), **options)


def test_points_map_to_qp_ordered_by_rate() -> None:
    assert [qp_of(p) for p in BPG.points] == sorted((qp_of(p) for p in BPG.points), reverse=True)
    assert qp_of(0) == 51 and qp_of(51) == 0


@pytest.mark.parametrize(("chroma", "encoder"), [("444", "x265"), ("420", "jctvc"), ("4:2:0", "x265")])
def test_encode_command_is_compressai_bench_style(stand_in: dict[str, Path], chroma: str, encoder: str) -> None:
    codec = stand_in_codec(stand_in, chroma=chroma, encoder=encoder)
    data = codec.encode(synthetic_image(), 25)
    assert data.startswith(BPG_MAGIC)
    (command,) = calls(stand_in["log"])
    output, source = command[2], command[-1]
    assert command == ["bpgenc", "-o", output, "-q", "26", "-f", chroma.replace(":", ""), "-e", encoder,
                       "-c", "ycbcr", "-b", "8", source]
    assert output.endswith(".bpg") and source.endswith(".png")


def test_decode_parses_the_png_that_bpgdec_writes(stand_in: dict[str, Path]) -> None:
    image = synthetic_image(33, 57, seed=3)
    codec = stand_in_codec(stand_in)
    decoded = codec.decode(codec.encode(image, 40))
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, image)
    command = calls(stand_in["log"])[-1]
    assert command[:2] == ["bpgdec", "-o"] and command[2].endswith(".png") and command[3].endswith(".bpg")


def test_decode_converts_grey_or_alpha_output_to_rgb(stand_in: dict[str, Path], tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("LA", (8, 6), (90, 255)).save(grey)
    decoded = stand_in_codec(stand_in).decode(BPG_MAGIC + grey.read_bytes())
    assert decoded.shape == (6, 8, 3) and (decoded == 90).all()


def test_version_is_parsed_from_bpgenc_help(stand_in: dict[str, Path]) -> None:
    assert stand_in_codec(stand_in).version() == "libbpg-0.9.8"


def test_binaries_are_found_through_environment_then_path(
    stand_in: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODECBENCH_BPGENC", str(stand_in["bpgenc"]))
    monkeypatch.setenv("CODECBENCH_BPGDEC", str(stand_in["bpgdec"]))
    assert BPG().unavailable_reason() is None
    assert BPG().binary("bpgenc") == str(stand_in["bpgenc"])
    monkeypatch.delenv("CODECBENCH_BPGENC")
    monkeypatch.delenv("CODECBENCH_BPGDEC")
    stand_in["bpgenc"].rename(stand_in["bpgenc"].with_name("bpgenc"))
    stand_in["bpgdec"].rename(stand_in["bpgdec"].with_name("bpgdec"))
    assert BPG().unavailable_reason() is None
    assert BPG().binary("bpgdec") == str(stand_in["bpgdec"].with_name("bpgdec"))


def test_encoder_failure_is_a_codec_error_with_its_message(
    stand_in: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BPG_FAIL", "1")
    with pytest.raises(CodecError, match="bpgenc failed \\(exit 1\\): stand-in failure: could not encode"):
        stand_in_codec(stand_in).encode(synthetic_image(), 25)


def test_bad_streams_raise_bitstream_error(stand_in: dict[str, Path]) -> None:
    codec = stand_in_codec(stand_in)
    with pytest.raises(BitstreamError, match="BPG magic number"):
        codec.decode(b"\x89PNG not bpg")
    with pytest.raises(BitstreamError, match="bpgdec could not decode .*stand-in bpgdec: could not decode"):
        codec.decode(BPG_MAGIC + b"garbage")


def test_invalid_options_and_points_name_the_problem(stand_in: dict[str, Path]) -> None:
    with pytest.raises(CodecError, match='Invalid chroma "422"'):
        stand_in_codec(stand_in, chroma="422").encode(synthetic_image(), 25)
    with pytest.raises(CodecError, match='Invalid encoder "hm"'):
        stand_in_codec(stand_in, encoder="hm").encode(synthetic_image(), 25)
    with pytest.raises(CodecError, match='Invalid point "52"'):
        stand_in_codec(stand_in).encode(synthetic_image(), 52)


def test_missing_binaries_make_bpg_unavailable_with_install_instructions(stand_in: dict[str, Path]) -> None:
    for script in ("bpgenc", "bpgdec"):
        stand_in[script].unlink()
    reason = BPG().unavailable_reason()
    assert reason is not None
    assert "bpgenc not found in " in reason and "bpgdec not found in " in reason and "or on PATH" in reason
    assert "scripts/build_bpg.sh" in reason and "https://bellard.org/bpg/" in reason
    assert "CODECBENCH_BPGENC" in reason and "\n" not in reason
    assert BPG().version() == "unavailable"
    with pytest.raises(CodecUnavailableError, match="Codec 'bpg' is unavailable"):
        BPG().encode(synthetic_image(), 25)
    given = BPG().with_options(bpgenc="/no/such/bpgenc").unavailable_reason()
    assert "bpgenc '/no/such/bpgenc' (from option bpgenc) is not an executable" in given


def test_unavailable_bpg_breaks_nothing_else(stand_in: dict[str, Path], tmp_path: Path) -> None:
    for script in ("bpgenc", "bpgdec"):
        stand_in[script].unlink()
    listing = CliRunner().invoke(cli, ["list", "codecs"])
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert any(line.split()[:3] == ["bpg", "traditional", "unavailable:"] for line in lines)
    assert any(line.split()[:3] == ["jpeg", "traditional", "available"] for line in lines)

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(synthetic_image()).save(images / "a.png")
    db = tmp_path / "r.sqlite"
    run = CliRunner().invoke(cli, ["run", "-c", "bpg,jpeg", "-d", f"folder:{images}", "-p", "25",
                                   "-m", "psnr", "--db", str(db), "-j", "1", "-q"])
    assert run.exit_code == 1, run.output
    assert "1 computed" in run.output and "1 failed" in run.output and "codec unavailable" in run.output
    rows = json.loads(CliRunner().invoke(cli, ["results", "--db", str(db), "--per-image", "--format", "json"]).output)
    by_codec = {r["codec"]: r for r in rows}
    assert by_codec["jpeg"]["status"] == "ok" and by_codec["jpeg"]["psnr"] > 20
    assert by_codec["bpg"]["status"] == "failed" and "https://bellard.org/bpg/" in by_codec["bpg"]["error"]


def test_runs_end_to_end_through_the_cli_with_the_stand_in(stand_in: dict[str, Path], tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(synthetic_image()).save(images / "a.png")
    db = tmp_path / "r.sqlite"
    run = CliRunner().invoke(cli, [
        "run", "-c", "bpg", "-d", f"folder:{images}", "-p", "10,31", "-m", "psnr", "--db", str(db),
        "-o", f"bpgenc={stand_in['bpgenc']}", "-o", f"bpgdec={stand_in['bpgdec']}", "-o", "chroma=420",
        "-j", "1", "-q",
    ])
    assert run.exit_code == 0, run.output
    # QP 51 first: `run` checks the given -o options up front by encoding a small image at the
    # codec's first point; then the two requested points.
    assert [c[4] for c in calls(stand_in["log"]) if c[0] == "bpgenc" and c[1:] != ["-h"]] == ["51", "41", "20"]
    rows = json.loads(CliRunner().invoke(cli, ["results", "--db", str(db), "--per-image", "--format", "json"]).output)
    assert [(r["point"], r["status"], r["codec_version"]) for r in rows] == [
        (10.0, "ok", "libbpg-0.9.8"), (31.0, "ok", "libbpg-0.9.8")]
    assert all(r["bpp"] == 8 * r["nbytes"] / (64 * 96) for r in rows)


def test_binaries_in_the_running_pythons_folder_come_before_path(
    stand_in: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_bin = tmp_path / "venv-bin"
    venv_bin.mkdir()
    for tool in ("bpgenc", "bpgdec"):
        stand_in[tool].rename(stand_in[tool].with_name(tool))  # also on PATH
        write_script(venv_bin / tool, FAKE_BPGENC if tool == "bpgenc" else FAKE_BPGDEC)
    monkeypatch.setattr(bpg, "installed_dir", lambda: venv_bin)
    assert BPG().binary("bpgenc") == str(venv_bin / "bpgenc")
    assert BPG().unavailable_reason() is None


@pytest.mark.parametrize(("offered", "encoder", "available"), [
    ("jctvc", "x265", False), ("jctvc", "jctvc", True), ("x265", "jctvc", False), ("x265 jctvc", "jctvc", True)])
def test_a_bpgenc_without_the_configured_encoder_is_unavailable(
    stand_in: dict[str, Path], monkeypatch: pytest.MonkeyPatch, offered: str, encoder: str, available: bool
) -> None:
    monkeypatch.setenv("FAKE_BPG_ENCODERS", offered)
    bpg.bpgenc_help.cache_clear()
    try:
        reason = stand_in_codec(stand_in, encoder=encoder).unavailable_reason()
    finally:
        bpg.bpgenc_help.cache_clear()
    if available:
        assert reason is None
    else:
        assert reason is not None and f"built without the {encoder} encoder" in reason
        assert f"it offers {offered}" in reason and "scripts/build_bpg.sh" in reason


def test_list_calls_a_jctvc_only_build_unavailable_for_the_default_encoder(
    stand_in: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BPG_ENCODERS", "jctvc")
    monkeypatch.setenv("CODECBENCH_BPGENC", str(stand_in["bpgenc"]))
    monkeypatch.setenv("CODECBENCH_BPGDEC", str(stand_in["bpgdec"]))
    bpg.bpgenc_help.cache_clear()
    try:
        listing = CliRunner().invoke(cli, ["list", "codecs"])
    finally:
        bpg.bpgenc_help.cache_clear()
    assert listing.exit_code == 0, listing.output
    (line,) = [line for line in listing.output.splitlines() if line.split()[:1] == ["bpg"]]
    assert "unavailable:" in line and "built without the x265 encoder" in line
