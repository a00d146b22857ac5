"""Predict poses in images: `python -m pose_lab.predict input=IMAGE|FOLDER|GLOB [ckpt=PATH] [output=DIR]`.

Writes into the output folder one `predictions.json` (per image: file, size and {joint name: [x, y,
confidence]} in original pixels; the confidence is the heatmap's peak on the default heatmap path, the
visibility output on the regression path) and `overlays/<name>.png`, the skeleton drawn on the image
(:func:`pose_lab.viz.draw_skeleton`: coloured by side, joints below `visibility_threshold` hollow).
An image that cannot be decoded is reported by name and skipped; the others are still processed,
predictions.json lists it under "failed", and the command exits with status 1 after a summary.
predictions.json is written even when the run stops early, with what was finished.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Any

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig

from pose_lab import skeleton
from pose_lab.checkpoint import checkpoint_path
from pose_lab.errors import PoseLabError, exit_on_user_error
from pose_lab.export import onnx_beside
from pose_lab.inference import PoseEstimator, Prediction
from pose_lab.jsonfile import write_json
from pose_lab.viz import draw_skeleton

# What a folder input picks up (a glob takes whatever files it matches).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# What the third number of a joint's entry is, per inference path.
CONFIDENCE_MEANING: dict[str, str] = {
    "heatmap": "the peak of the joint's heatmap (near 1: a clear joint, near 0: none found)",
    "regression": "predicted probability that the joint is visible",
}


def keypoint_format(inference_path: str) -> str:
    """predictions.json's description of a joint's [x, y, confidence] entry."""
    return ("[x, y, confidence]: x, y in original image pixels (0, 0 = centre of the top-left pixel), "
            f"confidence = {CONFIDENCE_MEANING[inference_path]}")


def find_images(pattern: str) -> list[Path]:
    """The image files `pattern` names: one file, the images of a folder (not recursive), or a glob's files."""
    path = Path(pattern)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PoseLabError(f"input={pattern}: no images ({' '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    files = sorted(Path(match) for match in glob.glob(pattern, recursive=True) if Path(match).is_file())
    if not files:
        raise PoseLabError(f"input={pattern}: no such file, and no file matches it as a glob; give an image, "
                           "a folder of images or a pattern such as 'photos/*.jpg'")
    return files


def read_image(file: Path) -> np.ndarray | None:
    """(H,W,3) uint8 RGB, or None when OpenCV cannot decode the file (EXIF orientation applied)."""
    image = cv2.imread(str(file), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _overlay_name(file: Path, taken: set[str]) -> str:
    """<stem>.png, made unique among the overlays of this run (a glob can match equal names in two folders)."""
    name, count = f"{file.stem}.png", 1
    while name in taken:
        count += 1
        name = f"{file.stem}-{count}.png"
    taken.add(name)
    return name


def _entry(file: Path, image: np.ndarray, prediction: Prediction, overlay: str) -> dict[str, Any]:
    height, width = image.shape[:2]
    keypoints = {
        name: [round(float(x), 2), round(float(y), 2), round(float(v), 4)]
        for name, (x, y), v in zip(skeleton.JOINT_NAMES, prediction.keypoints, prediction.confidence, strict=True)
    }
    return {"file": str(file), "width": width, "height": height, "keypoints": keypoints,
            "overlay": f"overlays/{overlay}"}


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Predict every image `cfg.input` names; returns what it writes to predictions.json."""
    if cfg.batch_size < 1:
        raise PoseLabError(f"batch_size must be >= 1, got {cfg.batch_size}")
    files = find_images(str(cfg.input))
    checkpoint = checkpoint_path(cfg.ckpt)
    if not cfg.ckpt and not checkpoint.is_file():
        raise PoseLabError(f"no ckpt given and the default {checkpoint} is not there: pass ckpt=PATH "
                           "(a checkpoint written by pose_lab.train or pose_lab.checkpoint)")
    if cfg.inference_path not in CONFIDENCE_MEANING:
        raise PoseLabError(f"inference_path={cfg.inference_path}: choose {' or '.join(CONFIDENCE_MEANING)}")
    onnx = cfg.onnx or (onnx_beside(checkpoint, cfg.inference_path, int8=cfg.int8, lsp_root=cfg.lsp_root)
                        if cfg.backend == "onnxruntime" else None)
    estimator = PoseEstimator.from_checkpoint(checkpoint, device=cfg.device, backend=cfg.backend,
                                              onnx_path=onnx, threads=cfg.threads, inference_path=cfg.inference_path)
    if estimator.inference_path != cfg.inference_path:
        raise PoseLabError(f"onnx={onnx} runs the {estimator.inference_path} path, not inference_path="
                           f"{cfg.inference_path}: pass inference_path={estimator.inference_path}, or export the "
                           f"checkpoint with `python -m pose_lab.export ckpt={checkpoint} path={cfg.inference_path}`")
    threshold = cfg.visibility_threshold[cfg.inference_path]
    out_dir = Path(cfg.output)
    (out_dir / "overlays").mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "backend": cfg.backend,
        "onnx": str(onnx) if onnx else None,
        "inference_path": estimator.inference_path,
        "input": str(cfg.input),
        "joint_names": list(skeleton.JOINT_NAMES),
        "keypoint_format": keypoint_format(estimator.inference_path),
        "images": [],
        "failed": [],
    }
    taken: set[str] = set()
    try:
        for start in range(0, len(files), cfg.batch_size):
            decoded = []
            for file in files[start:start + cfg.batch_size]:
                image = read_image(file)
                if image is None:
                    print(f"skipped {file}: cannot be decoded as an image", file=sys.stderr)
                    summary["failed"].append({"file": str(file), "error": "cannot be decoded as an image"})
                else:
                    decoded.append((file, image))
            predictions = estimator.predict([image for _, image in decoded], batch_size=cfg.batch_size)
            for (file, image), prediction in zip(decoded, predictions, strict=True):
                overlay = _overlay_name(file, taken)
                drawn = draw_skeleton(image, prediction.keypoints, prediction.confidence, threshold)
                if not cv2.imwrite(str(out_dir / "overlays" / overlay), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
                    raise PoseLabError(f"cannot write {out_dir / 'overlays' / overlay}: is the output folder writable?")
                summary["images"].append(_entry(file, image, prediction, overlay))
    finally:
        write_json(out_dir / "predictions.json", summary)
    print(f"{len(summary['images'])} of {len(files)} images: wrote {out_dir / 'predictions.json'} "
          f"and {len(summary['images'])} overlays in {out_dir / 'overlays'}")
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    summary = predict(cfg)
    failed = summary["failed"]
    if failed:
        print(f"error: {len(failed)} file(s) could not be decoded and were skipped: "
              f"{', '.join(entry['file'] for entry in failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
