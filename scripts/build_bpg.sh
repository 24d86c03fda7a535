#!/usr/bin/env bash
# Build libbpg 0.9.8's bpgenc (x265 and JCTVC encoders) and bpgdec from a source tarball and install
# them where the `bpg` codec finds them without options (.venv/bin, or BPG_INSTALL_DIR).
#
#   bash scripts/build_bpg.sh [TARBALL]
#
# TARBALL (or $BPG_TARBALL) defaults to ../shared/vendor/libbpg/libbpg-0.9.8-src.tar.xz. Its sha256
# must be that of a known libbpg 0.9.8 tarball, or be listed in a SHA256SUMS file beside it, or equal
# $BPG_TARBALL_SHA256. The build (x265 three times, 8/10/12-bit, plus JCTVC) takes 10-20 minutes on
# two cores, so the binaries are cached in $CODECBENCH_CACHE/bpg/<sha256>/ (default
# ~/.cache/codecbench) and a later run with the same tarball only copies them.
# Missing build tools (g++, make, cmake, yasm, libpng and libjpeg headers) are installed with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Known libbpg 0.9.8 sources: bellard.org's libbpg-0.9.8.tar.gz, and the repack in ../shared/vendor
# (the public mirror's 0.9.8 tree without the JS decoder and viewer).
KNOWN_SHA256="c0788e23bdf1a7d36cb4424ccb2fae4c7789ac94949563c4ad0e2569d3bf0095 ae866a31d138d3bda4f303e94734ca9442819f00747f3e71bb00c0d19f75a8c0"
BUILD_FLAGS="USE_X265=y USE_JCTVC=y USE_BPGVIEW= USE_EMCC="
TARBALL=${1:-${BPG_TARBALL:-../shared/vendor/libbpg/libbpg-0.9.8-src.tar.xz}}
INSTALL_DIR=${BPG_INSTALL_DIR:-.venv/bin}
CACHE_ROOT=${CODECBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/codecbench}/bpg

say() { echo "build_bpg: $*" >&2; }

if [ ! -f "$TARBALL" ]; then
    say "no libbpg source tarball at '$TARBALL'."
    say "Download libbpg 0.9.8 from https://bellard.org/bpg/libbpg-0.9.8.tar.gz (sha256 c0788e23...0095),"
    say "then run: bash scripts/build_bpg.sh PATH/TO/libbpg-0.9.8.tar.gz   (or set BPG_TARBALL=PATH)"
    exit 2
fi

sha=$(sha256sum "$TARBALL" | cut -d' ' -f1)
trusted=""
for known in $KNOWN_SHA256 ${BPG_TARBALL_SHA256:-}; do [ "$sha" = "$known" ] && trusted=yes; done
sums="$(dirname "$TARBALL")/SHA256SUMS"
if [ -z "$trusted" ] && [ -f "$sums" ] && grep -q "^$sha  $(basename "$TARBALL")\$" "$sums"; then trusted=yes; fi
if [ -z "$trusted" ]; then
    say "$TARBALL has sha256 $sha, which is not a known libbpg 0.9.8 tarball."
    say "If you trust it, run again with BPG_TARBALL_SHA256=$sha"
    exit 2
fi

cached="$CACHE_ROOT/$sha"
# `bpgenc -h` exits with status 1 after printing its help.
works() { [ -x "$1/bpgenc" ] && [ -x "$1/bpgdec" ] && [[ $("$1/bpgenc" -h 2>&1 || true) == *"BPG Image Encoder"* ]]; }

if works "$cached"; then
    say "using the binaries cached in $cached (built from $TARBALL)"
else
    need=()
    command -v g++ >/dev/null || need+=(build-essential)
    command -v make >/dev/null || need+=(make)
    command -v cmake >/dev/null || need+=(cmake)
    command -v yasm >/dev/null || need+=(yasm)
    [ -f /usr/include/png.h ] || need+=(libpng-dev)
    [ -f /usr/include/jpeglib.h ] || [ -f /usr/include/x86_64-linux-gnu/jpeglib.h ] || need+=(libjpeg-dev)
    if [ ${#need[@]} -gt 0 ]; then
        command -v apt-get >/dev/null || { say "missing build tools (${need[*]}); install them and run again"; exit 2; }
        SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
        say "installing ${need[*]} with apt-get"
        $SUDO apt-get install -y -qq "${need[@]}" >/dev/null \
            || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; }
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/codecbench-bpg-build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    tar -xf "$TARBALL" -C "$work"
    src=$(find "$work" -mindepth 2 -maxdepth 2 -name bpgenc.c -printf '%h\n' | head -1)
    [ -n "$src" ] || { say "$TARBALL holds no libbpg tree (no bpgenc.c)"; exit 2; }
    jobs=$(nproc 2>/dev/null || echo 2)
    log="$work/build.log"
    say "building bpgenc (x265 + JCTVC) and bpgdec with $jobs jobs: 10-20 minutes on two cores (log: $log)"
    # x265 without libnuma: the binaries then run on machines without it.
    # shellcheck disable=SC2086
    if ! make -C "$src" -j"$jobs" $BUILD_FLAGS CMAKE_OPTS=-DENABLE_LIBNUMA=OFF bpgenc bpgdec >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        say "the build failed (last lines above)"
        exit 1
    fi
    mkdir -p "$cached.partial"
    cp "$src/bpgenc" "$src/bpgdec" "$cached.partial/"
    rm -rf "$cached" && mv "$cached.partial" "$cached"
    works "$cached" || { say "the built bpgenc does not run"; exit 1; }
    say "cached in $cached"
fi

mkdir -p "$INSTALL_DIR"
cp "$cached/bpgenc" "$cached/bpgdec" "$INSTALL_DIR/"
version=$("$INSTALL_DIR/bpgenc" -h 2>&1 || true)
say "installed bpgenc and bpgdec (${version%%$'\n'*}) in $INSTALL_DIR"
