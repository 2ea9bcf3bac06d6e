"""``beenet predict``: per-person emotions over time from videos, as tables and pictures."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from beenet.inference.pose import (
    DETECTORS,
    POSE_BACKENDS,
    POSE_CHOICES,
    parse_pose_option,
    resolve_backend_name,
)

log = logging.getLogger(__name__)

DESCRIPTION = """\
Find every person in each video, follow them over time, and predict per person and time window
the 26 BoLD emotion categories (scores in [0, 1]) and valence / arousal / dominance (BoLD scale,
about 1..10) with a trained beenet checkpoint.

INPUT may be:
  a video file                 people and joints come from the pose backend (--pose)
  a folder                     every video under it (recursively)
  a BoLD joints file X.npy     precomputed OpenPose-18 joints; the video is X.mp4 beside it
                               (or, in the BoLD layout, joints/... -> videos/...)
  an OpenPose JSON folder      per-frame *_keypoints.json (COCO-18 or BODY_25); the video is
                               <folder>.mp4 beside it, or the one video inside it

For each video, in --out (<stem>: the video's path below the folder given, or its file name,
without the suffix; _2, _3 ... when two videos would share a file; a repeated input is done once):
  <stem>.csv / .json / .parquet  one row per person and window (--format); a CSV has its
                                 metadata (model, checkpoint sha256, ...) in <stem>.meta.json
  <stem>_timeline.png            per person: category heat map over time and VAD curves
  <stem>_annotated.mp4           with --video: skeleton, box, id, top-3 emotions, VAD bars
  <stem>_frames.csv (.json ...)  with --per-frame: one row per person and frame they were
                                 detected (or interpolated) in: video, frame, time_s, person_id,
                                 confidence, box_*, interpolated, and the scores of the window
                                 covering the frame (nearest window centre where they overlap)
  <stem>_keypoints.npy           with --save-keypoints: the joints in BoLD's format; give it back
                                 with --keypoints (or as X.npy beside X.mp4) to skip pose

A video with nobody in it gives empty tables (header only), exit 0, and a note. Still images
are refused (make a video of them). A video whose outputs all exist is skipped (--overwrite).
Under torchrun (WORLD_SIZE, RANK) each rank takes every WORLD_SIZE-th video and writes
predict_summary.rank<R>-of-<W>.json.

Columns: video, person_id, start_frame, end_frame (inclusive), start_s, end_s, box_x, box_y,
box_w, box_h (pixels, around the person's joints in the window), the 26 categories,
valence, arousal, dominance, and with --streams '<stream>.<label>' per model stream.
See docs/predict.md for the details.

A failure of one video of any kind (bad file, full disk, out of memory) is printed with its file
and the others are still processed; predict_summary.json is rewritten after every video.
A model trained on 'beenet synth' data (the demo's) is said so once: its scores on real video
are not meaningful. Every table's metadata records what the model was trained on (trained_on) and
the settings that made it (pose backend and options, tracker, window, stride, engine, sampling).

Setup errors are found once, before any video is opened, and exit 2 with one message that names
what is missing and the command that fixes it: a checkpoint that does not exist, a pose backend
that is not installed or cannot start, pyarrow missing for --format parquet, an --out that cannot
be written.
Exit status: 0 when every input was processed, 1 when some failed or the checkpoint cannot be
used (damaged, not a beenet checkpoint), 2 for a usage or setup error, 130 when interrupted.
"""

EPILOG = """\
examples:
  beenet predict talk.mp4 --checkpoint runs/demo/best.pt --out preds
  beenet predict clips/ --checkpoint best.pt --out preds --format csv,parquet --video
  beenet predict BOLD_public/joints/003/x.mp4/0114.npy --checkpoint best.pt --out preds
  beenet predict talk.mp4 --checkpoint model.onnx --engine onnx --window 2 --stride 1
  beenet predict talk.mp4 --checkpoint a.pt --out p1 --per-frame --save-keypoints
  beenet predict talk.mp4 --checkpoint b.pt --out p2 --keypoints p1/talk_keypoints.npy
  torchrun --nproc_per_node 4 -m beenet predict clips/ --checkpoint best.pt --out preds
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    from beenet.context.build import PREDICT_CONTEXTS
    from beenet.inference.engines import ENGINES
    from beenet.inference.table import FORMATS

    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, folders of videos, joints .npy, OpenPose JSON folders")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a 'beenet train' checkpoint (.pt) or an exported .onnx")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", default="csv", metavar="FMT[,FMT]",
                   help=f"table formats, comma separated: {', '.join(FORMATS)} (default: csv)")
    p.add_argument("--video", action="store_true", help="also write the annotated <stem>_annotated.mp4")
    p.add_argument("--window", type=float, default=4.0, metavar="SECONDS", help="window length (default 4)")
    p.add_argument("--stride", type=float, default=2.0, metavar="SECONDS", help="step between windows (default 2)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs (default auto)")
    p.add_argument("--engine", default="torch", choices=tuple(ENGINES), help="PyTorch or ONNX Runtime (default torch)")
    p.add_argument("--pose", default="auto", choices=POSE_CHOICES,
                   help="pose backend for plain videos: mediapipe (offline, several people), mediapipe-single "
                        "(offline, one person), rcnn (torchvision Keypoint R-CNN, downloads its weights once), "
                        "auto = mediapipe when installed (default)")
    # Old spellings of --pose-option detector=... / tiles=..., kept working, not shown.
    p.add_argument("--pose-detector", default=None, choices=DETECTORS, help=argparse.SUPPRESS)
    p.add_argument("--pose-tiles", type=int, default=None, metavar="N", help=argparse.SUPPRESS)
    p.add_argument("--pose-option", action="append", default=[], type=parse_pose_option, metavar="KEY=VALUE",
                   help="an option of the pose backend, repeatable, e.g. --pose-option hog_every=2, "
                        "--pose-option motion=false, --pose-option detector=blazepose or --pose-option tiles=2 "
                        "(mediapipe's are listed in docs/predict.md, 'Pose backends')")
    p.add_argument("--streams", action="store_true", help="add each model stream's scores as '<stream>.<label>' columns")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="(person, window) items per model call (default 8)")
    p.add_argument("--stills", type=int, default=1, metavar="K",
                   help="still-frame models: average K stills per window (default 1: the middle frame)")
    p.add_argument("--min-presence", type=float, default=0.25, metavar="F",
                   help="score a person in a window only when present in this fraction of its frames (default 0.25)")
    p.add_argument("--per-frame", action="store_true",
                   help="also write <stem>_frames.csv (and _frames.<fmt> per --format): one row per person and frame")
    p.add_argument("--save-keypoints", action="store_true",
                   help="also write <stem>_keypoints.npy (BoLD joints): predict VIDEO --keypoints FILE reuses it, no pose")
    p.add_argument("--keypoints", metavar="FILE",
                   help="precomputed joints for the one video given (a BoLD joints .npy such as a "
                        "<stem>_keypoints.npy, or an OpenPose JSON folder): no pose backend runs")
    p.add_argument("--overwrite", action="store_true",
                   help="redo videos whose outputs all exist already (default: skip them)")
    p.add_argument("--context", default="auto", choices=PREDICT_CONTEXTS,
                   help="models fused with expert context: the experts of the checkpoint (auto) or Places365 + COCO")
    p.add_argument("--html", action="store_true", help="also write the interactive pages: --out/index.html (see 'beenet view')")
    _tracking_arguments(p)
    return p


def _pose_every(value: str) -> int | str:
    """``--pose-every``: ``auto`` or a whole number >= 1."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 1, got {value!r}")
    return n


def _tracking_arguments(p: argparse.ArgumentParser) -> None:
    """Who counts as a person, and how often pose runs (see docs/predict.md, "Tracking")."""
    from beenet.inference.predictor import MAX_GAP_S, MIN_CONFIDENCE, MIN_HITS, MIN_TRACK_S, POSE_RATE_HZ, RELINK_S

    g = p.add_argument_group("tracking")
    g.add_argument("--pose-every", type=_pose_every, default="auto", metavar="N|auto",
                   help=f"run pose on every N-th frame only (and each shot's first, and every frame while a new "
                        f"person is confirmed); the frames between are interpolated within each track. auto "
                        f"(default): about {POSE_RATE_HZ:g} poses a second (every 2nd frame at 10 fps, 5th at "
                        f"25, 6th at 30); 1: every frame")
    g.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE, metavar="F",
                   help=f"drop a person whose mean detection score is below F (default {MIN_CONFIDENCE:g})")
    g.add_argument("--min-hits", type=int, default=MIN_HITS, metavar="N",
                   help=f"a person counts after N detections in a row (default {MIN_HITS})")
    g.add_argument("--min-track", type=float, default=MIN_TRACK_S, metavar="SECONDS",
                   help=f"drop a person seen for less than this (default {MIN_TRACK_S:g})")
    g.add_argument("--max-gap", type=float, default=MAX_GAP_S, metavar="SECONDS",
                   help=f"a person missed for longer than this gets a new id when seen again; shorter gaps are "
                        f"interpolated (default {MAX_GAP_S:g}; crowds where people hide behind each other: "
                        f"1, see docs/predict.md 'Tracking')")
    g.add_argument("--relink", type=float, default=RELINK_S, metavar="SECONDS",
                   help=f"a person seen again within this long after their id ended (hidden behind someone), "
                        f"close to where they were and in the same clothes' colours, keeps their id; the gap "
                        f"stays empty (default {RELINK_S:g}; 0: never)")


def parse_formats(text: str) -> list[str]:
    from beenet.inference.table import FORMATS

    fmts = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if not fmts or bad:
        raise ValueError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma separated)")
    return list(dict.fromkeys(fmts))


SUMMARY = "predict_summary.json"
#: Hidden folders in --out where one video's files are written before they are moved into place.
STAGE_PREFIX = ".beenet-predict-"


def clear_own_stages(out: Path) -> None:
    """Remove this process's staging folders (an interrupt can land between making one and the
    ``finally`` that removes it, or inside that removal)."""
    for d in out.glob(f"{STAGE_PREFIX}{os.getpid()}-*.tmp"):
        shutil.rmtree(d, ignore_errors=True)


def clear_stale_stages(out: Path) -> None:
    """Remove staging folders left by a predict that was killed (its process is gone)."""
    for d in out.glob(f"{STAGE_PREFIX}*.tmp"):
        try:
            pid = int(d.name[len(STAGE_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def output_endings(formats: list[str], video: bool, per_frame: bool = False,
                   keypoints: bool = False) -> list[str]:
    """What ``beenet predict`` appends to a video's stem to name each file it writes."""
    ends = [f".{f}" for f in formats]
    if "csv" in formats:
        ends.append(".meta.json")  # the CSV's metadata sidecar (table.meta_sidecar)
    if per_frame:
        ends += [f"_frames.{f}" for f in formats]
        if "csv" in formats:
            ends.append("_frames.meta.json")
    ends.append("_timeline.png")
    if video:
        ends.append("_annotated.mp4")
    if keypoints:
        ends.append("_keypoints.npy")
    return ends


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` under torchrun (``RANK`` / ``WORLD_SIZE``), else ``(0, 1)``."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def ranks_done(out: Path, world: int) -> bool:
    """Whether every rank's summary in ``out`` says ``done`` (each rank saves its own before it
    asks, so of ranks finishing together the last to ask sees them all)."""
    for r in range(world):
        try:
            if json.loads((out / summary_name(r, world)).read_text(encoding="utf-8")).get("status") != "done":
                return False
        except (OSError, ValueError):
            return False
    return True


def summary_name(rank: int, world: int) -> str:
    """``predict_summary.json``; under torchrun each rank writes its own,
    ``predict_summary.rank<R>-of-<W>.json`` (no rank waits for another)."""
    return SUMMARY if world == 1 else f"predict_summary.rank{rank}-of-{world}.json"


#: How to install each pose backend (what a setup error about it tells the user to run).
POSE_INSTALL: dict[str, str] = {name: backend.install_hint for name, backend in POSE_BACKENDS.items()}
#: How to get each table writer that is not always installed.
WRITER_INSTALL: dict[str, tuple[str, str]] = {"parquet": ("pyarrow.parquet", "pip install 'beenet[parquet]'")}
#: What a checkpoint that does not exist can be replaced with.
CHECKPOINT_HINT = ("give the path of a 'beenet train' checkpoint (RUN/best.pt), an exported folder or a "
                   "Hub id; to make one offline: beenet demo --out beenet-demo  (then --checkpoint "
                   "beenet-demo/run/best.pt; trained on synthetic stick figures, it only shows that "
                   "the pipeline runs)")


class SetupError(Exception):
    """Something predict needs is missing: exit 2 with this one message, before any work."""


def check_writers(formats: list[str]) -> None:
    """Every --format can be written here (the optional ones need their package)."""
    import importlib

    for fmt in formats:
        if fmt not in WRITER_INSTALL:
            continue
        module, fix = WRITER_INSTALL[fmt]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SetupError(f"--format {fmt} needs the {module.split('.')[0]} package, which is not installed "
                             f"({exc}); install it: {fix}  (or leave {fmt} out of --format)") from None


def check_checkpoint(text: str) -> Path:
    """The checkpoint as a local path (a Hub id fetched or found in the cache), or a SetupError
    when it names nothing that exists."""
    from beenet.errors import CheckpointError
    from beenet.artifacts.pretrained import resolve_checkpoint

    try:
        return resolve_checkpoint(text)
    except CheckpointError as exc:
        raise SetupError(f"--checkpoint: {exc}; {CHECKPOINT_HINT}") from None


def pose_options(args: argparse.Namespace) -> dict:
    """The ``--pose-option`` options given (the backend's defaults for the others); the old flags
    ``--pose-detector X`` and ``--pose-tiles N`` are the options ``detector`` and ``tiles``."""
    flags = {k: v for k, v in {"detector": args.pose_detector, "tiles": args.pose_tiles}.items() if v is not None}
    options = dict(flags)
    for key, value in getattr(args, "pose_option", None) or []:
        if key in flags and flags[key] != value:
            raise SetupError(f"--pose-option {key}={value} contradicts --pose-{key.replace('_', '-')} {flags[key]}")
        options[key] = value  # given twice: the last one counts, as with any repeated flag
    return options


def check_pose(predictor: object, jobs: list) -> None:
    """Build and start the pose backend once, when some input needs it (no precomputed joints)."""
    from beenet.inference.predictor import PoseBackendError

    if not any(j.error is None and j.duplicate_of is None and j.keypoints is None for j in jobs):
        return
    try:
        predictor.check_pose()  # type: ignore[attr-defined]
    except PoseBackendError as exc:
        name = resolve_backend_name(exc.backend)
        if not exc.install:  # a wrong option: installing or another backend will not fix it
            raise SetupError(f"{exc} (--pose-option)") from None
        fix = POSE_INSTALL.get(name)
        others = [c for c in POSE_INSTALL if c != name]
        tail = f"; fix: {fix}" if fix else ""
        raise SetupError(f"{exc}{tail}; or choose another backend with --pose {'/'.join(others)}") from None


def check_out(out: Path) -> str | None:
    """None when ``out`` can be created and written, else why not (found once, before any work)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=".beenet-probe-", dir=out))
        try:
            (probe / "probe").write_bytes(b"\n")
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (links followed) lies inside the resolved folder ``root``."""
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def describe_failure(exc: BaseException) -> str:
    """One line for a per-video failure of any kind."""
    from beenet.errors import BeenetError

    if isinstance(exc, BeenetError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError); try a smaller --batch-size, a shorter --window or --device cpu"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc} (unexpected; run 'beenet -v predict ...' for the traceback and report it)"


class Summary:
    """``predict_summary.json``, rewritten atomically after every input, so a batch that is
    interrupted (or killed) still has one; ``status`` is running, done or interrupted."""

    def __init__(self, path: Path, checkpoint: str, metadata: dict[str, object]) -> None:
        self.path = path
        self.doc: dict[str, object] = {"checkpoint": checkpoint, **metadata, "status": "running",
                                       "videos": [], "failures": [], "duplicates": [],
                                       "skipped": []}
        self.write_error: str | None = None

    def add(self, key: str, entry: dict[str, object]) -> None:
        self.doc[key].append(entry)  # type: ignore[union-attr]
        self.save()

    def save(self, status: str | None = None) -> None:
        from beenet.atomic import write_json

        if status is not None:
            self.doc["status"] = status
        try:
            write_json(self.path, self.doc)
        except OSError as exc:
            if self.write_error is None:
                print(f"beenet predict: warning: cannot write {self.path}: {exc.strerror or exc}", file=sys.stderr)
            self.write_error = exc.strerror or str(exc)
        else:
            self.write_error = None


def publish(stage: Path, out: Path, root: Path) -> list[Path]:
    """Move every file written under ``stage`` to the same place under ``out`` (each checked to
    lie inside ``out``); returns the final paths."""
    moved = []
    for f in sorted(p for p in stage.rglob("*") if p.is_file()):
        dest = out / f.relative_to(stage)
        if not inside(root, dest.parent) or not inside(root, dest):
            raise OSError(f"refusing to write {dest}: it lies outside --out {out} (a symbolic link?)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
        moved.append(dest)
    return moved


def run(args: argparse.Namespace) -> int:
    from beenet.errors import BeenetError, caused_by_interrupt
    from beenet.inference.frames import frames_table, save_keypoints
    from beenet.inference.inputs import resolve_inputs, shard
    from beenet.inference.predictor import Predictor
    from beenet.inference.render import render_timeline, render_video

    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        print(f"beenet predict: error: {exc}", file=sys.stderr)
        return 2
    if args.window <= 0 or args.stride <= 0 or args.batch_size < 1 or args.stills < 1:
        print("beenet predict: error: --window, --stride must be > 0 and --batch-size, --stills >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    # Setup errors, found once before any video is opened: one message, exit 2.
    predictor = None
    try:
        check_writers(formats)
        checkpoint = check_checkpoint(args.checkpoint)
        why = check_out(out)
        if why is not None:
            raise SetupError(f"--out {out}: cannot create or write this folder ({why}); choose another --out")
        root = out.resolve()
        clear_stale_stages(out)
        endings = output_endings(formats, args.video, args.per_frame, args.save_keypoints)
        rank, world = distributed_rank()
        all_jobs = resolve_inputs(list(args.inputs), outputs=endings,
                                  reserved=(SUMMARY, summary_name(rank, world)))
        if args.keypoints is not None:
            runnable = [j for j in all_jobs if j.error is None and j.duplicate_of is None]
            if len(all_jobs) != 1 or len(runnable) != 1:
                raise SetupError(f"--keypoints {args.keypoints} belongs to one video, but the inputs hold "
                                 f"{len(all_jobs)}; give one video with its keypoints")
            if not Path(args.keypoints).exists():
                raise SetupError(f"--keypoints {args.keypoints}: no such file or folder")
            runnable[0].keypoints = Path(args.keypoints)
        jobs = shard(all_jobs, rank, world)
        predictor = Predictor(
            checkpoint, device=args.device, engine=args.engine, pose=args.pose, window=args.window,
            stride=args.stride, batch_size=args.batch_size, streams=args.streams, stills=args.stills,
            min_presence=args.min_presence, context=args.context,
            pose_every=args.pose_every, min_confidence=args.min_confidence, min_hits=args.min_hits,
            min_track=args.min_track, max_gap=args.max_gap, relink=args.relink, pose_options=pose_options(args),
        )
        check_pose(predictor, jobs)
    except SetupError as exc:
        if predictor is not None:
            predictor.close()
        print(f"beenet predict: error: {exc}", file=sys.stderr)
        return 2
    if world > 1:
        print(f"rank {rank} of {world}: {sum(j.error is None and j.duplicate_of is None for j in jobs)} of "
              f"{sum(j.error is None and j.duplicate_of is None for j in all_jobs)} videos")
    warning = next((w for w in (predictor.take_synthetic_warning(j.video) for j in jobs if j.error is None) if w),
                   None)
    if warning is not None:
        print(f"warning: {warning}")
    summary = Summary(out / summary_name(rank, world), str(args.checkpoint),
                      {**predictor.metadata, "rank": rank, "world_size": world})
    summary.save()
    done = failed = repeated = skipped = 0

    def fail(source: str, message: str) -> None:
        nonlocal failed
        failed += 1
        print(f"FAILED {source}: {message}", file=sys.stderr)
        summary.add("failures", {"input": source, "error": message})

    try:
        for job in jobs:
            if job.error is not None:
                fail(job.source, job.error)
                continue
            if job.duplicate_of is not None:
                repeated += 1
                print(f"skipped {job.source}: the same video as {job.duplicate_of.source} (done once)")
                summary.add("duplicates", {"input": job.source, "same_as": job.duplicate_of.source})
                continue
            if not args.overwrite and all((out / f"{job.stem}{e}").is_file() for e in endings):
                skipped += 1
                print(f"skipped {job.source}: its outputs exist in {out} (--overwrite to redo)")
                summary.add("skipped", {"input": job.source, "video": str(job.video),
                                        "outputs": [f"{job.stem}{e}" for e in endings]})
                continue
            t0 = time.perf_counter()
            stage: Path | None = None
            try:
                outside = [e for e in endings if not inside(root, out / f"{job.stem}{e}")]
                if outside:
                    raise BeenetError(f"{out / (job.stem + outside[0])} would lie outside --out {out} "
                                      "(a symbolic link inside it?); nothing written for this video")
                # Everything is written to a hidden folder inside --out, then moved into place: a
                # video that fails leaves neither partial files nor a half-replaced earlier result.
                stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", suffix=".tmp", dir=out))
                (stage / job.stem).parent.mkdir(parents=True, exist_ok=True)
                result = predictor.run(job.video, job.keypoints, name=job.name)
                for fmt in formats:
                    result.table.write(stage / f"{job.stem}.{fmt}", fmt)
                if args.per_frame:
                    per_frame = frames_table(result)
                    for fmt in formats:
                        per_frame.write(stage / f"{job.stem}_frames.{fmt}", fmt)
                if args.save_keypoints:
                    save_keypoints(result, stage / f"{job.stem}_keypoints.npy")
                render_timeline(result.table, stage / f"{job.stem}_timeline.png",
                                duration_s=result.num_frames / result.fps, title=job.name)
                if args.video:
                    render_video(result, stage / f"{job.stem}_annotated.mp4")
                written = publish(stage, out, root)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                if caused_by_interrupt(exc):
                    raise KeyboardInterrupt() from exc
                log.debug("%s failed", job.source, exc_info=True)
                fail(job.source, describe_failure(exc))
                continue
            finally:
                if stage is not None:
                    shutil.rmtree(stage, ignore_errors=True)
            seconds = time.perf_counter() - t0
            duration = result.num_frames / result.fps if result.fps else 0.0
            done += 1
            entry: dict[str, object] = {
                "video": str(job.video), "input": job.source,
                "outputs": [p.relative_to(out).as_posix() for p in written],
                "people": result.stats.get("people", 0), "windows": len(result.table),
                "seconds": round(seconds, 3),
                "realtime_factor": round(seconds / duration, 3) if duration else None}
            if result.note:
                entry["note"] = result.note
            summary.add("videos", entry)
            note = f" (note: {result.note})" if result.note else ""
            people = result.stats.get("people", 0)
            print(f"ok {job.video}: {people} {'person' if people == 1 else 'people'}, {len(result.table)} windows, "
                  f"{seconds:.1f} s for {duration:.1f} s of video{note} -> {', '.join(p.name for p in written)}")
    except KeyboardInterrupt:
        clear_own_stages(out)
        summary.save("interrupted")
        print(f"interrupted: {done} of {len(jobs)} inputs done, {failed} failed; summary in {summary.path}",
              file=sys.stderr)
        return 130
    finally:
        predictor.close()
    summary.save("done")
    extra = f", {repeated} repeated input(s) done once" if repeated else ""
    if skipped:
        extra += f", {skipped} skipped (outputs exist; --overwrite to redo)"
    share = f" (rank {rank} of {world})" if world > 1 else ""
    print(f"{done} of {done + failed} inputs done{share}, {failed} failed{extra}; results in {out}")
    if args.html:
        if world == 1 or ranks_done(out, world):  # under torchrun the last rank to finish writes it
            from beenet.view import write_results_view

            print(f"view: {write_results_view(out)} (open it in a browser, or 'beenet view {out} --serve')")
        else:
            print("view: the last rank to finish writes it (or run 'beenet view' on the folder)")
    if summary.write_error is not None:
        print(f"beenet predict: error: {summary.path} could not be written ({summary.write_error})", file=sys.stderr)
        return 1
    return 1 if failed else 0
