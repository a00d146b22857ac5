"""pose_lab: BlazePose-family 2D keypoint models on LSP, their ablation, and exercise analytics."""

__version__ = "0.1.0"
