"""Cost of one BlazePose model run on LiteRT: the detector, the whole landmark model and the
landmark model pruned to the two outputs beenet reads (``beenet.inference.pose.blazepose.pruned_model``).

The three are timed interleaved (round after round, each ``--runs`` invocations on the astronaut
photo from scikit-image, scaled to the model's input), on ``--threads`` interpreter threads, so that
a machine whose speed drifts shifts all three alike; the median of ``--rounds`` rounds is printed,
and the ratio of the whole to the pruned landmark model. The pruned model's two outputs are checked
equal to the whole model's first.

Example:
    python benchmarks/bench_blazepose.py --rounds 7 --runs 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import numpy as np


def _interpreter(threads: int, path: str | None = None, content: bytes | None = None):
    from ai_edge_litert.interpreter import Interpreter

    from beenet.inference.pose.runtime import quiet_stderr

    with quiet_stderr():
        it = Interpreter(model_path=path, model_content=content, num_threads=threads)
        it.allocate_tensors()
    return it


def _outputs(it, x: np.ndarray) -> dict[str, np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def main(argv: Sequence[str] | None = None) -> int:
    import cv2
    from skimage import data

    from beenet.inference.pose import blazepose as bp
    from beenet.inference.pose.models import find_model_files

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20, help="invocations per model per round")
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads (beenet uses 1 per worker)")
    args = ap.parse_args(argv)

    files = find_model_files()
    landmark_file = files["pose_landmarks_detector.tflite"]
    whole = landmark_file.read_bytes()
    started = time.perf_counter()
    pruned = bp.pruned_model(whole, bp.LANDMARK_OUTPUTS)
    prune_s = time.perf_counter() - started
    photo = data.astronaut()
    inputs = {
        "detector": cv2.resize(photo, (bp.DETECTOR_SIDE,) * 2).astype(np.float32)[None] / 127.5 - 1.0,
        "landmarks, whole": cv2.resize(photo, (bp.LANDMARK_SIDE,) * 2).astype(np.float32)[None] / 255.0,
    }
    inputs["landmarks, pruned"] = inputs["landmarks, whole"]
    models = {
        "detector": _interpreter(args.threads, path=str(files["pose_detector.tflite"])),
        "landmarks, whole": _interpreter(args.threads, content=whole),
        "landmarks, pruned": _interpreter(args.threads, content=pruned),
    }
    a, b = _outputs(models["landmarks, whole"], inputs["landmarks, whole"]), \
        _outputs(models["landmarks, pruned"], inputs["landmarks, pruned"])
    same = all(np.array_equal(a[name], b[name]) for name in bp.LANDMARK_OUTPUTS)
    print(f"{landmark_file.name}: {len(whole) / 1e6:.1f} MB, pruned in {prune_s:.2f} s; "
          f"outputs {', '.join(bp.LANDMARK_OUTPUTS)} equal to the whole model's: {same}")
    if not same:
        return 1
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, it in models.items():
            index = it.get_input_details()[0]["index"]
            x = inputs[name]
            t = time.perf_counter()
            for _ in range(args.runs):
                it.set_tensor(index, x)
                it.invoke()
            times[name].append((time.perf_counter() - t) / args.runs * 1e3)
    for name, ms in times.items():
        print(f"{name:18s} {statistics.median(ms):6.1f} ms a run (median of {args.rounds} rounds of {args.runs}, "
              f"{args.threads} thread(s))")
    ratio = statistics.median(times["landmarks, whole"]) / statistics.median(times["landmarks, pruned"])
    print(f"landmark model, whole / pruned: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
