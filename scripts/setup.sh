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
# BPG's reference binaries (bpgenc, bpgdec) from the libbpg 0.9.8 source, built once per machine and
# cached (scripts/build_bpg.sh); without a C/C++ toolchain or the tarball, `bpg` stays unavailable.
BPG_SOURCE=${BPG_TARBALL:-../shared/vendor/libbpg/libbpg-0.9.8-src.tar.xz}
if ! command -v cc >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1; then
    echo "note: no C/C++ toolchain, BPG not built (bpg stays unavailable; see scripts/build_bpg.sh)" >&2
elif [ ! -f "$BPG_SOURCE" ]; then
    echo "note: no libbpg tarball at $BPG_SOURCE, BPG not built: get https://bellard.org/bpg/libbpg-0.9.8.tar.gz and run 'bash scripts/build_bpg.sh PATH'" >&2
else
    bash scripts/build_bpg.sh "$BPG_SOURCE" || echo "warning: the BPG build failed; bpg stays unavailable" >&2
fi
echo "codecbench installed in .venv: run '.venv/bin/codecbench --help' or 'source .venv/bin/activate'"
