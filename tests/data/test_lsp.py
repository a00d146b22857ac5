"""pose_lab.data.lsp: joints.mat conventions and validation, image decoding, root resolution, real LSP."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from pose_lab.data.errors import LSPDataError
from pose_lab.data.lsp import (
    ROOT_ENV_VAR,
    LSPAnnotations,
    image_path,
    load_images,
    load_lsp,
    read_joints,
    resolve_root,
)
from pose_lab.skeleton import NUM_JOINTS, joint_index


def _write_joints(path: Path, joints: np.ndarray, key: str = "joints") -> Path:
    scipy.io.savemat(path, {key: joints})
    return path


def test_tiny_fixture_loads_with_expected_shapes(tiny_lsp_root: Path) -> None:
    annotations, images = load_lsp(tiny_lsp_root)
    assert isinstance(annotations, LSPAnnotations)
    assert len(annotations) == len(images) == 16
    assert annotations.keypoints.shape == (16, NUM_JOINTS, 2) and annotations.keypoints.dtype == np.float32
    assert annotations.visible.shape == (16, NUM_JOINTS) and annotations.visible.dtype == bool
    assert 0.75 < annotations.visible.mean() < 0.98  # the fixture occludes ~10% of joints
    for image, keypoints in zip(images, annotations.keypoints):
        height, width = image.shape[:2]
        assert image.dtype == np.uint8 and image.shape == (height, width, 3)
        assert 100 <= width <= 201 and 100 <= height <= 200 and width != height
        assert (keypoints >= 0).all() and (keypoints[:, 0] <= width - 1).all() and (keypoints[:, 1] <= height - 1).all()


def test_flag_meaning_differs_between_lsp_and_lspet(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 100, size=(2, NUM_JOINTS, 2))
    flags = np.zeros((2, NUM_JOINTS))
    knee = joint_index("left_knee")
    flags[1, knee] = 1.0
    per_image = np.concatenate([keypoints, flags[..., None]], axis=2)  # (N, K, 3)

    lsp = read_joints(_write_joints(tmp_path / "lsp.mat", per_image.transpose(2, 1, 0)), "lsp")
    lspet = read_joints(_write_joints(tmp_path / "lspet.mat", per_image.transpose(1, 2, 0)), "lspet")

    assert not lsp.visible[1, knee] and lsp.visible.sum() == 2 * NUM_JOINTS - 1  # LSP: flag 1 = occluded
    assert lspet.visible[1, knee] and lspet.visible.sum() == 1  # LSPET: flag 1 = visible
    np.testing.assert_allclose(lsp.keypoints, keypoints, rtol=1e-6)
    np.testing.assert_allclose(lspet.keypoints, keypoints, rtol=1e-6)


def test_lspet_fixture_reads_back_like_lsp(tmp_path: Path, tiny_lsp_factory) -> None:
    lsp_root = tiny_lsp_factory(tmp_path / "lsp", num_images=4, seed=3, convention="lsp")
    lspet_root = tiny_lsp_factory(tmp_path / "lspet", num_images=4, seed=3, convention="lspet")
    lsp, lsp_images = load_lsp(lsp_root, "lsp")
    lspet, lspet_images = load_lsp(lspet_root, "lspet")
    np.testing.assert_array_equal(lsp.keypoints, lspet.keypoints)
    np.testing.assert_array_equal(lsp.visible, lspet.visible)
    assert (lspet_root / "images/im00001.jpg").is_file()
    assert [i.shape for i in lsp_images] == [i.shape for i in lspet_images]


@pytest.mark.parametrize(
    ("shape", "found"),
    [
        ((2, NUM_JOINTS, 5), "2×14×5"),
        ((3, 13, 5), "3×13×5"),
        ((3, NUM_JOINTS), "3×14"),
        ((3, NUM_JOINTS, 0), "3×14×0"),
    ],
)
def test_wrong_shape_is_reported_not_transposed(tmp_path: Path, shape: tuple[int, ...], found: str) -> None:
    path = _write_joints(tmp_path / "joints.mat", np.zeros(shape))
    with pytest.raises(LSPDataError) as info:
        read_joints(path)
    message = str(info.value)
    assert str(path) in message and found in message and "3×14×N" in message


def test_lspet_layout_read_as_lsp_suggests_the_other_convention(tmp_path: Path) -> None:
    path = _write_joints(tmp_path / "joints.mat", np.zeros((NUM_JOINTS, 3, 5)))
    with pytest.raises(LSPDataError, match="convention='lspet'"):
        read_joints(path, "lsp")
    with pytest.raises(LSPDataError, match="convention='lsp'"):
        read_joints(_write_joints(tmp_path / "lsp.mat", np.zeros((3, NUM_JOINTS, 5))), "lspet")


def test_missing_key_lists_the_variables_found(tmp_path: Path) -> None:
    path = _write_joints(tmp_path / "joints.mat", np.zeros((3, NUM_JOINTS, 2)), key="pose")
    with pytest.raises(LSPDataError) as info:
        read_joints(path)
    assert "no variable 'joints'" in str(info.value) and "pose" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("payload", [b"definitely not a MATLAB file" * 20, b"", "truncated"])
def test_corrupt_joints_file_names_the_file(tmp_path: Path, payload: bytes | str) -> None:
    path = tmp_path / "joints.mat"
    if payload == "truncated":
        whole = _write_joints(tmp_path / "whole.mat", np.zeros((3, NUM_JOINTS, 5))).read_bytes()
        payload = whole[: len(whole) // 2]
    path.write_bytes(payload)
    with pytest.raises(LSPDataError) as info:
        read_joints(path)
    assert str(path) in str(info.value) and "corrupt" in str(info.value)


def test_missing_joints_file(tmp_path: Path) -> None:
    with pytest.raises(LSPDataError, match="joints file not found"):
        read_joints(tmp_path / "joints.mat")


def test_non_finite_and_bad_flags_are_rejected(tmp_path: Path) -> None:
    joints = np.zeros((3, NUM_JOINTS, 4))
    joints[0, joint_index("neck"), 2] = np.nan
    with pytest.raises(LSPDataError) as info:
        read_joints(_write_joints(tmp_path / "nan.mat", joints))
    assert "non-finite" in str(info.value) and "image 3" in str(info.value) and "neck" in str(info.value)

    joints = np.zeros((3, NUM_JOINTS, 4))
    joints[2, 0, 0] = 2.0
    with pytest.raises(LSPDataError, match=r"0 or 1, found \[2\.0\]"):
        read_joints(_write_joints(tmp_path / "flags.mat", joints))


def test_image_path_digits_per_convention() -> None:
    assert image_path(Path("/d"), 1) == Path("/d/images/im0001.jpg")
    assert image_path(Path("/d"), 2000) == Path("/d/images/im2000.jpg")
    assert image_path(Path("/d"), 12, "lspet") == Path("/d/images/im00012.jpg")
    with pytest.raises(ValueError, match="start at 1"):
        image_path(Path("/d"), 0)


def test_missing_and_corrupt_images_name_the_file(tmp_path: Path, tiny_lsp_factory) -> None:
    root = tiny_lsp_factory(tmp_path, num_images=3)
    (root / "images/im0002.jpg").write_bytes(b"\xff\xd8 this is not really a jpeg")
    with pytest.raises(LSPDataError) as info:
        load_images(root, [1, 2, 3])
    assert str(root / "images/im0002.jpg") in str(info.value) and "corrupt" in str(info.value)

    (root / "images/im0002.jpg").unlink()
    with pytest.raises(LSPDataError) as info:
        load_images(root, [1, 2, 3])
    assert "image not found" in str(info.value) and str(root / "images/im0002.jpg") in str(info.value)


def test_grey_and_rgba_images_become_rgb(tmp_path: Path, tiny_lsp_factory) -> None:
    root = tiny_lsp_factory(tmp_path, num_images=2)
    grey = np.full((30, 40), 77, np.uint8)
    cv2.imwrite(str(root / "images/im0001.jpg"), grey)
    # OpenCV picks the decoder from the bytes, so a PNG with alpha behind a .jpg name exercises the RGBA path.
    rgba = np.zeros((20, 10, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255  # opaque blue in OpenCV's BGRA order
    (root / "images/im0002.jpg").write_bytes(cv2.imencode(".png", rgba)[1].tobytes())

    first, second = load_images(root, [1, 2])
    assert first.shape == (30, 40, 3) and np.abs(first.astype(int) - 77).max() <= 2
    assert second.shape == (20, 10, 3) and (second[0, 0] == (0, 0, 200)).all()


def test_load_lsp_reports_missing_and_unannotated_images(tmp_path: Path, tiny_lsp_factory) -> None:
    root = tiny_lsp_factory(tmp_path, num_images=4)
    extra = root / "images/im0005.jpg"
    shutil.copy(root / "images/im0001.jpg", extra)
    with pytest.raises(LSPDataError, match="1 images without annotation.*im0005.jpg"):
        load_lsp(root)
    extra.unlink()
    (root / "images/im0003.jpg").unlink()
    with pytest.raises(LSPDataError, match="annotates 4 images but 1 are missing.*im0003.jpg"):
        load_lsp(root)


def test_resolve_root_explains_how_to_point_at_lsp(
    tmp_path: Path, tiny_lsp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOT_ENV_VAR, raising=False)
    for root in (None, ""):
        with pytest.raises(LSPDataError) as info:
            resolve_root(root)
        message = str(info.value)
        assert ROOT_ENV_VAR in message and "data.root=" in message and "pose_lab.data.download" in message

    with pytest.raises(LSPDataError, match=f"{tmp_path / 'nowhere'} is not a folder.*{ROOT_ENV_VAR}"):
        resolve_root(tmp_path / "nowhere")
    with pytest.raises(LSPDataError, match="has no joints.mat"):
        resolve_root(tmp_path)
    (tmp_path / "joints.mat").touch()
    with pytest.raises(LSPDataError, match="has no images/ folder"):
        resolve_root(str(tmp_path))

    assert resolve_root(tiny_lsp_root) == tiny_lsp_root.resolve()
    monkeypatch.setenv(ROOT_ENV_VAR, str(tiny_lsp_root))
    assert resolve_root(None) == tiny_lsp_root.resolve()


@pytest.mark.data
def test_real_lsp_loads_quickly_and_looks_sane(lsp_root: Path) -> None:
    start = time.perf_counter()
    annotations, images = load_lsp(lsp_root)
    seconds = time.perf_counter() - start
    print(f"loaded {len(images)} LSP images in {seconds:.2f} s")

    assert len(annotations) == len(images) == 2000
    assert annotations.keypoints.shape == (2000, NUM_JOINTS, 2)
    assert all(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 for image in images)
    assert 0.90 < annotations.visible.mean() < 0.95  # LSP marks about 7% of joints occluded
    sizes = np.array([image.shape[1::-1] for image in images], dtype=np.float32)  # (N, 2) width, height
    # A handful of LSP joints (2 of 28000) lie just outside the frame, so "mostly inside" is the check.
    inside = ((annotations.keypoints >= 0) & (annotations.keypoints <= sizes[:, None, :] - 1)).all(axis=2)
    assert inside.mean() > 0.999
    assert seconds < 30, f"loading LSP took {seconds:.1f} s; it should take about a second"
