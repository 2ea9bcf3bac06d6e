"""The ``tasks`` engine of the multi-person BlazePose backend: mediapipe's Tasks
``PoseLandmarker`` (the fallback without ai-edge-litert), its detector run on every crop.

The landmarker runs on the whole frame in video mode (it tracks people from frame to frame
between detector runs) and, with ``tiles=n > 1``, in image mode on ``n x n`` overlapping tiles.
With ``detector="hog"``, each proposal (the people a crop found last call, then HOG's boxes) is
verified on a square crop around it (``crop_margin``, scaled to ``CROP_SIDE`` px) by a
one-person landmarker in image mode: no person on the crop, or one whose box centre lies
outside the proposal, and it is dropped. With ``follow``, each person a crop found is cropped
again on the next call, with the box that found them moved as they moved (:func:`follow_boxes`).
Image mode has no state, so the people found do not depend on ``threads`` (tested).
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import numpy as np

from beenet.errors import BeenetError
from beenet.inference.pose.boxes import Box, centre, inside, merge_found, square_crop, tile_grid
from beenet.inference.pose.keypoints import PoseDetection, landmark_person
from beenet.inference.pose.models import build_bundle
from beenet.inference.pose.options import MultiPoseOptions
from beenet.inference.pose.pool import WorkerPool
from beenet.inference.pose.proposals import new_proposals
from beenet.inference.pose.runtime import INSTALL_HINT, import_mediapipe, quiet_stderr

#: Side (px) of each crop cell the landmarker sees when verifying a proposal.
CROP_SIDE = 256
#: Calls of a new landmarker that run with stderr silenced until it finds its first person.
QUIET_CALLS = 30
#: What the multi-person backend needs of mediapipe (both engines: the install check).
NEEDS_TASKS = "the 'mediapipe' pose backend needs mediapipe with its Tasks API"


def import_tasks_api():
    """mediapipe and its Tasks ``vision`` module, or BeenetError with the install command."""
    mp = import_mediapipe(NEEDS_TASKS)
    try:
        from mediapipe.tasks.python import BaseOptions, vision  # lazy: optional mediapipe
    except ImportError as exc:
        raise BeenetError(f"{NEEDS_TASKS}; install it with: {INSTALL_HINT}") from exc
    return mp, BaseOptions, vision


def follow_boxes(proposals: list, found: list, kept: list) -> list:
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
            cx, cy = centre(hit[k].box)
            if entry is not None:
                box = (box[0] + cx - entry[1][0], box[1] + cy - entry[1][1], box[2], box[3])
            out.append((box, (cx, cy)))
    return out


class TasksEngine:
    """mediapipe's ``PoseLandmarker``: one in video mode on the whole frame, one in image mode on
    the tiles, and one-person ones in image mode on the crops (one a thread)."""

    def __init__(self, options: MultiPoseOptions, model_files: dict[str, Path],
                 cache_dir: str | Path | None = None) -> None:
        self.options = options
        self._mp, base_options, self._vision = import_tasks_api()
        self.bundle = build_bundle(model_files, root=cache_dir)
        self._landmarker_options = dict(
            base_options=base_options(model_asset_path=str(self.bundle)),
            num_poses=options.num_poses, min_pose_detection_confidence=options.min_detection_confidence,
            min_pose_presence_confidence=options.min_presence_confidence,
            min_tracking_confidence=options.min_tracking_confidence,
        )
        self.pool = WorkerPool(options.threads)
        self._video = None  # VIDEO mode: the whole frame
        self._image = None  # IMAGE mode: the tiles
        self._crops: list = []  # IMAGE mode, one person: the verifiers of the proposals, one a thread
        self._quiet: dict[int, int] = {}  # landmarker -> calls left with stderr silenced (see _detect)
        self._last_ts = -1
        self.followed: list = []  # (box, anchor) of the people the crops found last call

    def _create(self, mode: str, **override):
        opts = self._vision.PoseLandmarkerOptions(running_mode=getattr(self._vision.RunningMode, mode),
                                                  **{**self._landmarker_options, **override})
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

    def _image_of(self, pixels: np.ndarray):
        return self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=pixels)

    def reset(self) -> None:
        """A new video: a new video-mode landmarker, timestamps from the start."""
        if self._video is not None:
            with quiet_stderr():
                self._video.close()
        self._video = self._create("VIDEO")
        self._last_ts = -1

    def new_shot(self) -> None:
        self.followed = []

    def close(self) -> None:
        self.pool.close()
        for lm in (self._video, self._image, *self._crops):
            if lm is not None:
                with quiet_stderr():
                    lm.close()
        self._video = self._image = None
        self._crops = []

    def find(self, frame: np.ndarray, index: int | None, hog: Future | None, calls: int) -> list[PoseDetection]:
        """The people of ``frame``: the whole frame in video mode, the tiles, then (with HOG) the
        followed crops and HOG's boxes verified; people found twice merged by box IoU."""
        o = self.options
        height, width = frame.shape[:2]
        # Video mode wants strictly increasing timestamps (ms); frame index at ~30 fps spacing.
        ts = self._last_ts + 33 if index is None else max(int(index) * 33, self._last_ts + 1)
        self._last_ts = ts
        dets = self._people(self._detect(self._video, self._image_of(frame), ts), 0, 0, width, height, width, height)
        if o.tiles > 1:
            if self._image is None:
                self._image = self._create("IMAGE")
            for x0, y0, w, h in tile_grid(width, height, o.tiles, o.tile_overlap):
                tile = self._image_of(np.ascontiguousarray(frame[y0:y0 + h, x0:x0 + w]))
                dets += self._people(self._detect(self._image, tile), x0, y0, w, h, width, height)
        if o.detector != "hog":
            return dets if o.tiles == 1 else merge_found(dets, lambda d: d, o.merge_iou)
        proposals, found = self._crops_found(frame, dets, hog)
        kept = merge_found(dets + [d for _, d in found], lambda d: d, o.merge_iou)
        self.followed = follow_boxes(proposals, found, kept)
        return kept

    def _crops_found(self, frame: np.ndarray, dets: list, hog: Future | None) -> tuple[list, list]:
        """The people followed from earlier calls are cropped first, while HOG may still run; then
        HOG's boxes that no person found so far covers (a second chance for a followed person
        whose crop failed). The proposals ``(box, follow entry or None)`` and the people their
        crops found, ``(proposal index, person)``."""
        height, width = frame.shape[:2]
        followed = [(e[0], e) for e in self.followed] if self.options.follow else []
        proposals = new_proposals(followed, dets)
        found = self.verify(frame, [b for b, _ in proposals], width, height, indexed=True)
        boxes = [] if hog is None else hog.result()
        more = new_proposals([(b, None) for b in boxes], dets + [d for _, d in found])
        found += [(len(proposals) + k, d) for k, d in
                  self.verify(frame, [b for b, _ in more], width, height, indexed=True)]
        return proposals + more, found

    def verify(self, frame: np.ndarray, proposals: list[Box], width: int, height: int,
               indexed: bool = False) -> list:
        """Each proposal box cropped (square, ``crop_margin`` around it), scaled to ``CROP_SIDE`` px
        and run through a one-person landmarker in image mode: the person it finds, mapped back to
        the frame, when the centre of their box lies inside the proposal; nothing otherwise (a HOG
        window on a pole or a bin finds no person, or one elsewhere in the crop). With ``threads``
        > 1 the crops are shared out among that many landmarkers running side by side; the people
        come back in proposal order either way (``(proposal index, person)`` with ``indexed``).

        One crop per call: the person detector needs the person large in its 224x224 view. Several
        crops side by side in one image (one detector run for all) lost most people: on the 10
        hand-counted vtest.avi frames 24 found one crop a call, 14 two, 4 four."""
        if not proposals:
            return []
        n = min(self.options.threads, len(proposals))
        while len(self._crops) < n:
            self._crops.append(self._create("IMAGE", num_poses=1))
        found = self.pool.share(lambda lm, share: self._verify_share(lm, frame, share, width, height),
                                self._crops[:n], list(proposals))
        return found if indexed else [d for _, d in found]

    def _verify_share(self, landmarker, frame: np.ndarray, proposals: list, width: int, height: int) -> list:
        """:meth:`verify` of ``(index, box)`` proposals on one landmarker: ``(index, person)``."""
        import cv2  # lazy: heavy, only when a crop is verified

        found: list = []
        for k, box in proposals:
            x0, y0, w, h = square_crop(box, self.options.crop_margin, width, height)
            if w < 8 or h < 8:
                continue
            f = CROP_SIDE / max(w, h)
            crop = cv2.resize(frame[y0:y0 + h, x0:x0 + w], (max(1, round(w * f)), max(1, round(h * f))),
                              interpolation=cv2.INTER_LINEAR)
            for d in self._people(self._detect(landmarker, self._image_of(np.ascontiguousarray(crop))),
                                  x0, y0, w, h, width, height):
                if inside(*centre(d.box), box):
                    found.append((k, d))
        return found

    @staticmethod
    def _people(result, x0: float, y0: float, w: float, h: float, width: int, height: int) -> list:
        """The people of a landmarker result, landmarks (normalised to the image it saw: the window
        ``(x0, y0, w, h)`` of the frame) mapped to the frame."""
        dets = []
        for person in result.pose_landmarks:
            lm = np.array([(p.x * w + x0, p.y * h + y0, p.visibility if p.visibility is not None else 0.0)
                           for p in person], dtype=np.float32)
            det = landmark_person(lm, width, height)
            if det is not None:
                dets.append(det)
        return dets
