"""Fetch, check and unpack the LSP archive for a user with internet access.

    python -m pose_lab.data.download --dest DIR [--url URL] [--sha256 HEX]

Downloads `lsp_dataset.zip` into DIR (an existing complete zip there is reused), extracts it to
DIR/lsp_dataset, finds the folder holding joints.mat and images/, validates it with `pose_lab.data.lsp`, and
prints the `export POSE_LAB_LSP_ROOT=…` line to use it. If the official URL no longer answers, pass `--url`
with a mirror of the same archive.

The archive's own SHA-256 could not be taken when this module was written (no internet), so the zip is
checked only when `--sha256` is given. What is always verified is its content: the SHA-256 of joints.mat and
a digest over every image file, recorded from the published release (`RELEASE_DIGESTS`), then every image
is decoded once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from pose_lab.data.errors import LSPDataError
from pose_lab.data.lsp import IMAGES_DIR, JOINTS_FILE, ROOT_ENV_VAR, load_lsp

LSP_URL = "http://sam.johnson.io/research/lsp_dataset.zip"
EXPECTED_SHA256: str | None = None
# Content digests of the LSP release (2000 images): sha256 of joints.mat, and sha256 over
# "name\0sha256(bytes)" of images/im*.jpg in name order. See `content_digests`.
RELEASE_DIGESTS = {
    JOINTS_FILE: "ddcfcbe904106bfbf26561c8d11720ca62a11c7a861548064b3bae84cb396b2a",
    IMAGES_DIR: "c3a402be684bce94ef2af97b7588e8c485752225471e14f40a06fd691687e0d8",
}

_CHUNK_BYTES = 1 << 20


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_sha256(path: Path, expected: str, source: str) -> None:
    actual = _sha256_of(path)
    if actual != expected.strip().lower():
        raise LSPDataError(
            f"SHA-256 mismatch for {source}: expected {expected.strip().lower()}, got {actual}; "
            "the download is damaged or the URL serves a different file: try again, or check --url and --sha256"
        )


def content_digests(root: Path) -> dict[str, str]:
    """Digests of an LSP folder's joints.mat and images, comparable with `RELEASE_DIGESTS`."""
    root = Path(root)
    images = hashlib.sha256()
    for path in sorted((root / IMAGES_DIR).glob("im*.jpg")):
        images.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return {JOINTS_FILE: _sha256_of(root / JOINTS_FILE), IMAGES_DIR: images.hexdigest()}


def verify_release(root: Path) -> None:
    """Raise unless joints.mat and the images are byte-identical to the published LSP release."""
    actual = content_digests(root)
    wrong = [name for name, digest in RELEASE_DIGESTS.items() if actual[name] != digest]
    if wrong:
        raise LSPDataError(
            f"{root}: {' and '.join(wrong)} differ from the published LSP release (expected sha256 "
            f"{', '.join(RELEASE_DIGESTS[name][:16] + '…' for name in wrong)}); the archive is damaged or "
            "another version: delete it and download again, or check --url"
        )


def download(url: str, dest_file: Path, sha256: str | None = None) -> Path:
    """Stream `url` to `dest_file` with progress on stderr; the file appears only when complete and verified."""
    dest_file = Path(dest_file)
    dest_file.parent.mkdir(parents=True, exist_ok=True)
    # Writing to a side file and renaming at the end means an interrupted download never looks complete.
    partial = dest_file.with_name(dest_file.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                of_total = f" / {total / 2**20:.1f} MiB ({100 * done / total:.0f}%)" if total else " MiB"
                print(f"\rdownloading {url}: {done / 2**20:.1f}{of_total}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if sha256:
            _verify_sha256(partial, sha256, url)
        os.replace(partial, dest_file)
    # urllib signals network trouble as URLError/HTTPError (both OSError) and a malformed URL as ValueError.
    except (OSError, ValueError) as err:
        raise LSPDataError(
            f"could not download {url} to {dest_file} ({err}); check the connection, or pass --url with a "
            "mirror of lsp_dataset.zip, or download it by hand and unpack it"
        ) from err
    finally:
        partial.unlink(missing_ok=True)
    return dest_file


def _unsafe_reason(name: str) -> str | None:
    """Why a zip entry name would write outside the target folder, or None if it is safe."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"[A-Za-z]:", posix):
        return "is an absolute path"
    if ".." in posix.split("/"):
        return "contains a '..' component"
    return None


def _find_root_prefix(names: list[str], zip_path: Path) -> str:
    """The archive folder (posix, '' for the top) that holds joints.mat next to images/."""
    candidates = []
    for name in names:
        path = PurePosixPath(name)
        if path.name != JOINTS_FILE:
            continue
        prefix = "" if str(path.parent) == "." else f"{path.parent}/"
        if any(other.startswith(f"{prefix}{IMAGES_DIR}/") for other in names):
            candidates.append(prefix)
    if not candidates:
        raise LSPDataError(
            f"{zip_path} holds no folder with both {JOINTS_FILE} and {IMAGES_DIR}/; "
            "this is not the LSP archive: check --url"
        )
    shallowest = min(prefix.count("/") for prefix in candidates)
    top = [prefix for prefix in candidates if prefix.count("/") == shallowest]
    if len(top) > 1:
        raise LSPDataError(f"{zip_path} holds several LSP folders ({', '.join(top)}); unpack it by hand and pick one")
    return top[0]


def extract_lsp(zip_path: Path, dest_dir: Path) -> Path:
    """Unpack the LSP archive into `dest_dir` after checking every entry; returns the folder with joints.mat."""
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as err:
        raise LSPDataError(f"could not open {zip_path} as a zip archive ({err}); delete it and download again") from err
    with archive:
        names = archive.namelist()
        for name in names:
            reason = _unsafe_reason(name)
            if reason:
                raise LSPDataError(
                    f"refusing to extract {zip_path}: entry {name!r} {reason} and would write outside "
                    f"{dest_dir}; the archive is not the official LSP zip"
                )
        prefix = _find_root_prefix([name.replace("\\", "/") for name in names], zip_path)
        dest_dir.mkdir(parents=True, exist_ok=True)
        archive.extractall(dest_dir)
    return (dest_dir / prefix).resolve()


def main(argv: list[str] | None = None) -> Path:
    """Command line: download, extract and validate LSP; returns the LSP root."""
    parser = argparse.ArgumentParser(prog="python -m pose_lab.data.download", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="folder for the zip and the extracted dataset")
    parser.add_argument("--url", default=LSP_URL, help=f"archive URL (default: {LSP_URL})")
    parser.add_argument("--sha256", default=EXPECTED_SHA256, help="expected SHA-256 of the archive (hex)")
    args = parser.parse_args(argv)

    dest = args.dest.expanduser().resolve()
    zip_path = dest / "lsp_dataset.zip"
    if zip_path.is_file():
        print(f"using existing {zip_path} (delete it to download again)", file=sys.stderr)
        if args.sha256:
            _verify_sha256(zip_path, args.sha256, str(zip_path))
    else:
        download(args.url, zip_path, args.sha256)
    root = extract_lsp(zip_path, dest / "lsp_dataset")
    verify_release(root)
    annotations, _ = load_lsp(root)
    print(f"LSP ready at {root}: {len(annotations)} annotated images")
    print(f"export {ROOT_ENV_VAR}={root}")
    return root


if __name__ == "__main__":
    try:
        main()
    except LSPDataError as err:
        sys.exit(f"error: {err}")
