"""``scripts/build_bpg.sh``: the paths that do not build (no tarball, unknown tarball) and the cache
that makes a second run skip the build."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build_bpg.sh"


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_without_a_tarball_it_says_where_to_get_libbpg(tmp_path: Path) -> None:
    run = run_script(str(tmp_path / "missing.tar.gz"), env={"CODECBENCH_CACHE": str(tmp_path / "cache")})
    assert run.returncode == 2
    assert "https://bellard.org/bpg/libbpg-0.9.8.tar.gz" in run.stderr
    assert "bash scripts/build_bpg.sh PATH/TO/libbpg-0.9.8.tar.gz" in run.stderr and "BPG_TARBALL" in run.stderr


def test_an_unknown_tarball_is_refused_with_its_sha256(tmp_path: Path) -> None:
    tarball = tmp_path / "libbpg-other.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(SCRIPT, arcname="libbpg-other/bpgenc.c")
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    run = run_script(str(tarball), env={"CODECBENCH_CACHE": str(tmp_path / "cache")})
    assert run.returncode == 2
    assert f"sha256 {sha}" in run.stderr and f"BPG_TARBALL_SHA256={sha}" in run.stderr


def test_cached_binaries_are_installed_without_building(tmp_path: Path) -> None:
    tarball = tmp_path / "libbpg-test.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(SCRIPT, arcname="libbpg-test/bpgenc.c")
    sha = hashlib.sha256(tarball.read_bytes()).hexdigest()
    cached = tmp_path / "cache" / "bpg" / sha
    cached.mkdir(parents=True)
    for tool in ("bpgenc", "bpgdec"):  # stand-ins that answer -h like bpgenc
        (cached / tool).write_text("#!/bin/sh\necho 'BPG Image Encoder version 0.9.8'\nexit 1\n")
        (cached / tool).chmod(stat.S_IRWXU)
    install = tmp_path / "bin"
    run = run_script(str(tarball), env={"CODECBENCH_CACHE": str(tmp_path / "cache"), "BPG_TARBALL_SHA256": sha,
                                        "BPG_INSTALL_DIR": str(install)})
    assert run.returncode == 0, run.stderr
    assert "using the binaries cached in" in run.stderr and "building" not in run.stderr
    assert (install / "bpgenc").read_bytes() == (cached / "bpgenc").read_bytes()
