"""Detection stage: keypoint files in every supported layout, and MediaPipe on real photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bodyfit_cli.detection.keypoint_files import read_keypoint_file
from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.detection.types import PersonKeypoints, bbox_from_keypoints
from bodyfit_cli.errors import InputError, KeypointFileError
from bodyfit_cli.io.images import read_image
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SKIER = "coco_000000000785.jpg"


def write_json(tmp_path: Path, data: Any, name: str = "keypoints.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def point(person: PersonKeypoints, name: str) -> list[float]:
    return person.keypoints[KEYPOINT_INDEX[name]].tolist()


def openpose_points(count: int) -> list[float]:
    """Point i at (10 + i, 100 + 2i) with confidence 0.5 + i/100, so each is recognisable."""
    return [v for i in range(count) for v in (10.0 + i, 100.0 + 2 * i, 0.5 + i / 100)]


# --- OpenPose ---


def test_openpose_body_25_maps_each_point_to_its_name(tmp_path: Path) -> None:
    flat = openpose_points(25)
    flat[3 * 17 : 3 * 18] = [0, 0, 0]  # REar not found
    path = write_json(tmp_path, {"version": 1.3, "people": [{"pose_keypoints_2d": flat}]})
    [person] = read_keypoint_file(path)
    # BODY_25: 2 RShoulder, 5 LShoulder, 9 RHip, 12 LHip, 16 LEye, 21 LHeel, 22 RBigToe, 24 RHeel
    assert point(person, "nose") == [10, 100, 0.5]
    assert point(person, "right_shoulder") == [12, 104, 0.52]
    assert point(person, "left_shoulder") == [15, 110, 0.55]
    assert point(person, "right_hip") == [19, 118, 0.59]
    assert point(person, "left_hip") == [22, 124, 0.62]
    assert point(person, "left_eye") == [26, 132, 0.66]
    assert point(person, "left_heel") == [31, 142, 0.71]
    assert point(person, "right_big_toe") == [32, 144, 0.72]
    assert point(person, "right_heel") == [34, 148, 0.74]
    assert point(person, "right_ear")[2] == 0.0
    given = person.keypoints[:, 2] > 0
    assert given.sum() == 20
    assert person.score == pytest.approx(person.keypoints[given, 2].mean())
    assert person.bbox == bbox_from_keypoints(person.keypoints)
    assert person.mask is None


def test_openpose_coco_18_has_hips_at_8_and_11_and_no_feet(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"people": [{"pose_keypoints_2d": openpose_points(18)}]})
    [person] = read_keypoint_file(path)
    assert point(person, "right_hip") == [18, 116, 0.58]
    assert point(person, "left_hip") == [21, 122, 0.61]
    assert point(person, "left_ankle") == [23, 126, 0.63]
    assert point(person, "left_ear") == [27, 134, 0.67]
    for name in ("left_heel", "right_heel", "left_big_toe", "right_big_toe"):
        assert point(person, name)[2] == 0.0


def test_openpose_before_1_2_is_read_too(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"people": [{"pose_keypoints": openpose_points(18)}]})
    [person] = read_keypoint_file(path)
    assert point(person, "left_hip") == [21, 122, 0.61]


def test_openpose_people_with_nothing_found_are_left_out(tmp_path: Path) -> None:
    people = [{"pose_keypoints_2d": [0.0] * 75}, {"pose_keypoints_2d": openpose_points(25)}]
    assert len(read_keypoint_file(write_json(tmp_path, {"people": people}))) == 1
    assert read_keypoint_file(write_json(tmp_path, {"people": []})) == []


# --- COCO ---


def coco_keypoints(x: float, flags: list[int]) -> list[float]:
    """17 COCO points along a line starting at x, with the given visibility flags."""
    return [v for i, f in enumerate(flags) for v in ((x + i, 50.0 + i, f) if f else (0, 0, 0))]


def coco_file() -> dict[str, Any]:
    flags_a = [2] * 17
    flags_b = [2, 0, 1] + [2] * 14
    return {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "000000000002.jpg", "width": 640, "height": 480},
        ],
        "annotations": [
            {"image_id": 1, "keypoints": coco_keypoints(100, flags_a), "num_keypoints": 17},
            {
                "image_id": 2,
                "keypoints": coco_keypoints(200, flags_b),
                "num_keypoints": 16,
                "bbox": [190.0, 40.0, 30.0, 60.0],
            },
            {"image_id": 2, "keypoints": [0] * 51, "num_keypoints": 0, "bbox": [1, 2, 3, 4]},
        ],
    }


@pytest.mark.parametrize("image_name", ["000000000002.jpg", "photos/000000000002.jpg", "coco_000000000002.jpg"])
def test_coco_picks_the_annotations_of_the_named_image(tmp_path: Path, image_name: str) -> None:
    [person] = read_keypoint_file(write_json(tmp_path, coco_file()), image_name=image_name)
    assert point(person, "nose") == [200, 50, 1]
    assert point(person, "left_eye")[2] == 0.0  # visibility 0: not labelled
    assert point(person, "right_eye") == [202, 52, 1]  # visibility 1: labelled, occluded
    assert point(person, "left_shoulder") == [205, 55, 1]
    assert point(person, "right_ankle") == [216, 66, 1]
    assert point(person, "left_heel")[2] == 0.0
    assert person.bbox == (190, 40, 220, 100)
    assert person.score == 1.0


def test_coco_file_names_match_whole_names_only(tmp_path: Path) -> None:
    with pytest.raises(KeypointFileError, match="image 1000000000002.jpg is not listed"):
        read_keypoint_file(write_json(tmp_path, coco_file()), image_name="1000000000002.jpg")


def test_coco_without_bbox_gets_one_from_its_keypoints(tmp_path: Path) -> None:
    [person] = read_keypoint_file(write_json(tmp_path, coco_file()), image_name="000000000001.jpg")
    assert person.bbox == bbox_from_keypoints(person.keypoints)


def test_a_bare_list_of_coco_annotations_is_read(tmp_path: Path) -> None:
    annotations = coco_file()["annotations"][1:]
    [person] = read_keypoint_file(write_json(tmp_path, annotations))
    assert point(person, "nose") == [200, 50, 1]


# --- malformed files ---


def body_25(value: Any) -> dict[str, Any]:
    return {"people": [{"pose_keypoints_2d": value}]}


def with_annotation(**changes: Any) -> dict[str, Any]:
    data = coco_file()
    data["annotations"][0].update(changes)
    return data


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        ({"people": {"pose_keypoints_2d": []}}, "'people' is not a list"),
        ({"people": [{"face_keypoints_2d": []}]}, "no pose_keypoints_2d"),
        (body_25(openpose_points(25)[:-1]), "74 numbers, expected 75 or 54"),
        (body_25(["1"] * 75), "not a list of numbers"),
        (body_25([True] * 75), "not a list of numbers"),
        ('{"people": [{"pose_keypoints_2d": [NaN' + ", 0" * 74 + "]}]}", "non-finite"),
        ({"frames": []}, "neither OpenPose"),
        ("42", "neither OpenPose"),
        ({"annotations": [], "images": "none"}, "'images' is not a list"),
        ({"images": [{"id": 1, "file_name": "other.jpg"}], "annotations": []}, "not listed"),
        (with_annotation(keypoints=[1.0] * 50), "annotation 0 keypoints has 50 numbers"),
        (with_annotation(keypoints=coco_keypoints(0, [3] * 17)), "visibility flags"),
        (with_annotation(bbox=[1, 2, 3]), "annotation 0 bbox has 3 numbers"),
        ({**coco_file(), "annotations": [[1, 2]]}, "annotation 0 has no keypoints"),
        ({"images": [{"file_name": "000000000001.jpg"}], "annotations": []}, "has no id"),
        ({**coco_file(), "images": coco_file()["images"][:1] * 2}, "listed 2 times"),
    ],
)
def test_malformed_files_raise_one_line_naming_the_file(tmp_path: Path, content: Any, complaint: str) -> None:
    path = tmp_path / "bad_keypoints.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(KeypointFileError) as caught:
        read_keypoint_file(path, image_name="000000000001.jpg")
    message = str(caught.value)
    assert str(path) in message
    assert complaint in message
    assert "\n" not in message


def test_a_coco_file_of_several_images_needs_the_image_name(tmp_path: Path) -> None:
    path = write_json(tmp_path, coco_file())
    with pytest.raises(KeypointFileError, match="lists 2 images"):
        read_keypoint_file(path)
    with pytest.raises(KeypointFileError, match="several images"):
        read_keypoint_file(write_json(tmp_path, coco_file()["annotations"]))


def test_keypoints_outside_the_image_mean_the_wrong_file(tmp_path: Path) -> None:
    path = write_json(tmp_path, body_25(openpose_points(25)))
    assert len(read_keypoint_file(path, image_size=(40, 150))) == 1
    with pytest.raises(KeypointFileError, match="outside the 20x20 image"):
        read_keypoint_file(path, image_size=(20, 20))


def test_a_file_changed_between_reads_is_read_again(tmp_path: Path) -> None:
    path = write_json(tmp_path, {"people": [{"pose_keypoints_2d": openpose_points(25)}]})
    assert len(read_keypoint_file(path)) == 1
    assert len(read_keypoint_file(path)) == 1
    write_json(tmp_path, {"people": []})
    assert read_keypoint_file(path) == []


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as caught:
        read_keypoint_file(tmp_path / "absent.json")
    assert not isinstance(caught.value, KeypointFileError)
    assert "absent.json" in str(caught.value)


# --- MediaPipe ---


@pytest.fixture(scope="module")
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.skip(f"real photos not available ({MEDIA})")
    return MEDIA


@pytest.fixture(scope="module")
def detector() -> Iterator[MediaPipeDetector]:
    with MediaPipeDetector() as det:
        yield det


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def check_skier(people: list[PersonKeypoints], media: Path, image: np.ndarray) -> None:
    """The skier of COCO image 785, who faces the camera, against her COCO annotation."""
    [truth] = read_keypoint_file(media / "coco_keypoints.json", image_name=SKIER)
    [person] = people
    assert iou(person.bbox, truth.bbox) > 0.7
    assert person.score > 0.8
    kp = person.keypoints
    height, width = image.shape[:2]
    seen = kp[kp[:, 2] > 0.5]
    assert len(seen) >= 19
    assert (seen[:, :2] >= 0).all() and (seen[:, :2] < [width, height]).all()
    # Her own left is on the right of the photo.
    assert point(person, "left_shoulder")[0] > point(person, "right_shoulder")[0]
    assert point(person, "left_hip")[0] > point(person, "right_hip")[0]
    limbs = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]
    errors = np.linalg.norm(kp[limbs, :2] - truth.keypoints[limbs, :2], axis=1)
    assert np.median(errors) < 12 and errors.max() < 40
    assert person.mask is not None and person.mask.shape == (height, width)
    x0, y0, x1, y1 = (int(v) for v in person.bbox)
    inside = person.mask[y0:y1, x0:x1]
    assert inside.mean() > 0.2
    assert person.mask.sum() - inside.sum() < 0.05 * inside.sum()


def test_mediapipe_finds_the_skier(detector: MediaPipeDetector, media: Path) -> None:
    image = read_image(media / SKIER)
    check_skier(detector.detect(image), media, image)


def test_mediapipe_finds_no_one_in_a_grey_image(detector: MediaPipeDetector) -> None:
    assert detector.detect(np.full((360, 480, 3), 128, dtype=np.uint8)) == []


def test_mediapipe_finds_two_people_side_by_side(detector: MediaPipeDetector, media: Path) -> None:
    image = read_image(media / SKIER)
    width = image.shape[1]
    people = detector.detect(np.hstack([image, image]))
    assert len(people) == 2
    left, right = sorted(people, key=lambda p: p.bbox[0])
    assert left.bbox[2] < right.bbox[0]
    assert left.bbox[2] < width < right.bbox[0]
    shifted = right.keypoints[:, :2] - [width, 0]
    assert np.median(np.linalg.norm(shifted - left.keypoints[:, :2], axis=1)) < 5


def test_a_large_photo_is_searched_shrunk_and_answered_in_its_own_pixels(
    detector: MediaPipeDetector, tmp_path: Path
) -> None:
    """A sample photo upscaled 7.5x (4800x6000, written and read back as a file is): the person is found
    where they are in the small photo, times 7.5; the mask stays at detection's resolution, scale-free
    3D points as they are."""
    import cv2

    from bodyfit_cli.detection.masks import crop_mask
    from bodyfit_cli.detection.mediapipe_pose import DETECT_MAX_SIDE

    small = read_image(SAMPLES / "standing_front.jpg")  # 640x800
    factor = 7.5
    path = tmp_path / "large.png"
    upscaled = cv2.resize(small, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(path), upscaled[..., ::-1])
    large = read_image(path)
    assert large.shape == (6000, 4800, 3)
    [seen] = detector.detect(small)
    [person] = detector.detect(large)
    both = (seen.keypoints[:, 2] > 0.5) & (person.keypoints[:, 2] > 0.5)
    assert both.sum() >= 18
    errors = np.linalg.norm(person.keypoints[both, :2] / factor - seen.keypoints[both, :2], axis=1)  # small-photo px
    limbs = np.isin(np.arange(len(both))[both], [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS])
    assert np.median(errors) < 2.0 and errors[limbs].max() < 6.0, errors.round(1)
    np.testing.assert_allclose(np.array(person.bbox) / factor, seen.bbox, atol=3.0)
    assert abs(person.score - seen.score) < 0.05
    np.testing.assert_allclose(person.points3d, seen.points3d, atol=0.05)  # metres: no pixel scale in them
    # The mask: the copy's size, not 4800x6000 (110 MB); sampled over the person's box as the fitting does.
    assert person.mask is not None and max(person.mask.shape) == DETECT_MAX_SIDE
    assert person.mask_scale == pytest.approx(6000 / DETECT_MAX_SIDE)
    assert seen.mask is not None and seen.mask.shape == small.shape[:2] and seen.mask_scale == 1.0

    def window(p: PersonKeypoints, scale: float) -> np.ndarray:
        x0, y0, x1, y1 = p.bbox
        center, side = ((x0 + x1) / 2, (y0 + y1) / 2), float(np.hypot(x1 - x0, y1 - y0))
        return crop_mask(p.mask, (center[0] / scale, center[1] / scale), side / scale)

    assert window(seen, 1.0).mean() > 0.05  # the person, in a square as wide as their box's diagonal
    assert np.abs(window(person, person.mask_scale) - window(seen, 1.0)).mean() < 0.05


def test_mediapipe_logs_stay_off_the_command_lines_stderr(media: Path) -> None:
    """MediaPipe's graph threads log to descriptor 2 whenever they like; bodyfit's lines, from another thread, stay."""
    code = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from bodyfit_cli.cli import keep_stderr_for_bodyfit\n"
        "keep_stderr_for_bodyfit()\n"
        "from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector\n"
        "from bodyfit_cli.io.images import read_image\n"
        "def detect():\n"
        "    with MediaPipeDetector(video=True) as det:\n"
        f"        print(len(det.detect(read_image(Path({str(media / SKIER)!r})))))\n"
        "thread = threading.Thread(target=detect)\n"
        "thread.start()\n"
        "while thread.is_alive():\n"
        "    print('ours', file=sys.stderr)\n"
        "    thread.join(0.01)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_NATIVE_LOGS"}
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "1\n"
    lines = run.stderr.splitlines()
    assert len(lines) > 5 and set(lines) == {"ours"}, run.stderr[:500]


def test_the_detector_starts_without_mediapipes_drawing_helpers_and_tasks() -> None:
    """mediapipe's package imports matplotlib (its drawing helpers) and its tasks API; the detector defers
    both, and they still load when used."""
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector, import_mediapipe\n"
        "with MediaPipeDetector() as det:\n"
        "    found = det.detect(np.full((240, 320, 3), 128, np.uint8))\n"
        "print(found, 'matplotlib' in sys.modules, 'mediapipe.tasks.python.vision' in sys.modules)\n"
        "mp = import_mediapipe()\n"
        "print(mp.tasks.vision.PoseLandmarker.__name__, mp.tasks.BaseOptions.__name__)\n"
        "print(mp.solutions.drawing_utils.DrawingSpec.__name__, 'matplotlib' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["[] False False", "PoseLandmarker BaseOptions", "DrawingSpec True"]


def test_a_missing_or_broken_pose_model_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        MediaPipeDetector(pose_model=tmp_path / "absent.task")
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"not a model bundle")
    with pytest.raises(InputError, match="broken.task") as caught:
        MediaPipeDetector(pose_model=broken)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def bundled_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PoseLandmarker `.task` built from the models mediapipe ships for its pose solution, so
    the `.task` path is tested without downloading a model."""
    import mediapipe

    writers = "mediapipe.tasks.python.metadata.metadata_writers"
    metadata_writer = pytest.importorskip(f"{writers}.metadata_writer")
    model_asset_bundle_utils = pytest.importorskip(f"{writers}.model_asset_bundle_utils")
    modules = Path(mediapipe.__file__).parent / "modules"

    def with_input_scaling(model: Path, mean: float, std: float) -> bytes:
        writer = metadata_writer.MetadataWriter.create(bytearray(model.read_bytes()))
        writer.add_general_info(model.stem)
        writer.add_image_input(norm_mean=[mean], norm_std=[std])
        return bytes(writer.populate()[0])

    path = tmp_path_factory.mktemp("models") / "pose_landmarker.task"
    model_asset_bundle_utils.create_model_asset_bundle(
        {
            "pose_detector.tflite": with_input_scaling(
                modules / "pose_detection" / "pose_detection.tflite", 127.5, 127.5
            ),
            "pose_landmarks_detector.tflite": with_input_scaling(
                modules / "pose_landmark" / "pose_landmark_full.tflite", 0.0, 255.0
            ),
        },
        str(path),
    )
    return path


def test_a_pose_landmarker_task_finds_the_skier_and_her_double(bundled_task: Path, media: Path) -> None:
    image = read_image(media / SKIER)
    with MediaPipeDetector(pose_model=bundled_task) as det:
        check_skier(det.detect(image), media, image)
        assert len(det.detect(np.hstack([image, image]))) == 2
