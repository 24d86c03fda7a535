#!/usr/bin/env bash
# Install codecbench, its built-in plugins and the test tools into ./.venv (Python 3.11+).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
echo "codecbench installed in .venv: run '.venv/bin/codecbench --help' or 'source .venv/bin/activate'"
