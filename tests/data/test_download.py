"""pose_lab.data.download, offline: safe extraction of archives built here and checksum failures via file://."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from pose_lab.data.download import RELEASE_DIGESTS, content_digests, download, extract_lsp, main
from pose_lab.data.errors import LSPDataError
from pose_lab.data.lsp import ROOT_ENV_VAR, read_joints


def _zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, prefix + file.relative_to(folder).as_posix())
    return zip_path


@pytest.fixture
def lsp_zip(tmp_path: Path, tiny_lsp_factory) -> Path:
    """A 3-image archive laid out like the official one (joints.mat and images/ at the top)."""
    return _zip_folder(tiny_lsp_factory(tmp_path / "src", num_images=3), tmp_path / "lsp_dataset.zip")


@pytest.mark.parametrize("prefix", ["", "lsp_dataset/"])
def test_extract_finds_the_lsp_folder(tmp_path: Path, tiny_lsp_factory, prefix: str) -> None:
    zip_path = _zip_folder(tiny_lsp_factory(tmp_path / "src", num_images=3), tmp_path / "a.zip", prefix)
    root = extract_lsp(zip_path, tmp_path / "out")
    assert root == (tmp_path / "out" / prefix).resolve()
    assert len(read_joints(root / "joints.mat")) == 3 and (root / "images/im0003.jpg").is_file()


@pytest.mark.parametrize(("entry", "reason"), [("../evil", "'..'"), ("/abs/evil", "absolute"), ("C:/evil", "absolute")])
def test_extract_rejects_entries_escaping_the_target(tmp_path: Path, lsp_zip: Path, entry: str, reason: str) -> None:
    with zipfile.ZipFile(lsp_zip, "a") as archive:
        archive.writestr(entry, "pwned")
    with pytest.raises(LSPDataError) as info:
        extract_lsp(lsp_zip, tmp_path / "out")
    assert entry in str(info.value) and reason in str(info.value)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out").exists()


def test_extract_without_joints_mat(tmp_path: Path, tiny_lsp_factory) -> None:
    source = tiny_lsp_factory(tmp_path / "src", num_images=2)
    (source / "joints.mat").unlink()
    with pytest.raises(LSPDataError, match="no folder with both joints.mat and images/"):
        extract_lsp(_zip_folder(source, tmp_path / "a.zip"), tmp_path / "out")


def test_extract_not_a_zip(tmp_path: Path) -> None:
    bogus = tmp_path / "lsp_dataset.zip"
    bogus.write_bytes(b"<html>404</html>")
    with pytest.raises(LSPDataError, match=f"could not open {bogus} as a zip"):
        extract_lsp(bogus, tmp_path / "out")


def test_download_verifies_sha256(tmp_path: Path, lsp_zip: Path) -> None:
    url = lsp_zip.as_uri()
    target = tmp_path / "dl" / "lsp.zip"
    with pytest.raises(LSPDataError, match="SHA-256 mismatch"):
        download(url, target, sha256="0" * 64)
    assert not target.exists() and not list(target.parent.iterdir())  # no partial file left behind

    good = hashlib.sha256(lsp_zip.read_bytes()).hexdigest()
    assert download(url, target, sha256=good.upper()) == target
    assert target.read_bytes() == lsp_zip.read_bytes()


def test_download_failure_names_the_url(tmp_path: Path) -> None:
    url = (tmp_path / "absent.zip").as_uri()
    with pytest.raises(LSPDataError, match=f"could not download {url}.*--url"):
        download(url, tmp_path / "lsp.zip")


def test_command_line_rejects_content_that_is_not_the_release(tmp_path: Path, lsp_zip: Path) -> None:
    with pytest.raises(LSPDataError, match="joints.mat and images differ from the published LSP release"):
        main(["--dest", str(tmp_path / "data"), "--url", lsp_zip.as_uri()])


@pytest.mark.data
def test_real_lsp_matches_the_release_digests(lsp_root: Path) -> None:
    assert content_digests(lsp_root) == RELEASE_DIGESTS


def test_command_line_end_to_end(
    tmp_path: Path, lsp_zip: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture stands in for the release: pretend its digests are the published ones.
    monkeypatch.setattr("pose_lab.data.download.RELEASE_DIGESTS", content_digests(tmp_path / "src"))
    root = main(["--dest", str(tmp_path / "data"), "--url", lsp_zip.as_uri()])
    assert root == (tmp_path / "data/lsp_dataset").resolve()
    assert f"export {ROOT_ENV_VAR}={root}" in capsys.readouterr().out
