"""``beenet predict``: per-person emotions over time from videos, as tables and pictures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from beenet.cli.argtypes import fraction, nonnegative_float, positive_float
from beenet.context.build import PREDICT_CONTEXTS
from beenet.errors import CheckpointError
from beenet.inference.batch import (
    Batch,
    BatchInterrupted,
    ConsoleReport,
    SetupError,
    check_writers,
    finish_batch,
    parse_formats,
    plan_batch,
    ranks_done,
    run_batch,
)
from beenet.inference.columns import FORMATS
from beenet.inference.engines import ENGINES
from beenet.inference.pose import DETECTORS, POSE_BACKENDS, POSE_CHOICES, parse_pose_option, resolve_backend_name
from beenet.inference.pose.early import PoseBuild
from beenet.inference.tracking_config import (
    LOOK_BACK_S,
    MAX_GAP_S,
    MIN_CONFIDENCE,
    MIN_HITS,
    MIN_TRACK_S,
    POSE_RATE_HZ,
    RELINK_S,
    TrackingConfig,
)

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.predictor import Predictor

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
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, folders of videos, joints .npy, OpenPose JSON folders")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a 'beenet train' checkpoint (.pt) or an exported .onnx")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--format", default="csv", metavar="FMT[,FMT]",
                   help=f"table formats, comma separated: {', '.join(FORMATS)} (default: csv)")
    p.add_argument("--video", action="store_true", help="also write the annotated <stem>_annotated.mp4")
    p.add_argument("--window", type=positive_float, default=4.0, metavar="SECONDS", help="window length (default 4)")
    p.add_argument("--stride", type=positive_float, default=2.0, metavar="SECONDS", help="step between windows (default 2)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="where the model runs: auto (cuda if available), cpu, cuda, cuda:N, mps, or any torch device "
                        "string (default auto)")
    p.add_argument("--engine", default="auto", choices=("auto", *ENGINES),
                   help="auto (default): ONNX Runtime on the CPU (a .pt runs as its ONNX export, made once and "
                        "cached; later runs load no torch), PyTorch on a GPU; or torch, or onnx")
    p.add_argument("--pose", default="auto", choices=POSE_CHOICES,
                   help="pose backend for plain videos: mediapipe (BlazePose on LiteRT, offline once its two model "
                        "files are fetched, several people), rcnn (torchvision Keypoint R-CNN, downloads its weights "
                        "once), auto = mediapipe when ai-edge-litert is installed (default)")
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
    p.add_argument("--min-presence", type=fraction, default=0.25, metavar="F",
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
    g = p.add_argument_group("tracking")
    g.add_argument("--pose-every", type=_pose_every, default="auto", metavar="N|auto",
                   help=f"run pose on every N-th frame only (and each shot's first, and every frame while a new "
                        f"person is confirmed); the frames between are interpolated within each track. auto "
                        f"(default): about {POSE_RATE_HZ:g} poses a second (every 2nd frame at 10 fps, 5th at "
                        f"25, 6th at 30); 1: every frame")
    g.add_argument("--min-confidence", type=fraction, default=MIN_CONFIDENCE, metavar="F",
                   help=f"drop a person whose mean detection score is below F (default {MIN_CONFIDENCE:g})")
    g.add_argument("--min-hits", type=int, default=MIN_HITS, metavar="N",
                   help=f"a person counts after N detections in a row (default {MIN_HITS})")
    g.add_argument("--min-track", type=nonnegative_float, default=MIN_TRACK_S, metavar="SECONDS",
                   help=f"drop a person seen for less than this (default {MIN_TRACK_S:g})")
    g.add_argument("--max-gap", type=nonnegative_float, default=MAX_GAP_S, metavar="SECONDS",
                   help=f"a person missed for longer than this gets a new id when seen again; shorter gaps are "
                        f"interpolated (default {MAX_GAP_S:g}; crowds where people hide behind each other: "
                        f"1, see docs/predict.md 'Tracking')")
    g.add_argument("--relink", type=nonnegative_float, default=RELINK_S, metavar="SECONDS",
                   help=f"a person seen again within this long after their id ended (hidden behind someone), "
                        f"close to where they were and in the same clothes' colours, keeps their id; the gap "
                        f"stays empty (default {RELINK_S:g}; 0: never)")
    g.add_argument("--look-back", type=nonnegative_float, default=LOOK_BACK_S, metavar="SECONDS",
                   help=f"once a new person is confirmed, pose them on the frames before they were first "
                        f"found, back to this long, while they are found there (a person the detector "
                        f"scored too low at first; default {LOOK_BACK_S:g}; 0: never)")


def tracking_config(args: argparse.Namespace) -> TrackingConfig:
    """The ``tracking`` flags as a :class:`TrackingConfig` (ConfigError naming a bad value)."""
    return TrackingConfig(pose_every=args.pose_every, min_confidence=args.min_confidence, min_hits=args.min_hits,
                          min_track=args.min_track, max_gap=args.max_gap, relink=args.relink,
                          look_back=args.look_back)


#: How to install each pose backend (what a setup error about it tells the user to run).
POSE_INSTALL: dict[str, str] = {name: backend.install_hint for name, backend in POSE_BACKENDS.items()}
#: What a checkpoint that does not exist can be replaced with.
CHECKPOINT_HINT = ("give the path of a 'beenet train' checkpoint (RUN/best.pt), an exported folder or a "
                   "Hub id; to make one offline: beenet demo --out beenet-demo  (then --checkpoint "
                   "beenet-demo/run/best.pt; trained on synthetic stick figures, it only shows that "
                   "the pipeline runs)")


def check_checkpoint(text: str) -> Path:
    """The checkpoint as a local path (a Hub id fetched or found in the cache), or a SetupError
    when it names nothing that exists."""
    from beenet.artifacts.pretrained import resolve_checkpoint  # lazy: beenet.artifacts loads torch; --help stays fast

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
    from beenet.inference.predictor import PoseBackendError  # lazy: loads torch; --help stays fast

    if not any(j.error is None and j.duplicate_of is None and j.keypoints is None for j in jobs):
        return
    try:
        predictor.check_pose()  # type: ignore[attr-defined]
    except PoseBackendError as exc:
        name = resolve_backend_name(exc.backend)
        if exc.option:  # a wrong option: installing or another backend will not fix it
            raise SetupError(f"{exc} (--pose-option)") from None
        fix = POSE_INSTALL.get(name) if exc.install else None  # model files to fetch: the message says how
        others = [c for c in POSE_INSTALL if c != name]
        tail = f"; fix: {fix}" if fix else ""
        raise SetupError(f"{exc}{tail}; or choose another backend with --pose {'/'.join(others)}") from None


#: With ``detector=movenet``, a ``--min-confidence`` above this warns (its person scores' scale).
MOVENET_MIN_CONFIDENCE = 0.2


def setup(args: argparse.Namespace, formats: list[str]) -> tuple[Batch, Predictor]:
    """The batch and the Predictor, or a SetupError found before any video is opened (a
    checkpoint that cannot be used at all is a CheckpointError: exit 1). The default pose
    backend is built on a thread meanwhile, beside torch's import (:class:`PoseBuild`)."""
    check_writers(formats)
    options = pose_options(args)
    early = PoseBuild(args.pose, options) if args.keypoints is None and PoseBuild.wanted(args.pose) else None
    try:
        return _setup(args, formats, options, early)
    except BaseException:
        if early is not None:  # not taken by a Predictor: its backend is closed
            early.close()
        raise


def _setup(args: argparse.Namespace, formats: list[str], options: dict, early: PoseBuild | None) -> tuple[Batch, Predictor]:
    from beenet.inference.predictor import Predictor  # lazy: loads the model runtime; --help and setup errors stay fast

    checkpoint = check_checkpoint(args.checkpoint)
    if options.get("detector") == "movenet" and args.min_confidence > MOVENET_MIN_CONFIDENCE:
        print(f"beenet predict: warning: detector=movenet scores clear people 0.2-0.7, so --min-confidence "
              f"{args.min_confidence:g} drops most of them; use --min-confidence 0 (docs/predict.md, MoveNet)",
              file=sys.stderr)
    batch = plan_batch(args.inputs, Path(args.out), formats, per_frame=args.per_frame, video=args.video,
                       save_keypoints=args.save_keypoints, overwrite=args.overwrite, keypoints=args.keypoints)
    predictor = Predictor(
        checkpoint, device=args.device, engine=args.engine, pose=early if early is not None else args.pose,
        window=args.window, stride=args.stride, batch_size=args.batch_size, streams=args.streams,
        stills=args.stills, min_presence=args.min_presence, context=args.context,
        pose_options=None if early is not None else options, tracking=tracking_config(args),
    )
    try:
        check_pose(predictor, batch.jobs)
    except SetupError:
        predictor.close()
        raise
    return batch, predictor


def run(args: argparse.Namespace) -> int:
    try:
        formats = parse_formats(args.format)
    except ValueError as exc:
        print(f"beenet predict: error: {exc}", file=sys.stderr)
        return 2
    if args.window <= 0 or args.stride <= 0 or args.batch_size < 1 or args.stills < 1:
        print("beenet predict: error: --window, --stride must be > 0 and --batch-size, --stills >= 1", file=sys.stderr)
        return 2
    try:
        batch, predictor = setup(args, formats)
    except SetupError as exc:
        print(f"beenet predict: error: {exc}", file=sys.stderr)
        return 2
    try:
        done = run_batch(predictor, batch, ConsoleReport(), checkpoint=str(args.checkpoint))
    except BatchInterrupted:
        return 130
    finally:
        predictor.close()
    finish_batch(done)
    out, world = batch.out, batch.world
    if args.html:
        if world == 1 or ranks_done(out, world):  # under torchrun the last rank to finish writes it
            from beenet.view import write_results_view  # lazy: loads torch (beenet.metrics); only for --html

            page = write_results_view(out, videos=[j.video for j in batch.all_jobs if j.video])  # its inputs may play
            print(f"view: {page} (open it in a browser, or 'beenet view {out} --serve')")
        else:
            print("view: the last rank to finish writes it (or run 'beenet view' on the folder)")
    summary = done.summary
    if summary.write_error is not None:
        print(f"beenet predict: error: {summary.path} could not be written ({summary.write_error})", file=sys.stderr)
        return 1
    return 1 if done.failed else 0
