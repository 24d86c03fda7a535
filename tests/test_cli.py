import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codecbench.cli import cli


def invoke(*args: str) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_on_every_command() -> None:
    for command in ["list", "plugins", "run", "results"]:
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def test_list_shows_codecs_datasets_metrics() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("jpeg", "kodak", "clic2021", "folder:PATH", "psnr", "ms-ssim"):
        assert name in result.output


def test_plugins_lists_builtins_like_any_plugin() -> None:
    info = json.loads(invoke("plugins").output)
    by_name = {p["name"]: p for p in info}
    assert by_name["jpeg"]["distribution"] == "codecbench-classical"
    assert by_name["psnr"]["distribution"] == "codecbench"


def test_run_then_results(image_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    result = invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "10,90",
                    "-m", "psnr", "--db", str(db), "-q")
    assert result.exit_code == 0, result.output
    assert "6 computed" in result.output
    table = invoke("results", "--db", str(db))
    assert "jpeg" in table.output and "psnr" in table.output
    rows = json.loads(invoke("results", "--db", str(db), "--format", "json").output)
    assert [r["point"] for r in rows] == [10.0, 90.0] and all(r["n"] == 3 for r in rows)
    csv = invoke("results", "--db", str(db), "--format", "csv", "--per-image").output
    assert csv.count("\n") == 7


def test_unknown_codec_gets_did_you_mean(image_folder: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-c", "jepg", "-d", f"folder:{image_folder}"])
    assert result.exit_code == 1
    assert "Unknown codec 'jepg'. Did you mean 'jpeg'?" in result.output


def test_bad_point_and_option_are_named(image_folder: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "200"])
    assert result.exit_code == 1 and 'Invalid point "200"' in result.output
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-o", "speed=1"])
    assert result.exit_code == 1 and "accepted options: optimize, subsampling" in result.output


def test_failures_exit_non_zero_with_a_summary(image_folder: Path, tmp_path: Path) -> None:
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "50",
                                      "-m", "psnr", "--db", str(tmp_path / "r.sqlite"), "-q"])
    assert result.exit_code == 1
    assert "3 computed" in result.output and "1 failed" in result.output
    assert "broken.png" in result.output
    failed = invoke("results", "--db", str(tmp_path / "r.sqlite"), "--failed").output
    assert "broken.png" in failed


def test_results_without_database_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["results", "--db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 1 and "run `codecbench run` first" in result.output


@pytest.mark.parametrize("subsampling", ["420", "444"])
def test_jpeg_subsampling_option_is_part_of_the_row_identity(
    subsampling: str, image_folder: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "r.sqlite")
    invoke("run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "50", "-m", "psnr",
           "-o", f"subsampling={subsampling}", "--db", db, "-q")
    rows = json.loads(invoke("results", "--db", db, "--format", "json", "--per-image").output)
    assert {json.loads(r["config"])["subsampling"] for r in rows} == {subsampling}
