"""Stage 1: find people and their 2D keypoints (MediaPipe Pose, or keypoint JSON files)."""
