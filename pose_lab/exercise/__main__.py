"""`python -m pose_lab.exercise video=PATH exercise=squat [any override]`: see pose_lab.exercise.run."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from pose_lab.errors import exit_on_user_error
from pose_lab.exercise.run import analyse_video


@hydra.main(version_base="1.3", config_path="../../conf", config_name="exercise_video")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    try:
        analyse_video(cfg)
    except KeyboardInterrupt:
        print(f"interrupted: the frames analysed so far are kept in {cfg.output}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
