"""Where pass 1's pose stage spends its time: the ``mediapipe`` backend on vtest.avi scaled to
1280x720, every 2nd frame of its first 20 s (100 posed frames, decoded beforehand), with the CPU
time and wall time a posed frame and the share of each model (the CNN person detector, BlazePose's
detector on crops, the landmark model), counted by wrapping their calls.

    PYTHONPATH=src python benchmarks/bench_pose_stage.py                    # the default
    PYTHONPATH=src python benchmarks/bench_pose_stage.py person_every=1     # --pose-option values

Run the code to compare from its own tree (``PYTHONPATH=<other>/src``), one after the other, and
read CPU per posed frame first: wall time depends on what else the machine runs.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path

import cv2

from beenet.cli.predict import parse_pose_option
from beenet.inference.pose import blazepose, detector, litert
from beenet.inference.pose.multi import MediaPipeMultiPose

REPO = Path(__file__).resolve().parents[1]


def _frames(path: Path, count: int = 200, every: int = 2) -> list:
    cap = cv2.VideoCapture(str(path))
    out = []
    for i in range(count):
        ok, f = cap.read()
        if not ok:
            break
        if i % every == 0:
            out.append((i, cv2.resize(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), (1280, 720))))
    return out


def main(argv: list[str]) -> int:
    opts = dict(parse_pose_option(a) for a in argv)
    folder = Path(os.environ.get("BEENET_TEST_FOOTAGE") or REPO / ".footage")
    frames = _frames(folder / "vtest.avi")
    stats: dict[str, list] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    lock = threading.Lock()

    def wrap(cls, name: str, label: str) -> None:
        fn = getattr(cls, name)

        def timed(self, *a, **k):
            t, c = time.perf_counter(), time.thread_time()
            r = fn(self, *a, **k)
            with lock:
                s = stats[label]
                s[0] += 1
                s[1] += time.perf_counter() - t
                s[2] += time.thread_time() - c
            return r
        setattr(cls, name, timed)

    wrap(blazepose.BlazePose, "landmarks", "landmark model")
    wrap(blazepose.BlazePose, "detect", "BlazePose detector")
    wrap(detector.PersonDetector, "__call__", "CNN person detector")
    jobs: collections.Counter = collections.Counter()
    job = litert.LiteRTEngine._job
    litert.LiteRTEngine._job = lambda self, engine, frame, kind, *a: (jobs.update([kind]), job(self, engine, frame, kind, *a))[1]
    backend = MediaPipeMultiPose(**opts)
    backend(frames[0][1], frames[0][0])  # models loaded, threads made
    backend.reset()
    stats.clear()
    jobs.clear()
    t, c = time.perf_counter(), time.process_time()
    people = sum(len(backend(f, i)) for i, f in frames)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    n = len(frames)
    print(f"options {opts}; {n} posed frames of vtest.avi at 1280x720; load {os.getloadavg()[0]:.2f}")
    print(f"people a posed frame {people / n:.2f}; a posed frame: {cpu / n * 1000:.1f} ms CPU, {wall / n * 1000:.1f} ms "
          f"wall; 5 posed frames a second -> {0.2 * n / wall:.2f}x real time (pose stage alone)")
    for label, (count, w, cc) in stats.items():
        print(f"  {label}: {count / n:.2f} runs a posed frame, {cc / count * 1000:.1f} ms CPU "
              f"({w / count * 1000:.1f} ms wall) each")
    print("  jobs a posed frame:", {k: round(v / n, 2) for k, v in jobs.items()})
    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
