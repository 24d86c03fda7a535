"""The command line starts without torch (issue 15 §3), and the unit/executor layers
import nothing above them (issue 15 §1)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "codecbench"
# Plugins whose registration needs neither torch nor a download: the CLI's own cost is what is tested.
LIGHT_PLUGINS = "datasets,psnr,jpeg,webp"
PROBE = ("import sys, json; from click.testing import CliRunner; from codecbench.cli import cli; "
         "result = CliRunner().invoke(cli, sys.argv[1:]); "
         "print(json.dumps({'exit': result.exit_code, 'output': result.output, "
         "'torch': 'torch' in sys.modules}))")


@pytest.mark.parametrize("args", [["--help"], ["list"], ["run", "--help"]])
def test_the_command_line_does_not_import_torch(args: list[str]) -> None:
    env = {**os.environ, "CODECBENCH_LOAD_PLUGINS": LIGHT_PLUGINS}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["exit"] == 0, result["output"]
    assert not result["torch"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_units_and_executors_never_import_the_runner() -> None:
    lower = [PACKAGE / "unit.py", *sorted((PACKAGE / "executors").glob("*.py"))]
    for path in lower:
        above = {m for m in _imports(path) if m == "codecbench.runner" or m.startswith("codecbench.cli")}
        assert not above, f"{path.name} imports {above}"
    assert not {m for m in _imports(PACKAGE / "unit.py") if m.startswith("codecbench.executors")}
