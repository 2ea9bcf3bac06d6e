"""Keypoints a user already has, as a pose source: a BoLD joints ``.npy`` (person ids kept) or a
folder of OpenPose ``*_keypoints.json`` files (COCO-18 or BODY_25). The predictor makes one from
its input (``beenet predict X.npy``, ``--keypoints``); it is not in the table of backends."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beenet.data.joints import load_clip_joints, load_joints_array
from beenet.errors import BoLDFormatError, DataNotFoundError
from beenet.inference.pose.base import PoseBackendBase
from beenet.inference.pose.keypoints import PoseDetection, detection_from_keypoints, openpose_flat_to_18, valid_mask


@dataclass
class PrecomputedPose(PoseBackendBase):
    """Keypoints a user already has: ``frames[frame_index] -> detections`` (no pixels needed)."""

    frames: dict[int, list[PoseDetection]]
    source: str = "<precomputed>"
    name: str = "precomputed"
    needs_pixels: bool = False
    num_frames: int = field(init=False)

    def __post_init__(self) -> None:
        self.num_frames = max(self.frames, default=-1) + 1

    @property
    def settings(self) -> dict[str, Any]:
        """Where the keypoints come from and how many frames they cover (recorded in tables)."""
        return {"source": self.source, "name": self.name, "needs_pixels": self.needs_pixels,
                "num_frames": self.num_frames}

    def __call__(self, frame: np.ndarray | None = None, index: int | None = None) -> list[PoseDetection]:
        if index is None:
            raise ValueError("PrecomputedPose needs the frame index")
        return list(self.frames.get(int(index), ()))

    def check_matches(self, num_frames: int, width: int, height: int, video: str | Path) -> None:
        """Raise when the keypoints cannot belong to this video (more frames, or joints off-frame).

        A joints file beside the wrong video is the usual cause; the message names both files.
        """
        if self.num_frames > num_frames:
            raise BoLDFormatError(
                self.source, None,
                f"keypoints reach frame {self.num_frames - 1} but {video} has only {num_frames} frames; "
                "the keypoints do not belong to this video (check the file names).",
            )
        pts = [d.keypoints[valid_mask(d.keypoints)] for dets in self.frames.values() for d in dets]
        pts = [p for p in pts if len(p)]
        if not pts:
            raise BoLDFormatError(self.source, None, "no valid keypoint in the whole file")
        xy = np.concatenate(pts)[:, :2]
        slack = 0.05
        outside = ((xy[:, 0] < -slack * width) | (xy[:, 0] > (1 + slack) * width)
                   | (xy[:, 1] < -slack * height) | (xy[:, 1] > (1 + slack) * height))
        if outside.mean() > 0.05:
            raise BoLDFormatError(
                self.source, None,
                f"{100 * outside.mean():.0f}% of the keypoints lie outside the {width}x{height} frames "
                f"of {video}; the keypoints do not belong to this video (or use another resolution).",
            )

    @classmethod
    def from_bold_joints(cls, path: str | Path, num_frames: int | None = None) -> PrecomputedPose:
        """A BoLD joints ``.npy`` (``[frame, person_id, x0, y0, c0, ...]`` rows), person ids kept.

        ``num_frames``: the video's frame count. Frames count from the file's first frame; a row
        past the video's end is refused with its index (a corrupt frame number such as 4e12 must
        not make the frame axis, and the memory, that long).
        """
        if num_frames is not None:
            arr = load_joints_array(path)
            if len(arr):
                first = int(np.argmin(arr[:, 0]))
                offset = arr[first, 0]
                past = np.flatnonzero(arr[:, 0] - offset >= num_frames)
                if len(past):
                    row = int(past[np.argmax(arr[past, 0])])
                    raise BoLDFormatError(
                        path, None,
                        f"row {row}: frame {arr[row, 0]:.0f} lies {arr[row, 0] - offset:.0f} frames after the "
                        f"file's first frame {offset:.0f} (row {first}), but the video has {num_frames} frames "
                        f"({len(past)} row(s) lie past its end); the keypoints do not belong to this video, "
                        "or a frame number is corrupt",
                    )
        people = load_clip_joints(path, num_frames)
        frames: dict[int, list[PoseDetection]] = {}
        for pid, pj in people.items():
            kp = np.asarray(pj.keypoints, dtype=np.float32)
            present = np.asarray(pj.present, dtype=bool)
            for t in np.flatnonzero(present):
                det = detection_from_keypoints(kp[t], track_id=int(pid))
                if det is not None:
                    frames.setdefault(int(t), []).append(det)
        return cls(frames, source=str(path))

    @classmethod
    def from_openpose_json(cls, folder: str | Path) -> PrecomputedPose:
        """A folder of OpenPose per-frame ``*_keypoints.json`` files (COCO-18 or BODY_25).

        The frame index is the number just before ``_keypoints.json`` (OpenPose's own naming);
        files without one are numbered in sorted order. People get ids from the tracker.
        """
        folder = Path(folder)
        files = sorted(folder.glob("*_keypoints.json"))
        if not files:
            raise DataNotFoundError(f"{folder}: no OpenPose '*_keypoints.json' file in this folder")
        numbered = [re.search(r"(\d+)_keypoints\.json$", f.name) for f in files]
        use_numbers = all(m is not None for m in numbered)
        indices = [int(m.group(1)) for m in numbered] if use_numbers else list(range(len(files)))
        if use_numbers:
            base = min(indices)
            indices = [i - base for i in indices]
        frames: dict[int, list[PoseDetection]] = {}
        for idx, f in zip(indices, files):
            try:
                doc = json.loads(f.read_text())
                people = doc["people"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise BoLDFormatError(f, None, f"not an OpenPose keypoints JSON ({exc})") from exc
            for person in people:
                if "pose_keypoints_2d" not in person:
                    raise BoLDFormatError(f, None, "a person without 'pose_keypoints_2d'")
                det = detection_from_keypoints(openpose_flat_to_18(person["pose_keypoints_2d"], f))
                if det is not None:
                    frames.setdefault(idx, []).append(det)
        return cls(frames, source=str(folder))
