"""``--pose mediapipe`` (the default): multi-person BlazePose (the MediaPipe project's models) on
LiteRT, offline once its model files are fetched. This module holds the backend's options and the
order of one call; the parts live beside it: the engine that runs the models
(:mod:`~beenet.inference.pose.litert`), the HOG proposals (:mod:`~beenet.inference.pose.proposals`)
and the model files (:mod:`~beenet.inference.pose.models`). The ``mediapipe`` Python package is
not used.
"""

from __future__ import annotations

import os
from concurrent.futures import wait
from pathlib import Path
from typing import Any, Literal

import numpy as np

from beenet.inference.pose.base import PoseBackendBase
from beenet.inference.pose.boxes import Box, centre, inside
from beenet.inference.pose.detector import ENGINES
from beenet.inference.pose.keypoints import PoseDetection
from beenet.inference.pose.litert import LiteRTEngine
from beenet.inference.pose.models import MOVENET_FILES, find_detector_files, find_model_files, models_key
from beenet.inference.pose.options import MultiPoseOptions, PoseOptionError, check_options
from beenet.inference.pose.proposals import HogProposals
from beenet.inference.pose.runtime import INSTALL_HINT, require_litert
from beenet.inference.pose.scale import LADDER, DetectorScale

#: Where people are proposed: a CNN person detector that needs no face (CenterNet, COCO "person";
#: the default), BlazePose's own detector on the whole frame only, or that and OpenCV's HOG people
#: detector, each HOG box verified by the landmarker on a crop around it; or MoveNet MultiPose's
#: people, joints and all (no landmark model).
DETECTORS = ("centernet", "blazepose", "hog", "movenet")
#: What runs the CNN person detector (``person_engine``): LiteRT on the graph written out as a
#: tflite model (the default), its ONNX conversion on onnxruntime, or torch node by node; the same
#: boxes (docs/predict.md, "Speed").
PERSON_ENGINES = ENGINES
#: What runs the two models: ``litert``, the one engine (the models on LiteRT with mediapipe's pre-
#: and post-processing written out, and people tracked from frame to frame by their landmarks).
#: The option stays so that ``engine=litert`` and the tables that record it keep working.
ENGINES = ("litert",)
#: Engines that were removed, with why (named when one is asked for).
REMOVED_ENGINES = {
    "tasks": "pose engine 'tasks' (mediapipe's Tasks PoseLandmarker) was removed: it needed the mediapipe "
             "package, which cannot be installed without version conflicts; engine=litert (the default) "
             "runs the same models and was checked against it (the same people)",
}


class MediaPipeMultiPose(PoseBackendBase):
    """BlazePose, up to ``num_poses`` people per frame, offline (:mod:`beenet.inference.pose.models`
    says where the models come from; ``models_dir``: a folder of one's own copies instead).

    The engine (``engine="litert"``, the only one) runs the two models on LiteRT directly and
    follows each person found by their own landmarks, as mediapipe's video mode does: the
    landmark model alone on the square the last call's landmarks gave, moved at the square's
    velocity, and the detector again on a crop around it every ``confirm_every`` calls' worth of
    frames, which drops a square that slid onto the background. New people come from the
    detector on the whole frame (while nobody is followed, on whole-frame HOG calls, and on every
    call with ``detector="blazepose"``) and from HOG's boxes, verified on crops; HOG runs every 2nd
    call (``hog_every``). :mod:`~beenet.inference.pose.litert` has the order of things. It found 39
    of the 55 hand-counted vtest.avi people against 35 for mediapipe's Tasks ``PoseLandmarker``
    (the engine it replaced) and runs 720p vtest faster (docs/predict.md, "Pose backends").

    ``tiles=n > 1`` also runs the models on ``n x n`` overlapping tiles, so that people too small
    for the detector's 224x224 view of the frame are seen at ``n`` times the resolution;
    duplicates (same person in the frame and in tiles) are merged by box IoU (``merge_iou``), the
    higher score kept. It costs about ``n*n + 1`` runs a frame.

    ``detector="centernet"`` (the default) finds people with a CNN person detector that needs no
    face (:class:`~beenet.inference.pose.detector.PersonDetector`: CenterNet with a MobileNetV3
    trunk, COCO's "person", on the whole frame letterboxed to ``person_size`` px (default
    ``"auto"``: 384, or 512 while the people it finds are small, :mod:`beenet.inference.pose.scale`;
    a number fixes it), peaks at
    ``person_threshold`` or above), on every ``person_every``-th regular call (default 2: the
    people between are followed by their landmarks; on its own thread, started on the frame
    ahead of its call when pass 1 hands frames over, :meth:`upcoming`) and while nobody is
    followed. With ``follow_every=2`` a person followed for ``FOLLOW_SETTLED`` calls in a row
    is posed only on every 2nd call, and always on the detector's calls (the tracker fills the
    frames between). With ``focus`` (not the default: docs/predict.md), a call given the boxes of the people it is made
    for (``focus=``: pass 1 poses extra frames while a new person is confirmed) poses only the
    people followed near those boxes and those followed for fewer than ``FOLLOW_SETTLED`` calls;
    the others rest, as with ``follow_every``. The detector confirms the people followed with any
    box it scores ``person_confirm`` (default 0.1) or more (its score falls for unusual poses: a
    dancer with her arms raised scored 0.08-0.27; one no box has covered for ``confirm_every`` calls'
    worth of frames is dropped). A box nobody covers is tried as a new person at
    ``person_threshold`` (default 0.3) or more, or at ``person_weak`` or more (default 0.3: off;
    0.2 finds more people, docs/predict.md) unless such a box failed at that place on the last few
    calls (:mod:`~beenet.inference.pose.newcomers`: no box that looks like a part of someone, a
    tie or a hand, is tried), and becomes a person: the landmark model on the square BlazePose's detector aligns on a
    crop around the box when it finds a face there, else on the box's own upright square (a back,
    a mask, a blurred face). A person's box is the detector's (the body seen), not their joints'.
    A box scored ``unposed`` (default 0.5; 0: never) that the landmark model cannot pose (a
    player cut by the frame's edge, only legs and an arm in it) is a person with a box and no
    joints once the detector boxed it on two calls in a row; a person posed on the call before
    whom the landmark model loses goes on so at ``person_threshold`` (the detector then runs on
    every call while anyone is unposed, and on a call where someone followed is lost:
    :mod:`~beenet.inference.pose.unposed`). Inside the frame, where 3 or more people are posed, a
    box of their height that the landmark model cannot pose is a person once the detector boxed
    it at ``unposed_group`` or more (default 0.2; 0: never) on three calls in a row (a crowd seen
    from above, a person half hidden in a group). A person followed from call to call whose
    square is smaller than ``track_lite`` (default 0.6; 0: never) of the frame's height is posed
    by BlazePose's lite landmark model (about half the time of the full one); new people, the
    detector's checks and close-ups take the full one (docs/predict.md, "Speed").
    ``tiles`` and the HOG options do not apply to it. ``person_engine`` (:data:`PERSON_ENGINES`):
    ``"litert"`` (the default) runs the network on LiteRT (written out as a tflite model per input
    shape: :mod:`~beenet.inference.pose.litert_graph`), ``"onnx"`` on onnxruntime (converted once
    from the shipped graph: :mod:`~beenet.inference.pose.converted`), ``"torch"`` on torch; the
    boxes are the same.

    ``detector="hog"`` adds person proposals from OpenCV's HOG people detector
    (:mod:`~beenet.inference.pose.proposals`), which finds people 1/7 of the frame tall that
    BlazePose's whole-frame view misses. Each HOG box not already covered by a person found
    becomes a square crop (``crop_margin`` around it) that the models check: no person on the
    crop, or one whose box centre lies outside the HOG box, and the box is dropped, so HOG's
    false positives (poles, blurred cars) never become people. HOG runs on every ``hog_every``-th
    call, on the grey frame scaled by ``hog_upscale`` (at most ``hog_max_pixels``), with
    ``hog_threshold`` and ``hog_scale``; with ``motion`` (the default) on the whole frame only on
    every ``hog_full_every``-th HOG call (and the first of a video or shot), else where the frame
    changed. With ``follow``, the people found are looked for again on the next call, before HOG's
    new boxes: people are kept between HOG runs and where HOG no longer fires on them.
    ``new_shot()`` (called by the predictor at a shot cut) forgets the people followed.
    ``detector="blazepose"`` is the whole-frame pass only.

    ``detector="movenet"`` (not the default) has no landmark model: the people of a call are
    MoveNet MultiPose's (:class:`~beenet.inference.pose.movenet.MoveNetPeople`: every person's
    COCO-17 joints in one run on the whole frame letterboxed to ``movenet_size`` px, at most 6
    people, person score at ``movenet_threshold`` or above), on every call; the other options
    of finding and following people do not apply to it (docs/predict.md, "Pose backends").

    ``threads`` (default: 2, or 1 on a one-core machine) runs the crops on that many workers side
    by side and, when above 1, HOG on one more worker thread: LiteRT and OpenCV release the GIL.
    The people found do not depend on ``threads`` (tested); only the time does.

    ``min_detection_confidence`` defaults to 0.7, not mediapipe's 0.5: at 0.5 the detector took a
    road marking, a car's rear window and the parked bicycle in bikes.mp4 for people (51 frames
    against 4), and the landmark model gives such "people" presence 0.97-1.0, so no later threshold
    removes them (docs/predict.md, "Pose backends").

    A keypoint's confidence is its landmark's *visibility* (as mediapipe's pose solution gives it),
    mapped to OpenPose-18 by ``mediapipe_to_openpose``; the ``score`` of a detection is the mean confidence
    of its joints found inside the frame, in [0, 1] (the tracker's ``min_confidence`` was chosen
    on this score). Not the mean *presence* of all 33 landmarks: that is the share of the body
    inside the frame, so a person filmed from the chest up scored 0.35-0.39 and was dropped.
    ``min_detection_confidence`` is the person detector's threshold, ``min_presence_confidence`` the
    landmark model's, ``min_tracking_confidence`` decides when a followed person is kept.
    """

    name = "mediapipe"
    needs_pixels = True
    install_hint = INSTALL_HINT

    def __init__(self, num_poses: int = 6, min_detection_confidence: float = 0.7,
                 min_presence_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 tiles: int = 1, tile_overlap: float = 0.25, merge_iou: float = 0.4,
                 detector: str = "centernet", person_every: int = 2, follow_every: int = 1,
                 person_threshold: float = 0.3, person_weak: float = 0.3, person_confirm: float = 0.1,
                 unposed: float = 0.5, unposed_group: float = 0.2, track_lite: float = 0.6,
                 person_size: int | Literal["auto"] = "auto", person_engine: str = "litert", movenet_size: int = 256, movenet_threshold: float = 0.2,
                 hog_every: int = 2, hog_threshold: float = 0.3,
                 hog_scale: float = 1.2, hog_upscale: float = 1.3, hog_max_pixels: int = 750_000,
                 crop_margin: float = 1.2, follow: bool = True, motion: bool = True, focus: bool = False,
                 hog_full_every: int = 5, engine: str = "litert", confirm_every: int = 5,
                 threads: int | None = None,
                 models_dir: str | Path | None = None) -> None:
        if detector not in DETECTORS:
            raise PoseOptionError(f"pose detector {detector!r}: choose one of {', '.join(DETECTORS)}")
        if engine in REMOVED_ENGINES:
            raise PoseOptionError(REMOVED_ENGINES[engine])
        if engine not in ENGINES:
            raise PoseOptionError(f"pose engine {engine!r}: choose one of {', '.join(ENGINES)}")
        threads = min(2, os.cpu_count() or 1) if threads is None else threads
        # (name, value, kind, lowest allowed, whether the lowest itself is allowed)
        v = check_options((
            ("follow", follow, bool, None, True), ("motion", motion, bool, None, True),
            ("focus", focus, bool, None, True),
            ("tiles", tiles, int, 1, True), ("num_poses", num_poses, int, 1, True),
            ("threads", threads, int, 1, True), ("hog_every", hog_every, int, 1, True),
            ("hog_full_every", hog_full_every, int, 1, True), ("confirm_every", confirm_every, int, 1, True),
            ("person_every", person_every, int, 1, True),
            ("person_size", LADDER[0] if person_size == "auto" else person_size, int, 64, True),
            ("movenet_size", movenet_size, int, 64, True), ("movenet_threshold", movenet_threshold, float, 0, True),
            ("follow_every", follow_every, int, 1, True),
            ("person_threshold", person_threshold, float, 0, False), ("person_weak", person_weak, float, 0, False),
            ("person_confirm", person_confirm, float, 0, False), ("unposed", unposed, float, 0, True),
            ("unposed_group", unposed_group, float, 0, True), ("track_lite", track_lite, float, 0, True),
            ("hog_max_pixels", hog_max_pixels, int, 4096, True),
            ("min_detection_confidence", min_detection_confidence, float, None, True),
            ("min_presence_confidence", min_presence_confidence, float, None, True),
            ("min_tracking_confidence", min_tracking_confidence, float, None, True),
            ("tile_overlap", tile_overlap, float, None, True), ("merge_iou", merge_iou, float, None, True),
            ("hog_threshold", hog_threshold, float, None, True), ("hog_scale", hog_scale, float, 1, False),
            ("hog_upscale", hog_upscale, float, 0, False), ("crop_margin", crop_margin, float, 1, True)))
        require_litert()
        self.engine = engine
        self.options = MultiPoseOptions(
            num_poses=v["num_poses"], min_detection_confidence=v["min_detection_confidence"],
            min_presence_confidence=v["min_presence_confidence"], min_tracking_confidence=v["min_tracking_confidence"],
            tiles=v["tiles"], tile_overlap=v["tile_overlap"], merge_iou=v["merge_iou"], detector=detector,
            crop_margin=v["crop_margin"], follow=v["follow"], confirm_every=v["confirm_every"], threads=v["threads"],
            person_every=v["person_every"], follow_every=v["follow_every"], focus=v["focus"],
            person_threshold=v["person_threshold"], person_weak=min(v["person_weak"], v["person_threshold"]),
            person_confirm=min(v["person_confirm"], v["person_weak"], v["person_threshold"]),
            # only the boxes a new person may take were tried with the landmark model
            unposed=max(v["unposed"], v["person_threshold"]) if v["unposed"] > 0 else 0.0,
            unposed_group=v["unposed_group"], track_lite=v["track_lite"])
        self.hog = HogProposals(every=v["hog_every"], full_every=v["hog_full_every"], threshold=v["hog_threshold"],
                                scale=v["hog_scale"], upscale=v["hog_upscale"], max_pixels=v["hog_max_pixels"],
                                motion=v["motion"], threads=v["threads"])
        self.model_files = find_model_files(models_dir, lite=v["track_lite"] > 0)  # fetched on first use
        # the first BlazePose now, so that a bad model file is named before any work
        self.runner = LiteRTEngine(self.options, self.model_files, self.hog)
        v["person_auto"] = person_size == "auto"
        self.person = self._person_detector(v, person_engine, models_dir) if detector == "centernet" else None
        self.movenet = self._movenet(v, models_dir) if detector == "movenet" else None
        self.person_every = v["person_every"]
        self._models_key = models_key(self.model_files)
        self._calls = 0  # calls since the shot began (HOG's and the whole frame's turns)
        self._started = False  # reset() ran since the backend was made or closed

    def _person_detector(self, v: dict[str, Any], person_engine: str, models_dir: str | Path | None) -> Any:
        """The CNN person detector (``detector="centernet"``), handed to the engine."""
        if v["person_size"] % 32:
            raise PoseOptionError(f"pose option person_size must be a multiple of 32, got {v['person_size']}")
        from beenet.inference.pose.detector import PersonDetector  # lazy: torch, not for --help

        graph = find_detector_files(models_dir)
        if person_engine not in PERSON_ENGINES:
            raise PoseOptionError(f"pose option person_engine {person_engine!r}: choose one of "
                                  f"{', '.join(PERSON_ENGINES)}")
        # the detector keeps peaks down to person_confirm: those confirm people followed; a new
        # person takes person_threshold (LiteRTEngine._find_with_detector)
        person = PersonDetector(graph, size=v["person_size"], threshold=self.options.person_confirm,
                                engine=person_engine)
        self.model_files = {**self.model_files, "person_detector": graph}
        self.runner.person = person
        self.runner.scale = DetectorScale(v["person_size"], auto=v["person_auto"], threshold=self.options.person_threshold)
        return person

    def _movenet(self, v: dict[str, Any], models_dir: str | Path | None) -> Any:
        """MoveNet MultiPose (``detector="movenet"``), handed to the engine."""
        if v["movenet_size"] % 32:
            raise PoseOptionError(f"pose option movenet_size must be a multiple of 32, got {v['movenet_size']}")
        from beenet.inference.pose.movenet import MoveNetPeople  # lazy: torch, not for --help

        graph = find_detector_files(models_dir, keys=MOVENET_FILES)
        movenet = MoveNetPeople(graph, size=v["movenet_size"], threshold=v["movenet_threshold"])
        self.model_files = {**self.model_files, "movenet": graph}
        self.runner.movenet = movenet
        return movenet

    @property
    def detector(self) -> str:
        return self.options.detector

    @property
    def tiles(self) -> int:
        return self.options.tiles

    @property
    def num_poses(self) -> int:
        return self.options.num_poses

    @property
    def hog_share(self) -> float:
        """The share of the frame HOG looked at on the last call (0 when it did not run)."""
        return self.hog.share

    @property
    def settings(self) -> dict[str, Any]:
        """The options that decide who is found (recorded in a table's metadata)."""
        o, h = self.options, self.hog
        return {"num_poses": o.num_poses, "min_detection_confidence": o.min_detection_confidence,
                "min_presence_confidence": o.min_presence_confidence,
                "min_tracking_confidence": o.min_tracking_confidence, "tiles": o.tiles,
                "tile_overlap": o.tile_overlap, "merge_iou": o.merge_iou, "engine": self.engine,
                "models": self._models_key, "confirm_every": o.confirm_every,
                "detector": o.detector, "hog_every": h.every, "hog_threshold": h.threshold,
                "hog_scale": h.scale, "hog_upscale": h.upscale,
                "hog_max_pixels": h.max_pixels, "crop_margin": o.crop_margin, "follow": o.follow,
                "motion": h.motion, "hog_full_every": h.full_every, "threads": o.threads,
                "track_lite": o.track_lite,
                **({"person_every": o.person_every, "follow_every": o.follow_every, "focus": o.focus,
                    "person_threshold": o.person_threshold, "person_weak": o.person_weak, "person_confirm": o.person_confirm, "unposed": o.unposed,
                    "unposed_group": o.unposed_group,
                    "person_size": "auto" if self.runner.scale.auto else self.person.size, "person_engine": self.person.engine} if self.person is not None else {}),
                **({"movenet_size": self.movenet.size, "movenet_threshold": self.movenet.threshold,
                    "movenet_keypoint_threshold": self.movenet.keypoint_threshold} if self.movenet is not None else {})}

    def reset(self) -> None:
        """Start a new video (video mode's timestamps and the people followed start over)."""
        self.runner.reset()
        self._started = True
        self.new_shot()

    def new_shot(self) -> None:
        """A shot cut: forget the people followed on the last shot; the next call runs HOG on the
        whole frame."""
        self._calls = 0
        self.hog.new_shot()
        self.runner.new_shot()

    def close(self) -> None:
        """Let the worker threads and the models go; :meth:`reset` (or the next call) starts again."""
        self.hog.close()
        self.runner.close()
        self._started = False

    @property
    def lookahead(self) -> int:
        """How many regular calls ahead pass 1 hands frames to :meth:`upcoming`: the CNN
        detector's turn (``person_every``) ahead; 0 (nothing handed over) with HOG."""
        return self.options.person_every if self.person is not None else 0

    def upcoming(self, frame: np.ndarray, index: int) -> None:
        """Frame ``index`` will be a regular call: the CNN detector may start on it now
        (:meth:`LiteRTEngine.upcoming`)."""
        if not self._started:
            self.reset()
        self.runner.upcoming(np.ascontiguousarray(frame), index)

    def hog_boxes(self, frame: np.ndarray) -> list[Box]:
        """OpenCV's HOG people detector on the whole frame: the proposals, before verification."""
        return self.hog.boxes(frame)

    def pose_boxes(self, frame: np.ndarray, boxes: list[Box]) -> list[PoseDetection | None]:
        """The person in each of ``boxes`` on ``frame`` (any frame, also one of the past), posed by
        the landmark model on the box's square (:meth:`LiteRTEngine.pose_boxes`), or None; with
        ``detector="movenet"`` (no landmark model), MoveNet's person whose box centre lies in the
        box. Pass 1's look-back poses a new person on the frames before they were found with it."""
        if not self._started:
            self.reset()
        frame = np.ascontiguousarray(frame)
        if self.movenet is not None:
            people = self.movenet(frame)
            return [next((p for p in people if inside(*centre(p.box), b)), None) for b in boxes]
        return self.runner.pose_boxes(frame, list(boxes))

    @property
    def takes_focus(self) -> bool:
        """Whether a call may be given ``focus=`` boxes (the CNN person detector's way, ``focus`` on)."""
        return self.person is not None and self.options.focus

    def __call__(self, frame: np.ndarray | None, index: int | None = None,
                 focus: list[Box] | None = None) -> list[PoseDetection]:
        if frame is None:
            raise ValueError("MediaPipeMultiPose needs the frame's pixels")
        if not self._started:
            self.reset()
        frame = np.ascontiguousarray(frame)
        self.hog.share = 0.0
        hog = None  # HOG (every hog_every-th call) runs beside the engine's first work
        if self.options.detector == "hog" and self.hog.due(self._calls):
            hog = self.hog.start(frame, self._calls)
        try:
            people = self.runner.find(frame, index, hog, self._calls, focus if self.takes_focus else None)
        finally:
            if hog is not None:  # never leave HOG reading the frame after this call (it raised)
                wait([hog])
        self._calls += 1
        return people
