"""Detection (and, with --cli, the whole `bodyfit image` run) on a very large photo: time and peak memory.

    python benchmarks/bench_large_image.py [--size 12000x8000] [--sample samples/lunge_side.jpg] [--cli]

The large photo is made here, in a temporary folder (never committed): the sample upscaled (cubic) to the
requested height and widened to the requested width with its edge pixels, so the person keeps their shape.
Each measurement runs in a fresh process of its own, so that its peak memory is its own:

* detect: read the photo, start the detector, then `MediaPipeDetector.detect` on it: seconds, the memory the
  process held before detecting (mostly the photo itself: W x H x 3 bytes) and its peak while detecting;
  and where the person's keypoints land, against a detection on the photo shrunk back to the sample's
  scale (in the sample's pixels).
* --cli: `bodyfit image PHOTO --method lgd --out TMP` with the overlay: wall seconds, the result's per-stage
  timing and the command's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np

def rss_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1

from bodyfit_cli.detection.mediapipe_pose import MediaPipeDetector
from bodyfit_cli.io.images import read_image
from bodyfit_cli.vocabulary import KEYPOINT_INDEX, LIMB_KEYPOINTS

big_path, factor = Path(sys.argv[1]), float(sys.argv[2])
out = {}
t = time.perf_counter(); image = read_image(big_path); out["read_s"] = time.perf_counter() - t
t = time.perf_counter(); detector = MediaPipeDetector(); out["detector_start_s"] = time.perf_counter() - t
import cv2
small = cv2.resize(image, (0, 0), fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
[reference] = detector.detect(small)  # the person in the photo at the sample's scale, in its pixels
del small
out["rss_before_mb"] = rss_kb("VmRSS") / 1024
try:  # reset the peak (VmHWM) to the current size, so what follows is detection's own
    Path("/proc/self/clear_refs").write_text("5")
except OSError:
    pass
t = time.perf_counter(); people = detector.detect(image); out["detect_s"] = time.perf_counter() - t
out["peak_mb"] = rss_kb("VmHWM") / 1024
out["people"] = len(people)
if people:
    person = max(people, key=lambda p: p.score)
    limbs = [KEYPOINT_INDEX[n] for n in LIMB_KEYPOINTS]
    uv = person.keypoints[limbs, :2] / factor
    err = np.linalg.norm(uv - reference.keypoints[limbs, :2], axis=1)
    out["limb_error_px"] = [float(np.median(err)), float(err.max())]
    out["mask_shape"] = None if person.mask is None else list(person.mask.shape)
    out["mask_mb"] = 0.0 if person.mask is None else person.mask.nbytes / 2**20
print(json.dumps(out))
"""


def make_photo(sample: Path, width: int, height: int, path: Path) -> float:
    """Write the large photo; returns the upscaling factor (the sample's pixels to the photo's)."""
    import cv2

    small = cv2.imread(str(sample))
    factor = height / small.shape[0]
    big = cv2.resize(small, (0, 0), fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    extra = width - big.shape[1]
    if extra < 0 or big.shape[0] != height:
        sys.exit(f"bench_large_image: {sample} upscaled to {height} high is wider than {width}")
    big = cv2.copyMakeBorder(big, 0, 0, extra // 2, extra - extra // 2, cv2.BORDER_REPLICATE)
    assert cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return factor


def peak_of(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit status) of a command, measured on that child alone."""
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        child = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - t0
        child.returncode = code = os.waitstatus_to_exitcode(status)
        if code:
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace"))
    return seconds, usage.ru_maxrss / 1024, code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="12000x8000", help="WIDTHxHEIGHT of the photo to make.")
    ap.add_argument("--sample", type=Path, default=ROOT / "samples" / "lunge_side.jpg")
    ap.add_argument("--cli", action="store_true", help="Also time the whole command, overlay included.")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    sample = args.sample.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / f"large_{width}x{height}.jpg"
        t = time.perf_counter()
        factor = make_photo(sample, width, height, photo)
        print(
            f"photo: {photo.name} ({photo.stat().st_size / 2**20:.1f} MB JPEG, {width * height * 3 / 2**20:.0f} MB "
            f"as RGB), {sample.name} upscaled {factor:.2f}x, made in {time.perf_counter() - t:.1f} s"
        )
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(photo), str(factor)],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if run.returncode:
            sys.exit(f"bench_large_image: the detection run failed:\n{run.stderr}")
        d = json.loads(run.stdout.splitlines()[-1])
        print(
            f"detect: {d['detect_s']:.2f} s for {d['people']} person(s); read {d['read_s']:.2f} s, detector start "
            f"{d['detector_start_s']:.2f} s"
        )
        print(
            f"memory: {d['rss_before_mb']:.0f} MB before detecting (the photo and the libraries), "
            f"peak {d['peak_mb']:.0f} MB while detecting (+{d['peak_mb'] - d['rss_before_mb']:.0f} MB)"
        )
        if d["people"]:
            median, worst = d["limb_error_px"]
            print(
                f"person: limb keypoints / {factor:.2f} are {median:.1f} px (median), {worst:.1f} px (worst) from "
                f"those found at the sample's scale; mask {d['mask_shape']} ({d['mask_mb']:.1f} MB)"
            )
        if args.cli:
            out = Path(tmp) / "out"
            cmd = [sys.executable, "-m", "bodyfit_cli", "image", str(photo), "--method", "lgd", "--out", str(out)]
            seconds, peak, status = peak_of(cmd, Path(tmp))
            result = json.loads((out / f"{photo.stem}.json").read_text()) if status == 0 else {}
            print(
                f"bodyfit image (lgd, with overlay): {seconds:.1f} s, peak {peak:.0f} MB, exit {status}; "
                f"timing_ms {result.get('timing_ms')}"
            )


if __name__ == "__main__":
    main()
