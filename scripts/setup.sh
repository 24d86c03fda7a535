#!/usr/bin/env bash
# Install codecbench, its built-in plugins and the test tools into ./.venv (Python 3.11+).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
# Headless chromium for the HTML report's browser test (skipped, with a reason, without it).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
    { $SUDO apt-get install -y -qq chromium >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; }; } \
        || echo "warning: could not install chromium; the report's browser test will be skipped" >&2
fi
echo "codecbench installed in .venv: run '.venv/bin/codecbench --help' or 'source .venv/bin/activate'"
