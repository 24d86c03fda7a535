import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codecbench.cli import cli


def invoke(*args: str) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_on_every_command() -> None:
    for command in ["list", "plugins", "run", "results", "train"]:
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


# -- threads (issue 16, section 1) -----------------------------------------------------------------


def stored_streams(db: Path) -> list[bytes]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT stream FROM results WHERE status = 'ok'")]


def test_in_process_units_run_torch_on_one_thread_unless_threads_says_otherwise(
    registered_plugin, image_folder: Path, tmp_path: Path
) -> None:
    import thread_codecs
    import torch

    from codecbench import threads

    registered_plugin(thread_codecs, "thread-counter")
    before = torch.get_num_threads()
    base = ["run", "-c", "thread-counter", "-d", f"folder:{image_folder}", "-m", "psnr", "-j", "1", "-q"]
    for option, expected in [([], 1), (["--threads", "3"], 3), (["--threads", "auto"], None)]:
        db = tmp_path / f"r{len(option)}{option[-1:]}.sqlite"
        result = CliRunner().invoke(cli, [*base, *option, "--db", str(db)])
        assert result.exit_code == 0, result.output
        counts = {stream[0] for stream in stored_streams(db)}
        assert counts == {expected or threads._torch_default}, option
        assert torch.get_num_threads() == before  # the command's setting ends with it


def test_threads_option_refuses_what_is_not_a_count(image_folder: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}",
                                      "--threads", "many"])
    assert result.exit_code == 2 and "'many' is not a number of threads" in result.output


def test_requesting_threads_never_imports_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from codecbench import threads; from codecbench.runner import Runner; "
            "threads.request(1); threads.apply(); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- refusals up front (issue 13's smaller list, issue 16 section 4) -------------------------------


@pytest.mark.parametrize("args, message", [
    (["-p", "50", "--timeout", "nan"], "nan is not a finite number"),
    (["-p", "50", "-m", ""], "no metric named"),
    (["-p", "50,50"], "point 50 is given more than once"),
    (["-c", "", "-p", "50"], "no codec named"),
])
def test_meaningless_arguments_are_refused_in_one_line(
    args: list[str], message: str, image_folder: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", *args,
                                      "--db", str(db)])
    assert result.exit_code == 2 and message in result.output
    assert not db.exists()


def test_an_invalid_option_value_is_one_error_not_failed_rows(image_folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "jpeg", "-d", f"folder:{image_folder}", "-p", "50",
                                      "-o", "subsampling=999", "--db", str(db)])
    assert result.exit_code == 1 and not db.exists()
    assert result.output.strip() == ('Error: -o subsampling=999 rejected by jpeg: Invalid subsampling '
                                     '"999" for jpeg; expected 420, 422 or 444')


def test_a_missing_weights_file_is_refused_before_the_run(
    registered_plugin, image_folder: Path, tmp_path: Path
) -> None:
    import codecbench
    from toy_codecs import Quantizer

    class Weighted(Quantizer):
        name = "weighted"
        options = {"weights": ""}

    class Plugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(Weighted())

    registered_plugin(Plugin(), "weighted")
    db = tmp_path / "r.sqlite"
    missing = tmp_path / "nowhere" / "model.pt"
    result = CliRunner().invoke(cli, ["run", "-c", "weighted", "-d", f"folder:{image_folder}",
                                      "--weights", str(missing), "--db", str(db)])
    assert result.exit_code == 1 and not db.exists()
    assert result.output.strip() == f"Error: Weights file not found: {missing}"


def test_option_values_are_checked_before_any_work(registered_plugin, image_folder: Path, tmp_path: Path) -> None:
    """A boolean that is not one, an option that makes the codec unavailable, and a weights file
    that is not a checkpoint of the learned codec: each one line, before a row is stored."""
    import codecbench
    from learned_toy import ToyLearnedCodec
    from toy_codecs import Quantizer

    class Tool(Quantizer):
        name = "tool"
        options = {"binary": ""}

        def unavailable_reason(self):
            binary = self.config["binary"]
            return f"{binary!r} is not an executable" if binary and not Path(binary).is_file() else None

    class Plugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(Tool())
            register(ToyLearnedCodec())

    registered_plugin(Plugin(), "option-checks")
    db = tmp_path / "r.sqlite"
    not_a_checkpoint = tmp_path / "model.pt"
    not_a_checkpoint.write_bytes(b"not a torch file")
    expected = {
        ("jpeg", "optimize=maybe"): 'Error: -o optimize=maybe rejected by jpeg: Invalid optimize "maybe" '
                                    "for jpeg; expected true or false",
        ("tool", "binary=/nowhere"): "Error: -o binary=/nowhere: tool is unavailable so configured: "
                                     "'/nowhere' is not an executable",
        ("toy-learned", f"weights={not_a_checkpoint}"): f"Error: -o weights={not_a_checkpoint} rejected "
                                                        f"by toy-learned: Cannot load checkpoint",
    }
    for (codec, option), message in expected.items():
        result = CliRunner().invoke(cli, ["run", "-c", codec, "-d", f"folder:{image_folder}", "-o", option,
                                          "--db", str(db), "-q"])
        assert result.exit_code == 1 and not db.exists(), result.output
        assert result.output.strip().startswith(message), result.output


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_during_run_says_what_was_saved_and_how_to_resume(
    registered_plugin, image_folder: Path, tmp_path: Path
) -> None:
    import codecbench
    from toy_codecs import Quantizer

    class Interrupted(Quantizer):
        name = "interrupted"

        def encode(self, image, point):
            if image.shape[0] == 48:  # the second image: Ctrl-C
                raise KeyboardInterrupt
            return super().encode(image, point)

    class Plugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(Interrupted())

    registered_plugin(Plugin(), "interrupted")
    db = tmp_path / "r.sqlite"
    result = CliRunner().invoke(cli, ["run", "-c", "interrupted", "-d", f"folder:{image_folder}",
                                      "-p", "8", "-m", "psnr", "-j", "1", "-q", "--db", str(db)])
    assert result.exit_code == 130
    assert "Aborted!" not in result.output
    assert "Interrupted: 1 row(s) saved by this run (0 were already stored)" in result.stderr
    assert "Rerun the same command to resume" in result.stderr
    assert len(stored_streams(db)) == 1


# -- list ------------------------------------------------------------------------------------------


def test_list_json_covers_codecs_datasets_and_metrics(tmp_path: Path) -> None:
    from codecbench import plugins

    data = tmp_path / "data"
    kodak = plugins.datasets().get("kodak")
    (data / kodak.folder).mkdir(parents=True)
    for f in kodak.files:  # a complete copy, as far as listing can tell without hashing
        (data / kodak.folder / f.name).write_bytes(b"")
    listing = json.loads(invoke("list", "--format", "json", "--data-dir", str(data)).output)
    assert set(listing) == {"codecs", "datasets", "metrics"}
    codecs = {c["name"]: c for c in listing["codecs"]}
    assert codecs["jpeg"]["family"] == "traditional" and codecs["jpeg"]["available"] is True
    assert "subsampling" in codecs["jpeg"]["options"]
    datasets = {d["name"]: d for d in listing["datasets"]}
    assert datasets["kodak"]["status"] == "present" and datasets["kodak"]["path"] == str(data / "kodak")
    assert datasets["clic2021"]["status"] == "downloadable"
    assert datasets["raise1k"]["status"] == "missing" and "raise1k" in datasets["raise1k"]["where"]
    assert {"psnr", "ms-ssim"} <= {m["name"] for m in listing["metrics"]}
    only = json.loads(invoke("list", "metrics", "--format", "json").output)
    assert set(only) == {"metrics"}


def test_list_datasets_shows_availability_without_downloading(tmp_path: Path) -> None:
    result = invoke("list", "datasets", "--data-dir", str(tmp_path))
    assert result.exit_code == 0
    kodak = next(line for line in result.output.splitlines() if line.strip().startswith("kodak "))
    assert "downloadable" in kodak
    raise1k = next(line for line in result.output.splitlines() if line.strip().startswith("raise1k "))
    assert "missing" in raise1k


# -- train -----------------------------------------------------------------------------------------


@pytest.fixture
def toy_trainable(registered_plugin) -> str:
    """The toolkit's toy learned codec, registered as a plugin; its name."""
    import codecbench
    from learned_toy import ToyLearnedCodec

    class Plugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(ToyLearnedCodec())

    registered_plugin(Plugin(), "toy-learned")
    return ToyLearnedCodec.name


def test_train_help_lists_the_trainable_codecs(toy_trainable: str) -> None:
    result = invoke("train", "--help")
    assert "Trainable codecs" in result.output and toy_trainable in result.output
    assert "jpeg" not in result.output.split("Trainable codecs", 1)[1]


def test_train_says_what_it_loads_and_names_valid_model_options(
    toy_trainable: str, image_folder: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["train", toy_trainable, "--data", str(image_folder), "--out",
                                      str(tmp_path / "out"), "--val-count", "1", "-m", "foo=1"])
    assert result.exit_code == 1
    assert "reading 2 training images" in result.stderr and "and 1 held out" in result.stderr
    assert "importing the model code" in result.stderr
    assert "building the toy-learned model (N=8, M=8, foo=1)" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Codec 'toy-learned' has no model option 'foo' (-m); its model options: N=8, M=8")


def test_train_of_a_codec_that_is_not_trainable_lists_those_that_are(
    registered_plugin, toy_trainable: str, image_folder: Path
) -> None:
    import codecbench
    from toy_codecs import Quantizer

    class Plugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(Quantizer())

    registered_plugin(Plugin(), "quantizer")
    result = CliRunner().invoke(cli, ["train", "quantizer", "--data", str(image_folder), "--out", "x"])
    assert result.exit_code == 1 and "Codec 'quantizer' is not trainable" in result.output
    assert "trainable codecs: " in result.output and toy_trainable in result.output


@pytest.mark.parametrize("saved", [True, False])
def test_ctrl_c_during_train_names_the_checkpoint_and_the_command_that_resumes(
    saved: bool, toy_trainable: str, image_folder: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import codecbench.learned

    out = tmp_path / "out"
    out.mkdir()
    if not saved:  # a state from an earlier session, then Ctrl-C before the first step
        (out / "last.pt").write_bytes(b"")
        os.utime(out / "last.pt", (1e9, 1e9))

    def interrupted_train(build_task, config, **kwargs):
        if saved:
            (out / "last.pt").write_bytes(b"")  # what train() does on Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(codecbench.learned, "train", interrupted_train)
    result = CliRunner().invoke(cli, ["train", toy_trainable, "--data", str(image_folder), "--out",
                                      str(out), "--val-count", "1", "-q"])
    assert result.exit_code == 130 and "Aborted!" not in result.output
    if saved:
        assert f"saved the resumable state {out / 'last.pt'} and the checkpoint {out / 'model.pt'}" \
            in result.stderr
    else:
        assert f"Interrupted before a step was saved; the last saved state is {out / 'last.pt'}" \
            in result.stderr
    assert "Rerun the same command to resume:\n  codecbench " in result.stderr


def test_sigterm_during_train_saves_like_ctrl_c(
    toy_trainable: str, image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import time

    import codecbench.learned

    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGTERM)

    def terminated_train(build_task, config, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # `kill PID` of a background run
            time.sleep(5)
        except KeyboardInterrupt:
            out.mkdir()
            (out / "last.pt").write_bytes(b"")  # what train() saves on an interrupt
            raise
        raise AssertionError("SIGTERM did not interrupt the training loop")

    monkeypatch.setattr(codecbench.learned, "train", terminated_train)
    result = CliRunner().invoke(cli, ["train", toy_trainable, "--data", str(image_folder), "--out",
                                      str(out), "--val-count", "1", "-q"])
    assert result.exit_code == 130, result.output
    assert f"saved the resumable state {out / 'last.pt'}" in result.stderr
    assert signal.getsignal(signal.SIGTERM) is before  # the command's handler is not left behind


@pytest.mark.parametrize("command", ["run", "compare", "report"])
def test_threads_option_on_every_command_that_codes(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "--threads N|auto" in result.output


def test_report_has_no_short_o_so_that_o_always_means_a_codec_option(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["report", "-o", str(tmp_path / "out"), "--db", str(tmp_path / "x.sqlite")])
    assert result.exit_code == 2 and "No such option '-o'" in result.output
