"""``Predictor``: per-person emotions over time from any video, as a table.

Two streaming passes over the video keep memory flat however long it is:

1. decode every frame once, find people and their joints (a :class:`PoseBackend`), and give each a
   stable ``person_id`` (:class:`Tracker`). Only joints are kept (216 bytes a person-frame).
2. cut each person's presence into windows (:func:`plan_windows`), decode again and keep only the
   frames those windows sample, turn them into tensors exactly as training did
   (:mod:`beenet.media.transforms`), and run the model on batches of (person, window) items as soon
   as their frames have passed. A frame is dropped as soon as no pending window needs it.

Example::

    from beenet import Predictor
    table = Predictor("runs/demo/best.pt").predict("talk.mp4")
    table.emotions.mean()           # average category scores
    table[table.person_id == 0].vad  # one person's valence / arousal / dominance over time
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet.version import __version__
from beenet.atomic import to_builtins
from beenet.context.build import PREDICT_CONTEXTS, make_context_source, prediction_context
from beenet.context.config import ContextConfig
from beenet.media.transforms import crop_to_tensor, frames_to_tensor, normalize_skeleton
from beenet.media.video import prefetch
from beenet.device import resolve_device
from beenet.errors import BeenetError, CheckpointError, ConfigError, DataNotFoundError
from beenet.inference.appearance import appearance
from beenet.inference.engines import ENGINES, OnnxEngine, TorchEngine, check_outputs
from beenet.inference.inputs import Job, resolve_inputs
from beenet.artifacts.spec import ModelSpec, spec_from_checkpoint, spec_from_onnx
from beenet.inference.pose import (
    Box,
    PoseBackend,
    PoseOptionError,
    PrecomputedPose,
    make_pose_backend,
    shot_cut,
    valid_mask,
)
from beenet.inference.shots import ShotCutDetector
from beenet.inference.table import FrameTable, PredictionTable, concat_tables, empty_table, make_table
from beenet.inference.tracking import Tracker
from beenet.inference.windows import (
    PersonTrack,
    Sampling,
    TrackStore,
    WindowPlan,
    WindowSchedule,
    context_frames,
    plan_windows,
)
from beenet.labels import CATEGORIES, NUM_CATEGORIES, NUM_JOINTS, VAD_NAMES, VAD_SCALE
from beenet.progress import progress

log = logging.getLogger(__name__)

#: A detection with fewer valid joints than this is ignored (a stray hand, a false positive).
MIN_JOINTS = 4
#: Tracking defaults, measured on real footage (benchmarks/bench_tracking.py; docs/predict.md).
MIN_HITS = 3
MIN_CONFIDENCE = 0.7
MIN_TRACK_S = 0.5
MAX_TILT = 45.0
#: Seconds a confirmed person may go undetected and keep their id (gaps are interpolated).
MAX_GAP_S = 0.5
#: Seconds after a person's track ended within which a new track close by that looks like them
#: (clothes' colours, :mod:`beenet.inference.appearance`) continues their id (0: never). Chosen on
#: vtest.avi (docs/predict.md "Tracking"): the 11-17 joins it makes there were each checked by eye,
#: after gaps of 0.2-1.4 s.
RELINK_S = 1.5
#: ``pose_every="auto"`` (the default) runs pose about this many times a second: every
#: ``round(fps / POSE_RATE_HZ)``-th frame (10 fps: 2, 25: 5, 30: 6; at least 1), plus the frames
#: :func:`pose_due` adds. Chosen on real footage (``benchmarks/bench_tracking.py``, docs/predict.md
#: "Tracking"): at 5 Hz the tracks cover 94.2 % (vtest.avi), 93.5 % (bikes.mp4), 98.6 %
#: (face_noface.mov) and 89.5 % (talking.mp4) of the person-frames that pose on every frame
#: tracks, with as many people kept; the model samples 16 skeleton frames per 4 s window (4 Hz).
POSE_RATE_HZ = 5.0


def pose_stride(pose_every: int | str, fps: float, needs_pixels: bool = True) -> int:
    """Frames between pose runs for ``pose_every`` (an int, or ``"auto"``: about
    :data:`POSE_RATE_HZ` a second) on a video at ``fps``; 1 for precomputed keypoints."""
    if not needs_pixels:
        return 1
    if pose_every == "auto":
        return max(1, round(float(fps or 25.0) / POSE_RATE_HZ))
    return int(pose_every)


class NoPersonFound(BeenetError):
    """Kept for code that catches it; no longer raised: a video with nobody in it gives an empty
    table and :attr:`VideoResult.note` (see :meth:`Predictor.run`)."""


class PoseBackendError(BeenetError):
    """The pose backend cannot be built or started here (not installed, model files missing; or,
    with ``install=False``, an option it was given is wrong: installing will not fix that)."""

    def __init__(self, backend: str, reason: str, install: bool = True) -> None:
        super().__init__(f"the pose backend {backend!r} cannot be used: {reason}")
        self.backend, self.reason, self.install = backend, reason, install


@dataclass
class VideoResult:
    """Everything one video produced: the table, the tracks (for drawing) and where time went."""

    video: Path
    table: PredictionTable
    tracks: dict[int, PersonTrack]
    boxes: dict[int, dict[int, Box]]
    num_frames: int
    fps: float
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    #: ``person_id -> frame -> confidence`` (the detection's score; interpolated inside gaps).
    confidences: dict[int, dict[int, float]] = field(default_factory=dict)
    #: ``person_id -> frames`` whose joints and box were interpolated, not detected.
    interpolated: dict[int, set[int]] = field(default_factory=dict)
    #: Why the table is empty (nobody found, or nobody stayed long enough for a window); else None.
    note: str | None = None

    @property
    def frames(self) -> "FrameTable":
        """One row per (frame, person) with the scores of the window covering the frame
        (:func:`~beenet.inference.frames.frames_table`)."""
        from beenet.inference.frames import frames_table

        return frames_table(self)


class _Timer:
    """Accumulates seconds per stage."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        self.t[stage] += seconds

    def timed_iter(self, it: Iterator[Any], stage: str) -> Iterator[Any]:
        """``it``'s items, the time spent waiting for each added to ``stage``; closing this closes
        ``it`` (a prefetching thread stops with it)."""
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    self.add(stage, time.perf_counter() - t0)
                    return
                self.add(stage, time.perf_counter() - t0)
                yield item
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()


class _WindowFrames:
    """The frame tensors (and body crops) of each window's samples, kept from when a frame passes
    until the window is assembled: ``slots[window][sample] = [frames, crops]``."""

    def __init__(self, plans: list[WindowPlan], image_size: int, crop_size: int, crops: bool) -> None:
        self.plans, self.image_size, self.crop_size, self.crops = plans, image_size, crop_size, crops
        self.positions: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # frame -> (window, sample, pos)
        for p in plans:
            for si, sample in enumerate(p.samples):
                for pos, f in enumerate(sample):
                    self.positions[f].append((p.index, si, pos))
        self.slots: dict[int, list[list[list[Any]]]] = {}

    def take(self, idx: int, frame: np.ndarray) -> None:
        wanted = self.positions.get(idx)
        if not wanted:
            return
        full = frames_to_tensor(frame[None], self.image_size)[0]
        for pi, si, pos in wanted:
            p = self.plans[pi]
            slots = self.slots.setdefault(pi, [[[None] * len(s), [None] * len(s)] for s in p.samples])
            slots[si][0][pos] = full
            if self.crops:
                slots[si][1][pos] = crop_to_tensor(frame[None], p.crop_boxes.get(idx) or p.box, self.crop_size)[0]

    def pop(self, window: int) -> list[list[list[Any]]]:
        return self.slots.pop(window)

    @property
    def held(self) -> int:
        """Distinct frame tensors held (one decoded frame can feed several windows)."""
        return len({id(t) for slots in self.slots.values() for s in slots for t in s[0] if t is not None})


class _SpanContext:
    """Context vectors per window span (shared by everyone in it): the experts label a few frames
    of the span once they have all passed."""

    def __init__(self, source: Any, plans: list[WindowPlan], timer: _Timer) -> None:
        self.source, self.timer = source, timer
        self.frames_per_span = int(getattr(source, "frames_per_clip", 3))
        spans = {(p.start_frame, p.end_frame): context_frames(p.start_frame, p.end_frame, self.frames_per_span)
                 for p in plans}
        self.schedule = WindowSchedule(spans)
        self.frames: dict[Any, list[np.ndarray]] = defaultdict(list)
        self.vectors: dict[Any, np.ndarray] = {}

    def take(self, idx: int, frame: np.ndarray) -> None:
        for span in self.schedule.wanted_by(idx):
            self.frames[span].append(frame)
        for span in self.schedule.see(idx):
            t0 = time.perf_counter()
            self.vectors[span] = np.asarray(self.source.label_frames(np.stack(self.frames.pop(span))),
                                            dtype=np.float32)
            self.timer.add("context", time.perf_counter() - t0)

    def vector(self, p: WindowPlan) -> np.ndarray:
        return self.vectors[(p.start_frame, p.end_frame)]

    @property
    def held(self) -> int:
        return sum(len(v) for v in self.frames.values())


class _Batches:
    """Items of complete windows, run through the engine ``batch_size`` at a time; the outputs are
    summed per window (several items for averaged stills) and per stream."""

    def __init__(self, engine: Any, num_windows: int, batch_size: int, streams: bool, timer: _Timer,
                 model: str | Path = "model", video: str | Path = "") -> None:
        self.engine, self.batch_size, self.streams, self.timer = engine, batch_size, streams, timer
        self.model, self.video = model, video
        self.ready: list[tuple[int, dict[str, torch.Tensor]]] = []
        self.sums = np.zeros((num_windows, NUM_CATEGORIES + 3), dtype=np.float64)
        self.counts = np.zeros(num_windows, dtype=np.int64)
        self.stream_sums: dict[str, np.ndarray] = {}

    @property
    def pending(self) -> int:
        return len(self.ready)

    @property
    def unscored(self) -> int:
        return int((self.counts == 0).sum())

    def add(self, window: int, items: list[dict[str, torch.Tensor]]) -> None:
        """Queue a window's items (kept together in one batch); run the batch once it is full."""
        self.ready.extend((window, item) for item in items)
        if len(self.ready) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.ready:
            return
        batch = {k: torch.stack([item[k] for _, item in self.ready]) for k in self.ready[0][1]}
        t0 = time.perf_counter()
        res = self.engine(batch)
        self.timer.add("model", time.perf_counter() - t0)
        check_outputs(res, self.model, f"on {self.video}")
        fused = np.concatenate([np.asarray(res["categories"]), np.asarray(res["vad"])], axis=1)
        rows = [w for w, _ in self.ready]
        for row, w in enumerate(rows):
            self.sums[w] += fused[row]
            self.counts[w] += 1
        if self.streams:
            for name, arr in res["streams"].items():
                acc = self.stream_sums.setdefault(name, np.zeros_like(self.sums))
                for row, w in enumerate(rows):
                    acc[w] += np.asarray(arr[row], dtype=np.float64)
        self.ready.clear()

    def means(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = self.counts[:, None]
        return self.sums / n, {k: v / n for k, v in self.stream_sums.items()}


def load_keypoints(path: str | Path, num_frames: int | None = None) -> PrecomputedPose:
    """A BoLD joints ``.npy`` or a folder of OpenPose ``*_keypoints.json`` as a pose source;
    ``num_frames`` (the video's) bounds the frame numbers a joints file may hold."""
    path = Path(path)
    if path.is_dir():
        return PrecomputedPose.from_openpose_json(path)
    if path.suffix.lower() == ".npy":
        return PrecomputedPose.from_bold_joints(path, num_frames)
    raise BeenetError(f"{path}: keypoints must be a BoLD joints .npy file or a folder of OpenPose *_keypoints.json")


class Predictor:
    """Loads a model once and predicts per person and window on any number of videos.

    ``checkpoint``: a ``beenet train`` checkpoint (``.pt``), a ``beenet export onnx`` file, a
    ``beenet export pretrained`` folder or a Hugging Face Hub id of one (see :meth:`from_pretrained`).
    ``engine``: one of :data:`~beenet.inference.engines.ENGINES`, ``torch`` or ``onnx`` (a ``.pt``
    is exported to a temporary ONNX file first). ``pose``: one of
    :data:`~beenet.inference.pose.POSE_CHOICES` (``auto`` = mediapipe when installed, else
    Keypoint R-CNN), or a :class:`PoseBackend` instance. ``window`` / ``stride`` in seconds.
    ``streams`` adds the per-stream scores to the table. ``stills`` (still-frame models): stills
    averaged per window. ``context``: for models fused with expert context
    (``fusion_context=input``): ``auto`` builds the experts of the checkpoint's context config
    through :func:`~beenet.context.build.make_context_source`, as training did; ``experts`` uses
    Places365 + COCO whatever source the checkpoint used; or pass an object with
    ``label_frames(frames) -> [445]``.

    Tracking (:class:`~beenet.inference.tracking.Tracker`): a person counts after ``min_hits``
    detections in a row, and is kept when seen over at least ``min_track`` seconds with a mean
    detection score of at least ``min_confidence``, upright (body axis within ``max_tilt`` degrees
    of vertical; None: any); ``max_gap`` seconds without a detection end a
    track, and gaps up to that are interpolated; a track that starts within ``relink`` seconds
    after a person's ended, close by and looking like them, keeps their id (the gap is not
    filled). ``shot_cuts`` ends every track at a detected shot
    cut (:class:`~beenet.inference.shots.ShotCutDetector`). ``pose_options`` go to the named pose
    backend (:func:`~beenet.inference.pose.make_pose_backend`). ``pose_every`` runs the pose backend
    on every N-th frame only (and on the first frame of each shot, and on every frame while a
    person is being confirmed, :func:`pose_due`); the frames between are interpolated within each
    track. ``"auto"`` (the default) is about :data:`POSE_RATE_HZ` poses a second, from each
    video's frame rate (:func:`pose_stride`); 1 poses every frame.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "auto",
        engine: str = "torch",
        pose: str | PoseBackend = "auto",
        window: float = 4.0,
        stride: float = 2.0,
        batch_size: int = 8,
        streams: bool = False,
        stills: int = 1,
        min_presence: float = 0.25,
        max_gap: float = MAX_GAP_S,
        context: Any = "auto",
        show_progress: bool | None = None,
        pose_every: int | str = "auto",
        min_hits: int = MIN_HITS,
        min_confidence: float = MIN_CONFIDENCE,
        min_track: float = MIN_TRACK_S,
        shot_cuts: bool = True,
        max_tilt: float | None = MAX_TILT,
        relink: float = RELINK_S,
        pose_options: dict[str, Any] | None = None,
    ) -> None:
        if window <= 0 or stride <= 0:
            raise ConfigError(f"window and stride must be positive seconds, got window={window}, stride={stride}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if pose_every != "auto" and (isinstance(pose_every, (str, bool, float)) or int(pose_every) < 1):
            raise ConfigError(f"pose_every must be 'auto' or an integer >= 1, got {pose_every!r}")
        if min_hits < 1 or min_track < 0 or max_gap < 0 or relink < 0:
            raise ConfigError(f"min_hits must be >= 1, min_track, max_gap and relink >= 0 seconds; got "
                              f"min_hits={min_hits}, min_track={min_track}, max_gap={max_gap}, relink={relink}")
        self.pose_every: int | str = pose_every if pose_every == "auto" else int(pose_every)
        self.min_hits = int(min_hits)
        self.min_confidence, self.min_track, self.shot_cuts = float(min_confidence), float(min_track), bool(shot_cuts)
        self.max_tilt = max_tilt
        self.checkpoint = Path(checkpoint)
        self.device = resolve_device(device)
        self.window, self.stride = float(window), float(stride)
        self.batch_size = int(batch_size)
        self.streams = bool(streams)
        self.min_presence = float(min_presence)
        self.max_gap = float(max_gap)
        self.relink = float(relink)
        self.show_progress = show_progress
        self._tmpdir: str | None = None
        self.spec, self.engine = self._load(engine)
        self.sampling = Sampling.from_data_config(self.spec.data, bool(self.spec.model.skeleton), stills)
        self._pose_arg = pose
        #: Options for the named pose backend (``make_pose_backend(pose, **pose_options)``), e.g.
        #: ``{"tiles": 2}`` or ``{"detector": "hog"}`` for ``mediapipe``.
        self.pose_options = dict(pose_options or {})
        if self.pose_options and not isinstance(pose, str):
            raise ConfigError("pose_options apply to a pose backend given by name; this one is an instance "
                              "(build it with the options instead)")
        self._pose: PoseBackend | None = pose if not isinstance(pose, str) else None
        self._pose_error: PoseBackendError | None = None
        self._engine_name = engine
        self._warned_synthetic = False
        self.context = self._context_source(context) if "context" in self.spec.input_names else None

    # -- set-up ----------------------------------------------------------------------------
    def _load(self, engine: str) -> tuple[ModelSpec, Any]:
        from beenet.artifacts.pretrained import resolve_checkpoint
        from beenet.artifacts.checkpoint import (
            checkpoint_sha256,
            load_checkpoint,
            load_model_state,
            model_config_from_checkpoint,
            weights_source,
        )

        from beenet.artifacts.checkpoint import UNKNOWN_DATA, trained_on

        if engine not in ENGINES:
            raise ConfigError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
        # A .pt, an .onnx, an exported folder, or a Hub id (resolved to its local folder).
        path = resolve_checkpoint(self.checkpoint)
        if path.suffix.lower() == ".onnx" and path.is_file():
            if engine != "onnx":
                raise ConfigError(f"{path} is an ONNX file: use --engine onnx (or give the .pt checkpoint)")
            eng = OnnxEngine(path, str(self.device))
            try:
                self.trained_on = trained_on({"trained_on": json.loads(eng.metadata.get("beenet.trained_on", ""))})
            except ValueError:  # exported before the record existed
                self.trained_on = dict(UNKNOWN_DATA)
            return spec_from_onnx(path, eng.metadata), eng
        ckpt = load_checkpoint(path)
        #: What the model was trained on (kind synthetic / bold / unknown, fingerprint, data, protocol).
        self.trained_on = trained_on(ckpt)
        spec = spec_from_checkpoint(ckpt, checkpoint_sha256(path), path)
        if engine == "onnx":
            from beenet.inference.onnx import export_onnx

            self._tmpdir = tempfile.mkdtemp(prefix="beenet-onnx-")
            onnx_path = export_onnx(path, Path(self._tmpdir) / "model.onnx")
            return spec, OnnxEngine(onnx_path, str(self.device))
        from beenet.models import build_model

        cfg = model_config_from_checkpoint(ckpt, path)
        cfg.pretrained = False  # the weights come from the checkpoint
        model = build_model(cfg)
        load_model_state(model, ckpt["model"], weights_source(ckpt, path))
        return spec, TorchEngine(model, self.device)

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, *, revision: str | None = None, **kwargs: Any) -> "Predictor":
        """A Predictor from a ``beenet export pretrained`` folder or a Hugging Face Hub id
        (``user/name``, optionally at ``revision``; needs the ``hub`` extra, and uses the local
        Hugging Face cache when offline). A ``.pt`` or ``.onnx`` works too. ``kwargs`` are
        :class:`Predictor`'s."""
        from beenet.artifacts.pretrained import resolve_checkpoint

        return cls(resolve_checkpoint(path_or_id, revision=revision), **kwargs)

    def _context_source(self, context: Any) -> Any:
        """The experts the checkpoint was trained with, built by the entry point training uses."""
        if not isinstance(context, str):
            if not hasattr(context, "label_frames"):
                raise ConfigError(f"context must be one of {', '.join(PREDICT_CONTEXTS)} or an object "
                                  "with label_frames(frames)")
            return context
        try:
            # A config without a context section described a model trained without context.
            trained = ContextConfig.from_dict({"source": "none", **self.spec.context}, str(self.checkpoint))
        except ConfigError as exc:
            raise CheckpointError(f"{exc}; the checkpoint was written by another beenet version") from None
        return make_context_source(prediction_context(trained, context, str(self.checkpoint)), self.device)

    @property
    def pose(self) -> PoseBackend:
        """The pose backend, built (and started once) on first use; a backend that cannot be built
        raises :class:`PoseBackendError`, the same one on every later use (it is not retried)."""
        if self._pose is None:
            if self._pose_error is not None:
                raise self._pose_error
            name = str(self._pose_arg)
            try:
                backend = make_pose_backend(name, device=str(self.device), **self.pose_options)
                backend.reset()  # loads the model files: a missing one fails here, not mid-video
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                # A package that is not importable: say which import failed (the cause), not
                # the advice of the wrapper around it.
                cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
                lines = str(cause).strip().splitlines()
                reason = lines[0] if lines else type(cause).__name__
                if not isinstance(cause, BeenetError):
                    reason = f"{type(cause).__name__}: {reason}"
                self._pose_error = PoseBackendError(name, reason, install=not isinstance(cause, PoseOptionError))
                raise self._pose_error from exc
            self._pose = backend
        return self._pose

    def check_pose(self) -> PoseBackend:
        """Build and start the pose backend now (before any video), so a missing backend is one
        error up front instead of one per video. Raises :class:`PoseBackendError`."""
        return self.pose

    def take_synthetic_warning(self, video: str | Path) -> str | None:
        """:meth:`synthetic_warning` the first time this Predictor meets such a video, None after:
        whoever shows it (the log in :meth:`run`, or ``beenet predict`` up front) shows it once."""
        if self._warned_synthetic:
            return None
        warning = self.synthetic_warning(video)
        self._warned_synthetic = warning is not None
        return warning

    def synthetic_warning(self, video: str | Path) -> str | None:
        """The warning for a model trained on ``beenet synth`` data meeting ``video`` (None when the
        model was not, or when the video itself lies inside a ``beenet synth`` dataset)."""
        from beenet.artifacts.checkpoint import SYNTHETIC_WARNING

        if self.trained_on.get("kind") != "synthetic" or _in_synthetic_dataset(Path(video)):
            return None
        return SYNTHETIC_WARNING

    def settings(self, backend: PoseBackend | None = None) -> dict[str, Any]:
        """How this predictor makes a table (the ``settings`` metadata): enough to reproduce it."""
        pose = backend if backend is not None else self._pose
        pose_info: dict[str, Any] = {"name": pose.name if pose is not None else str(self._pose_arg)}
        if pose is not None:
            pose_info["options"] = to_builtins(pose.settings)
            if isinstance(pose, PrecomputedPose):
                pose_info["source"] = pose.source
        elif self.pose_options:
            pose_info["options"] = to_builtins(self.pose_options)
        return {
            "pose": pose_info,
            "tracker": {"max_gap_s": self.max_gap, "relink_s": self.relink, "min_hits": self.min_hits, "min_track_s": self.min_track,
                        "min_confidence": self.min_confidence, "max_tilt": self.max_tilt,
                        "shot_cuts": self.shot_cuts, "pose_every": self.pose_every},
            "window_s": self.window, "stride_s": self.stride, "min_presence": self.min_presence,
            "engine": self._engine_name, "device": str(self.device), "batch_size": self.batch_size,
            "streams": self.streams, "sampling": to_builtins(dataclasses.asdict(self.sampling)),
            "context": getattr(self.context, "name", None) if self.context is not None else None,
        }

    def close(self) -> None:
        """Close the pose backend this Predictor built (one given as an object stays its owner's)
        and remove the temporary ONNX export, if any. A later video builds the backend again."""
        if self._pose is not None and isinstance(self._pose_arg, str):
            pose, self._pose = self._pose, None
            pose.close()  # mediapipe's landmarkers, before the interpreter's shutdown reaches them
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    @property
    def metadata(self) -> dict[str, Any]:
        return {"model": self.spec.name, "checkpoint_sha256": self.spec.checkpoint_sha256,
                "beenet_version": __version__, "trained_on": dict(self.trained_on),
                "settings": self.settings()}

    # -- public API --------------------------------------------------------------------------
    def predict(self, inputs: str | Path | Sequence[str | Path],
                keypoints: str | Path | PrecomputedPose | None = None) -> PredictionTable:
        """The table of a video, or of several videos in one table.

        ``inputs``: a video file; a folder (every video under it, recursively, in sorted order);
        a BoLD joints ``.npy`` or an OpenPose JSON folder (their video is found beside them); or a
        list of any of these (see :mod:`beenet.inference.inputs`). One video gives its table, as
        :meth:`run` does; several give their tables concatenated in input order, told apart by the
        ``video`` column (the file name, or the path relative to a given folder; the full paths
        when two videos would share a name), with the metadata they share (``video`` and, when the frame rates differ, ``fps`` are None).
        ``keypoints``: precomputed joints for a single video input. Raises
        :class:`~beenet.errors.DataNotFoundError` naming an input that is not a video, and the
        errors of :meth:`run` for the first video that fails.
        """
        tables = [table for _, table in self.iter_predict(inputs, keypoints)]
        return tables[0] if len(tables) == 1 else concat_tables(tables)

    def iter_predict(self, inputs: str | Path | Sequence[str | Path],
                     keypoints: str | Path | PrecomputedPose | None = None) -> Iterator[tuple[Job, PredictionTable]]:
        """Like :meth:`predict`, one video at a time: yields ``(job, table)`` per video as soon as
        it is done (``job.video`` the file, ``job.name`` its ``video`` column). A video given
        twice (the same file, with the same keypoints) is done once. A video with nobody in it
        yields an empty table (see :meth:`run`). Input errors are raised before any work."""
        items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        jobs = resolve_inputs(items)
        for job in jobs:
            if job.error is not None:
                raise DataNotFoundError(job.error)
        if keypoints is not None:
            if len(jobs) != 1:
                raise ConfigError(f"keypoints={str(keypoints)!r} belong to one video, but the inputs hold "
                                  f"{len(jobs)}; give one video with its keypoints")
            jobs[0].keypoints = keypoints  # type: ignore[assignment]
        jobs = [job for job in jobs if job.duplicate_of is None]
        if len({job.name for job in jobs}) < len(jobs):  # same file name in two folders
            for job in jobs:
                job.name = str(job.video)
        for job in jobs:
            yield job, self.run(job.video, job.keypoints, name=job.name).table  # type: ignore[arg-type]

    def run(self, video: str | Path, keypoints: str | Path | PrecomputedPose | None = None,
            name: str | None = None) -> VideoResult:
        """Predict on one video; also returns the tracks and the time spent per stage.

        ``keypoints``: precomputed joints for this video (BoLD ``.npy``, OpenPose JSON folder, or a
        :class:`PrecomputedPose`); None runs the pose backend. ``name``: the ``video`` column
        (default: the file name). A video with nobody in it (or nobody present long enough for
        one window) gives an empty table, with the reason in ``result.note`` and the log; it is
        not an error. Raises :class:`VideoDecodeError` for unreadable or truncated videos and
        :class:`BoLDFormatError` when the keypoints do not match the video.
        """
        from beenet.media.video import VideoReader

        video = Path(video)
        timer = _Timer()
        t_start = time.perf_counter()
        stats: dict[str, int] = {}
        backend: PoseBackend | None = None
        warning = self.take_synthetic_warning(video)
        if warning is not None:  # once per Predictor: a batch of videos says it once
            log.warning("%s", warning)
        if keypoints is None:
            backend = self.pose
        elif isinstance(keypoints, PrecomputedPose):
            backend = keypoints
        t_open = time.perf_counter()
        with VideoReader(video) as reader:
            timer.add("open", time.perf_counter() - t_open)
            n, fps, W, H = reader.num_frames, float(reader.fps or 25.0), reader.width, reader.height
            if backend is None:  # read once the video's length is known: it bounds the frame numbers
                backend = load_keypoints(keypoints, n)  # type: ignore[arg-type]
            if isinstance(backend, PrecomputedPose):
                backend.check_matches(n, W, H, video)
            store = self._track(reader, backend, timer, stats)
            tracks = store.tracks()
            plans = plan_windows(tracks, store.num_frames, fps, W, H, self.sampling, self.window,
                                 self.stride, self.min_presence)
            stats.update(frames=store.num_frames, people=len(tracks), windows=len(plans))
            note = None
            if not tracks:
                note = (f"no person found in {store.num_frames} frames (pose backend: {backend.name}); "
                        "the table is empty")
            elif not plans:
                note = (f"people were found, but none stayed for {self.min_presence:.0%} of a "
                        f"{self.window:g} s window; the table is empty (try a shorter --window)")
            if note is None:
                sums, streams = self._score(reader, plans, timer, stats)
            else:
                log.warning("%s: %s", video, note)
                sums, streams = np.zeros((0, NUM_CATEGORIES + 3)), {}
        table = self._table(plans, sums, streams, name or video.name, fps)
        settings = self.settings(backend)
        if "pose_every" in stats:  # what "auto" came to at this video's frame rate
            settings["tracker"]["pose_every_frames"] = stats["pose_every"]
        table.set_metadata(video=name or video.name, fps=fps, **{**self.metadata, "settings": settings})
        timer.add("total", time.perf_counter() - t_start)
        return VideoResult(video, table, tracks, store.boxes(), store.num_frames, fps, W, H, dict(timer.t), stats,
                           store.confidences(), store.interpolated(), note=note)

    # -- pass 1: people and joints --------------------------------------------------------------
    def tracker(self, fps: float, every: int = 1) -> Tracker:
        """The tracker of this Predictor's thresholds for a video at ``fps``, posed every
        ``every``-th frame."""
        return Tracker(max_age=max(every, round(self.max_gap * fps)), min_hits=self.min_hits,
                       min_track_frames=max(1, round(self.min_track * fps)),
                       min_confidence=self.min_confidence, max_tilt=self.max_tilt,
                       relink_frames=round(self.relink * fps))

    def _track(self, reader: Any, backend: PoseBackend, timer: _Timer,
               stats: dict[str, int] | None = None) -> TrackStore:
        """Pose on the frames (every ``pose_every``-th, the first of each shot, and while a track is
        tentative: :func:`pose_due`), tracking, the final ids, and interpolation inside each
        track's gaps."""
        fps = float(reader.fps or 25.0)
        every = pose_stride(self.pose_every, fps, backend.needs_pixels)
        tracker = self.tracker(fps, every)
        store = TrackStore()
        t0 = time.perf_counter()
        backend.reset()
        timer.add("pose_init", time.perf_counter() - t0)
        n = reader.num_frames
        bar = progress(total=n, desc=f"pose {reader.path.name}",
                       disable=None if self.show_progress is None else not self.show_progress)
        if backend.needs_pixels:
            frames = timer.timed_iter(prefetch(reader.iter_frames()), "decode")
        else:
            frames = ((i, None) for i in range(n))
        shots = ShotCutDetector() if self.shot_cuts and backend.needs_pixels else None
        cuts: list[int] = []
        posed = detections = 0
        # closed also when pose raises: the decode thread stops before the reader is closed
        with closing(frames):
            for idx, frame in frames:
                cut = False
                if shots is not None:
                    t0 = time.perf_counter()
                    cut = shots(frame)
                    timer.add("shots", time.perf_counter() - t0)
                    if cut:
                        cuts.append(idx)
                        tracker.cut(idx)
                        shot_cut(backend)
                store.frame_done(idx)
                bar.update(1)
                if not pose_due(idx, every, cut, tracker, last=idx == n - 1):
                    continue
                t0 = time.perf_counter()
                dets = [d for d in backend(frame, idx) if valid_mask(d.keypoints).sum() >= MIN_JOINTS]
                t1 = time.perf_counter()
                posed += 1
                detections += len(dets)
                if frame is not None and self.relink > 0:  # what each person looks like, to relink
                    for d in dets:
                        d.appearance = appearance(frame, d.keypoints)
                ids = tracker.update(idx, dets)
                for pid, d in zip(ids, dets):
                    store.add(idx, pid, d.keypoints, d.box, d.score)
                timer.add("pose", t1 - t0)
                timer.add("track", time.perf_counter() - t1)
        bar.close()
        t0 = time.perf_counter()
        mapping = tracker.finalize()
        store.relabel(mapping)
        filled = store.interpolate(max_gap=tracker.max_age)
        timer.add("track", time.perf_counter() - t0)
        store.cuts = cuts
        if stats is not None:
            stats.update(pose_every=every, posed_frames=posed, detections=detections, shot_cuts=len(cuts),
                         tracks_started=len(tracker.all_tracks()), tracks_kept=len(mapping), interpolated_frames=filled)
        return store

    # -- pass 2: windows -> model ------------------------------------------------------------
    def _score(self, reader: Any, plans: list[WindowPlan], timer: _Timer,
               stats: dict[str, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Decode the frames the windows need once, in order, and score each window as soon as its
        last frame has passed; returns the mean outputs per window (and per stream)."""
        context = _SpanContext(self.context, plans, timer) if self.context is not None else None
        schedule = WindowSchedule.for_plans(plans, context.frames_per_span if context else 0)
        frames = _WindowFrames(plans, self.spec.image_size, self.spec.crop_size, "crops" in self.spec.input_names)
        batches = _Batches(self.engine, len(plans), self.batch_size, self.streams, timer, self.checkpoint, reader.path)
        first, last = schedule.first_frame, schedule.last_frame
        bar = progress(total=last - first + 1, desc=f"model {reader.path.name}",
                       disable=None if self.show_progress is None else not self.show_progress)
        max_held = 0
        decoded = timer.timed_iter(prefetch(reader.iter_frames(first, last + 1)), "decode2")
        with closing(decoded):  # closed also when scoring raises (see _track)
            for idx, frame in decoded:
                bar.update(1)
                t0 = time.perf_counter()
                frames.take(idx, frame)
                timer.add("preprocess", time.perf_counter() - t0)
                if context is not None:
                    context.take(idx, frame)
                held = frames.held + (context.held if context else 0) + batches.pending * self.sampling.num_frames
                max_held = max(max_held, held)
                for pi in schedule.see(idx):
                    t0 = time.perf_counter()
                    items = self._items(plans[pi], frames.pop(pi), context.vector(plans[pi]) if context else None)
                    timer.add("preprocess", time.perf_counter() - t0)
                    batches.add(pi, items)
        batches.flush()
        bar.close()
        unscored = schedule.end_video()
        if unscored or batches.unscored:
            raise BeenetError(f"{reader.path}: internal error: {max(len(unscored), batches.unscored)} windows "
                              "were not scored")
        stats["max_frames_held"] = max_held
        return batches.means()

    def _items(self, p: WindowPlan, slots: list[list[list[torch.Tensor]]],
               context: np.ndarray | None) -> list[dict[str, torch.Tensor]]:
        """The model inputs of window ``p``: one item per sample (zero-padded to T frames)."""
        T, S, C = self.sampling.num_frames, self.spec.image_size, self.spec.crop_size
        names = self.spec.input_names
        skel = skel_mask = None
        if "skeleton" in names:
            skel, skel_mask = self._skeleton(p)
        items = []
        for (full, crops), sample in zip(slots, p.samples):
            k = len(sample)
            item: dict[str, torch.Tensor] = {
                "frames": torch.zeros(T, 3, S, S), "frame_mask": torch.zeros(T, dtype=torch.bool)}
            item["frames"][:k] = torch.stack(full)
            item["frame_mask"][:k] = True
            if "crops" in names:
                item["crops"] = torch.zeros(T, 3, C, C)
                item["crops"][:k] = torch.stack(crops)
            if skel is not None:
                item["skeleton"], item["skeleton_mask"] = skel, skel_mask
            if context is not None:
                item["context"] = torch.from_numpy(context)
            items.append(item)
        return items

    def _skeleton(self, p: WindowPlan) -> tuple[torch.Tensor, torch.Tensor]:
        Ts = self.sampling.skeleton_frames
        skel = torch.zeros(Ts, NUM_JOINTS, 3)
        mask = torch.zeros(Ts, NUM_JOINTS, dtype=torch.bool)
        if p.skeleton is not None and len(p.skeleton):
            s, m = normalize_skeleton(p.skeleton)
            skel[: len(s)] = s
            mask[: len(m)] = m
        return skel, mask

    # -- table -------------------------------------------------------------------------------
    def _table(self, plans: list[WindowPlan], scores: np.ndarray, streams: dict[str, np.ndarray],
               video: str, fps: float) -> PredictionTable:
        if not plans:
            return empty_table(video=video, fps=fps, **self.metadata)
        start = np.array([p.start_frame for p in plans], dtype=np.int64)
        end = np.array([p.end_frame for p in plans], dtype=np.int64)
        boxes = np.array([p.box for p in plans], dtype=np.float64)
        rows: dict[str, Any] = {
            "video": [video] * len(plans),
            "person_id": [p.person_id for p in plans],
            "start_frame": start, "end_frame": end,
            "start_s": start / fps, "end_s": (end + 1) / fps,
            "box_x": boxes[:, 0], "box_y": boxes[:, 1], "box_w": boxes[:, 2], "box_h": boxes[:, 3],
        }
        cats, vad = clip_scores(scores[:, :NUM_CATEGORIES], scores[:, NUM_CATEGORIES:])
        for j, c in enumerate(CATEGORIES):
            rows[c] = cats[:, j]
        for j, v in enumerate(VAD_NAMES):
            rows[v] = vad[:, j]
        per_stream = {}
        for sname, arr in streams.items():
            sc, sv = clip_scores(arr[:, :NUM_CATEGORIES], arr[:, NUM_CATEGORIES:] * VAD_SCALE)
            per_stream[sname] = np.concatenate([sc, sv], axis=1)
        return make_table(rows, per_stream)


def pose_due(index: int, every: int, cut: bool, tracker: Tracker, last: bool = False) -> bool:
    """Whether pass 1 runs pose on frame ``index`` with ``--pose-every N`` (``every``): every N-th
    frame, the first frame of each shot, the last frame of the video (``last``: a person still
    there keeps their track to the end), and every frame while a track is tentative, so that a
    person who appears is confirmed (``min_hits`` detections in a row) on consecutive frames, as
    with N = 1, instead of N frames apart. Measured on vtest.avi at N = 2 with the pose backend of
    476b618, before it followed people (docs/predict.md, "Tracking"): the tracks cover 94.6 % of
    the person-frames pose on every frame tracks, with 51 ids kept, against 90.4 % and 55 ids
    with the stride alone, for 20 % more posed frames."""
    return index % every == 0 or cut or last or tracker.tentative


def _in_synthetic_dataset(video: Path) -> bool:
    """Whether ``video`` lies inside a ``beenet synth`` dataset (its manifest in a folder above)."""
    from beenet.data.synth.write import synth_manifest

    try:
        parents = video.resolve().parents
    except OSError:
        return False
    return any(synth_manifest(d) is not None for d in list(parents)[:8])


def clip_scores(categories: np.ndarray, vad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category scores into [0, 1], VAD into [0, 10] (the BoLD scale).

    The paper's ``scale`` fusion (prior x score / lambda) can leave [0, 1]; in a table a person
    reads, a score of 1 means "as strong as it gets". The model's ranking below 1 is unchanged.
    """
    return np.clip(categories, 0.0, 1.0), np.clip(vad, 0.0, VAD_SCALE)
