"""The command line starts fast, without torch or pandas, and offline (issue 15 §3), and the
unit/executor layers import nothing above them (issue 15 §1)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "codecbench"
# Every installed plugin is loaded (the default set), learned ones included; the network is cut
# at the socket layer and every attempt to use it is recorded.
PROBE = """
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled by the test")
socket.getaddrinfo = socket.create_connection = socket.socket.connect = refuse
from click.testing import CliRunner
from codecbench import plugins
from codecbench.cli import cli
result = CliRunner().invoke(cli, sys.argv[1:])
print(json.dumps({"exit": result.exit_code, "output": result.output, "network": attempts,
                  "loaded": sorted(p["name"] for p in plugins.plugin_info()),
                  "torch": "torch" in sys.modules, "pandas": "pandas" in sys.modules}))
"""


def probe(args: list[str], tmp_path: Path) -> dict:
    """``codecbench ARGS`` in a fresh process with no metric weights at hand (an empty weights
    folder and torch hub cache: what would make a metric try a download)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CODECBENCH_LOAD_PLUGINS", "CODECBENCH_DISABLE_PLUGINS")}
    env.update(CODECBENCH_WEIGHTS=str(tmp_path / "weights"), TORCH_HOME=str(tmp_path / "torch-home"))
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["list"], ["run", "--help"]])
def test_the_command_line_imports_neither_torch_nor_pandas(args: list[str], tmp_path: Path) -> None:
    result = probe(args, tmp_path)
    assert result["exit"] == 0, result["output"]
    installed = {ep.name for ep in metadata.entry_points(group="codecbench")}
    assert set(result["loaded"]) == installed  # every plugin registered, learned ones included
    assert not result["torch"] and not result["pandas"]


def test_list_is_offline_and_says_what_a_run_would_download(tmp_path: Path) -> None:
    result = probe(["list", "--format", "json"], tmp_path)
    assert result["exit"] == 0, result["output"]
    assert result["network"] == []
    metrics = {row["name"]: row for row in json.loads(result["output"])["metrics"]}
    assert not metrics["fid"]["available"] and not metrics["lpips"]["available"]
    assert "let `codecbench run` download https://" in metrics["fid"]["unavailable_reason"]
    assert str(tmp_path / "weights" / "lpips") in metrics["lpips"]["unavailable_reason"]


def test_the_learned_facade_loads_names_on_first_use() -> None:
    code = ("import sys, codecbench.learned as learned; light = 'torch' not in sys.modules; "
            "learned.LearnedCodec, learned.shipped_checkpoints_dir, learned.load_manifest; "
            "print(light, 'torch' not in sys.modules, learned.pad_to_stride.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "codecbench.learned.padding"]
    import codecbench.learned as learned

    assert sorted(learned.__all__) == sorted(learned._HOME)
    assert all(getattr(learned, name) is not None for name in learned.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        learned.nothing  # noqa: B018


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
