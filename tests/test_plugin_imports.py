"""Plugins use the public API only: ``codecbench`` (top level) and the ``codecbench.learned`` facade.

Everything else under ``codecbench`` is the core's own layout, free to change; a plugin that
imports it would break when it does. Read from the source (AST), so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
CORE = PLUGINS.parent / "codecbench"
ALLOWED = ("codecbench", "codecbench.learned")
MODULES = sorted(PLUGINS.glob("*/codecbench_*/**/*.py"))


def is_core_module(name: str) -> bool:
    """Whether ``codecbench.<name>`` is a module (``from codecbench import plugins``)."""
    return (CORE / name).is_dir() or (CORE / f"{name}.py").is_file()


def core_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of a ``codecbench`` module (not a plugin's own) in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"codecbench.{alias.name}" for alias in node.names
                                     if node.module == "codecbench" and is_core_module(alias.name)]
        else:
            continue
        found += [(node.lineno, name) for name in names if name == "codecbench" or name.startswith("codecbench.")]
    return found


def test_every_plugin_package_is_checked() -> None:
    assert {p.relative_to(PLUGINS).parts[0] for p in MODULES} >= {
        "codecbench-aedc", "codecbench-cheng2020", "codecbench-classical", "codecbench-hific",
        "codecbench-otgan"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PLUGINS)))
def test_plugins_import_only_the_public_api(path: Path) -> None:
    bad = [f"line {line}: {module}" for line, module in core_imports(path) if module not in ALLOWED]
    assert not bad, f"{path.relative_to(PLUGINS)} imports the core's internals: {'; '.join(bad)}"


def test_the_check_sees_submodule_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("import codecbench.dataset\nfrom codecbench import plugins, Codec\n"
                      "from codecbench.learned import LearnedCodec\nfrom codecbench.learned.codec import x\n")
    assert [m for _, m in core_imports(source) if m not in ALLOWED] == [
        "codecbench.dataset", "codecbench.plugins", "codecbench.learned.codec"]
