"""The CNN person detector's engines side by side: the network alone (one call, letterboxed frame
in, heat map and box sides out) on LiteRT (``person_engine=litert``, the default), onnxruntime
(``onnx``) and torch (``torch``), one thread each, on real frames at each input size, the engines
taking turns call by call so that the machine's load falls on all alike. Prints the median and
fastest milliseconds a call, each engine's ratio to onnxruntime, and how far its heat map and box
sides are from torch's.

    PYTHONPATH=src python benchmarks/bench_person_detector.py
    PYTHONPATH=src python benchmarks/bench_person_detector.py --sizes 384,512,640 --calls 30 --engines litert,onnx

Needs the pose model files (``beenet models fetch``) and the test footage (``BEENET_TEST_FOOTAGE``
or ``.footage/``, ``bash scripts/fetch-footage.sh``). The first onnx run converts the graph once
(torch's import and a trace, kept in the cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: Real frames: a street of small people, a lab scene of three, a close-up (clip, frame).
FRAMES = (("vtest.avi", 100), ("lab3_cam01.mp4", 0), ("talking.mp4", 30))


def frames() -> list[np.ndarray]:
    from beenet.media.video import VideoReader

    folder = Path(os.environ.get("BEENET_TEST_FOOTAGE", REPO / ".footage"))
    out = []
    for name, index in FRAMES:
        with VideoReader(folder / name) as reader:
            for i, frame in reader.iter_frames():
                if i == index:
                    out.append(frame)
                    break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="384,512", help="input sizes (the longer side, px; default 384,512)")
    ap.add_argument("--engines", default="litert,onnx,torch", help="default litert,onnx,torch")
    ap.add_argument("--calls", type=int, default=20, help="timed calls per engine, frame and size (default 20)")
    args = ap.parse_args(argv)
    from beenet.inference.pose.detector import PersonDetector
    from beenet.inference.pose.models import find_detector_files

    graph = find_detector_files()
    engines = {e: PersonDetector(graph, engine=e) for e in args.engines.split(",")}
    reference = engines.get("torch") or PersonDetector(graph, engine="torch")
    images = frames()
    print(f"{len(images)} frames {', '.join(f'{n}#{i}' for n, i in FRAMES)}; {args.calls} calls each; "
          f"one thread; load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"{'size':<6}{'inputs':<24}{'engine':<8}{'median ms':>10}{'min ms':>8}{'vs onnx':>9}"
          f"{'heat diff':>11}{'sides diff':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        squares = [engines[next(iter(engines))].letterbox(f, size)[0] for f in images]
        times: dict[str, list[float]] = {e: [] for e in engines}
        for square in squares:
            for engine in engines.values():  # one untimed call each: shapes met, caches made
                engine.network(square)
            for _ in range(args.calls):
                for name, engine in engines.items():
                    t = time.perf_counter()
                    engine.network(square)
                    times[name].append((time.perf_counter() - t) * 1000)
        want = [reference.network(s) for s in squares]
        base = statistics.median(times["onnx"]) if "onnx" in times else None
        for name, engine in engines.items():
            got = [engine.network(s) for s in squares]
            heat = max(float(np.abs(g[0] - w[0]).max()) for g, w in zip(got, want))
            sides = max(float(np.abs(g[1] - w[1]).max()) for g, w in zip(got, want))
            med = statistics.median(times[name])
            ratio = f"{base / med:.2f}x" if base else "-"
            shapes = ",".join(sorted({"x".join(str(v) for v in s.shape[1::-1]) for s in squares}))
            print(f"{size:<6}{shapes:<24}{name:<8}{med:>10.1f}{min(times[name]):>8.1f}{ratio:>9}{heat:>11.1e}{sides:>11.1e}")
    print(f"load at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
