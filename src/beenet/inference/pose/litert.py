"""The ``litert`` engine of the multi-person BlazePose backend: mediapipe's two models run directly
(:class:`~beenet.inference.pose.blazepose.BlazePose`), and each person found followed from call
to call by their own landmarks (:class:`Follower`), as mediapipe's video mode does.

One call (:meth:`LiteRTEngine.find`) runs in two phases of jobs, shared out among ``threads``
BlazePose workers (:meth:`LiteRTEngine.people`) while HOG runs on its own worker:

1. the people of the last call (``follow``): the landmark model on the square their own
   landmarks gave (kept while the pose-presence flag stays at ``min_tracking_confidence`` or
   above), except once every ``confirm_every`` calls' worth of frames, when the detector must find
   them again on a crop around that square (a square that slid off its person is dropped there);
   and the detector on the whole frame, letterboxed (and on the tiles);
2. the landmark model on each whole-frame detection nobody found in 1 covers, and HOG's boxes
   that nobody found so far covers, each verified on a crop (the detector on the crop, the
   person's box centre inside the HOG box).

People found twice are merged by box IoU (``merge_iou``), the higher score kept.

With the CNN person detector (``detector="centernet"``, :meth:`LiteRTEngine._find_with_detector`)
the order is simpler: the people followed (landmark model on their squares) and, on its own
thread beside them on every ``person_every``-th call, the detector on the whole frame, which
confirms them and whose other boxes become people (``box`` jobs).
"""

from __future__ import annotations

import math
from concurrent.futures import Future, wait
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from beenet.inference.pose.blazepose import BlazePose, PersonDetection
from beenet.inference.pose.bodies import moved_apart, moved_body, with_box
from beenet.inference.pose.boxes import (
    Box,
    Roi,
    centre,
    inside,
    merge_found,
    roi_from_points,
    square_crop,
    tile_grid,
)
from beenet.inference.pose.keypoints import BODY_LANDMARKS, PoseDetection, landmark_person
from beenet.inference.pose.newcomers import Newcomers, covers
from beenet.inference.pose.options import MultiPoseOptions
from beenet.inference.pose.pool import WorkerPool
from beenet.inference.pose.proposals import HogProposals, new_proposals
from beenet.inference.pose.scale import LADDER, DetectorScale
from beenet.inference.pose.unposed import UnposedPeople

if TYPE_CHECKING:
    from beenet.inference.pose.detector import PersonDetector
    from beenet.inference.pose.movenet import MoveNetPeople

#: The person detector's threshold when it confirms a person followed by their landmarks
#: (``confirm_every``): mediapipe's default. Finding a new person takes ``min_detection_confidence``.
CONFIRM_DETECTION = 0.5

#: ``follow_every``: a person rests only after this many calls followed (the tracker confirms a
#: new person on consecutive detections: ``min_hits``, default 3).
FOLLOW_SETTLED = 3
#: At most this many people new to a call are posed from the CNN detector's boxes (best first).
MAX_NEW_PEOPLE = 32
def box_roi(box: Box) -> Roi:
    """The upright square around a person box, mediapipe's 1.25 margin on its longer side."""
    cx, cy = centre(box)
    return Roi(cx, cy, max(box[2], box[3]) * 1.25, 0.0)


def _apart(entry: tuple, index: int, focus: list[Box]) -> bool:
    """Whether a followed person's square (moved on to frame ``index``) touches none of ``focus``."""
    roi, _since, (vx, vy), at = entry
    gap = max(1, index - at)
    x, y, w, h = roi.moved(vx * gap, vy * gap).bounds()
    return not any(x < bx + bw and bx < x + w and y < by + bh and by < y + h for bx, by, bw, bh in focus)


#: A job for a BlazePose worker: ``(kind, what, frames since the detector saw the person)``.
Job = tuple[str, object, int]
#: A person a job found: ``(detection, the square their landmarks give for the next call, since)``.
Found = tuple[PoseDetection, Roi, int]


class Follower:
    """The people of the last call, each as ``(square, frames since the detector saw them,
    velocity of the square's centre in px a frame, frame index)``: the jobs that find them again
    on the next call, and the update from the people that call kept."""

    def __init__(self, confirm_every: int) -> None:
        self.confirm_every = confirm_every
        self.tracked: list[tuple[Roi, int, tuple[float, float], int]] = []

    def clear(self) -> None:
        self.tracked = []

    def jobs(self, index: int) -> tuple[list[Job], list]:
        """The jobs of frame ``index`` (``track``, or ``confirm`` when due) and the entry each came
        from. A square moves on at the velocity of its centre over the frames since its last call
        (predict poses every k-th frame: a person walking across a 25 fps close-up leaves last
        call's square within 5 frames). The detector confirms a person after ``confirm_every``
        calls' worth of frames at this call's spacing (``since`` counts frames): the frames predict
        poses one by one while a new person is confirmed count for what they are, not as whole
        calls."""
        jobs: list[Job] = []
        for roi, since, (vx, vy), at in self.tracked:
            gap = max(1, index - at)
            ahead = roi.moved(vx * gap, vy * gap)
            due = since + gap >= self.confirm_every * gap
            jobs.append(("confirm", ahead, 0) if due else ("track", ahead, since + gap))
        return jobs, list(self.tracked)

    def update(self, kept: list, index: int) -> None:
        """Follow the people kept on frame ``index``: ``(person, square, since, entry or None)``."""
        self.tracked = []
        for _person, roi, since, origin in kept:
            velocity = (0.0, 0.0)
            if origin is not None and index > origin[3]:
                gap = index - origin[3]
                velocity = ((roi.cx - origin[0].cx) / gap, (roi.cy - origin[0].cy) / gap)
            self.tracked.append((roi, since, velocity, index))


class LiteRTEngine:
    """BlazePose on LiteRT, one :class:`BlazePose` a worker thread (their interpreters are not
    thread-safe); a bad model file is named when the engine is made, before any work."""

    def __init__(self, options: MultiPoseOptions, model_files: dict[str, Path], hog: HogProposals,
                 person: PersonDetector | None = None) -> None:
        self.options = options
        self.model_files = model_files
        self.hog = hog
        self.person = person  # the CNN person detector (detector="centernet")
        self.scale = DetectorScale(person.size if person is not None else LADDER[0])  # its size, call by call
        self.movenet: MoveNetPeople | None = None  # detector="movenet": its people, no landmark model
        self._engines: list[BlazePose] = [BlazePose(model_files)]  # one a worker
        self._wide: BlazePose | None = None  # on `threads` interpreter threads, for a lone job
        self.pool = WorkerPool(options.threads)
        self._beside = WorkerPool(1, prefix="beenet-person")  # the CNN person detector's thread
        self.follower = Follower(options.confirm_every)
        self.unposed = UnposedPeople(options.unposed, options.person_threshold, options.unposed_group)  # boxed by the detector, not posed
        self.newcomers = Newcomers(options.person_threshold, options.person_weak)  # boxes tried as new people
        self._index = -1  # the frame index of the last call
        # per person followed (as follower.tracked): (detector box, their joints' box centre then)
        self._bodies: list[tuple[Box, tuple[float, float]] | None] = []
        self._ages: list[tuple[int, int]] = []  # per person followed: (calls followed, calls since posed)
        # the detector's boxes of frames to come (upcoming), started ahead: frame index -> future
        self._ahead: dict[int, Future] = {}
        self._soon = 0  # frames handed to upcoming since the video began

    def reset(self) -> None:
        """A new video: the detector's work started ahead is dropped (the engine has no
        video-mode graph to start)."""
        self._drop_ahead()
        self._soon = 0
        self.unposed.clear()
        self.newcomers.clear()
        self.scale.reset()

    def upcoming(self, frame: np.ndarray, index: int) -> None:
        """Frame ``index`` will be a regular call of pass 1 (every ``--pose-every``-th frame),
        handed over while the calls before it still run: on every ``person_every``-th such frame
        the CNN person detector starts on it now, on its own thread, so that it works beside the
        landmark model of the calls before instead of holding up its own call (it takes longer
        than the landmarks of a whole call: docs/predict.md, "Speed"). Its boxes are the same as
        those of a run at the call: only when it runs changes. Once this is called, the
        detector runs on the frames it was started on, and on a call while nobody is followed."""
        if self.person is not None and self._soon % self.options.person_every == 0:
            self._ahead[int(index)] = self._beside.submit(self.person, frame, self.scale.size)
        self._soon += 1

    def _drop_ahead(self, before: int | None = None) -> None:
        """Forget the detector's work started ahead (on frames before ``before``; all by
        default): cancelled when not started, else waited for (it reads a frame)."""
        gone = [k for k in self._ahead if before is None or k < before]
        futures = [self._ahead.pop(k) for k in gone]
        running = [f for f in futures if not f.cancel()]
        if running:
            wait(running)

    def new_shot(self) -> None:
        self.follower.clear()
        self.unposed.clear()
        self.newcomers.clear()
        self._bodies = []
        self._ages = []
        self._index = -1

    def close(self) -> None:
        self._drop_ahead()
        self._soon = 0
        self.pool.close()
        self._beside.close()
        self._engines = []
        self._wide = None

    def find(self, frame: np.ndarray, index: int | None, hog: Future | None, calls: int,
             focus: list[Box] | None = None) -> list[PoseDetection]:
        """The people of ``frame`` (call ``calls`` of the shot; ``hog``: the future of HOG's boxes
        when HOG runs on this call; ``focus``: the boxes of the people this call is for, with the
        CNN person detector), in the two phases of the module docstring."""
        o = self.options
        self._index = self._index + 1 if index is None else int(index)
        if self.movenet is not None:  # every person's joints in one run: nothing to follow
            return self.movenet(frame)
        if self.person is not None:
            return self._find_with_detector(frame, calls, focus)
        height, width = frame.shape[:2]
        jobs, origins = self.follower.jobs(self._index)
        # The whole frame: on every call while nobody is followed or without HOG (then it is the
        # only way to find someone new), else only when HOG looks at the whole frame (first call
        # of a shot, every hog_full_every-th HOG call): the people it finds are followed from then on.
        full = not self.follower.tracked or o.detector != "hog" or self.hog.whole_frame_due(calls)
        windows = [(0, 0, width, height)] if full else []
        if full and o.tiles > 1:
            windows += tile_grid(width, height, o.tiles, o.tile_overlap)
        jobs += [("frame", w, 0) for w in windows]
        results = self.people(frame, jobs, alone=hog is None or hog.done())
        found = [(*p, origin) for (kind, *_), r, origin in zip(jobs, results, origins + [None] * len(windows))
                 if kind != "frame" for p in r]
        detections = sorted((d for (kind, *_), r in zip(jobs, results) if kind == "frame" for d in r),
                            key=lambda d: -d.score)
        more = self._second_jobs(detections, [p for p, *_ in found], hog)
        found += [(*p, None) for r in self.people(frame, more, alone=True) for p in r]
        kept = merge_found(found, lambda p: p[0], o.merge_iou)
        self.follower.update(kept if o.follow else [], self._index)
        return [p for p, *_ in kept]

    def _find_with_detector(self, frame: np.ndarray, calls: int, focus: list[Box] | None = None) -> list[PoseDetection]:
        """``detector="centernet"``: the people followed, by their landmarks (``track`` jobs), and on
        every ``person_every``-th call (or while nobody is followed) the CNN person detector on the
        whole frame, which confirms them (a followed person no box has covered for
        ``confirm_every`` calls' worth of frames is dropped: their square slid onto the
        background; a detector that misses someone on one frame does not end them) and proposes
        the people nobody found yet (``box`` jobs). Given ``focus`` boxes, a person followed for
        ``FOLLOW_SETTLED`` calls or more whose square touches none of them rests on this call."""
        o = self.options
        ahead = self._ahead.pop(self._index, None)  # started by upcoming
        self._drop_ahead(before=self._index)
        if self._soon:  # pass 1 hands its frames over ahead: the detector runs on those
            due = ahead is not None or not self.follower.tracked
        else:
            due = not self.follower.tracked or calls % o.person_every == 0
        due = due or self.unposed.following  # only the detector follows a person it boxed, unposed
        everyone = list(self.follower.tracked)
        ages = self._ages if len(self._ages) == len(everyone) else [(0, 0)] * len(everyone)
        # follow_every: a person followed for a while rests on calls the detector skips
        resting = [not due and age >= FOLLOW_SETTLED and (o.follow_every > 1 and idle + 1 < o.follow_every
                                                         or focus is not None and _apart(e, self._index, focus))
                   for e, (age, idle) in zip(everyone, ages)]
        origins = [e for e, r in zip(everyone, resting) if not r]
        old_bodies = {id(e): b for e, b in zip(everyone, self._bodies)}
        jobs: list[Job] = []
        for roi, since, (vx, vy), at in origins:  # ``since``: frames since the detector last covered them
            gap = max(1, self._index - at)
            jobs.append(("track", roi.moved(vx * gap, vy * gap), since + gap))
        # the detector on its own thread, beside the people followed (a lone job gets every
        # thread only when the detector does not run)
        pending = ahead if ahead is not None else self._beside.submit(self.person, frame, self.scale.size) if due else None
        try:
            results = self.people(frame, jobs, alone=pending is None)
        finally:
            if pending is not None:  # never leave the detector reading the frame after this call
                wait([pending])
        boxes = pending.result() if pending is not None else []
        if not due and self.options.unposed > 0 and not any(resting) and any(not r for r in results):
            # someone followed was lost by the landmark model: the detector looks for them now
            # (not on a call where people rest: follow_every, focus)
            boxes, due = self.person(frame, self.scale.size), True
        found = [(*p, origin) for r, origin in zip(results, origins) for p in r]
        bodies = dict(old_bodies)  # each followed person's body box
        if due:
            self.scale.observe(boxes, frame.shape[1], frame.shape[0])  # person_size=auto: later calls' size
            gap = max((self._index - at for *_, at in origins), default=1)
            found = [(p, roi, 0, origin) if any(covers(b, p.box) for b, _ in boxes) else (p, roi, since, origin)
                     for p, roi, since, origin in found]
            # uncovered for confirm_every calls' worth of frames: the square slid off its person
            found = [f for f in found if f[2] < o.confirm_every * max(gap, 1)]
            # a new person takes a box at person_threshold; one followed is confirmed by any box
            # the detector gives (person_confirm or more: its score falls for unusual poses)
            new = self.newcomers.boxes(boxes, [f[0].box for f in found])[:MAX_NEW_PEOPLE]
            tried = self.people(frame, [("box", b, 0) for b, _ in new], alone=True)
            self.newcomers.failed([b for b, r in zip(new, tried) if not r])
            found += [(*p, None) for r in tried for p in r]
            # each person takes the detector's box that is theirs: one body, one box
            joints = [p.box for p, *_ in found]
            found = [(with_box(p, boxes, o.person_weak), *rest) for p, *rest in found]
            bodies = {id(f): (f[0].box, centre(j)) if f[0].box != j else None for f, j in zip(found, joints)}
        else:  # the detector's box of the last call that ran it, moved with the joints
            found = moved_apart([(moved_body(p, bodies.get(id(origin)), frame.shape), roi, since, origin)
                                  for p, roi, since, origin in found], bodies)
            bodies = {id(f): bodies.get(id(f[3])) for f in found}
        kept = merge_found(found, lambda p: p[0], o.merge_iou)
        self.follower.update(kept if o.follow else [], self._index)
        self._bodies = [bodies.get(id(k)) for k in kept] if o.follow else []
        self._carry(everyone, ages, resting, kept, old_bodies)
        posed = [p.box for p, *_ in kept]  # and the boxes the landmark model could not pose
        unposed = self.unposed.seen(boxes, posed, frame.shape[1], frame.shape[0]) if due else self.unposed.skipped(posed)
        return [p for p, *_ in kept] + unposed

    def _carry(self, everyone: list, ages: list[tuple[int, int]], resting: list[bool], kept: list,
               bodies: dict) -> None:
        """After a call: each person followed gets ``(calls followed, calls since last posed)``;
        the people who rested (``follow_every``) stay followed as they were (their square moves on
        at its velocity at the next call), their detector box kept."""
        was = {id(e): a for e, a in zip(everyone, ages)}
        self._ages = [(was[id(k[3])][0] + 1, 0) if k[3] is not None and id(k[3]) in was else (1, 0)
                      for k in kept] if self.options.follow else []
        if not self.options.follow:
            return
        for e, (age, idle), r in zip(everyone, ages, resting):
            if r:
                self.follower.tracked.append(e)
                self._bodies.append(bodies.get(id(e)))
                self._ages.append((age + 1, idle + 1))

    def _second_jobs(self, detections: list[PersonDetection], people: list[PoseDetection],
                     hog: Future | None) -> list[Job]:
        """Phase 2: the squares of whole-frame detections that no person found so far covers (at
        most ``num_poses``), then HOG's boxes that none covers (waits for HOG)."""
        jobs: list[Job] = []
        for d in detections:
            roi = d.roi()
            if not any(inside(roi.cx, roi.cy, p.box) for p in people) and \
                    not any(inside(roi.cx, roi.cy, r.bounds()) for _, r, _ in jobs):
                jobs.append(("roi", roi, 0))
        jobs = jobs[:self.options.num_poses]
        if hog is not None:
            more = new_proposals([(b, None) for b in hog.result()], people)
            jobs += [("crop", b, 0) for b, _ in more]
        return jobs

    def verify(self, frame: np.ndarray, proposals: list[Box], width: int, height: int,
               indexed: bool = False) -> list:
        """Each proposal box checked on a crop around it (a ``crop`` job): the person found, or
        ``(proposal index, person)`` with ``indexed``."""
        if not proposals:
            return []
        results = self.people(frame, [("crop", b, 0) for b in proposals])
        kept = [(k, person) for k, r in enumerate(results) for person, _roi, _since in r]
        return kept if indexed else [d for _, d in kept]

    def pose_boxes(self, frame: np.ndarray, boxes: list[Box]) -> list[PoseDetection | None]:
        """The person in each of ``boxes`` on ``frame``: the landmark model on the box's upright
        square (:func:`box_roi`), kept when the pose-presence flag reaches
        ``min_presence_confidence`` and the person's box centre lies in the box; else None. One
        landmark run a box, shared out among the workers; the people followed are left as they
        are: this looks at a frame of the past (pass 1's look-back). Not a ``box`` job (BlazePose's
        detector first, then up to three squares): that found one person-frame more on the footage
        benchmark at twice the cost (docs/predict.md, "Tracking")."""
        results = self.people(frame, [("roi", box_roi(b), 0) for b in boxes])
        return [next((p for p, _roi, _since in r if inside(*centre(p.box), b)), None) for r, b in zip(results, boxes)]

    def people(self, frame: np.ndarray, jobs: list[Job], alone: bool = False) -> list[list]:
        """Run ``jobs`` on the ``threads`` workers, shared out round-robin; the results come back in
        job order. A job is ``("track", roi, since)`` (the landmark model on last call's square of
        a person), ``("roi", roi, 0)`` (the same on the square of a whole-frame detection),
        ``("crop", box, 0)`` (the detector on a square crop around ``box``, then the landmark model
        on what it found: the person is kept when their box centre lies inside ``box``),
        ``("confirm", roi, 0)`` (the same on last call's square of a person, grown by
        ``crop_margin``) or ``("frame", (x0, y0, w, h), 0)`` (the detector alone on that
        rectangle of the frame, letterboxed). The result of a job is a list of :data:`Found`, or of
        detections for ``frame``. A single job with ``alone`` (nothing else, HOG included, is
        running) runs on one engine whose interpreters use all ``threads``: the other cores would
        idle otherwise (a landmark run 8.7 -> 4.5 ms on 2 threads, bit for bit the same output)."""
        if not jobs:
            return []
        threads = self.options.threads
        if alone and len(jobs) == 1 and threads > 1:
            if self._wide is None:
                self._wide = BlazePose(self.model_files, num_threads=threads)
            return [self._job(self._wide, frame, *jobs[0])]
        n = min(threads, len(jobs))
        while len(self._engines) < n:
            self._engines.append(BlazePose(self.model_files))
        done = self.pool.share(lambda engine, share: [(k, self._job(engine, frame, *job)) for k, job in share],
                               self._engines[:n], jobs)
        return [r for _, r in done]

    def _job(self, engine: BlazePose, frame: np.ndarray, kind: str, what, since: int) -> list:
        """One job of :meth:`people` on one engine."""
        height, width = frame.shape[:2]
        o = self.options
        if kind == "frame":  # a rectangle, letterboxed (black around it) as mediapipe does
            x0, y0, w, h = what
            side = max(w, h)
            found = engine.detect(frame[y0:y0 + h, x0:x0 + w], ((w - side) / 2, (h - side) / 2, side),
                                  o.min_detection_confidence, o.num_poses)
            return [d.moved(x0, y0) for d in found]
        if kind == "box":
            return self._box_job(engine, frame, what)
        box = None
        if kind in ("crop", "confirm"):
            box, hits = self._detect_around(engine, frame, kind, what)
            if not hits:
                return []
            what = hits[0].roi()
        elif kind == "track":
            box = what.bounds()
        flag, lm = engine.landmarks(frame, what, lite=kind == "track" and what.side < o.track_lite * height)
        low = o.min_tracking_confidence if kind == "track" else o.min_presence_confidence
        person = landmark_person(lm, width, height) if flag >= low else None
        if person is None or (box is not None and not inside(*centre(person.box), box)):
            return []
        return [(person, roi_from_points(lm[BODY_LANDMARKS, :2], lm[BODY_LANDMARKS + 1, :2]), since)]

    def _box_job(self, engine: BlazePose, frame: np.ndarray, box: Box) -> list:
        """A person box of the CNN detector: the landmark model on the square BlazePose's detector
        aligns on a crop around the box (when it finds a face there whose person lies in the box),
        else on the box's own square, upright (a person seen from behind, masked, or too small for
        BlazePose's detector)."""
        height, width = frame.shape[:2]
        o = self.options
        _, hits = self._detect_around(engine, frame, "crop", box)
        rois = [h.roi() for h in hits[:1]] + [box_roi(box)]
        if box[1] + box[3] >= 0.97 * height:  # cut by the frame's bottom (a close-up): a square 1.5x its height
            rois.append(Roi(box[0] + box[2] / 2, box[1] + 0.75 * box[3], 1.5 * box[3], 0.0))
        for roi in rois:
            flag, lm = engine.landmarks(frame, roi)
            person = landmark_person(lm, width, height) if flag >= o.min_presence_confidence else None
            if person is not None and inside(*centre(person.box), box):
                return [(person, roi_from_points(lm[BODY_LANDMARKS, :2], lm[BODY_LANDMARKS + 1, :2]), 0)]
        return []

    def _detect_around(self, engine: BlazePose, frame: np.ndarray, kind: str,
                       what) -> tuple[Box, list[PersonDetection]]:
        """The detector on a square around a HOG box (``crop``: ``crop_margin`` around it, moved
        inside the frame) or around a followed person's square (``confirm``: grown by
        ``crop_margin``, at most the whole frame's; of a few found, the one nearest the square,
        not a neighbour): the box the person's centre must lie in, and what it found."""
        height, width = frame.shape[:2]
        o = self.options
        if kind == "crop":
            box = what
            x0, y0, w, h = square_crop(box, o.crop_margin, width, height)
            window = (x0, y0, max(w, h))
        else:
            box = what.bounds()
            side = box[2] * o.crop_margin
            window = (what.cx - side / 2, what.cy - side / 2, side)
            if side >= max(width, height):
                side = max(width, height)
                window = ((width - side) / 2, (height - side) / 2, side)
        if window[2] < 8:
            return box, []
        if kind == "confirm":
            found = engine.detect(frame, window, min(o.min_detection_confidence, CONFIRM_DETECTION), 3)
            found.sort(key=lambda d: math.hypot(d.keypoints[0][0] - what.cx, d.keypoints[0][1] - what.cy))
        else:
            found = engine.detect(frame, window, o.min_detection_confidence, 1)
        return box, found
