"""``beenet predict``'s start-up: process start to the first video frame decoded and handed to
pass 1, for several code trees side by side, fresh processes interleaved (A B A B ...) so that
every tree meets the same machine.

Each run is ``python -m beenet predict VIDEO --checkpoint CKPT --out DIR --overwrite`` with the
tree's ``src`` first on the path, started by a wrapper (``python -c``) that only adds stamps of
the wall clock, set when modules finish importing and methods return (nothing is replaced):

- python:      the interpreter up (spawn -> the wrapper's first line);
- cli imports: ``beenet.cli.predict`` imported (numpy, tqdm, the pose package, ...);
- torch+model code: ``beenet.inference.predictor`` imported (torch, the model code, PyAV);
- checkpoint:  ``Predictor(...)`` made (the checkpoint read, checked, the model built);
- pose backend: ``Predictor.check_pose()`` back (LiteRT interpreters, the CNN's graph);
- first frame: pass 1 takes its first frame from the decode thread (``beenet.inference.people``'s
  ``prefetch``): the video opened, its packets listed, a frame decoded. Unless ``--full``, the
  process ends there (the rest of the run is not start-up).

Start-up is the first-frame stamp minus the moment the parent spawned the process; "CPU to it"
is the user + system CPU time the process used up to there (its own threads included; without
``--full``), which other work on the machine changes less than the wall time.
``--importtime N`` also runs each tree once under ``python -X importtime`` and prints its N
costliest imports (cumulative) made by beenet's modules before the first frame (imports made
while the LiteRT engine silences stderr, such as the flatbuffers schema, do not show there).

    git worktree add --detach /tmp/before main              # the code before a change
    PYTHONPATH=src python benchmarks/bench_startup.py --tree before=/tmp/before --tree now=. --repeat 7

The clip and checkpoint default to vtest.avi at 720p (first 10 s) and the tiny random model of
``bench_predict`` (made once in a temporary folder); ``--video`` and ``--checkpoint`` give others.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict_versions import parse_tree  # noqa: E402  (NAME=PATH of a checkout, as there)

#: The wrapper run in each child: stamps (name, wall clock) appended to $BEENET_STARTUP_STAMP,
#: then ``python -m beenet``. A meta path finder of its own (importlib.abc would be an import
#: that ``python -m beenet`` does not make).
CHILD = r"""
import os, sys, time, importlib.machinery, runpy
STAMP, FULL = os.environ["BEENET_STARTUP_STAMP"], os.environ.get("BEENET_STARTUP_FULL") == "1"
def stamp(name):
    with open(STAMP, "a") as f:
        f.write(f"{name} {time.time()!r}\n")
stamp("python")
def first_frame(inner):
    def prefetch(items, *a, **k):
        first = True
        for item in inner(items, *a, **k):
            if first:
                first = False
                stamp("first frame")
                if not FULL:
                    os._exit(0)
            yield item
    return prefetch
def on_return(fn, name):
    def call(*a, **k):
        out = fn(*a, **k)
        stamp(name)
        return out
    return call
def patch(module):
    if module.__name__ == "beenet.cli.predict":
        stamp("cli imports")
    elif module.__name__ == "beenet.inference.predictor":
        stamp("torch+model code")
        P = module.Predictor
        P.__init__ = on_return(P.__init__, "checkpoint")
        P.check_pose = on_return(P.check_pose, "pose backend")
    elif module.__name__ == "beenet.inference.people":
        module.prefetch = first_frame(module.prefetch)
class Hook:
    def find_spec(self, name, path, target=None):
        if name not in ("beenet.cli.predict", "beenet.inference.predictor", "beenet.inference.people"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            patch(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Hook())
sys.argv = ["beenet", *sys.argv[1:]]
runpy.run_module("beenet", run_name="__main__", alter_sys=True)
"""

PHASES = ("python", "cli imports", "torch+model code", "checkpoint", "pose backend", "first frame")


def child_env(src: Path, stamp: Path, full: bool) -> dict[str, str]:
    stamp.unlink(missing_ok=True)
    return dict(os.environ, PYTHONPATH=str(src), BEENET_STARTUP_STAMP=str(stamp),
                BEENET_STARTUP_FULL="1" if full else "0")


def run_once(src: Path, args: list[str], stamp: Path, full: bool) -> dict:
    """One ``beenet predict ARGS`` in a fresh process: each phase's seconds and the start-up."""
    env = child_env(src, stamp, full)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, "predict", *args], env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    stamps = dict(line.rsplit(" ", 1) for line in stamp.read_text().splitlines()) if stamp.exists() else {}
    if "first frame" not in stamps:
        sys.exit(f"{src}: no frame reached pass 1 (exit {proc.returncode})\n{proc.stderr[-2000:]}")
    phases, before = {}, t0
    for name in PHASES:
        at = float(stamps[name])
        phases[name] = at - before
        before = at
    return {"startup_s": float(stamps["first frame"]) - t0, "cpu_s": cpu, "phases": phases,
            "load": os.getloadavg()[0]}


def importtime(src: Path, args: list[str], stamp: Path, top: int) -> list[tuple[float, str]]:
    """The ``top`` costliest imports (cumulative seconds, module) that beenet's modules make
    before the first frame, in one run."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", CHILD, "predict", *args],
                          env=child_env(src, stamp, False), capture_output=True, text=True)
    rows = []  # (depth, cumulative us, module), children before their parent as -X importtime prints
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line[len("import time:"):].split("|", 2)
            rows.append(((len(name) - len(name.lstrip())) // 2, int(cumulative), name.strip()))
    picked, parent_of_depth = [], {}
    for depth, us, name in reversed(rows):  # parents first
        parent_of_depth[depth] = name
        parent = parent_of_depth.get(depth - 1, "") if depth else ""
        if not name.startswith("beenet") and (depth == 0 or parent.startswith("beenet")):
            picked.append((us / 1e6, f"{name}  (by {parent or 'a function: a lazy import'})"))
    return sorted(picked, reverse=True)[:top]


def default_inputs(tmp: Path) -> tuple[Path, Path]:
    from bench_predict import footage_path, make_checkpoint, scaled_clip  # lazy: only without --video/--checkpoint

    video = tmp / "vtest720.mp4"
    scaled_clip(footage_path("vtest.avi"), video, 10.0)
    return video, make_checkpoint(tmp / "tiny.pt", "tiny")


def report(times: dict[str, list[dict]]) -> None:
    print(f"\nmedian seconds per phase (range over runs); start-up = spawn -> first frame handed to pass 1")
    print(f"{'tree':>10}  {'start-up':>17}  {'CPU to it':>17}  " + "  ".join(f"{p:>16}" for p in PHASES) + "  load")
    for name, runs in times.items():
        s = sorted(r["startup_s"] for r in runs)
        c = sorted(r["cpu_s"] for r in runs)
        cells = []
        for p in PHASES:
            v = sorted(r["phases"][p] for r in runs)
            cells.append(f"{statistics.median(v):5.2f} ({v[0]:.2f}-{v[-1]:.2f})")
        loads = [r["load"] for r in runs]
        print(f"{name:>10}  {statistics.median(s):5.2f} ({s[0]:.2f}-{s[-1]:.2f})  "
              f"{statistics.median(c):5.2f} ({c[0]:.2f}-{c[-1]:.2f})  " + "  ".join(f"{x:>16}" for x in cells)
              + f"  {min(loads):.1f}-{max(loads):.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", type=parse_tree, required=True, metavar="NAME=PATH",
                    help="a checkout (or its src/) to time; repeat for side by side")
    ap.add_argument("--repeat", type=int, default=5, help="fresh processes per tree (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per tree first (file cache; default 1)")
    ap.add_argument("--video", type=Path, help="the clip (default: vtest.avi at 720p, 10 s)")
    ap.add_argument("--checkpoint", type=Path, help="the checkpoint (default: bench_predict's tiny model)")
    ap.add_argument("--full", action="store_true", help="let each run finish (default: end it at the first frame)")
    ap.add_argument("--importtime", type=int, default=0, metavar="N",
                    help="also print each tree's N costliest imports before the first frame (one run)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp_name:
        tmp = Path(tmp_name)
        video, ckpt = a.video, a.checkpoint
        if video is None or ckpt is None:
            dv, dc = default_inputs(tmp)
            video, ckpt = video or dv, ckpt or dc
        stamp = tmp / "stamps"
        times: dict[str, list[dict]] = {name: [] for name, _ in a.tree}
        for rep in range(a.warmup + a.repeat):
            for name, src in a.tree:
                args = [str(video), "--checkpoint", str(ckpt), "--out", str(tmp / f"out_{name}"), "--overwrite"]
                r = run_once(src, args, stamp, a.full)
                if rep >= a.warmup:
                    times[name].append(r)
                    print(f"{name:>10}  run {rep - a.warmup + 1}: first frame {r['startup_s']:.2f} s, "
                          f"CPU {r['cpu_s']:.2f} s (load {r['load']:.1f}): " + ", ".join(f"{p} {v:.2f}" for p, v in r["phases"].items()),
                          flush=True)
        report(times)
        for name, src in a.tree if a.importtime else []:
            args = [str(video), "--checkpoint", str(ckpt), "--out", str(tmp / f"out_{name}"), "--overwrite"]
            print(f"\n{name}: costliest imports by beenet before the first frame (cumulative, one run, -X importtime)")
            for seconds, module in importtime(src, args, stamp, a.importtime):
                print(f"  {seconds:6.3f} s  {module}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
