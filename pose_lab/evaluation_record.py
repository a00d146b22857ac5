"""The names in an evaluation's metrics.json, shared by its writer (:mod:`pose_lab.evaluate`, the training
module's validation) and its reader (:mod:`pose_lab.reporting.evaluations`), so the report loads without
Lightning."""

from __future__ import annotations

# The network's outputs that are decoded to keypoints and scored, in the order they are reported.
OUTPUTS: tuple[str, ...] = ("regression", "heatmap")

# The inference-time settings of conf/evaluate.yaml, recorded in metrics.json (heatmap_refine null: the checkpoint's).
INFERENCE_SETTINGS: tuple[str, ...] = ("flip_test", "heatmap_refine")
