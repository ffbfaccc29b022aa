"""Keypoint layouts of the detectors and files we read, and how each maps onto our vocabulary.

Each source declares its own names in its own order and a dict from those names to ours, so no
other module needs to know an index number. Source points with no counterpart in our vocabulary
(OpenPose's neck, MediaPipe's fingers, ...) are simply absent from the dict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bodyfit_cli.vocabulary import KEYPOINT_INDEX, NUM_KEYPOINTS


@dataclass(frozen=True)
class SourceLayout:
    """One source's keypoint order plus its name mapping, checked once when declared."""

    title: str
    names: tuple[str, ...]
    to_ours: dict[str, str]

    def __post_init__(self) -> None:
        unknown = [n for n in self.to_ours if n not in self.names]
        unknown += [n for n in self.to_ours.values() if n not in KEYPOINT_INDEX]
        if unknown:
            raise ValueError(f"{self.title} mapping names unknown keypoints: {unknown}")

    def convert(self, points: np.ndarray) -> np.ndarray:
        """(len(names), 3) source points -> (NUM_KEYPOINTS, 3) in our order; unmapped rows are 0."""
        ours = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
        for src, dst in self.to_ours.items():
            ours[KEYPOINT_INDEX[dst]] = points[self.names.index(src)]
        return ours


# MediaPipe Pose (BlazePose): 33 landmarks.
MEDIAPIPE_POSE_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
MEDIAPIPE_POSE_TO_OURS: dict[str, str] = {
    "nose": "nose",
    "left_eye": "left_eye",
    "right_eye": "right_eye",
    "left_ear": "left_ear",
    "right_ear": "right_ear",
    "left_shoulder": "left_shoulder",
    "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow",
    "right_elbow": "right_elbow",
    "left_wrist": "left_wrist",
    "right_wrist": "right_wrist",
    "left_hip": "left_hip",
    "right_hip": "right_hip",
    "left_knee": "left_knee",
    "right_knee": "right_knee",
    "left_ankle": "left_ankle",
    "right_ankle": "right_ankle",
    "left_heel": "left_heel",
    "right_heel": "right_heel",
    # MediaPipe's foot index is the tip of the foot, the nearest it has to the big toe.
    "left_foot_index": "left_big_toe",
    "right_foot_index": "right_big_toe",
}

# OpenPose BODY_25.
OPENPOSE_BODY_25_NAMES: tuple[str, ...] = (
    "Nose",
    "Neck",
    "RShoulder",
    "RElbow",
    "RWrist",
    "LShoulder",
    "LElbow",
    "LWrist",
    "MidHip",
    "RHip",
    "RKnee",
    "RAnkle",
    "LHip",
    "LKnee",
    "LAnkle",
    "REye",
    "LEye",
    "REar",
    "LEar",
    "LBigToe",
    "LSmallToe",
    "LHeel",
    "RBigToe",
    "RSmallToe",
    "RHeel",
)
OPENPOSE_BODY_25_TO_OURS: dict[str, str] = {
    "Nose": "nose",
    "LEye": "left_eye",
    "REye": "right_eye",
    "LEar": "left_ear",
    "REar": "right_ear",
    "LShoulder": "left_shoulder",
    "RShoulder": "right_shoulder",
    "LElbow": "left_elbow",
    "RElbow": "right_elbow",
    "LWrist": "left_wrist",
    "RWrist": "right_wrist",
    "LHip": "left_hip",
    "RHip": "right_hip",
    "LKnee": "left_knee",
    "RKnee": "right_knee",
    "LAnkle": "left_ankle",
    "RAnkle": "right_ankle",
    "LHeel": "left_heel",
    "RHeel": "right_heel",
    "LBigToe": "left_big_toe",
    "RBigToe": "right_big_toe",
}

# OpenPose COCO-18: the order of BODY_25 without MidHip (so the hips move up to 8) and no feet.
OPENPOSE_COCO_18_NAMES: tuple[str, ...] = (
    "Nose",
    "Neck",
    "RShoulder",
    "RElbow",
    "RWrist",
    "LShoulder",
    "LElbow",
    "LWrist",
    "RHip",
    "RKnee",
    "RAnkle",
    "LHip",
    "LKnee",
    "LAnkle",
    "REye",
    "LEye",
    "REar",
    "LEar",
)
# The names both OpenPose layouts share mean the same points.
OPENPOSE_COCO_18_TO_OURS: dict[str, str] = {
    src: dst for src, dst in OPENPOSE_BODY_25_TO_OURS.items() if src in OPENPOSE_COCO_18_NAMES
}

# COCO person keypoint annotations: 17 points, named as in the dataset's category entry.
COCO_17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_17_TO_OURS: dict[str, str] = {name: name for name in COCO_17_NAMES}

MEDIAPIPE_POSE = SourceLayout("MediaPipe Pose", MEDIAPIPE_POSE_NAMES, MEDIAPIPE_POSE_TO_OURS)
OPENPOSE_BODY_25 = SourceLayout("OpenPose BODY_25", OPENPOSE_BODY_25_NAMES, OPENPOSE_BODY_25_TO_OURS)
OPENPOSE_COCO_18 = SourceLayout("OpenPose COCO-18", OPENPOSE_COCO_18_NAMES, OPENPOSE_COCO_18_TO_OURS)
COCO_17 = SourceLayout("COCO keypoints", COCO_17_NAMES, COCO_17_TO_OURS)
