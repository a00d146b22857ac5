"""Exercise analytics: keypoints per video frame -> joint angles -> repetitions -> posture feedback."""
