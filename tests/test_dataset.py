import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from codecbench.dataset import FolderDataset, ManifestDataset, resolve_dataset
from codecbench.errors import DatasetError, UnknownNameError
from codecbench.manifests import load_manifests
from codecbench.testing import synthetic_image
from conftest import save


def test_every_named_dataset_has_a_valid_manifest() -> None:
    names = {d.name for d in load_manifests()}
    assert {"kodak", "clic2021", "div2k", "raise1k"} <= names
    kodak = next(d for d in load_manifests() if d.name == "kodak")
    assert len(kodak.files) == 24 and all(f.sha256 and f.url for f in kodak.files)


def test_kodak_from_the_data_dir_with_checksums(shared_datasets: Path) -> None:
    kodak = next(d for d in load_manifests() if d.name == "kodak")
    refs = kodak.images(shared_datasets, download=False)
    assert [r.name for r in refs][:2] == ["kodim01.png", "kodim02.png"] and len(refs) == 24


def test_env_var_data_dir(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECBENCH_DATA", str(shared_datasets))
    kodak = next(d for d in load_manifests() if d.name == "kodak")
    assert len(kodak.images(download=False)) == 24


def test_a_modified_file_is_refused(shared_datasets: Path, tmp_path: Path) -> None:
    copy = tmp_path / "data" / "kodak"
    shutil.copytree(shared_datasets / "kodak", copy)
    (copy / "kodim05.png").write_bytes(b"not the original")
    kodak = next(d for d in load_manifests() if d.name == "kodak")
    with pytest.raises(DatasetError, match="kodim05.png does not match the sha256"):
        kodak.images(tmp_path / "data", download=False)


def test_missing_dataset_offline_names_the_folder_and_the_source(tmp_path: Path) -> None:
    div2k = next(d for d in load_manifests() if d.name == "div2k")
    with pytest.raises(DatasetError) as err:
        div2k.images(tmp_path, download=False)
    message = str(err.value)
    assert "<data-dir>/div2k" in message and "data.vision.ee.ethz.ch" in message


def test_manual_dataset_explains_how_to_get_it(tmp_path: Path) -> None:
    raise1k = next(d for d in load_manifests() if d.name == "raise1k")
    with pytest.raises(DatasetError, match="RAISE_1k.csv"):
        raise1k.images(tmp_path)


def _manifest(tmp_path: Path, body: str, folder: str = "toy") -> ManifestDataset:
    path = tmp_path / f"{folder}.toml"
    path.write_text(f'name = "toy"\ndescription = "toy"\nfolder = "{folder}"\n' + body)
    return ManifestDataset.from_toml(path)


def test_download_verifies_checksums(tmp_path: Path) -> None:
    source = save(synthetic_image(8, 8), tmp_path / "src.png")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    good = _manifest(tmp_path, f'[[files]]\nname = "a.png"\nurl = "{source.as_uri()}"\nsha256 = "{digest}"\n')
    refs = good.images()
    assert refs[0].path.read_bytes() == source.read_bytes()
    assert str(refs[0].path).startswith(str(tmp_path / "cache"))
    bad = _manifest(tmp_path, f'[[files]]\nname = "a.png"\nurl = "{source.as_uri()}"\nsha256 = "{"0" * 64}"\n',
                    folder="bad")
    with pytest.raises(DatasetError, match="Checksum mismatch"):
        bad.images()


def test_download_of_an_archive(tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.write(save(synthetic_image(8, 8, i), tmp_path / f"{i}.png"), f"set/{i}.png")
    dataset = _manifest(tmp_path, f'pattern = "**/*.png"\ncount = 3\n[[archives]]\nurl = "{archive.as_uri()}"\n')
    assert [r.name for r in dataset.images()] == ["set/0.png", "set/1.png", "set/2.png"]


def test_folder_dataset(image_folder: Path) -> None:
    dataset = resolve_dataset(f"folder:{image_folder}", {})
    assert isinstance(dataset, FolderDataset)
    assert [r.name for r in dataset.images()] == ["img0.png", "img1.png", "img2.png"]
    with pytest.raises(DatasetError, match="no such folder"):
        FolderDataset(image_folder / "nope").images()


def test_unknown_dataset_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'kodak'"):
        resolve_dataset("kodac", {d.name: d for d in load_manifests()})


@pytest.mark.parametrize("entry", [
    'folder = "../outside"\n',
    'folder = "/etc"\n',
    'pattern = "../../outside/*.png"\n',
    'pattern = "/tmp/*.png"\n',
    '[[files]]\nname = "../outside/a.png"\n',
    '[[files]]\nname = "/etc/passwd"\n',
])
def test_manifest_paths_cannot_escape_the_data_directory(tmp_path: Path, entry: str) -> None:
    data = tmp_path / "data"
    for folder in (data / "toy", tmp_path / "outside"):
        folder.mkdir(parents=True)
        save(synthetic_image(8, 8), folder / "a.png")
    manifest = tmp_path / "toy.toml"
    folder = "" if entry.startswith("folder") else 'folder = "toy"\n'
    manifest.write_text('name = "toy"\n' + folder + entry)
    with pytest.raises(DatasetError, match="Refusing path .* would escape the data directory"):
        ManifestDataset.from_toml(manifest).images(data, download=False)


def test_archive_members_cannot_escape_the_data_directory(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("set/ok.png", save(synthetic_image(8, 8), tmp_path / "ok.png").read_bytes())
        zf.writestr("../../escaped.png", b"not yours")
    dataset = _manifest(tmp_path, f'pattern = "**/*.png"\n[[archives]]\nurl = "{archive.as_uri()}"\n')
    with pytest.raises(DatasetError, match="Refusing path '../../escaped.png'"):
        dataset.images()
    assert not list(tmp_path.rglob("escaped.png"))


def test_a_wrong_checksum_in_the_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "toy").mkdir(parents=True)
    image = save(synthetic_image(8, 8), data / "toy" / "a.png")
    body = f'[[files]]\nname = "a.png"\nsha256 = "{hashlib.sha256(image.read_bytes()).hexdigest()}"\n'
    assert [r.name for r in _manifest(tmp_path, body).images(data, download=False)] == ["a.png"]
    with pytest.raises(DatasetError, match=r"a.png does not match the sha256 in the toy manifest"):
        _manifest(tmp_path, f'[[files]]\nname = "a.png"\nsha256 = "{"0" * 64}"\n').images(data, download=False)


def test_folder_dataset_names_the_image_files_it_skips(image_folder: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from PIL import Image

    Image.new("P", (8, 8)).save(image_folder / "anim.gif")
    (image_folder / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING"):
        refs = FolderDataset(image_folder).images()
    assert [r.name for r in refs] == ["img0.png", "img1.png", "img2.png"]
    warned = [r.message for r in caplog.records]
    assert len(warned) == 1 and "anim.gif" in warned[0] and "notes.txt" not in warned[0]


def test_image_content_hash_follows_the_file(image_folder: Path) -> None:
    import os

    ref = FolderDataset(image_folder).images()[0]
    before = ref.sha256()
    assert before == hashlib.sha256(ref.path.read_bytes()).hexdigest()
    save(synthetic_image(64, 96, seed=7), ref.path)
    os.utime(ref.path, ns=(1, 1))  # even with an old modification time, the size or inode differs
    assert ref.sha256() == hashlib.sha256(ref.path.read_bytes()).hexdigest() != before
    ref.path.unlink()
    assert ref.sha256() is None


def png16(array: "np.ndarray") -> bytes:  # noqa: F821
    """A 16-bit RGB PNG (Pillow writes none)."""
    import struct
    import zlib

    h, w, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_16_bit_and_animated_images_are_converted_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import numpy as np
    from PIL import Image

    from codecbench.image import read_image

    deep = tmp_path / "deep.png"
    deep.write_bytes(png16(np.full((4, 6, 3), 0x1234, np.uint16)))
    frames = [Image.fromarray(synthetic_image(8, 8, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    with caplog.at_level("WARNING"):
        assert read_image(deep)[0, 0].tolist() == [0x12] * 3
        assert read_image(tmp_path / "anim.webp").shape == (8, 8, 3)
        read_image(save(synthetic_image(8, 8), tmp_path / "plain.png"))
    warned = [r.message for r in caplog.records]
    assert len(warned) == 2
    assert "deep.png" in warned[0] and "16-bit" in warned[0]
    assert "anim.webp" in warned[1] and "3 frames" in warned[1]


def test_every_shipped_manifest_pins_sha256() -> None:
    """Every download the shipped manifests name is checked against a pinned sha256."""
    from codecbench.manifests import load_manifests

    manifests = {dataset.name: dataset for dataset in load_manifests()}
    assert {"kodak", "clic2021", "clic2021-valid", "div2k"} <= set(manifests)
    for dataset in manifests.values():
        assert dataset.unverified() == [], dataset.name


def test_manifests_without_sha256_are_reported_unverified(tmp_path: Path) -> None:
    """A manifest that pins no sha256 (a user's own) is called unverified by `list`, naming the
    URLs."""
    from codecbench.cli.run import dataset_status
    from codecbench.dataset import ManifestDataset

    manifest = tmp_path / "mine.toml"
    manifest.write_text('name = "mine"\ndescription = "d"\nfolder = "mine"\npattern = "*.png"\n'
                        '[[archives]]\nurl = "https://example.org/mine.zip"\n')
    dataset = ManifestDataset.from_toml(manifest)
    assert dataset.unverified() == ["https://example.org/mine.zip"]
    status, where, _ = dataset_status(dataset, None)
    assert status == "downloadable"
    assert where.endswith("UNVERIFIED: no sha256 pinned in its manifest")