"""``beenet prepare`` at 720p: clips/s and peak memory (RSS) per worker, and BoLD's projected hours.

Writes ``--clips`` synthetic clips (``beenet synth``) of ``--frames`` frames at ``--size``
(default 1280x720, BoLD's largest) and runs ``prepare`` on them with ``--workers`` worker
processes, in a child process of its own so that this process's memory is not counted. While it
runs, every process under that child is watched (``VmHWM`` of ``/proc/PID/status``: the peak
resident set, polled every 0.1 s), so the peak RSS of each worker is measured, not inferred.

Reported: clips/s and decoded frames/s per worker (the run's rate divided by the workers), the
peak RSS of each worker, and BoLD's projected prepare hours with 16 workers: 9,876 clips of ~167
frames at this per-worker frame rate (linear in workers: each worker needs a core of its own).

The default workload is the paper preset with the synthetic sidecar as context (nothing is
downloaded, no expert runs), body crops on and per-frame context targets (every stored frame
labelled): what a BoLD cache for the paper recipe holds. ``--context places365`` runs the
Places365 expert (random weights, on the CPU) on every stored frame instead, as prepare does
on a GPU node (there on the GPU: expect it faster).

Example:
    python benchmarks/bench_prepare.py --clips 6 --workers 2
    python benchmarks/bench_prepare.py --clips 3 --workers 1 --context places365
The machine it runs on matters: say which, and whether it was shared, with the numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

#: BoLD's release: clips and frames a clip (the mean, from the review of the release).
BOLD_CLIPS = 9876
BOLD_FRAMES_PER_CLIP = 167


def _status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (``/proc/PID/stat``)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Watch(threading.Thread):
    """Polls the peak RSS (VmHWM, kB) and CPU time of a process and of its children until stopped."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak: dict[int, int] = {}
        self.kind: dict[int, str] = {}
        self.cpu: dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for pid in [self.pid, *_children(self.pid)]:
                hwm = _status_kb(pid, "VmHWM")
                if hwm is None:
                    continue
                self.peak[pid] = max(hwm, self.peak.get(pid, 0))
                cpu = _cpu_seconds(pid)
                if cpu is not None:
                    self.cpu[pid] = max(cpu, self.cpu.get(pid, 0.0))
                if pid not in self.kind:
                    cmd = _cmdline(pid)
                    self.kind[pid] = ("main" if pid == self.pid else
                                      "tracker" if "resource_tracker" in cmd else "worker")
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _prepare_child(data: str, out: str, preset: str, overrides: list[str], workers: int, queue) -> None:
    """Runs in a spawned process: prepare, then send back (seconds, clips, decoded frames, stored frames)."""
    import torch

    torch.set_num_threads(1)
    os.environ["BEENET_NO_PROGRESS"] = "1"
    from beenet.data.prepared import prepare, read_header
    from beenet.run_config import load_config, prepare_settings

    cfg = load_config(preset, overrides)
    res = prepare(prepare_settings(cfg), data, out, workers=workers, show_progress=False)
    decoded = stored = 0
    for f in sorted((res.path / "clips").rglob("*.frames")):
        header, _ = read_header(f)
        decoded += int(header["num_frames"])
        stored += len(header["frames"])
    queue.put({"seconds": res.seconds, "clips": res.prepared, "failed": len(res.failed), "decoded": decoded,
               "stored": stored, "bytes": res.bytes})


def _baseline_child(queue) -> None:
    """Runs in a spawned process: what a worker holds before its first clip (beenet's prepare and
    torch imported, nothing decoded)."""
    import beenet.data.prepared.build  # noqa: F401 - what a worker imports

    import cv2  # noqa: F401 - the JPEG encoder, imported at the first frame

    queue.put(_status_kb(os.getpid(), "VmHWM"))


def baseline_mb() -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_baseline_child, args=(queue,))
    proc.start()
    kb = queue.get()
    proc.join()
    return kb / 1024


def measure(data: Path, out: Path, preset: str, overrides: list[str], workers: int) -> dict:
    """One prepare run in a child process, watched: its figures and each process's peak RSS (MB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_prepare_child, args=(str(data), str(out), preset, overrides, workers, queue))
    proc.start()
    watch = Watch(proc.pid)
    watch.start()
    result = queue.get()
    watch.stop()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"prepare child exited with {proc.exitcode}")
    pids = [p for p in sorted(watch.peak) if watch.kind.get(p) == "worker"] or [proc.pid]  # none: ran in the child
    result["worker_rss_mb"] = [watch.peak[p] / 1024 for p in pids]
    result["worker_cpu_s"] = sum(watch.cpu.get(p, 0.0) for p in pids)
    result["main_rss_mb"] = watch.peak.get(proc.pid, 0) / 1024
    result["baseline_mb"] = baseline_mb()
    return result


def report(r: dict, workers: int) -> None:
    per_worker_clips = r["clips"] / r["seconds"] / workers
    per_worker_frames = r["decoded"] / r["seconds"] / workers
    cpu_frames = r["decoded"] / r["worker_cpu_s"]  # frames per CPU-second of the workers: a worker on a core of its own
    hours = BOLD_CLIPS * BOLD_FRAMES_PER_CLIP / (16 * per_worker_frames) / 3600
    hours_cpu = BOLD_CLIPS * BOLD_FRAMES_PER_CLIP / (16 * cpu_frames) / 3600
    print(f"prepared {r['clips']} clips ({r['failed']} failed), {r['decoded']} frames decoded, "
          f"{r['stored']} stored, {r['bytes'] / 1e6:.1f} MB, in {r['seconds']:.1f}s with {workers} worker(s)")
    print(f"per worker: {per_worker_clips:.3f} clips/s, {per_worker_frames:.1f} decoded frames/s (wall clock); "
          f"{cpu_frames:.1f} frames per CPU-second ({r['worker_cpu_s']:.1f} CPU-s in the workers, with start-up)")
    print("peak RSS per worker (MB): " + ", ".join(f"{x:.0f}" for x in r["worker_rss_mb"])
          + f"   (max {max(r['worker_rss_mb']):.0f}; target <= 600)")
    print(f"a worker before its first clip (torch, beenet, cv2 imported): {r['baseline_mb']:.0f} MB; "
          f"growth while preparing: {max(r['worker_rss_mb']) - r['baseline_mb']:.0f} MB")
    if workers > 1:
        print(f"peak RSS of the parent process: {r['main_rss_mb']:.0f} MB")
    print(f"projected BoLD prepare ({BOLD_CLIPS} clips x ~{BOLD_FRAMES_PER_CLIP} frames, 16 workers at this "
          f"per-worker rate): {hours:.2f} h at the wall-clock rate, {hours_cpu:.2f} h at the CPU-time rate "
          "(a core a worker, no contention)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--frames", default="160-175", metavar="MIN-MAX", help="frames a clip (default 160-175)")
    ap.add_argument("--size", default="1280x720", metavar="WxH")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--config", default="paper")
    ap.add_argument("--context", choices=["sidecar", "places365"], default="sidecar")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--data", default=None, metavar="DIR", help="an existing (synthetic) BoLD folder to reuse")
    args = ap.parse_args(argv)

    from beenet.data.synth import SynthConfig, generate

    width, height = (int(x) for x in args.size.lower().split("x"))
    fmin, fmax = (int(x) for x in args.frames.split("-"))
    overrides = ["model.pretrained=false", "context.pretrained=false", "context.targets=frame",
                 "data.body_crop=true", "run.device=cpu", f"context.source={args.context}", *args.overrides]
    print(f"{os.cpu_count()} CPUs, 1 torch thread a worker; config {args.config} + {' '.join(overrides)}")
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else work / "synth"
        if not args.data:
            t0 = time.perf_counter()
            generate(data, SynthConfig(num_clips=args.clips, seed=0, width=width, height=height,
                                       min_frames=fmin, max_frames=fmax), show_progress=False)
            print(f"synthesised {args.clips} clips at {width}x{height} in {time.perf_counter() - t0:.1f}s")
        if args.context == "places365":
            overrides.append(f"context.cache_dir={work / 'context-cache'}")
        r = measure(data, work / "prepared", args.config, overrides, args.workers)
        report(r, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
