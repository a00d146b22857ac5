"""Read and validate the Leeds Sports Pose folder: joints.mat, the image files, and where the folder is.

An LSP root holds `joints.mat` and `images/im0001.jpg …` (Johnson & Everingham, BMVC 2010). The two
releases disagree on layout and on the meaning of the flag in joints.mat:

- LSP (2000 images): `joints` is 3×14×N, rows x, y, flag, where flag 1 means the joint is OCCLUDED;
  image names have 4 digits (im0001.jpg).
- LSPET (10000 images): `joints` is 14×3×N, columns x, y, flag, where flag 1 means VISIBLE;
  image names have 5 digits (im00001.jpg).

Both are turned into one form here, `LSPAnnotations` with a `visible` mask, so nothing downstream ever sees
the raw flag. Coordinates are kept exactly as stored in joints.mat (original image pixels, no offset), also
for occluded joints, whose positions are annotated guesses. A wrong shape is reported, never transposed
into place, because a transposed array would silently swap coordinates and flags.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import scipy.io

from pose_lab.data.errors import LSPDataError
from pose_lab.skeleton import JOINT_NAMES, NUM_JOINTS

Convention = Literal["lsp", "lspet"]

ROOT_ENV_VAR = "POSE_LAB_LSP_ROOT"
JOINTS_FILE = "joints.mat"
IMAGES_DIR = "images"

_IMAGE_DIGITS: dict[str, int] = {"lsp": 4, "lspet": 5}
# Leading two dimensions of `joints`; the last one is the image count N.
_JOINTS_LAYOUT: dict[str, tuple[int, int]] = {"lsp": (3, NUM_JOINTS), "lspet": (NUM_JOINTS, 3)}

_HOW_TO_POINT_AT_LSP = (
    f"set {ROOT_ENV_VAR}=/path/to/lsp, or pass the Hydra override `data.root=/path/to/lsp`, "
    "or download it with `python -m pose_lab.data.download --dest DIR`"
)


@dataclass(frozen=True)
class LSPAnnotations:
    """Ground truth for N images in LSP joint order (see pose_lab.skeleton)."""

    keypoints: np.ndarray  # (N, K, 2) float32 x, y in original image pixels, as stored in joints.mat
    visible: np.ndarray  # (N, K) bool, True = the joint is visible in the image

    def __len__(self) -> int:
        return len(self.keypoints)


def _check_convention(convention: str) -> None:
    if convention not in _IMAGE_DIGITS:
        raise ValueError(f"unknown LSP convention {convention!r}; use one of: {', '.join(_IMAGE_DIGITS)}")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def read_joints(path: Path, convention: Convention = "lsp") -> LSPAnnotations:
    """Load and validate the `joints` array of an LSP (3×14×N) or LSPET (14×3×N) joints.mat."""
    _check_convention(convention)
    path = Path(path)
    if not path.is_file():
        raise LSPDataError(
            f"joints file not found: {path}; the LSP root must contain {JOINTS_FILE} ({_HOW_TO_POINT_AT_LSP})"
        )
    try:
        contents = scipy.io.loadmat(str(path))
    # scipy reports a damaged file as any of MatReadError, ValueError, IndexError, OSError, … depending
    # on where the bytes break, so at this boundary every failure means "this file is not readable".
    except Exception as err:
        raise LSPDataError(
            f"could not read {path} as a MATLAB file ({type(err).__name__}: {err}); "
            "the file is corrupt or truncated: download LSP again with `python -m pose_lab.data.download --dest DIR`"
        ) from err

    if "joints" not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise LSPDataError(
            f"{path} has no variable 'joints' (variables found: {', '.join(found) or 'none'}); "
            "this is not an LSP/LSPET joints.mat"
        )
    joints = np.asarray(contents["joints"])

    layout = _JOINTS_LAYOUT[convention]
    if joints.ndim != 3 or joints.shape[:2] != layout or joints.shape[2] == 0:
        other = "lspet" if convention == "lsp" else "lsp"
        hint = ""
        if joints.ndim == 3 and joints.shape[:2] == _JOINTS_LAYOUT[other]:
            hint = f"; that is the {other.upper()} layout: pass convention='{other}'"
        raise LSPDataError(
            f"{path}: 'joints' has shape {_shape_text(joints.shape)}, expected {_shape_text(layout)}×N "
            f"with N ≥ 1 for convention '{convention}'{hint}"
        )
    if not np.issubdtype(joints.dtype, np.number):
        raise LSPDataError(f"{path}: 'joints' has dtype {joints.dtype}, expected numbers")

    # One (N, K, 3) view with x, y, flag last, whichever layout the file uses.
    per_image = joints.transpose(2, 1, 0) if convention == "lsp" else joints.transpose(2, 0, 1)
    per_image = per_image.astype(np.float64)

    bad = ~np.isfinite(per_image)
    if bad.any():
        image, joint, _ = np.argwhere(bad)[0]
        raise LSPDataError(
            f"{path}: {int(bad.sum())} non-finite values in 'joints' "
            f"(first at image {image + 1}, {JOINT_NAMES[joint]}); "
            "every joint needs finite x, y and flag: re-download or fix the annotation file"
        )
    flags = per_image[..., 2]
    if not np.isin(flags, (0.0, 1.0)).all():
        odd = np.unique(flags[~np.isin(flags, (0.0, 1.0))])[:5]
        raise LSPDataError(f"{path}: visibility flags must be 0 or 1, found {odd.tolist()}")

    visible = flags == 0 if convention == "lsp" else flags == 1
    return LSPAnnotations(keypoints=per_image[..., :2].astype(np.float32), visible=visible)


def image_path(root: Path, number: int, convention: Convention = "lsp") -> Path:
    """Path of the 1-based image `number` (LSP: images/im0001.jpg, LSPET: images/im00001.jpg)."""
    _check_convention(convention)
    if number < 1:
        raise ValueError(f"LSP image numbers start at 1, got {number}")
    return Path(root) / IMAGES_DIR / f"im{number:0{_IMAGE_DIGITS[convention]}d}.jpg"


def resolve_root(root: str | Path | None) -> Path:
    """The LSP root folder: `root` if given, else $POSE_LAB_LSP_ROOT; checked for joints.mat and images/."""
    if root is None or str(root) == "":
        root = os.environ.get(ROOT_ENV_VAR, "")
        if not root:
            raise LSPDataError(f"no LSP data root given and {ROOT_ENV_VAR} is not set: {_HOW_TO_POINT_AT_LSP}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise LSPDataError(f"LSP data root {path} is not a folder: {_HOW_TO_POINT_AT_LSP}")
    if not (path / JOINTS_FILE).is_file():
        raise LSPDataError(f"LSP data root {path} has no {JOINTS_FILE}: {_HOW_TO_POINT_AT_LSP}")
    if not (path / IMAGES_DIR).is_dir():
        raise LSPDataError(f"LSP data root {path} has no {IMAGES_DIR}/ folder: {_HOW_TO_POINT_AT_LSP}")
    return path.resolve()


def _read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise LSPDataError(f"image not found: {path}; the LSP download is incomplete: download it again")
    # IMREAD_COLOR makes grey and RGBA files 3-channel BGR; orientation is ignored because the
    # annotations refer to the pixels as stored, not as an EXIF tag would rotate them.
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise LSPDataError(f"could not decode image {path}; the file is corrupt: delete it and download LSP again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_images(
    root: Path, numbers: Sequence[int], convention: Convention = "lsp", workers: int = 2
) -> list[np.ndarray]:
    """Decode the given 1-based images as RGB uint8 (H, W, 3) arrays, in the order of `numbers`."""
    paths = [image_path(root, int(n), convention) for n in numbers]
    # OpenCV releases the GIL while decoding, so a couple of threads roughly halve the load time.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(_read_rgb, paths))


def _check_image_files(root: Path, num_annotated: int, convention: Convention) -> None:
    digits = _IMAGE_DIGITS[convention]
    pattern = re.compile(rf"im(\d{{{digits}}})\.jpg")
    found = {int(m.group(1)) for name in os.listdir(root / IMAGES_DIR) if (m := pattern.fullmatch(name))}
    expected = set(range(1, num_annotated + 1))
    missing = sorted(expected - found)
    extra = sorted(found - expected)
    if missing:
        names = ", ".join(image_path(root, n, convention).name for n in missing[:5])
        raise LSPDataError(
            f"{root / JOINTS_FILE} annotates {num_annotated} images but {len(missing)} are missing from "
            f"{root / IMAGES_DIR} (e.g. {names}); the download is incomplete: download LSP again"
        )
    if extra:
        names = ", ".join(image_path(root, n, convention).name for n in extra[:5])
        raise LSPDataError(
            f"{root / IMAGES_DIR} has {len(extra)} images without annotation in {root / JOINTS_FILE} "
            f"(e.g. {names}); images and joints.mat come from different releases: "
            "point the root at one release, or check the convention (lsp or lspet)"
        )


def load_lsp(root: str | Path | None, convention: Convention = "lsp") -> tuple[LSPAnnotations, list[np.ndarray]]:
    """Resolve the root, read joints.mat, check one image per annotation, and decode all images."""
    path = resolve_root(root)
    annotations = read_joints(path / JOINTS_FILE, convention)
    _check_image_files(path, len(annotations), convention)
    images = load_images(path, range(1, len(annotations) + 1), convention)
    return annotations, images
