"""People found and followed on the footage benchmark, for named configurations side by side.

Reads ``benchmarks/footage/manifest.json`` (the clips, fetched by ``benchmarks/footage/fetch.sh``)
and the hand-made truth ``benchmarks/footage/truth/*.json`` (``--truth DIR``; one file per clip:
sampled frames with a box per person, "tiny" people, shot cuts, identities). Each clip runs under
each ``--config NAME=KEY=VALUE,KEY=VALUE`` in a fresh process, through pass 1 of ``beenet
predict`` (:func:`beenet.inference.people.track_people` with the backend ``make_pose_backend``
builds from the options, as the Predictor does), and prints per clip and overall:

- recall: people who count (not tiny) matched by a tracked person's box on the sampled frames (IoU
  >= 0.3 or each box holds the other's centre, greedy one-to-one: ``people_metrics.py``);
- false: boxes matching nobody, on clips with people and, apart, on the person-free clips;
- ids/person (distinct track ids matched to one true person over the clip), switches (a
  person's matched id changes between two consecutive frames where they are matched, within a
  shot), shared (track ids matched to two true persons) and IDF1, on clips whose truth follows
  identities;
- wall/video: pass-1 seconds per second of video (under 0.5 is 2x faster than real time),
  start-up: process start to the first frame decoded (imports, model files loaded, video opened),
  and the share of pass-1 time per stage (StageTimer: decode = waiting for the decode thread).

Keys of a config are ``--pose-option``s of the backend (``detector=...``) except ``backend=NAME``
(default auto), ``src=PATH`` (run this config with another checkout's code, e.g. a ``git worktree``
of the commit before a change: old and new code side by side in one run) and the tracking settings (``pose_every=N``, ``min_hits``, ``max_gap``, ... of
TrackingConfig). ``default=`` (nothing after the ``=``) is the current default. Clips with
"held_out": true in their truth are scored on a separate overall line.

    bash benchmarks/footage/fetch.sh
    PYTHONPATH=src python benchmarks/bench_people.py --config default= --config every1=pose_every=1 \\
        --markdown /tmp/people.md
    PYTHONPATH=src python benchmarks/bench_people.py --clips vtest.avi,bikes.mp4 --max-seconds 20 \\
        --config default= --config new=detector=ssd --truth ../h22t/benchmarks/footage/truth
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from people_metrics import ClipScore, add_up, score_clip

REPO = Path(__file__).resolve().parents[1]
FOOTAGE = REPO / "benchmarks" / "footage"
STAGES = ("pose_init", "decode", "shots", "pose", "track")


# -- configurations ---------------------------------------------------------------------------
def parse_config(text: str) -> tuple[str, dict]:
    """``NAME=K=V,K=V`` as (name, {"backend", "pose_options", "tracking"})."""
    from beenet.inference.pose import parse_pose_option  # lazy: the parent needs only the parser
    from beenet.inference.tracking_config import TrackingConfig  # lazy: as above

    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=KEY=VALUE,... (e.g. default= or new=detector=ssd)")
    tracking_keys = {f.name for f in dataclasses.fields(TrackingConfig)}
    cfg: dict = {"backend": "auto", "pose_options": {}, "tracking": {}}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        try:
            key, value = parse_pose_option(item)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"--config {name}: {exc}") from None
        if key == "backend":
            cfg["backend"] = str(value)
        elif key == "src":  # another checkout's code, e.g. the code before a change
            src = Path(str(value)).expanduser().resolve()
            src = src / "src" if (src / "src" / "beenet").is_dir() else src
            if not (src / "beenet").is_dir():
                raise argparse.ArgumentTypeError(f"--config {name}: src={value}: no beenet package there")
            cfg["src"] = str(src)
        elif key in tracking_keys:
            cfg["tracking"][key] = value
        else:
            cfg["pose_options"][key] = value
    return name, cfg


# -- one clip, one configuration, in its own process -------------------------------------------
class _Part:
    """A VideoReader seen as frames ``start..stop`` only, numbered from 0; notes when the first
    frame was decoded (``first``, wall clock)."""

    def __init__(self, reader, start: int, stop: int) -> None:
        self.reader, self.start, self.stop = reader, start, stop
        self.path, self.fps = reader.path, reader.fps
        self.num_frames = stop - start
        self.first: float | None = None

    def iter_frames(self):
        for i, frame in self.reader.iter_frames(self.start, self.stop):
            if self.first is None:
                self.first = time.time()
            yield i - self.start, frame


def worker(job: dict) -> dict:
    """Pass 1 on one clip; the boxes of the wanted frames and the times."""
    t_import = time.time()
    from beenet.inference.people import track_people  # lazy: timed as part of start-up
    from beenet.inference.pose import make_pose_backend  # lazy: as above
    from beenet.inference.timing import StageTimer  # lazy: as above
    from beenet.inference.tracking_config import TrackingConfig  # lazy: as above
    from beenet.media.video import VideoReader  # lazy: as above

    t_built = time.time()
    backend = make_pose_backend(job["backend"], device="cpu", **job["pose_options"])
    backend.reset()  # as Predictor.pose: model files load before the video
    t_ready = time.time()
    timer, stats = StageTimer(), {}
    with VideoReader(job["path"]) as reader:
        fps = float(reader.fps or 25.0)
        start = round(job["start_s"] * fps)
        stop = reader.num_frames if job["end_s"] is None else min(reader.num_frames, round(job["end_s"] * fps))
        part = _Part(reader, start, stop)
        t0 = time.perf_counter()
        store = track_people(part, backend, TrackingConfig(**job["tracking"]), timer, stats, show_progress=False)
        pass1 = time.perf_counter() - t0
    getattr(backend, "close", lambda: None)()
    # every frame's boxes, not only the truth's: --rescore then scores against truth sampled anew
    boxes, joint_boxes = _boxes_at(store, set(range(part.num_frames)), part.num_frames)
    return {"boxes": {str(f + start): b for f, b in boxes.items()},
            "joint_boxes": {str(f + start): b for f, b in joint_boxes.items()}, "frames": part.num_frames, "fps": fps,
            "first_frame": part.first, "t_import": t_import, "t_imported": t_built, "t_ready": t_ready,
            "pass1_s": pass1, "stages": dict(timer.t), "stats": stats, "backend": backend.name}


def _boxes_at(store, frames: set[int], n: int) -> tuple[dict[int, list], dict[int, list]]:
    """On each of ``frames``: ``[track id, [x0, y0, x1, y1]]`` of every tracked person, from the
    box pass 1 keeps (detected or interpolated) and from the extent of the person's joints."""
    from beenet.inference.pose import valid_mask  # lazy: the parent does not need it

    boxes: dict[int, list] = {f: [] for f in frames if 0 <= f < n}
    joint_boxes: dict[int, list] = {f: [] for f in boxes}
    for pid, rows in store.boxes().items():
        for f, (x, y, w, h) in rows.items():
            if f in boxes:
                boxes[f].append([pid, [x, y, x + w, y + h]])
    for pid, track in store.tracks().items():
        for f, found in joint_boxes.items():
            kp = track.keypoints[f]
            ok = valid_mask(kp)
            if track.present[f] and ok.any():
                (x0, y0), (x1, y1) = kp[ok, :2].min(axis=0), kp[ok, :2].max(axis=0)
                found.append([pid, [float(x0), float(y0), float(x1), float(y1)]])
    return boxes, joint_boxes


def run_job(job: dict, timeout: float) -> dict:
    """``worker(job)`` in a fresh Python (so start-up is a real one), timed from its spawn."""
    src = job.get("src") or str(REPO / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))
    t_spawn = time.time()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)
    t_end = time.time()
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["startup_s"] = (out["first_frame"] or t_end) - t_spawn
    out["python_s"] = out["t_import"] - t_spawn
    out["import_s"] = out["t_imported"] - out["t_import"]
    out["model_s"] = out["t_ready"] - out["t_imported"]
    out["process_s"] = t_end - t_spawn
    out["load"] = os.getloadavg()[0]  # other work on the machine: timings are comparable only under like load
    return out


# -- the benchmark ------------------------------------------------------------------------------
def load_truth(folder: Path) -> dict[str, dict]:
    """Truth per clip name, from every ``*.json`` in ``folder``."""
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        t = json.loads(path.read_text())
        frames = t.get("frames")
        if not isinstance(frames, dict):
            sys.exit(f"{path}: 'frames' must map frame numbers to lists of people")
        out[t.get("clip") or path.stem] = t
    return out


def person_free(clip: dict, truth: dict | None) -> bool:
    if truth is not None:
        return all(not people for people in truth["frames"].values())
    return "nobody" in clip.get("categories", [])


def plan(clip: dict, truth: dict | None, path: Path, name: str, cfg: dict, max_s: float | None) -> dict:
    start = float(clip.get("start_s", 0.0))
    end = clip.get("end_s")
    if max_s is not None:
        end = min(float(end) if end is not None else float("inf"), start + max_s)
        end = None if end == float("inf") else end
    frames = sorted(int(f) for f in truth["frames"]) if truth else []
    return {"clip": clip["name"], "config": name, "path": str(path), "start_s": start, "end_s": end,
            "frames": frames, **cfg}


BOX_KEY = "boxes"


def score(run: dict, truth: dict | None) -> ClipScore | None:
    if truth is None or "error" in run:
        return None
    dets = {int(f): [(int(pid), tuple(box)) for pid, box in b] for f, b in run[BOX_KEY].items()}
    return score_clip(truth, dets)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--config", action="append", type=parse_config, metavar="NAME=KEY=VALUE,...",
                    help="a configuration to run (repeatable; default: default=)")
    ap.add_argument("--manifest", type=Path, default=FOOTAGE / "manifest.json")
    ap.add_argument("--truth", type=Path, default=FOOTAGE / "truth", help="folder of truth files")
    ap.add_argument("--footage", type=Path, default=None,
                    help="where the clips are (default: $BEENET_TEST_FOOTAGE, else .footage/)")
    ap.add_argument("--clips", help="comma-separated clip names (default: all in the manifest)")
    ap.add_argument("--max-seconds", type=float, help="read at most this many seconds of each clip")
    ap.add_argument("--markdown", type=Path, help="also write the table as markdown here")
    ap.add_argument("--json", type=Path, help="also write every run's numbers as JSON here")
    ap.add_argument("--box", choices=("kept", "joints"), default="kept",
                    help="a person's box: the one pass 1 keeps (default) or the extent of their joints")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one clip may take (default 1800)")
    ap.add_argument("--sheets", type=Path, metavar="DIR",
                    help="write DIR/<clip>.<config>.png: the sampled frames with the truth and the boxes found")
    ap.add_argument("--rescore", type=Path, metavar="JSON",
                    help="score the runs a --json file kept (against the truth now) instead of running")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    global BOX_KEY
    BOX_KEY = "joint_boxes" if args.box == "joints" else "boxes"
    configs = args.config or [parse_config("default=")]
    if len({n for n, _ in configs}) != len(configs):
        ap.error("two --config have the same name")
    footage = args.footage or Path(os.environ.get("BEENET_TEST_FOOTAGE") or REPO / ".footage")
    clips = json.loads(args.manifest.read_text())["clips"]
    if args.clips:
        wanted = [c.strip() for c in args.clips.split(",") if c.strip()]
        unknown = set(wanted) - {c["name"] for c in clips}
        if unknown:
            ap.error(f"--clips: not in {args.manifest}: {', '.join(sorted(unknown))}")
        clips = [c for c in clips if c["name"] in wanted]
    for out in (args.markdown, args.json):  # made now, not after the runs: a missing folder would lose them
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
    truths = load_truth(args.truth)
    if args.rescore:
        kept = json.loads(args.rescore.read_text())
        kept = kept if "runs" in kept else {"configs": configs, "runs": kept}  # written before "configs" was kept
        configs = [(n, c) for n, c in kept["configs"]]
        args.max_seconds = kept.get("max_seconds", args.max_seconds)
        results = {tuple(k.split("|", 1)): r for k, r in kept["runs"].items()}
        clips = [c for c in clips if any(k[0] == c["name"] for k in results)]
    else:
        results = run_all(clips, configs, truths, footage, args.max_seconds, args.timeout)
    print("\n".join(report(results, clips, configs, truths)))
    if args.markdown:
        args.markdown.write_text(markdown(results, clips, configs, truths, args) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"configs": configs, "max_seconds": args.max_seconds,
                                         "runs": {f"{c}|{n}": r for (c, n), r in results.items()}}, indent=1, default=str))
    if args.sheets:
        sheets(results, clips, truths, footage, args.sheets)
    return 0


def sheets(results: dict, clips: list[dict], truths: dict, footage: Path, folder: Path) -> None:
    from people_sheets import write_sheet  # lazy: only --sheets draws

    for (clip, name), run in results.items():
        truth = truths.get(clip)
        if truth is not None and "error" not in run and any(k in run[BOX_KEY] for k in truth["frames"]):
            out = write_sheet(footage / clip, truth, run[BOX_KEY], folder / f"{clip}.{name}.png")
            print(f"sheet: {out}")


def run_all(clips: list[dict], configs: list, truths: dict, footage: Path, max_s: float | None,
            timeout: float) -> dict:
    results = {}
    for clip in clips:
        path = footage / clip["name"]
        for name, cfg in configs:
            if not path.is_file():
                results[(clip["name"], name)] = {"error": f"{path} missing: run bash benchmarks/footage/fetch.sh"}
                continue
            job = plan(clip, truths.get(clip["name"]), path, name, cfg, max_s)
            run = run_job(job, timeout)
            results[(clip["name"], name)] = run
            s = score(run, truths.get(clip["name"]))
            print(f"... {clip['name']} [{name}]: " + (run.get("error") or " ".join(_progress(run, s, clip, truths))),
                  file=sys.stderr, flush=True)
    return results


def _progress(run: dict, s: ClipScore | None, clip: dict, truths: dict) -> list[str]:
    cells = _cells(run, s, clip, truths)
    return [f"recall {cells[0]}", f"false {cells[1]}", f"wall/video {cells[6]}", f"start-up {cells[7]} s"]


# -- output ---------------------------------------------------------------------------------------
HEAD = ("recall", "false", "ids/person", "switches", "shared", "IDF1", "wall/video", "start-up s",
        "posed/frames", "stages (% of pass 1)")


def _pct(a: int, b: int) -> str:
    return f"{a / b:.0%} ({a}/{b})" if b else "-"


def _stages(stages: dict) -> str:
    total = sum(stages.get(k, 0.0) for k in STAGES)
    if total <= 0:
        return "-"
    return " ".join(f"{k} {stages.get(k, 0.0) / total:.0%}" for k in STAGES if stages.get(k, 0.0) / total >= 0.005)


def _cells(run: dict, s: ClipScore | None, clip: dict | None, truths: dict) -> list[str]:
    if "error" in run:
        return [f"error: {run['error']}"] + ["-"] * (len(HEAD) - 1)
    video_s = run["frames"] / run["fps"]
    ids = [s.ids_per_person, s.switches, s.shared_ids, s.idf1] if s is not None and s.identities else [None] * 4
    if s is not None and s.frames == 0:
        s = None  # no sampled frame analysed (truth made after the run, or beyond --max-seconds)
    return [
        _pct(s.found, s.people) if s is not None else "no truth" if clip is None or clip["name"] not in truths else "-",
        str(s.false) if s is not None else "-",
        *(("-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)) for v in ids),
        f"{run['pass1_s'] / video_s:.2f}",
        f"{run['startup_s']:.1f}",
        f"{run['stats'].get('posed_frames', 0)}/{run['frames']}",
        _stages(run["stages"]),
    ]


def _overall(results: dict, clips: list[dict], name: str, truths: dict, held_out: bool) -> list[str] | None:
    runs, scores, free = [], [], []
    for clip in clips:
        t = truths.get(clip["name"])
        if t is None or bool(t.get("held_out")) != held_out:
            continue
        run = results.get((clip["name"], name), {"error": "not run"})
        if "error" in run:
            continue
        s = score(run, t)
        runs.append(run)
        (free if person_free(clip, t) else scores).append(s)
    if not runs:
        return None
    tot = add_up(scores)
    video_s = sum(r["frames"] / r["fps"] for r in runs)
    stages: dict[str, float] = {}
    for r in runs:
        for k, v in r["stages"].items():
            stages[k] = stages.get(k, 0.0) + v
    worst = min((s.recall for s in scores if s.recall is not None), default=None)
    starts = sorted(r["startup_s"] for r in runs)
    ids = [tot.ids_per_person, tot.switches, tot.shared_ids, tot.idf1] if tot.identities else [None] * 4
    return [
        _pct(tot.found, tot.people) + (f", worst clip {worst:.0%}" if worst is not None else ""),
        f"{tot.false} (+{sum(s.false for s in free)} on {len(free)} person-free)",
        *(("-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)) for v in ids),
        f"{sum(r['pass1_s'] for r in runs) / video_s:.2f}",
        f"median {starts[len(starts) // 2]:.1f}",
        f"{sum(r['stats'].get('posed_frames', 0) for r in runs)}/{sum(r['frames'] for r in runs)}",
        _stages(stages),
    ]


def rows(results: dict, clips: list[dict], configs: list, truths: dict) -> list[list[str]]:
    out = []
    for clip in clips:
        t = truths.get(clip["name"])
        tag = " (held out)" if t and t.get("held_out") else " (nobody)" if person_free(clip, t) else ""
        for name, _ in configs:
            run = results.get((clip["name"], name), {"error": "not run"})
            out.append([clip["name"] + tag, name] + _cells(run, score(run, t), clip, truths))
    for held, label in ((False, "overall"), (True, "overall, held out")):
        for name, _ in configs:
            cells = _overall(results, clips, name, truths, held)
            if cells is not None:
                out.append([label, name] + cells)
    return out


def report(results: dict, clips: list[dict], configs: list, truths: dict) -> list[str]:
    table = [["clip", "config", *HEAD]] + rows(results, clips, configs, truths)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name, cfg in configs:
        lines.append(f"{name}: backend {cfg['backend']}, pose options {cfg['pose_options'] or '{}'}, "
                     f"tracking {cfg['tracking'] or '{}'}")
    starts = [r for r in results.values() if "error" not in r]
    if starts:
        r = starts[-1]
        lines.append(f"start-up of the last run: Python {r['python_s']:.1f} s, imports {r['import_s']:.1f} s, "
                     f"backend built and loaded {r['model_s']:.1f} s, to first frame {r['startup_s']:.1f} s")
        loads = [x["load"] for x in starts if "load" in x]
        if loads:
            lines.append(f"load average (1 min) at the end of each run: {min(loads):.1f} to {max(loads):.1f} "
                         f"on {os.cpu_count()} CPUs")
    return lines


def markdown(results: dict, clips: list[dict], configs: list, truths: dict, args: argparse.Namespace) -> str:
    head = ["clip", "config", *HEAD]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows(results, clips, configs, truths)]
    cfgs = "; ".join(f"`{n}`: backend {c['backend']}, pose options {c['pose_options'] or '{}'}, tracking "
                     f"{c['tracking'] or '{}'}" for n, c in configs)
    cap = f", at most {args.max_seconds:g} s a clip" if args.max_seconds else ""
    box = "the extent of the joints" if BOX_KEY == "joint_boxes" else "the box pass 1 keeps"
    return "\n".join(out) + (f"\n\nConfigurations: {cfgs}{cap}; a person's box: {box}. Measured with "
                              "benchmarks/bench_people.py.")


if __name__ == "__main__":
    sys.exit(main())
