"""``Predictor``: per-person emotions over time from any video, as a table.

Two streaming passes over the video keep memory flat however long it is:

1. decode every frame once, find people and their joints (a :class:`PoseBackend`), and give each a
   stable ``person_id`` (:func:`~beenet.inference.people.track_people`, settings
   :class:`~beenet.inference.tracking_config.TrackingConfig`). Only joints are kept (216 bytes a
   person-frame).
2. cut each person's presence into windows (:func:`plan_windows`), decode again and keep only the
   frames those windows sample, turn them into tensors exactly as training did
   (:mod:`beenet.media.transforms`), and run the model on batches of (person, window) items as soon
   as their frames have passed (:class:`~beenet.inference.scoring.Scorer`). A frame is dropped as
   soon as no pending window needs it.

The rows, the per-frame rows and the files of a video are :mod:`beenet.inference.results`'s; a
batch of inputs into a folder, as ``beenet predict`` does it, is :meth:`Predictor.predict_many`
(:mod:`beenet.inference.batch`).

Example::

    from beenet import Predictor
    table = Predictor("runs/demo/best.pt").predict("talk.mp4")
    table.emotions.mean()           # average category scores
    table[table.person_id == 0].vad  # one person's valence / arousal / dominance over time
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from beenet.artifacts.provenance import SYNTHETIC_WARNING
from beenet.artifacts.pretrained import resolve_checkpoint
from beenet.atomic import to_builtins
from beenet.context.build import PREDICT_CONTEXTS, make_context_source, prediction_context
from beenet.context.config import ContextConfig
from beenet.errors import BeenetError, CheckpointError, ConfigError, DataNotFoundError
from beenet.inference.batch import Report
from beenet.inference.batch import predict_many as predict_batch
from beenet.inference.inputs import Job, resolve_inputs
from beenet.inference.people import load_keypoints, track_people
from beenet.inference.pose import PoseBackend, PoseOptionError, PrecomputedPose, make_pose_backend
from beenet.inference.pose.early import PoseBuild
from beenet.inference.results import VideoResult, window_table
from beenet.inference.scoring import Scorer, load_engine
from beenet.inference.timing import StageTimer
from beenet.inference.tracking import Tracker
from beenet.inference.tracking_config import TrackingConfig
from beenet.inference.windows import Sampling, WindowPlan, plan_windows
from beenet.labels import NUM_CATEGORIES
from beenet.media.video import VideoReader
from beenet.model_files import ModelFileError
from beenet.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from beenet.inference.table import PredictionTable

log = logging.getLogger(__name__)



#: The counts of pass 1 recorded in a table's ``settings["found"]`` and said on the per-video line:
#: people kept, frames in the video, frames posed, detections, tracks started, shot cuts.
FOUND_KEYS = ("people", "frames", "posed_frames", "detections", "tracks_started", "shot_cuts")

class NoPersonFound(BeenetError):
    """Kept for code that catches it; no longer raised: a video with nobody in it gives an empty
    table and :attr:`VideoResult.note` (see :meth:`Predictor.run`)."""


class PoseBackendError(BeenetError):
    """The pose backend cannot be built or started here. ``install``: installing its runtime would
    fix it (False for a wrong option and for model files to fetch, whose message says how);
    ``option``: an option it was given is wrong (nothing but the option will fix it)."""

    def __init__(self, backend: str, reason: str, install: bool = True, option: bool = False) -> None:
        super().__init__(f"the pose backend {backend!r} cannot be used: {reason}")
        self.backend, self.reason, self.install, self.option = backend, reason, install, option


class Predictor:
    """Loads a model once and predicts per person and window on any number of videos.

    ``checkpoint``: a ``beenet train`` checkpoint (``.pt``), a ``beenet export onnx`` file, a
    ``beenet export pretrained`` folder or a Hugging Face Hub id of one (see :meth:`from_pretrained`).
    ``engine``: one of :data:`~beenet.inference.scoring.ENGINE_CHOICES`: ``auto`` (the default:
    ONNX Runtime on the CPU, PyTorch on a GPU), ``torch`` or ``onnx`` (a ``.pt`` runs as its ONNX
    export, made on first use and kept in the cache: :mod:`beenet.inference.exported`; later runs
    load no torch). ``device``: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ... ``pose``: one of
    :data:`~beenet.inference.pose.POSE_CHOICES` (``auto`` = mediapipe when ai-edge-litert is installed, else
    Keypoint R-CNN), a :class:`PoseBackend` instance, or a
    :class:`~beenet.inference.pose.early.PoseBuild` (one being built, with its own options: taken
    when first needed). ``window`` / ``stride`` in seconds.
    ``streams`` adds the per-stream scores to the table. ``stills`` (still-frame models): stills
    averaged per window. ``context``: for models fused with expert context
    (``fusion_context=input``): ``auto`` builds the experts of the checkpoint's context config
    through :func:`~beenet.context.build.make_context_source`, as training did; ``experts`` uses
    Places365 + COCO whatever source the checkpoint used; or pass an object with
    ``label_frames(frames) -> [445]``.

    ``tracking``: how people are followed (:class:`~beenet.inference.tracking_config.TrackingConfig`:
    who counts as a person, gaps, relinking, shot cuts, how often pose runs; default: its
    defaults). The tracking keywords of earlier releases (``max_gap=``, ``pose_every=``,
    ``min_hits=``, ``min_confidence=``, ``min_track=``, ``max_tilt=``, ``relink=``,
    ``shot_cuts=``) still work for this release, with a DeprecationWarning. ``pose_options`` go
    to the named pose backend (:func:`~beenet.inference.pose.make_pose_backend`).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "auto",
        engine: str = "auto",
        pose: str | PoseBackend = "auto",
        window: float = 4.0,
        stride: float = 2.0,
        batch_size: int = 8,
        streams: bool = False,
        stills: int = 1,
        min_presence: float = 0.25,
        context: Any = "auto",
        show_progress: bool | None = None,
        tracking: TrackingConfig | None = None,
        pose_options: dict[str, Any] | None = None,
        **legacy: Any,
    ) -> None:
        if window <= 0 or stride <= 0:
            raise ConfigError(f"window and stride must be positive seconds, got window={window}, stride={stride}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        #: How people are followed in pass 1.
        self.tracking = TrackingConfig.with_legacy(tracking, legacy)
        self.checkpoint = Path(checkpoint)
        self.window, self.stride = float(window), float(stride)
        self.batch_size = int(batch_size)
        self.streams = bool(streams)
        self.min_presence = float(min_presence)
        self.show_progress = show_progress
        self._tmpdir: str | None = None
        loaded = load_engine(self.checkpoint, engine, device)
        self.spec, self.engine, self._tmpdir = loaded.spec, loaded.engine, loaded.tmpdir
        #: Where the model runs: a ``torch.device`` on the torch engine, the device's name on ONNX Runtime.
        self.device = loaded.device
        #: What the model was trained on (kind synthetic / bold / unknown, fingerprint, data, protocol).
        self.trained_on: dict[str, Any] = loaded.trained_on
        self.sampling = Sampling.from_data_config(self.spec.data, bool(self.spec.model.skeleton), stills)
        self._early: PoseBuild | None = None
        if isinstance(pose, PoseBuild):  # being built already (beenet predict: beside torch's import)
            if pose_options:
                raise ConfigError("pose_options apply to a pose backend given by name; a PoseBuild has its own")
            self._early, pose, pose_options = pose, pose.name, pose.options
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
    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, *, revision: str | None = None, **kwargs: Any) -> "Predictor":
        """A Predictor from a ``beenet export pretrained`` folder or a Hugging Face Hub id
        (``user/name``, optionally at ``revision``; needs the ``hub`` extra, and uses the local
        Hugging Face cache when offline). A ``.pt`` or ``.onnx`` works too. ``kwargs`` are
        :class:`Predictor`'s."""
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
                early, self._early = self._early, None
                if early is not None:  # started before torch's import: the same build, on a thread
                    backend = early.result()
                else:
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
                # A wrong option, or model files that could not be fetched (whose message says what to put
                # where): installing a package will not fix either.
                self._pose_error = PoseBackendError(
                    name, reason, install=not isinstance(cause, (PoseOptionError, ModelFileError)),
                    option=isinstance(cause, PoseOptionError))
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
            "tracker": self.tracking.settings(),
            "window_s": self.window, "stride_s": self.stride, "min_presence": self.min_presence,
            "engine": getattr(self.engine, "name", self._engine_name), "device": str(self.device),
            "batch_size": self.batch_size,
            "streams": self.streams, "sampling": to_builtins(dataclasses.asdict(self.sampling)),
            "context": getattr(self.context, "name", None) if self.context is not None else None,
        }

    def close(self) -> None:
        """Close the pose backend this Predictor built (one given as an object stays its owner's)
        and remove the temporary ONNX export, if any. A later video builds the backend again."""
        if self._early is not None:  # never taken: its backend is closed here
            early, self._early = self._early, None
            early.close()
        if self._pose is not None and isinstance(self._pose_arg, str):
            pose, self._pose = self._pose, None
            pose.close()  # the LiteRT interpreters, before the interpreter's shutdown reaches them
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
        from beenet.inference.table import concat_tables  # lazy: pandas, not before pass 1's first frame

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

    def predict_many(self, inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                     out: str | os.PathLike[str], *, formats: str | Sequence[str] = "csv",
                     per_frame: bool = False, video: bool = False, save_keypoints: bool = False,
                     overwrite: bool = False, keypoints: str | os.PathLike[str] | None = None,
                     report: Report | None = None) -> dict[str, Any]:
        """What ``beenet predict INPUTS --out OUT`` does, with this Predictor: for each video, the
        table in each of ``formats`` (``"csv"``, ``"json"``, ``"parquet"``, or several: a list or
        ``"csv,json"``), ``<stem>_frames.*`` with ``per_frame``, ``<stem>_keypoints.npy`` with
        ``save_keypoints``, the timeline, ``<stem>_annotated.mp4`` with ``video``; a video whose
        outputs all exist is skipped unless ``overwrite``; a failure of one video is recorded and
        the others are done. Returns ``predict_summary.json`` (written in ``out``, one per rank
        under torchrun) as a dict. ``keypoints``: precomputed joints for the one video given.
        ``report``: where the lines ``beenet predict`` prints go (default: the
        ``beenet.inference.batch`` log; ``beenet.inference.batch.ConsoleReport()`` prints them). See
        :func:`beenet.inference.batch.predict_many` for the errors."""
        return predict_batch(self, inputs, out, formats=formats, per_frame=per_frame, video=video,
                             save_keypoints=save_keypoints, overwrite=overwrite, keypoints=keypoints,
                             report=report)

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
        video = Path(video)
        timer = StageTimer()
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
            store = track_people(reader, backend, self.tracking, timer, stats, self.show_progress)
            tracks = store.tracks()
            plans = plan_windows(tracks, store.num_frames, fps, W, H, self.sampling, self.window,
                                 self.stride, self.min_presence)
            stats.update(frames=store.num_frames, people=len(tracks), windows=len(plans))
            note = self._empty_note(backend, store.num_frames, bool(tracks), plans)
            if note is None:
                sums, streams = self.scorer().score(reader, plans, timer, stats)
            else:
                log.warning("%s: %s", video, note)
                sums, streams = np.zeros((0, NUM_CATEGORIES + 3)), {}
        table = window_table(plans, sums, streams, name or video.name, fps, self.metadata)
        settings = self.settings(backend)
        if "pose_every" in stats:  # what "auto" came to at this video's frame rate
            settings["tracker"]["pose_every_frames"] = stats["pose_every"]
        # what was found and how hard it was looked for: a reader of the table sees what was not
        settings["found"] = {k: int(stats[k]) for k in FOUND_KEYS if k in stats}
        table.set_metadata(video=name or video.name, fps=fps, **{**self.metadata, "settings": settings})
        timer.add("total", time.perf_counter() - t_start)
        return VideoResult(video, table, tracks, store.boxes(), store.num_frames, fps, W, H, dict(timer.t), stats,
                           store.confidences(), store.interpolated(), note=note)

    def _empty_note(self, backend: PoseBackend, num_frames: int, people: bool,
                    plans: list[WindowPlan]) -> str | None:
        """Why a video's table is empty: nobody found, or nobody present long enough for a
        window; None when there are windows to score."""
        if not people:
            return (f"no person found in {num_frames} frames (pose backend: {backend.name}); "
                    "the table is empty")
        if not plans:
            return (f"people were found, but none stayed for {self.min_presence:.0%} of a "
                    f"{self.window:g} s window; the table is empty (try a shorter --window)")
        return None

    def scorer(self) -> Scorer:
        """Pass 2 with this Predictor's model, sampling, batch size, streams and context."""
        return Scorer(self.spec, self.engine, self.sampling, self.batch_size, self.streams, self.context,
                      self.checkpoint, self.show_progress)

    def tracker(self, fps: float, every: int = 1) -> Tracker:
        """The tracker of this Predictor's thresholds for a video at ``fps``, posed every
        ``every``-th frame."""
        return self.tracking.tracker(fps, every)


def _in_synthetic_dataset(video: Path) -> bool:
    """Whether ``video`` lies inside a ``beenet synth`` dataset (its manifest in a folder above)."""
    from beenet.data.synth.write import synth_manifest  # lazy: beenet.data.synth loads PIL and the renderer

    try:
        parents = video.resolve().parents
    except OSError:
        return False
    return any(synth_manifest(d) is not None for d in list(parents)[:8])
