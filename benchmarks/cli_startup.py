"""Time ``codecbench --help`` and ``codecbench list`` in fresh processes, and say whether they
imported torch or pandas (they should not: listing is instant and offline).

    python benchmarks/cli_startup.py [--repeat 3] [--plugins NAMES]

``--plugins`` sets ``CODECBENCH_LOAD_PLUGINS`` (comma list of entry-point names; default: every
installed plugin). Prints the best wall time of each command over the repeats, and the CPU time
(user + system) of that run, which a loaded machine inflates less; first the same for
``python -c "import codecbench"`` for comparison (what any command costs before it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

PROBE = ("import sys, json; from click.testing import CliRunner; from codecbench.cli import cli; "
         "result = CliRunner().invoke(cli, sys.argv[1:]); "
         "print(json.dumps({'exit': result.exit_code, 'torch': 'torch' in sys.modules, "
         "'pandas': 'pandas' in sys.modules}))")
BASELINE = "import codecbench"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(code: str, args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU time of ``python -c CODE ARGS`` in a fresh process, and its standard output."""
    cpu, start = _children_cpu(), time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True, check=True)
    return time.perf_counter() - start, _children_cpu() - cpu, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plugins", default=None, help="CODECBENCH_LOAD_PLUGINS for the runs")
    options = parser.parse_args()
    env = dict(os.environ)
    if options.plugins is not None:
        env["CODECBENCH_LOAD_PLUGINS"] = options.plugins
    for label, code, args in [(f"python -c {BASELINE!r}", BASELINE, []),
                              ("codecbench --help", PROBE, ["--help"]),
                              ("codecbench list", PROBE, ["list"])]:
        wall, cpu, out = min(measure(code, args, env) for _ in range(options.repeat))
        line = f"{label:<29} {wall:6.2f} s (best of {options.repeat}; CPU {cpu:.2f} s)"
        if code == PROBE:
            info = json.loads(out.strip().splitlines()[-1])
            line += (f", exit {info['exit']}, torch imported: {'yes' if info['torch'] else 'no'}, "
                     f"pandas imported: {'yes' if info['pandas'] else 'no'}")
        print(line)


if __name__ == "__main__":
    main()
