"""Multi-person BlazePose, offline: mediapipe's person detector and landmark model run on LiteRT
(``engine="litert"``, the default when ``ai-edge-litert`` is installed; :mod:`beenet.inference.blazepose`)
or through mediapipe's Tasks ``PoseLandmarker`` (``engine="tasks"``).

mediapipe 0.10.21 ships the BlazePose person detector and the full landmark model as bare tflite
files (``mediapipe/modules/pose_detection/pose_detection.tflite``,
``mediapipe/modules/pose_landmark/pose_landmark_full.tflite``). The Tasks ``PoseLandmarker``, which
finds several people per frame (``num_poses``), refuses them as they are: its image input needs
normalisation metadata. :func:`build_bundle` adds it with mediapipe's own metadata writer
(detector: ``(pixel - 127.5) / 127.5``, i.e. [-1, 1]; landmarks: ``pixel / 255``, i.e. [0, 1]) and
packs both into one ``.task`` bundle, built once into the beenet cache under a name keyed by the
two files' SHA-256, and written atomically.

Newer mediapipe releases (a py3-none wheel that installs on Python 3.13) have the Tasks API but
no tflite files; ``scripts/install-pose.sh`` then extracts the two files from the 0.10.21 wheel
into ``<cache>/mediapipe-models/``, where :func:`find_model_files` looks after the package.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from beenet import paths
from beenet.errors import BeenetError
from beenet.inference.blazepose import BODY_LANDMARKS, BlazePose, Roi, roi_from_points

log = logging.getLogger(__name__)

#: The command that installs a mediapipe this backend works with (README command 1 runs it).
INSTALL_HINT = "bash scripts/install-pose.sh (in the beenet repository, with your environment active)" + (
    "; on this Python that is: pip install --no-deps mediapipe==0.10.21 && pip install absl-py attrs "
    "flatbuffers 'protobuf>=4.25.3,<5' 'opencv-python-headless<5' 'ai-edge-litert>=2.0'" if sys.version_info < (3, 13) else ""
)
#: bundle member name -> (path inside the mediapipe package, norm mean, norm std, number of outputs).
MODEL_FILES: dict[str, tuple[str, float, float, int]] = {
    "pose_detector.tflite": ("modules/pose_detection/pose_detection.tflite", 127.5, 127.5, 2),
    "pose_landmarks_detector.tflite": ("modules/pose_landmark/pose_landmark_full.tflite", 0.0, 255.0, 5),
}
#: Where people are proposed: BlazePose's own detector on the whole frame only, or also OpenCV's HOG
#: people detector, each HOG box verified by the landmarker on a crop around it.
DETECTORS = ("blazepose", "hog")
#: What runs the two models: ``litert`` (the default when ``ai-edge-litert`` is installed:
#: :mod:`beenet.inference.blazepose`, the models on LiteRT with mediapipe's pre- and post-processing
#: written out, and people tracked from frame to frame by their landmarks) or ``tasks`` (mediapipe's
#: Tasks ``PoseLandmarker``, a detector run on every crop).
ENGINES = ("litert", "tasks")
#: OpenCV's default people detector window (width, height), px.
HOG_WINDOW = (64, 128)
#: Motion-gated HOG (``motion``): grey-level change (of 255, on the frame at 1/8 size) that counts
#: as motion, the smallest changed blob (cells of 8x8 px), how far a blob is grown on each side (of
#: the frame height, at least), and the largest share of the frame HOG runs on before it runs on
#: the whole frame instead.
MOTION_THRESHOLD = 12
MOTION_MIN_CELLS = 3
MOTION_GROW = 0.1
MOTION_MAX_SHARE = 0.6
#: The person detector's threshold when it confirms a person followed by their landmarks (litert's
#: ``confirm_every``): mediapipe's default. Finding a new person takes ``min_detection_confidence``.
CONFIRM_DETECTION = 0.5
#: Side (px) of each crop cell the landmarker sees when verifying a proposal.
CROP_SIDE = 256
#: Folder (under the beenet cache root) where ``scripts/install-pose.sh`` puts the tflite files.
MODELS_SUBDIR = "mediapipe-models"
#: Calls of a new landmarker that run with stderr silenced until it finds its first person.
QUIET_CALLS = 30
#: Folder (under the beenet cache root) of the built ``.task`` bundles.
BUNDLE_SUBDIR = "pose"


def litert_available() -> bool:
    """Whether ``ai-edge-litert`` (the ``litert`` engine's runtime) can be imported."""
    import importlib.util

    try:
        return importlib.util.find_spec("ai_edge_litert") is not None
    except (ImportError, ValueError):
        return False


def cache_root() -> Path:
    """beenet's cache root: the parent of the context cache (``$BEENET_CACHE/..``, default
    ``~/.cache/beenet``), as for ``prepared/``."""
    return paths.cache_root()


def _mediapipe_dir() -> Path | None:
    try:
        import mediapipe
    except ImportError:
        return None
    return Path(mediapipe.__file__).parent


def missing_models_message(where: list[Path]) -> str:
    looked = ", ".join(str(p) for p in where) or "(mediapipe is not installed)"
    return (
        "the 'mediapipe' pose backend needs mediapipe's BlazePose models (pose_detection.tflite, "
        f"pose_landmark_full.tflite); looked in {looked}. Install them with: {INSTALL_HINT}. "
        "'pip install mediapipe' alone installs a release without them. Or use --pose rcnn (downloads "
        "Keypoint R-CNN weights once)."
    )


def find_model_files(root: str | Path | None = None) -> dict[str, Path]:
    """The two tflite files, by bundle member name: from the installed mediapipe package when it
    ships them (0.10.21), else from ``<root>/mediapipe-models/``. ``root=None``: beenet's cache
    (:func:`cache_root`), then the default ``~/.cache/beenet`` (where ``scripts/install-pose.sh``
    put them when ``$BEENET_CACHE`` was not set, e.g. before a run that sets it).

    Raises :class:`BeenetError` with the install command when no place has both.
    """
    roots = [Path(root).expanduser()] if root is not None else [cache_root(), Path.home() / ".cache" / "beenet"]
    places: list[Path] = []
    mp_dir = _mediapipe_dir()
    if mp_dir is not None:
        places.append(mp_dir)
    for r in roots:
        if r / MODELS_SUBDIR not in places:
            places.append(r / MODELS_SUBDIR)
    for place in places:
        files = {}
        for member, (rel, *_rest) in MODEL_FILES.items():
            # In the package the files keep their folders; in the cache they lie flat.
            p = place / rel if place == mp_dir else place / Path(rel).name
            if p.is_file():
                files[member] = p
        if len(files) == len(MODEL_FILES):
            return files
    raise BeenetError(missing_models_message([p for p in places]))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def models_key(files: dict[str, Path]) -> str:
    """16 hex digits of the SHA-256 over both model files: names the bundle built from them, and
    is recorded in a table's settings."""
    key = hashlib.sha256("".join(f"{m}:{_sha256(Path(files[m]))};" for m in sorted(MODEL_FILES)).encode())
    return key.hexdigest()[:16]


_QUIET_LOCK = threading.RLock()


def import_mediapipe(needs: str):
    """``import mediapipe`` for a pose backend, its C++ logging down to warnings and errors (set
    before the import: mediapipe logs every graph start); BeenetError with the install command
    when it is missing. ``needs`` says what the backend needs, for the message."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise BeenetError(f"{needs}; install it with: {INSTALL_HINT}") from exc
    return mp


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (mediapipe's C++ logging and TFLite's 'INFO: Created TensorFlow Lite
    XNNPACK delegate' go there, not through Python) for the duration; Python errors still raise.
    One thread at a time (a lock): two overlapping redirections of the same descriptor, undone in
    the wrong order, would leave stderr pointing at /dev/null for good."""
    fd = 2  # what C++ writes to, whatever sys.stderr is (pytest, notebooks replace it)
    with _QUIET_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(fd)
        except (AttributeError, OSError, ValueError):
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            os.close(devnull)


def _metadata_writer():
    """mediapipe's ``metadata_writer`` module. Releases after 0.10.21 (the py3-none wheels that
    install on Python 3.13) dropped the compiled ``_pywrap_metadata_version`` that its import
    needs, though nothing else of it; for them a stand-in answers what 0.10.21 answers for the
    metadata written here (minimum parser version ``1.0.0``: image input, normalisation, feature
    outputs), so the bundle comes out byte for byte the same."""
    import types

    try:
        from mediapipe.tasks.cc.metadata.python import _pywrap_metadata_version  # noqa: F401
    except ImportError:
        stub = types.ModuleType("mediapipe.tasks.cc.metadata.python._pywrap_metadata_version")
        stub.GetMinimumMetadataParserVersion = lambda buf: "1.0.0"  # type: ignore[attr-defined]
        for name in ("mediapipe.tasks.cc", "mediapipe.tasks.cc.metadata", "mediapipe.tasks.cc.metadata.python"):
            sys.modules.setdefault(name, types.ModuleType(name))
        sys.modules[stub.__name__] = stub
        sys.modules["mediapipe.tasks.cc.metadata.python"]._pywrap_metadata_version = stub  # type: ignore[attr-defined]
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    return metadata_writer


def install_models_from_wheel(wheel: str | Path, root: str | Path | None = None) -> Path:
    """Copy the two tflite files out of a mediapipe wheel (0.10.21 ships them) into
    ``<root>/mediapipe-models/`` (``root``: :func:`cache_root`), each written atomically; returns
    that folder. ``scripts/install-pose.sh`` runs this on Python >= 3.13."""
    from beenet.atomic import atomic_path

    root = cache_root() if root is None else Path(root).expanduser()
    dest = root / MODELS_SUBDIR
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BeenetError(f"{wheel}: not a readable mediapipe wheel ({exc})") from exc
    with zf:
        names = set(zf.namelist())
        for rel, *_rest in MODEL_FILES.values():
            member = f"mediapipe/{rel}"
            if member not in names:
                raise BeenetError(f"{wheel}: has no {member}; use the mediapipe 0.10.21 wheel")
            with atomic_path(dest / Path(rel).name) as tmp:
                tmp.write_bytes(zf.read(member))
    find_model_files(root)  # both are there now
    return dest


def build_bundle(files: dict[str, Path] | None = None, root: str | Path | None = None) -> Path:
    """The ``.task`` bundle of the two tflite files (with normalisation metadata), built once.

    It lives in ``<root>/pose/pose_landmarker-<sha>.task`` where ``<sha>`` hashes both files, so a
    new mediapipe model gives a new bundle; it is written to a temp file and renamed, so a crash
    never leaves a half bundle. A file that is not a valid tflite model raises :class:`BeenetError`
    naming it.
    """
    files = find_model_files(root) if files is None else files
    root = cache_root() if root is None else Path(root).expanduser()
    out = root / BUNDLE_SUBDIR / f"pose_landmarker-{models_key(files)}.task"
    if out.is_file():
        try:
            with zipfile.ZipFile(out) as z:
                if sorted(z.namelist()) == sorted(MODEL_FILES):
                    return out
        except zipfile.BadZipFile:
            pass
        log.warning("%s is not a valid pose bundle; building it again", out)
    metadata_writer = _metadata_writer()
    members: dict[str, bytes] = {}
    for member, (_rel, mean, std, n_out) in MODEL_FILES.items():
        src = Path(files[member])
        try:
            writer = metadata_writer.MetadataWriter.create(bytearray(src.read_bytes()))
            writer.add_image_input(norm_mean=[mean], norm_std=[std])
            for _ in range(n_out):
                writer.add_feature_output()
            members[member] = writer.populate()[0]
        except Exception as exc:  # the flatbuffer reader raises assorted errors on a bad file
            raise BeenetError(
                f"{src}: not a valid mediapipe pose model ({type(exc).__name__}: {exc}); delete it and "
                f"reinstall with: {INSTALL_HINT}"
            ) from exc
    from mediapipe.tasks.python.metadata.metadata_writers import model_asset_bundle_utils

    from beenet.atomic import atomic_path

    with atomic_path(out) as tmp:  # aligned zip members, as mediapipe's own bundles
        model_asset_bundle_utils.create_model_asset_bundle(members, str(tmp))
    return out


def _check_kind(name: str, value: object, kind: type) -> None:
    """Refuse a pose option whose value is not of ``kind`` (bool: True/False, or 0/1; int: a whole
    number; float: any number), naming it: ``bool("no")`` would be True, ``"1.3" > 1`` a TypeError."""
    from beenet.inference.pose import PoseOptionError

    if kind is bool:
        ok = isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
        what = "true or false"
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = "a whole number"
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        what = "a number"
    if not ok:
        raise PoseOptionError(f"pose option {name} must be {what}, got {value!r}")


def _at_least(x0: float, y0: float, x1: float, y1: float, min_w: float, min_h: float, width: int,
              height: int) -> tuple[int, int, int, int]:
    """The window ``(x0, y0, x1, y1)`` grown about its centre to at least ``min_w x min_h`` (moved
    inward at the frame's edges, cut only where the frame is smaller), in whole pixels."""
    w, h = min(max(x1 - x0, min_w), width), min(max(y1 - y0, min_h), height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = int(min(max(cx - w / 2, 0), width - w))
    ny0 = int(min(max(cy - h / 2, 0), height - h))
    return nx0, ny0, min(width, int(np.ceil(nx0 + w))), min(height, int(np.ceil(ny0 + h)))


def _merge_windows(windows: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Windows that overlap replaced by the box around both, until none overlap (HOG would
    otherwise look at the overlap twice)."""
    out: list[tuple[int, int, int, int]] = []
    for w in windows:
        while (hit := next((o for o in out if o[0] < w[2] and w[0] < o[2] and o[1] < w[3] and w[1] < o[3]), None)):
            out.remove(hit)
            w = (min(w[0], hit[0]), min(w[1], hit[1]), max(w[2], hit[2]), max(w[3], hit[3]))
        out.append(w)
    return out


def _tile_grid(width: int, height: int, tiles: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """``tiles x tiles`` windows ``(x0, y0, w, h)`` that cover the frame, neighbours overlapping by
    ``overlap`` of a tile."""
    out = []
    tw = int(np.ceil(width / (tiles - (tiles - 1) * overlap)))
    th = int(np.ceil(height / (tiles - (tiles - 1) * overlap)))
    for iy in range(tiles):
        for ix in range(tiles):
            x0 = min(round(ix * tw * (1 - overlap)), width - tw)
            y0 = min(round(iy * th * (1 - overlap)), height - th)
            out.append((max(x0, 0), max(y0, 0), min(tw, width), min(th, height)))
    return out


def _nms(boxes: list[tuple[float, float, float, float]], scores: list[float], iou: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression (highest score first); a box is
    also dropped when its centre lies inside a kept box (HOG's part-of-a-person windows)."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        b = boxes[i]
        cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
        if all(_box_iou(b, boxes[k]) < iou and not _inside(cx, cy, boxes[k]) for k in kept):
            kept.append(i)
    return kept


def _inside(x: float, y: float, box: tuple[float, float, float, float]) -> bool:
    return box[0] <= x <= box[0] + box[2] and box[1] <= y <= box[1] + box[3]


def _square_crop(box: tuple[float, float, float, float], margin: float, width: int,
                 height: int) -> tuple[int, int, int, int]:
    """A square window ``(x0, y0, w, h)`` around ``box``, ``margin`` times its longer side, moved
    (not cut) to lie inside the frame; cut only where the frame is smaller than the square."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = max(box[2], box[3]) * margin
    w, h = round(min(side, width)), round(min(side, height))
    x0 = round(min(max(cx - w / 2, 0), width - w))
    y0 = round(min(max(cy - h / 2, 0), height - h))
    return x0, y0, w, h


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


class MediaPipeMultiPose:
    """BlazePose, up to ``num_poses`` people per frame, offline (see the module docstring for where
    the models come from).

    ``engine="litert"`` (the default when ``ai-edge-litert`` is installed) runs the two models
    directly (:class:`beenet.inference.blazepose.BlazePose`) and follows each person found by
    their own landmarks, as mediapipe's video mode does: the landmark model alone on the square
    the last call's landmarks gave, moved at the square's velocity, and the detector again on a
    crop around it every ``confirm_every`` calls' worth of frames (at threshold
    ``CONFIRM_DETECTION``), which drops a square that slid onto the background. New people come
    from the detector on the whole frame (while nobody is followed, on whole-frame HOG calls, and
    on every call with ``detector="blazepose"``)
    and from HOG's boxes, verified as below; HOG runs every 2nd call (``hog_every`` defaults to 2
    here, 1 with ``tasks``). :meth:`_call_litert` has the order of things. ``engine="tasks"``
    (the fallback without ai-edge-litert) is what the rest of this docstring describes: mediapipe's
    ``PoseLandmarker``, its detector on every crop. ``litert`` found 39 of the 55 hand-counted
    vtest.avi people against 35 and runs 720p vtest faster (docs/predict.md, "Pose backends").

    ``tiles=1`` runs the landmarker on the whole frame in video mode (it tracks people from frame
    to frame between detector runs). ``tiles=n > 1`` also runs it in image mode on ``n x n``
    overlapping tiles, so that people too small for the detector's 224x224 view of the frame are
    seen at ``n`` times the resolution; duplicates (same person in the frame and in tiles) are merged
    by box IoU, the higher score kept. It costs about ``n*n + 1`` landmarker runs a frame.

    ``detector="hog"`` (the default) adds person proposals from OpenCV's HOG people detector
    (:meth:`hog_boxes`; it ships with OpenCV, nothing to download), which finds people 1/7 of the
    frame tall that BlazePose's whole-frame view misses. Each HOG box not already covered by a
    person found on the whole frame becomes a square crop (``crop_margin`` around it, scaled to
    ``CROP_SIDE`` px) that a one-person landmarker in image mode checks: no person on the crop, or
    one whose box centre lies outside the HOG box, and the box is dropped, so HOG's false
    positives (poles, blurred cars) never become people. HOG runs on every ``hog_every``-th call,
    on the grey frame scaled by ``hog_upscale`` (at most ``hog_max_pixels``: HOG's window needs a
    person about 96 px tall, and its cost grows with the pixels). With ``motion`` (the
    default), HOG looks at the whole frame only on every ``hog_full_every``-th HOG call (and
    the first of a video or shot); on the others only where the frame changed since the last HOG
    call (:meth:`_hog_regions`: a fixed camera's pedestrians are a third of the frame; a moving
    camera changes everything, and then HOG runs on the whole frame). With ``follow``, each
    person a crop found is cropped again on the next call, with the box that found them moved
    as they moved (:meth:`_follow`), before HOG's new boxes: people are kept between HOG runs
    and where HOG no longer fires on them. Cost: one landmarker run per crop plus HOG
    (docs/predict.md, "Pose backends", has the measurements). ``new_shot()`` (called by the
    predictor at a shot cut) forgets the people followed. ``detector="blazepose"`` is the
    whole-frame pass only.

    ``threads`` (default: 2, or 1 on a one-core machine) runs the crops on that many one-person
    landmarkers side by side and, when above 1, HOG on one more worker thread beside the
    whole-frame pass and the followed crops: mediapipe and OpenCV release the GIL. Image mode has
    no state, so the people found do not depend on ``threads`` (tested); only the time does.

    ``min_detection_confidence`` defaults to 0.7, not mediapipe's 0.5: at 0.5 the detector took a
    road marking, a car's rear window and the parked bicycle in bikes.mp4 for people (51 frames
    against 4), and the landmark model gives such "people" presence 0.97-1.0, so no later threshold
    removes them (docs/predict.md, "Pose backends").

    A keypoint's confidence is its landmark's *visibility* (as in the Solutions backend), mapped to
    OpenPose-18 by ``mediapipe_to_openpose``; the ``score`` of a detection is the mean confidence
    of its joints found inside the frame, in [0, 1] (the tracker's ``min_confidence`` was chosen
    on this score). Not the mean *presence* of all 33 landmarks: that is the share of the body
    inside the frame, so a person filmed from the chest up scored 0.35-0.39 and was dropped.
    ``min_detection_confidence`` is the person detector's threshold, ``min_presence_confidence`` the
    landmark model's, ``min_tracking_confidence`` decides when video mode re-runs the detector.
    """

    name = "mediapipe"
    needs_pixels = True

    def __init__(self, num_poses: int = 6, min_detection_confidence: float = 0.7,
                 min_presence_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 tiles: int = 1, tile_overlap: float = 0.25, merge_iou: float = 0.4,
                 detector: str = "hog", hog_every: int | None = None, hog_threshold: float = 0.3,
                 hog_scale: float = 1.2, hog_upscale: float = 1.3, hog_max_pixels: int = 750_000,
                 crop_margin: float = 1.2, follow: bool = True, motion: bool = True,
                 hog_full_every: int = 5, engine: str | None = None, confirm_every: int = 5,
                 threads: int | None = None,
                 cache_dir: str | Path | None = None) -> None:
        from beenet.inference.pose import PoseOptionError

        if detector not in DETECTORS:
            raise PoseOptionError(f"pose detector {detector!r}: choose one of {', '.join(DETECTORS)}")
        if engine is None:
            engine = "litert" if litert_available() else "tasks"
        if engine not in ENGINES:
            raise PoseOptionError(f"pose engine {engine!r}: choose one of {', '.join(ENGINES)}")
        if hog_every is None:  # litert keeps people by their landmarks: HOG only has new ones to find
            hog_every = 2 if engine == "litert" else 1
        threads = min(2, os.cpu_count() or 1) if threads is None else threads
        # (name, value, kind, lowest allowed, whether the lowest itself is allowed): kinds first,
        # so that a comparison never meets a string
        options = (("follow", follow, bool, None, True), ("motion", motion, bool, None, True),
                   ("tiles", tiles, int, 1, True), ("num_poses", num_poses, int, 1, True),
                   ("threads", threads, int, 1, True), ("hog_every", hog_every, int, 1, True),
                   ("hog_full_every", hog_full_every, int, 1, True),
                   ("confirm_every", confirm_every, int, 1, True),
                   ("hog_max_pixels", hog_max_pixels, int, 4096, True),
                   ("min_detection_confidence", min_detection_confidence, float, None, True),
                   ("min_presence_confidence", min_presence_confidence, float, None, True),
                   ("min_tracking_confidence", min_tracking_confidence, float, None, True),
                   ("tile_overlap", tile_overlap, float, None, True), ("merge_iou", merge_iou, float, None, True),
                   ("hog_threshold", hog_threshold, float, None, True), ("hog_scale", hog_scale, float, 1, False),
                   ("hog_upscale", hog_upscale, float, 0, False), ("crop_margin", crop_margin, float, 1, True))
        for name, value, kind, _low, _inclusive in options:
            _check_kind(name, value, kind)
        for name, value, _kind, low, inclusive in options:
            if low is not None and (value < low if inclusive else value <= low):
                raise PoseOptionError(f"pose option {name} must be {'>=' if inclusive else '>'} {low}, got {value}")
        threads = int(threads)
        needs = "the 'mediapipe' pose backend needs mediapipe with its Tasks API"
        mp = import_mediapipe(needs)
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise BeenetError(f"{needs}; install it with: {INSTALL_HINT}") from exc
        self._mp = mp
        self._vision = vision
        self.engine = engine
        if engine == "litert":
            try:
                import ai_edge_litert.interpreter  # noqa: F401
            except ImportError as exc:
                raise BeenetError(f"pose engine 'litert' needs ai-edge-litert; install it with: {INSTALL_HINT}") from exc
        self.model_files = find_model_files(cache_dir)
        self.bundle = build_bundle(self.model_files, root=cache_dir) if engine == "tasks" else None
        # litert: the first engine now, so that a bad model file is named before any work
        first = BlazePose(self.model_files) if engine == "litert" else None
        self._models_key = models_key(self.model_files)
        self.confirm_every = int(confirm_every)
        self.tiles = int(tiles)
        self.tile_overlap = float(tile_overlap)
        self.merge_iou = float(merge_iou)
        self.num_poses = int(num_poses)
        self._options = dict(
            base_options=BaseOptions(model_asset_path=str(self.bundle or "")),
            num_poses=self.num_poses, min_pose_detection_confidence=float(min_detection_confidence),
            min_pose_presence_confidence=float(min_presence_confidence),
            min_tracking_confidence=float(min_tracking_confidence),
        )
        self.detector = detector
        self.hog_every, self.hog_threshold = int(hog_every), float(hog_threshold)
        self.hog_scale, self.hog_upscale = float(hog_scale), float(hog_upscale)
        self.hog_max_pixels = int(hog_max_pixels)
        self.crop_margin, self.follow = float(crop_margin), bool(follow)
        self.motion, self.hog_full_every = bool(motion), int(hog_full_every)
        self._motion_prev = None  # the last HOG call's grey frame at 1/8 size (motion)
        self.hog_share = 0.0  # share of the frame the last HOG run covered
        self.threads = threads
        self._hog_local = threading.local()  # a HOG descriptor for each thread that runs HOG
        self._crops: list = []  # IMAGE mode, one person: the verifiers of the proposals, one a thread
        self._pool = None  # ThreadPoolExecutor of `threads` workers (the crops), made on first use
        self._hog_pool = None  # one worker: HOG
        self._calls = 0
        self._followed: list = []  # (box, anchor) of the people the crops found last call (_follow)
        # litert: last call's people as (Roi, frames since the detector saw them, velocity of the
        # square's centre in px a frame, frame index)
        self._tracked: list = []
        self._index = -1  # litert: the frame index of the last call
        self._engines: list = [first] if first is not None else []  # litert: one BlazePose a worker
        self._wide = None  # litert: a BlazePose on `threads` interpreter threads, for a lone job
        self._video = None
        self._image = None
        self._started = False  # reset() ran since the backend was made or closed
        self._last_ts = -1
        self._quiet: dict[int, int] = {}  # landmarker -> calls left with stderr silenced (see _detect)

    def _create(self, mode: str, **override):
        opts = self._vision.PoseLandmarkerOptions(running_mode=getattr(self._vision.RunningMode, mode),
                                                  **{**self._options, **override})
        with quiet_stderr():
            lm = self._vision.PoseLandmarker.create_from_options(opts)
        self._quiet[id(lm)] = QUIET_CALLS
        return lm

    def _detect(self, lm, image, ts: int | None = None):
        """One landmarker call. Until a landmarker has found its first person (for at most
        ``QUIET_CALLS`` calls), its calls run with stderr silenced: mediapipe's graph writes
        start-up warnings there on the first call, and 'Using NORM_RECT without IMAGE_DIMENSIONS
        ...' (once, absl logging, which no environment variable turns off) on the first call that
        finds somebody. The cap keeps other threads' messages (FFmpeg's) from being lost for a
        whole video in which nobody is found."""
        if id(lm) in self._quiet:
            with quiet_stderr():
                result = lm.detect(image) if ts is None else lm.detect_for_video(image, ts)
            self._quiet[id(lm)] -= 1
            if result.pose_landmarks or self._quiet[id(lm)] <= 0:
                del self._quiet[id(lm)]
            return result
        return lm.detect(image) if ts is None else lm.detect_for_video(image, ts)

    @property
    def settings(self) -> dict:
        """The options that decide who is found (recorded in a table's metadata)."""
        o = self._options
        return {"num_poses": self.num_poses, "min_detection_confidence": o["min_pose_detection_confidence"],
                "min_presence_confidence": o["min_pose_presence_confidence"],
                "min_tracking_confidence": o["min_tracking_confidence"], "tiles": self.tiles,
                "tile_overlap": self.tile_overlap, "merge_iou": self.merge_iou, "engine": self.engine,
                "models": self._models_key, "confirm_every": self.confirm_every,
                "detector": self.detector, "hog_every": self.hog_every, "hog_threshold": self.hog_threshold,
                "hog_scale": self.hog_scale, "hog_upscale": self.hog_upscale,
                "hog_max_pixels": self.hog_max_pixels, "crop_margin": self.crop_margin, "follow": self.follow,
                "motion": self.motion, "hog_full_every": self.hog_full_every, "threads": self.threads}

    def reset(self) -> None:
        """Start a new video (video mode's timestamps and tracked people start over)."""
        if self._video is not None:
            with quiet_stderr():
                self._video.close()
        self._video = self._create("VIDEO") if self.engine == "tasks" else None  # litert has none
        self._started = True
        self._last_ts = -1
        self.new_shot()

    def new_shot(self) -> None:
        """A shot cut: forget the people followed on the last shot; the next call runs HOG on the
        whole frame."""
        self._calls = 0
        self._motion_prev = None
        self._followed = []
        self._tracked = []
        self._index = -1

    def close(self) -> None:
        for pool in (self._pool, self._hog_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._hog_pool = None
        for lm in (self._video, self._image, *self._crops):
            if lm is not None:
                with quiet_stderr():
                    lm.close()
        self._video = self._image = None
        self._started = False
        self._crops = []
        self._engines = []
        self._wide = None

    def _executor(self):
        """The thread pool of the crops (``threads`` workers), made on first use (HOG has its own
        worker, :meth:`_hog_start`)."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="beenet-pose")
        return self._pool

    def _hog_regions(self, grey: np.ndarray) -> list[tuple[int, int, int, int]] | None:
        """Where HOG runs this call, as windows ``(x0, y0, x1, y1)``, or None for the whole frame.

        With ``motion``, between whole-frame runs (the first HOG call of a video or shot, every
        ``hog_full_every``-th HOG call), HOG runs only where the frame changed since the last HOG
        call: the grey frame at 1/8 of its size, differences over ``MOTION_THRESHOLD`` grey levels,
        each changed blob of at least ``MOTION_MIN_CELLS`` changed cells grown by half its height
        (at least ``MOTION_GROW`` of the frame height) on every side, so that a person moving there
        lies whole in the window with HOG's margin, and each window at least as large as HOG's
        detection window at the scale HOG runs at. A moving camera changes most of the frame: when
        the windows would cover more than ``MOTION_MAX_SHARE`` of it, the whole frame. People who
        stand still are the followed crops' (or the next whole-frame run's)."""
        if not self.motion:
            return None
        import cv2

        height, width = grey.shape
        small = cv2.resize(grey, (max(1, width // 8), max(1, height // 8)), interpolation=cv2.INTER_AREA)
        prev, self._motion_prev = self._motion_prev, small
        if prev is None or prev.shape != small.shape or self._calls % (self.hog_every * self.hog_full_every) == 0:
            return None
        changed = (cv2.absdiff(small, prev) > MOTION_THRESHOLD).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(changed, np.ones((3, 3), np.uint8)))
        cells = np.bincount(labels[changed > 0], minlength=n)  # changed cells (not the dilation) per blob
        sy, sx = height / small.shape[0], width / small.shape[1]  # frame px per cell (8, or a little more)
        up = self._hog_up(width * height)
        min_w, min_h = (HOG_WINDOW[0] + 16) / up, (HOG_WINDOW[1] + 16) / up  # HOG's window and padding
        windows = []
        for k in range(1, n):
            if cells[k] < MOTION_MIN_CELLS:
                continue
            x, y, w, h = (int(v) for v in stats[k, :4])
            g = max(h // 2, round(MOTION_GROW * small.shape[0]))
            x0, y0 = max(0, x - g) * sx, max(0, y - g) * sy
            x1 = width if x + w + g >= small.shape[1] else (x + w + g) * sx
            y1 = height if y + h + g >= small.shape[0] else (y + h + g) * sy
            windows.append(_at_least(x0, y0, x1, y1, min_w, min_h, width, height))
        windows = _merge_windows(windows)
        if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows) > MOTION_MAX_SHARE * width * height:
            return None
        return windows

    def _hog_start(self, frame: np.ndarray):
        """Start HOG on ``frame`` (the whole frame, or the windows of :meth:`_hog_regions`);
        returns the future of its boxes. With ``threads`` > 1 it runs on a worker
        thread, beside the whole-frame pass and the followed crops (OpenCV's HOG is parallel
        itself: on 720p, 640x360 and 640x272 frames its two threads cost the CPU time of one, at
        half the wall time; cutting the frame into two overlapping strips run side by side cost
        17-20% more CPU, measured interleaved)."""
        import cv2

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # once, for the motion windows and HOG
        height, width = grey.shape
        windows = self._hog_regions(grey)
        if windows is None:
            windows = [(0, 0, width, height)]
        self.hog_share = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows) / float(width * height)
        jobs = [(grey[y0:y1, x0:x1], x0, y0, height * width) for x0, y0, x1, y1 in windows]

        def run() -> list:
            return self._hog_nms([r for job in jobs for r in self._hog_raw(*job)])

        from concurrent.futures import Future, ThreadPoolExecutor

        if self.threads == 1:
            done: Future = Future()
            done.set_result(run())
            return done
        if self._hog_pool is None:
            self._hog_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beenet-hog")
        return self._hog_pool.submit(run)

    def hog_boxes(self, frame: np.ndarray) -> list[tuple[float, float, float, float]]:
        """OpenCV's HOG people detector (Dalal-Triggs SVM, ships with OpenCV) on the grey frame:
        boxes ``(x, y, w, h)`` in frame pixels with an SVM weight of at least ``hog_threshold``,
        after non-maximum suppression. Only proposals: each is verified by the landmarker."""
        import cv2

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return self._hog_nms(self._hog_raw(grey, 0, 0, grey.size))

    def _hog_nms(self, found: list) -> list[tuple[float, float, float, float]]:
        boxes = [b for b, w in found]
        return [boxes[i] for i in _nms(boxes, [w for b, w in found], 0.3)]

    def _hog_up(self, pixels: int) -> float:
        """How much HOG scales a frame of ``pixels`` pixels (``hog_upscale``, at most
        ``hog_max_pixels`` after it)."""
        return min(self.hog_upscale, float(np.sqrt(self.hog_max_pixels / pixels)))

    def _hog_raw(self, grey: np.ndarray, x_offset: int, y_offset: int, pixels: int) -> list:
        """``(box, weight)`` of HOG's windows on ``grey`` (a part of a grey frame of ``pixels``
        pixels, which sets the scaling, at ``x_offset, y_offset``) with a weight of at least
        ``hog_threshold``, before suppression."""
        import cv2

        hog = getattr(self._hog_local, "hog", None)
        if hog is None:  # one descriptor a thread
            hog = self._hog_local.hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        grey = np.ascontiguousarray(grey)
        up = self._hog_up(pixels)
        if abs(up - 1.0) > 1e-3:
            grey = cv2.resize(grey, None, fx=up, fy=up, interpolation=cv2.INTER_LINEAR)
        if grey.shape[0] < HOG_WINDOW[1] or grey.shape[1] < HOG_WINDOW[0]:
            return []  # smaller than one HOG window (OpenCV would fail an assertion)
        rects, weights = hog.detectMultiScale(grey, winStride=(8, 8), padding=(8, 8), scale=self.hog_scale)
        if len(rects) == 0:
            return []
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        return [((float(r[0]) / up + x_offset, float(r[1]) / up + y_offset, float(r[2]) / up, float(r[3]) / up),
                 float(wt)) for r, wt in zip(rects, weights) if wt >= self.hog_threshold]

    def _verify(self, frame: np.ndarray, proposals: list, width: int, height: int, indexed: bool = False) -> list:
        """Each proposal box cropped (square, ``crop_margin`` around it), scaled to ``CROP_SIDE`` px
        and run through a one-person landmarker in image mode: the person it finds, mapped back to
        the frame, when the centre of their box lies inside the proposal; nothing otherwise (a HOG
        window on a pole or a bin finds no person, or one elsewhere in the crop). With ``threads``
        > 1 the crops are shared out among that many landmarkers running side by side; the people
        come back in proposal order either way.

        One crop per call: the person detector needs the person large in its 224x224 view. Several
        crops side by side in one image (one detector run for all) lost most people: on the 10
        hand-counted vtest.avi frames 24 found one crop a call, 14 two, 4 four."""
        if not proposals:
            return []
        if self.engine == "litert":
            results = self._blazepose_people(frame, [("crop", b, 0) for b in proposals])
            kept = [(k, person) for k, r in enumerate(results) for person, _roi, _since in r]
            return kept if indexed else [d for _, d in kept]
        n = min(self.threads, len(proposals))
        while len(self._crops) < n:
            self._crops.append(self._create("IMAGE", num_poses=1))
        found = self._shared(lambda lm, share: self._verify_share(lm, frame, share, width, height),
                             self._crops[:n], list(proposals))
        return found if indexed else [d for _, d in found]

    def _shared(self, work, workers: list, items: list) -> list:
        """``work(worker, [(index, item), ...]) -> [(index, result), ...]`` with ``items`` shared out
        round-robin among ``workers`` (landmarkers or engines, one a thread, run side by side when
        more than one); the results of all, ``(index, result)`` in item order."""
        from concurrent.futures import wait

        numbered = list(enumerate(items))
        n = len(workers)
        if n == 1:
            done = work(workers[0], numbered)
        else:
            futures = [self._executor().submit(work, workers[k], numbered[k::n]) for k in range(n)]
            wait(futures)  # every worker free again before anything raises (a failed crop)
            done = [r for f in futures for r in f.result()]
        done.sort(key=lambda x: x[0])
        return done

    def _verify_share(self, landmarker, frame: np.ndarray, proposals: list, width: int, height: int) -> list:
        """:meth:`_verify` of ``(index, box)`` proposals on one landmarker: ``(index, person)``."""
        import cv2

        found: list = []
        for k, box in proposals:
            x0, y0, w, h = _square_crop(box, self.crop_margin, width, height)
            if w < 8 or h < 8:
                continue
            f = CROP_SIDE / max(w, h)
            crop = cv2.resize(frame[y0:y0 + h, x0:x0 + w], (max(1, round(w * f)), max(1, round(h * f))),
                              interpolation=cv2.INTER_LINEAR)
            image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
            for d in self._people(self._detect(landmarker, image), x0, y0, w, h, width, height):
                if _inside(d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2, box):
                    found.append((k, d))
        return found

    @staticmethod
    def _proposals(boxes: list, have: list) -> list:
        """The ``(box, follow entry or None)`` of ``boxes`` to verify: none that overlaps a person
        found already (``have``) or an earlier proposal."""
        out: list = []
        for b, e in boxes:
            cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
            if any(_inside(cx, cy, k.box) or _box_iou(b, k.box) >= 0.3 for k in have):
                continue
            if any(_box_iou(b, o) >= 0.3 or _inside(cx, cy, o) for o, _ in out):
                continue
            out.append((b, e))
        return out

    @staticmethod
    def _follow(proposals: list, found: list, kept: list) -> list:
        """The follow entries ``(box, anchor)`` for the next call: each proposal whose crop found
        a person that was kept, with the same box moved by how far the person's box centre (the
        anchor) moved since the box was made. The box keeps the size that found them: the person's
        own joint box is too tight when legs or head are not seen (following joint boxes found 1.83
        people a call on vtest.avi at 720p, these 2.13). A followed person whose crop finds nobody
        is not followed further (keeping them one more call cost 6% more crops for no one more)."""
        hit = {k: d for k, d in found if any(d is x for x in kept)}
        out = []
        for k, (box, entry) in enumerate(proposals):
            if k in hit:
                b = hit[k].box
                cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
                if entry is not None:
                    box = (box[0] + cx - entry[1][0], box[1] + cy - entry[1][1], box[2], box[3])
                out.append((box, (cx, cy)))
        return out

    def _people(self, result, x0: float, y0: float, w: float, h: float, width: int, height: int) -> list:
        """The people of a landmarker result, landmarks (normalised to the image it saw: the window
        ``(x0, y0, w, h)`` of the frame) mapped to the frame."""
        dets = []
        for person in result.pose_landmarks:
            lm = np.array([(p.x * w + x0, p.y * h + y0, p.visibility if p.visibility is not None else 0.0)
                           for p in person], dtype=np.float32)
            det = self._landmark_person(lm, width, height)
            if det is not None:
                dets.append(det)
        return dets

    def _blazepose_people(self, frame: np.ndarray, jobs: list, alone: bool = False) -> list:
        """Run litert ``jobs`` on the ``threads`` workers (one :class:`BlazePose` each), shared out
        as :meth:`_verify` shares its crops; the results come back in job order. A job is
        ``("track", roi, since)`` (the landmark model on last call's square of a person),
        ``("roi", roi, 0)`` (the same on the square of a whole-frame detection), ``("crop", box,
        0)`` (the detector on a square crop around ``box``, then the landmark model on what it
        found: the person is kept when their box centre lies inside ``box``), ``("confirm", roi,
        0)`` (the same on last call's square of a person, grown by ``crop_margin``) or ``("frame",
        (x0, y0, w, h), 0)`` (the detector alone on that rectangle of the frame, letterboxed, for
        :meth:`_call_litert`'s second phase). The result of a job is a list of ``(person, next roi, since)``, or of detections
        for ``frame``. A single job with ``alone`` (nothing else, HOG included, is running) runs on
        one engine whose interpreters use all ``threads``: the other cores would idle otherwise
        (a landmark run 8.7 -> 4.5 ms on 2 threads, bit for bit the same output)."""
        if not jobs:
            return []
        if alone and len(jobs) == 1 and self.threads > 1:
            if self._wide is None:
                self._wide = BlazePose(self.model_files, num_threads=self.threads)
            return [r for _, r in self._blazepose_share(self._wide, frame, [(0, jobs[0])])]
        n = min(self.threads, len(jobs))
        while len(self._engines) < n:
            self._engines.append(BlazePose(self.model_files))
        done = self._shared(lambda engine, share: self._blazepose_share(engine, frame, share), self._engines[:n], jobs)
        return [r for _, r in done]

    def _blazepose_share(self, engine, frame: np.ndarray, jobs: list) -> list:
        """:meth:`_blazepose_people` of ``(index, job)`` on one engine: ``(index, result)``."""
        height, width = frame.shape[:2]
        o = self._options
        out = []
        for k, (kind, what, since) in jobs:
            if kind == "frame":  # a rectangle, letterboxed (black around it) as mediapipe does
                x0, y0, w, h = what
                side = max(w, h)
                found = engine.detect(frame[y0:y0 + h, x0:x0 + w], ((w - side) / 2, (h - side) / 2, side),
                                      o["min_pose_detection_confidence"], self.num_poses)
                out.append((k, [d.moved(x0, y0) for d in found]))
                continue
            box = None
            if kind in ("crop", "confirm"):
                if kind == "crop":  # a HOG box: a square around it, moved inside the frame
                    box = what
                    x0, y0, w, h = _square_crop(box, self.crop_margin, width, height)
                    window = (x0, y0, max(w, h))
                else:  # a followed person's square grown by crop_margin, at most the whole frame's
                    box = what.bounds()
                    side = box[2] * self.crop_margin
                    window = (what.cx - side / 2, what.cy - side / 2, side)
                    if side >= max(width, height):
                        side = max(width, height)
                        window = ((width - side) / 2, (height - side) / 2, side)
                if window[2] < 8:
                    out.append((k, []))
                    continue
                low = o["min_pose_detection_confidence"]
                if kind == "confirm":  # of a few, the one nearest the square (not a neighbour)
                    found = engine.detect(frame, window, min(low, CONFIRM_DETECTION), 3)
                    found.sort(key=lambda d: math.hypot(d.keypoints[0][0] - what.cx, d.keypoints[0][1] - what.cy))
                else:
                    found = engine.detect(frame, window, low, 1)
                if not found:
                    out.append((k, []))
                    continue
                what = found[0].roi()
            elif kind == "track":
                box = what.bounds()
            flag, lm = engine.landmarks(frame, what)
            low = o["min_tracking_confidence"] if kind == "track" else o["min_pose_presence_confidence"]
            person = self._landmark_person(lm, width, height) if flag >= low else None
            if person is None or (box is not None and not _inside(person.box[0] + person.box[2] / 2,
                                                                 person.box[1] + person.box[3] / 2, box)):
                out.append((k, []))
                continue
            out.append((k, [(person, roi_from_points(lm[BODY_LANDMARKS, :2], lm[BODY_LANDMARKS + 1, :2]), since)]))
        return out

    def _merge(self, items: list, person) -> list:
        """``items`` without those whose ``person(item)`` overlaps, by box IoU of ``merge_iou`` or
        more, one of higher score (kept first)."""
        kept: list = []
        for it in sorted(items, key=lambda it: -person(it).score):
            if all(_box_iou(person(it).box, person(k).box) < self.merge_iou for k in kept):
                kept.append(it)
        return kept

    @staticmethod
    def _landmark_person(lm: np.ndarray, width: int, height: int):
        """A Detection (OpenPose-18 joints, confidence = visibility) of BlazePose landmarks ``(x, y,
        visibility, ...)`` in frame pixels, or None when no joint lies in the frame."""
        from beenet.inference.pose import detection_from_keypoints, mediapipe_to_openpose

        arr = np.stack([lm[:BODY_LANDMARKS, 0] / width, lm[:BODY_LANDMARKS, 1] / height, lm[:BODY_LANDMARKS, 2]], 1)
        return detection_from_keypoints(mediapipe_to_openpose(arr.astype(np.float32), width, height))

    def _call_litert(self, frame: np.ndarray, width: int, height: int, index: int) -> list:
        """One call of the ``litert`` engine, in two phases of jobs run side by side
        (:meth:`_blazepose_people`) while HOG runs on its own worker:

        1. the people of the last call (``follow``): the landmark model on the square their own
           landmarks gave (BlazePose's tracking, as mediapipe's video mode; kept while the
           pose-presence flag stays at ``min_tracking_confidence`` or above), except once every
           ``confirm_every`` calls' worth of frames, when the detector must find them again on a
           crop around that square (a square that slid off its person is dropped there);
           and the detector on the whole frame, letterboxed (and on the tiles);
        2. the landmark model on each whole-frame detection nobody found in 1 covers, and
           HOG's boxes that nobody found so far covers, each verified as :meth:`_verify` does
           (the detector on a crop, the person's box centre inside the HOG box).

        People found twice are merged by box IoU (``merge_iou``), the higher score kept."""
        hog = None
        self.hog_share = 0.0
        if self.detector == "hog" and self._calls % self.hog_every == 0:
            hog = self._hog_start(frame)
        try:
            # A followed person's square moves on at the velocity of its centre over the frames
            # since their last call (predict poses every k-th frame: a person walking across a
            # 25 fps close-up leaves last call's square within 5 frames).
            jobs: list = []
            origins: list = []  # the followed entry each job of phase 1 came from (None: the frame)
            # The detector confirms them after confirm_every calls' worth of frames at this call's
            # spacing (``since`` counts frames): the frames predict poses one by one while a new
            # person is confirmed count for what they are, not as whole calls.
            for entry in (self._tracked if self.follow else []):
                roi, since, (vx, vy), at = entry
                gap = max(1, index - at)
                ahead = Roi(roi.cx + vx * gap, roi.cy + vy * gap, roi.side, roi.angle)
                due = since + gap >= self.confirm_every * gap
                jobs.append(("confirm", ahead, 0) if due else ("track", ahead, since + gap))
                origins.append(entry)
            # The whole frame: on every call while nobody is followed or without HOG (then it is
            # the only way to find someone new), else only when HOG looks at the whole frame
            # (first call of a shot, every hog_full_every-th HOG call): the people it finds are
            # followed from then on.
            full = (not self._tracked or self.detector != "hog"
                    or self._calls % (self.hog_every * self.hog_full_every) == 0)
            windows = [(0, 0, width, height)] if full else []
            if full and self.tiles > 1:
                windows += _tile_grid(width, height, self.tiles, self.tile_overlap)
            jobs += [("frame", w, 0) for w in windows]
            results = self._blazepose_people(frame, jobs, alone=hog is None or hog.done())
            found = [(*p, origin) for (kind, *_), r, origin in zip(jobs, results, origins + [None] * len(windows))
                     if kind != "frame" for p in r]
            detections = sorted((d for (kind, *_), r in zip(jobs, results) if kind == "frame" for d in r),
                                key=lambda d: -d.score)
            jobs = []
            for d in detections:
                roi = d.roi()
                if not any(_inside(roi.cx, roi.cy, p.box) for p, *_ in found) and \
                        not any(_inside(roi.cx, roi.cy, r.bounds()) for _, r, _ in jobs):
                    jobs.append(("roi", roi, 0))
            jobs = jobs[:self.num_poses]
            if hog is not None:
                boxes = hog.result()
                more = self._proposals([(b, None) for b in boxes], [p for p, *_ in found])
                jobs += [("crop", b, 0) for b, _ in more]
            found += [(*p, None) for r in self._blazepose_people(frame, jobs, alone=True) for p in r]
            self._calls += 1
            kept = self._merge(found, lambda p: p[0])
            self._tracked = []
            for _person, roi, since, origin in (kept if self.follow else []):
                velocity = (0.0, 0.0)
                if origin is not None and index > origin[3]:
                    gap = index - origin[3]
                    velocity = ((roi.cx - origin[0].cx) / gap, (roi.cy - origin[0].cy) / gap)
                self._tracked.append((roi, since, velocity, index))
            return [p for p, *_ in kept]
        finally:
            if hog is not None:
                from concurrent.futures import wait

                wait([hog])

    def __call__(self, frame: np.ndarray | None, index: int | None = None) -> list:
        if frame is None:
            raise ValueError("MediaPipeMultiPose needs the frame's pixels")
        if not self._started:
            self.reset()
        height, width = frame.shape[:2]
        frame = np.ascontiguousarray(frame)
        if self.engine == "litert":
            self._index = self._index + 1 if index is None else int(index)
            return self._call_litert(frame, width, height, self._index)
        # Video mode wants strictly increasing timestamps (ms); frame index at ~30 fps spacing.
        ts = self._last_ts + 33 if index is None else max(int(index) * 33, self._last_ts + 1)
        self._last_ts = ts
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=frame)
        hog = None  # HOG (every hog_every-th call) runs beside the whole-frame pass
        self.hog_share = 0.0
        if self.detector == "hog" and self._calls % self.hog_every == 0:
            hog = self._hog_start(frame)
        try:
            dets = self._people(self._detect(self._video, image, ts), 0, 0, width, height, width, height)
            if self.tiles > 1:
                if self._image is None:
                    self._image = self._create("IMAGE")
                for x0, y0, w, h in _tile_grid(width, height, self.tiles, self.tile_overlap):
                    tile = self._mp.Image(image_format=self._mp.ImageFormat.SRGB,
                                          data=np.ascontiguousarray(frame[y0:y0 + h, x0:x0 + w]))
                    dets += self._people(self._detect(self._image, tile), x0, y0, w, h, width, height)
            if self.detector == "hog":
                # The people followed from earlier calls are cropped first, while HOG may still run;
                # then HOG's boxes that no person found so far covers (a second chance for a followed
                # person whose crop failed).
                proposals = self._proposals([(e[0], e) for e in self._followed] if self.follow else [], dets)
                found = self._verify(frame, [b for b, _ in proposals], width, height, indexed=True)
                boxes = [] if hog is None else hog.result()
                more = self._proposals([(b, None) for b in boxes], dets + [d for _, d in found])
                found += [(len(proposals) + k, d) for k, d in
                          self._verify(frame, [b for b, _ in more], width, height, indexed=True)]
                proposals += more
                crops = [d for _, d in found]
                self._calls += 1
                dets += crops
            if self.tiles == 1 and self.detector != "hog":
                return dets
            kept = self._merge(dets, lambda d: d)
            if self.detector == "hog":
                self._followed = self._follow(proposals, found, kept)
            return kept
        finally:
            if hog is not None:  # never leave HOG reading the frame after this call (it raised)
                from concurrent.futures import wait

                wait([hog])


def main(argv: list[str] | None = None) -> int:
    """``python -m beenet.inference.pose_mediapipe install-models WHEEL`` (used by
    ``scripts/install-pose.sh``) or ``... check`` (builds the bundle and prints where it is)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m beenet.inference.pose_mediapipe")
    sub = p.add_subparsers(dest="cmd", required=True)
    inst = sub.add_parser("install-models", help="copy the tflite files out of a mediapipe 0.10.21 wheel")
    inst.add_argument("wheel")
    sub.add_parser("check", help="find the models, build the bundle, run the landmarker once")
    args = p.parse_args(argv)
    try:
        if args.cmd == "install-models":
            print(f"pose models in {install_models_from_wheel(args.wheel)}")
        else:
            pose = MediaPipeMultiPose()
            found = pose(np.zeros((64, 64, 3), np.uint8), 0)
            pose.close()
            where = f"bundle {pose.bundle}" if pose.bundle else "models " + ", ".join(str(p) for p in pose.model_files.values())
            print(f"pose backend 'mediapipe' ({pose.engine}) works: {where} ({len(found)} people in a blank frame)")
    except BeenetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
