"""Time ``codecbench --help`` and ``codecbench list`` in fresh processes, and say whether they
imported torch (they should not: listing is instant and offline).

    python benchmarks/cli_startup.py [--repeat 3] [--plugins NAMES]

``--plugins`` sets ``CODECBENCH_LOAD_PLUGINS`` (comma list of entry-point names; default: every
installed plugin). Prints the best wall time of each command over the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PROBE = ("import sys, json; from click.testing import CliRunner; from codecbench.cli import cli; "
         "result = CliRunner().invoke(cli, sys.argv[1:]); "
         "print(json.dumps({'exit': result.exit_code, 'torch': 'torch' in sys.modules}))")


def measure(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                         text=True, check=True)
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plugins", default=None, help="CODECBENCH_LOAD_PLUGINS for the runs")
    options = parser.parse_args()
    env = dict(os.environ)
    if options.plugins is not None:
        env["CODECBENCH_LOAD_PLUGINS"] = options.plugins
    for args in (["--help"], ["list"]):
        runs = [measure(args, env) for _ in range(options.repeat)]
        best = min(t for t, _ in runs)
        info = runs[-1][1]
        print(f"codecbench {' '.join(args):<7} {best:6.2f} s (best of {options.repeat}), exit "
              f"{info['exit']}, torch imported: {'yes' if info['torch'] else 'no'}")


if __name__ == "__main__":
    main()
