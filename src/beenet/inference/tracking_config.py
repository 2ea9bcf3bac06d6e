"""How pass 1 of :class:`~beenet.inference.predictor.Predictor` follows people: who counts as a
person, how long a person may be missed, relinking, shot cuts and how often pose runs, as one
:class:`TrackingConfig` (``Predictor(..., tracking=TrackingConfig(...))``).

Example::

    from beenet.inference.tracking_config import TrackingConfig
    Predictor("best.pt", tracking=TrackingConfig(max_gap=1.0, pose_every=1))
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

from beenet.errors import ConfigError
from beenet.inference.tracking import Tracker

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
#: :func:`~beenet.inference.people.pose_due` adds. Chosen on real footage
#: (``benchmarks/bench_tracking.py``, docs/predict.md "Tracking"): at 5 Hz the tracks cover 94.2 %
#: (vtest.avi), 93.5 % (bikes.mp4), 98.6 % (face_noface.mov) and 89.5 % (talking.mp4) of the
#: person-frames that pose on every frame tracks, with as many people kept; the model samples 16
#: skeleton frames per 4 s window (4 Hz).
POSE_RATE_HZ = 5.0
#: Seconds before a new person was first found that pass 1 looks back over for them (0: never):
#: once their track is confirmed, the landmark model poses them on the posed frames before, back
#: to this long, while it finds them there and nobody tracked is there already
#: (:class:`~beenet.inference.people.LookBack`; docs/predict.md "Tracking").
LOOK_BACK_S = 1.0
#: With ``reclaim`` (the default), a detection the tracker matched to one person that looks this
#: much more like a person lost moments ago close by goes back to them
#: (:meth:`~beenet.inference.tracking.Tracker._reclaim`; docs/predict.md "Tracking").
RECLAIM_MARGIN = 0.25


def pose_stride(pose_every: int | str, fps: float, needs_pixels: bool = True) -> int:
    """Frames between pose runs for ``pose_every`` (an int, or ``"auto"``: about
    :data:`POSE_RATE_HZ` a second) on a video at ``fps``; 1 for precomputed keypoints."""
    if not needs_pixels:
        return 1
    if pose_every == "auto":
        return max(1, round(float(fps or 25.0) / POSE_RATE_HZ))
    return int(pose_every)


@dataclass(frozen=True, kw_only=True)
class TrackingConfig:
    """The tracking settings (:class:`~beenet.inference.tracking.Tracker`), in seconds where a
    time: a person counts after ``min_hits`` detections in a row, and is kept when seen over at
    least ``min_track`` seconds with a mean detection score of at least ``min_confidence``,
    upright (body axis within ``max_tilt`` degrees of vertical; None: any); ``max_gap`` seconds
    without a detection end a track, and gaps up to that are interpolated; a track that starts
    within ``relink`` seconds after a person's ended, close by and looking like them, keeps their
    id (the gap is not filled); with ``reclaim``, a detection matched to one person that looks far
    more like a person lost within ``relink`` seconds close by goes back to them, and two people
    each matched to the other's track swap back (where two people cross). ``shot_cuts`` ends every track at a detected shot cut
    (:class:`~beenet.inference.shots.ShotCutDetector`). ``pose_every`` runs the pose backend on
    every N-th frame only (and on the first frame of each shot, and on every frame while a person
    is being confirmed, :func:`~beenet.inference.people.pose_due`); the frames between are
    interpolated within each track. ``"auto"`` (the default) is about :data:`POSE_RATE_HZ` poses a
    second, from each video's frame rate (:func:`pose_stride`); 1 poses every frame.

    A bad value raises :class:`~beenet.errors.ConfigError` naming it.
    """

    max_gap: float = MAX_GAP_S
    relink: float = RELINK_S
    min_hits: int = MIN_HITS
    min_track: float = MIN_TRACK_S
    min_confidence: float = MIN_CONFIDENCE
    max_tilt: float | None = MAX_TILT
    shot_cuts: bool = True
    pose_every: int | str = "auto"
    reclaim: bool = True
    look_back: float = LOOK_BACK_S

    def __post_init__(self) -> None:
        pose_every, min_hits, min_track = self.pose_every, self.min_hits, self.min_track
        max_gap, relink = self.max_gap, self.relink
        if pose_every != "auto" and (isinstance(pose_every, (str, bool, float)) or int(pose_every) < 1):
            raise ConfigError(f"pose_every must be 'auto' or an integer >= 1, got {pose_every!r}")
        if not float(self.look_back) >= 0:
            raise ConfigError(f"look_back must be >= 0 seconds, got {self.look_back!r}")
        if min_hits < 1 or min_track < 0 or max_gap < 0 or relink < 0:
            raise ConfigError(f"min_hits must be >= 1, min_track, max_gap and relink >= 0 seconds; got "
                              f"min_hits={min_hits}, min_track={min_track}, max_gap={max_gap}, relink={relink}")
        coerced = {"pose_every": pose_every if pose_every == "auto" else int(pose_every),
                   "min_hits": int(min_hits), "min_confidence": float(self.min_confidence),
                   "min_track": float(min_track), "shot_cuts": bool(self.shot_cuts),
                   "max_gap": float(max_gap), "relink": float(relink), "reclaim": bool(self.reclaim),
                   "look_back": float(self.look_back)}
        for name, value in coerced.items():
            object.__setattr__(self, name, value)

    @classmethod
    def with_legacy(cls, tracking: TrackingConfig | None, legacy: dict[str, Any],
                    owner: str = "Predictor") -> TrackingConfig:
        """``tracking`` (None: the defaults) with the tracking keyword arguments ``owner`` took
        before :class:`TrackingConfig` (``max_gap=``, ``pose_every=``, ...) applied on top, each
        with a DeprecationWarning. Any other keyword is a TypeError, as Python says it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in legacy if k not in names]
        if unknown:
            raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
        if tracking is not None and not isinstance(tracking, cls):
            raise ConfigError(f"tracking must be a TrackingConfig, got {type(tracking).__name__}")
        base = tracking if tracking is not None else cls()
        if not legacy:
            return base
        given = ", ".join(f"{k}={v!r}" for k, v in legacy.items())
        warnings.warn(f"{owner}({given}) is deprecated and will be removed in the next release; "
                      f"use {owner}(tracking=TrackingConfig({given}))", DeprecationWarning, stacklevel=3)
        return dataclasses.replace(base, **legacy)

    def tracker(self, fps: float, every: int = 1) -> Tracker:
        """The tracker of these thresholds for a video at ``fps``, posed every ``every``-th frame."""
        return Tracker(max_age=max(every, round(self.max_gap * fps)), min_hits=self.min_hits,
                       min_track_frames=max(1, round(self.min_track * fps)),
                       min_confidence=self.min_confidence, max_tilt=self.max_tilt,
                       relink_frames=round(self.relink * fps), reclaim_margin=RECLAIM_MARGIN if self.reclaim else 0.0)

    def pose_stride(self, fps: float, needs_pixels: bool = True) -> int:
        """Frames between pose runs on a video at ``fps`` (:func:`pose_stride`)."""
        return pose_stride(self.pose_every, fps, needs_pixels)

    def settings(self) -> dict[str, Any]:
        """The ``tracker`` part of a table's ``settings`` metadata."""
        return {"max_gap_s": self.max_gap, "relink_s": self.relink, "min_hits": self.min_hits,
                "min_track_s": self.min_track, "min_confidence": self.min_confidence,
                "max_tilt": self.max_tilt, "shot_cuts": self.shot_cuts, "pose_every": self.pose_every,
                "reclaim": self.reclaim, "look_back_s": self.look_back}
