"""The plugin system: registration rules, and a third-party plugin written from the README alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import codecbench
from codecbench import plugins
from codecbench.errors import DuplicateNameError, UnknownNameError
from codecbench.testing import check_codec
from toy_codecs import Quantizer

ROOT = Path(__file__).resolve().parents[1]


class QuantizerPlugin:
    @codecbench.hookimpl
    def register_codecs(self, register):
        register(Quantizer())


def test_hook_register_codecs(registered_plugin) -> None:
    registered_plugin(QuantizerPlugin(), "quantizer-plugin")
    registry = plugins.codecs()
    assert isinstance(registry.get("quantizer"), Quantizer)
    assert registry.providers["quantizer"] == "quantizer-plugin"


def test_registration_ends_with_the_fixture() -> None:
    assert "quantizer" not in plugins.codecs().names()


def test_duplicate_names_are_an_error_naming_both_plugins(registered_plugin) -> None:
    registered_plugin(QuantizerPlugin(), "first")
    registered_plugin(QuantizerPlugin(), "second")
    with pytest.raises(DuplicateNameError, match="'first' and 'second'|'second' and 'first'"):
        plugins.codecs()


def test_invalid_names_are_refused(registered_plugin) -> None:
    class Bad(Quantizer):
        name = "Bad Name"

    class BadPlugin:
        @codecbench.hookimpl
        def register_codecs(self, register):
            register(Bad())

    registered_plugin(BadPlugin(), "bad")
    with pytest.raises(ValueError, match="Invalid codec name 'Bad Name'"):
        plugins.codecs()


def test_unknown_codec_lists_what_exists() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'jpeg'.*Available:"):
        plugins.codecs().get("jpg")


def test_hook_register_datasets() -> None:
    assert "kodak" in plugins.datasets().names()
    assert plugins.datasets().providers["kodak"] == "datasets"


def test_hook_register_metrics() -> None:
    assert {"psnr", "ms-ssim"} <= set(plugins.metrics().names())


def test_every_hook_is_documented_and_tested() -> None:
    import inspect

    from codecbench import hookspecs

    readme = (ROOT / "README.md").read_text()
    tests = (Path(__file__)).read_text()
    for name, func in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("register_"):
            continue
        args = ", ".join(inspect.signature(func).parameters)
        assert f"{name}({args})" in readme, f"README does not document {name}({args})"
        assert f"def test_hook_{name}(" in tests, f"no test_hook_{name}"


def test_hook_register_commands() -> None:
    import click

    class CommandPlugin:
        @codecbench.hookimpl
        def register_commands(self, cli):
            @cli.command("hello")
            def hello():
                click.echo("hi")

    group = click.Group()
    pm = plugins.make_plugin_manager(load_entry_points=False)
    pm.register(CommandPlugin())
    pm.hook.register_commands(cli=group)
    assert "hello" in group.commands


def test_the_core_never_imports_a_plugin() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "codecbench").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+codecbench_", path.read_text(), re.M)
    ]
    assert offenders == []


def readme_example_files() -> dict[str, str]:
    """The files of the README's "Write your own codec plugin" section, by name."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Write your own codec plugin", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"`([\w.]+)`:\n\n```\w*\n(.*?)```", section, re.S))


def test_out_of_tree_plugin_from_the_readme_works_end_to_end(tmp_path: Path, image_folder: Path) -> None:
    files = readme_example_files()
    assert set(files) == {"codecbench_downsample.py", "pyproject.toml"}
    source = tmp_path / "codecbench-downsample"
    source.mkdir()
    for name, content in files.items():
        (source / name).write_text(content)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(source)],
        check=True, capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site), "CODECBENCH_DB": str(tmp_path / "r.sqlite")}
    cli = [sys.executable, "-m", "codecbench"]
    listing = subprocess.run([*cli, "list", "codecs"], env=env, capture_output=True, text=True)
    assert "downsample" in listing.stdout, listing.stderr
    run = subprocess.run(
        [*cli, "run", "-c", "downsample", "-d", f"folder:{image_folder}", "-m", "psnr", "-q"],
        env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "9 computed" in run.stderr
    results = subprocess.run([*cli, "results", "--format", "csv"], env=env, capture_output=True, text=True)
    lines = results.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.split(",")[1] == "downsample" for line in lines[1:])
    sys.path.insert(0, str(site))
    try:
        from codecbench_downsample import Downsample

        check_codec(Downsample())
    finally:
        sys.path.remove(str(site))


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed third-party plugins that fail to load: one whose module does not import and
    one whose hook matches no spec (a typo). The process-wide plugin manager is rebuilt with them."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "codecbench_broken.py").write_text("import codecbench_missing_dependency\n")
    (site / "codecbench_typo.py").write_text(
        "import codecbench\n\n@codecbench.hookimpl\ndef register_codex(register):\n    pass\n")
    info = site / "codecbench_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: codecbench-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[codecbench]\nbroken = codecbench_broken\ntypo = codecbench_typo\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_pm", None)
    monkeypatch.setattr(plugins, "_load_errors", {})
    return site


def test_a_plugin_that_fails_to_load_is_named_and_the_others_work(broken_plugins: Path) -> None:
    pm = plugins.get_plugin_manager()
    assert pm.get_plugin("broken") is None and pm.get_plugin("typo") is None
    assert "psnr" in plugins.metrics().names()
    errors = {e.name: e for e in plugins.load_errors()}
    assert set(errors) == {"broken", "typo"}
    assert errors["broken"].message() == (
        "plugin 'broken' (from codecbench-broken 0.1) failed to load and is skipped: "
        "ModuleNotFoundError: No module named 'codecbench_missing_dependency'. "
        "Disable it with CODECBENCH_DISABLE_PLUGINS=broken")
    assert "register_codex" in errors["typo"].error


def test_every_command_warns_about_a_broken_plugin_in_one_line(
    broken_plugins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from codecbench.cli import cli

    result = CliRunner().invoke(cli, ["list", "metrics"])
    assert result.exit_code == 0 and "psnr" in result.stdout
    warning = [line for line in result.stderr.splitlines() if "'broken'" in line]
    assert warning == ["warning: plugin 'broken' (from codecbench-broken 0.1) failed to load and is "
                       "skipped: ModuleNotFoundError: No module named 'codecbench_missing_dependency'. "
                       "Disable it with CODECBENCH_DISABLE_PLUGINS=broken"]
    listed = {p["name"]: p for p in json.loads(CliRunner().invoke(cli, ["plugins"]).stdout)}
    assert "No module named" in listed["broken"]["error"] and "error" not in listed["psnr"]

    monkeypatch.setenv("CODECBENCH_DISABLE_PLUGINS", "broken,typo")
    monkeypatch.setattr(plugins, "_pm", None)
    monkeypatch.setattr(plugins, "_load_errors", {})
    result = CliRunner().invoke(cli, ["list", "metrics"])
    assert result.exit_code == 0 and "warning" not in result.stderr
