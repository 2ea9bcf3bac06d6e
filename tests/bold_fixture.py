"""A tiny BoLD directory in the exact release layout, with every quirk of the real one.

``write_bold_fixture(tmp_path / "BOLD_public")`` writes headerless annotation CSVs (test_meta.csv
with only 4 columns), ``videos/003/<youtube_id>.mp4/<NNNN>.mp4`` (the ``.mp4`` directory level),
and joints files holding several persons, in shuffled row order, with absolute frame numbers,
frames where a person is missing, low-confidence and (0, 0, 0) keypoints, and a duplicate row.
Frames encode their own index in their colour (:func:`frame_for_index` / :func:`index_of_frame`),
so a test can tell exactly which frame a reader returned.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beenet.media.video_writer import VideoWriter
from beenet.labels import NUM_CATEGORIES, NUM_JOINTS

#: Person id that is detected in every frame of every clip but never annotated.
BYSTANDER_ID = 9
_BASE, _STEP = 20, 14  # grey levels that encode a frame index (robust to h264 at crf 23)


def frame_for_index(index: int, height: int, width: int) -> np.ndarray:
    """An RGB frame whose top half encodes ``index % 16`` and bottom half ``index // 16``."""
    if not 0 <= index < 256:
        raise ValueError(f"frame index {index} cannot be encoded (0..255)")
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[: height // 2] = _BASE + (index % 16) * _STEP
    frame[height // 2 :] = _BASE + (index // 16) * _STEP
    return frame


def index_of_frame(frame: np.ndarray) -> int:
    """Decode the index written by :func:`frame_for_index` (works on decoded, lossy frames)."""
    f = np.asarray(frame, dtype=np.float64)
    h = f.shape[0] // 2
    top = f[h // 4 : h - h // 4].mean()  # stay away from the seam, where h264 blurs
    bottom = f[h + h // 4 : f.shape[0] - h // 4].mean()
    return int(round((top - _BASE) / _STEP)) + 16 * int(round((bottom - _BASE) / _STEP))


@dataclass
class BoldFixture:
    """What :func:`write_bold_fixture` wrote, for tests to check against."""

    root: Path
    num_frames: int
    width: int
    height: int
    fps: float
    #: instance keys (video, person_id) of each split, in CSV order
    splits: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    #: decoded frame indices in which each (video, person_id) has a joints row
    present: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    #: the absolute frame number of each clip's frame 0 in its joints file
    frame_offsets: dict[str, int] = field(default_factory=dict)
    #: (categories [26], vad [3]) of each labelled instance
    labels: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def video_path(self, video: str) -> Path:
        return self.root / "videos" / video

    def joints_path(self, video: str) -> Path:
        return self.root / "joints" / Path(video).with_suffix(".npy")

    def clips(self, split: str) -> list[str]:
        return list(dict.fromkeys(v for v, _ in self.splits[split]))


def _person_frames(person: int, num_frames: int) -> np.ndarray:
    t = np.arange(num_frames)
    if person == 0:  # missing in frames 3, 8, 13, ...: later frames must not shift
        return t[t % 5 != 3]
    if person == 1:  # enters late and leaves early
        return t[2 : max(num_frames - 2, 3)]
    return t


def _keypoints(rng: np.random.Generator, person: int, t: int, width: int, height: int) -> np.ndarray:
    cx = width * (0.3 + 0.4 * ((person * 0.37) % 1.0)) + t * 0.5
    cy = height * 0.5
    kp = np.empty((NUM_JOINTS, 3))
    kp[:, 0] = cx + rng.uniform(-0.12, 0.12, NUM_JOINTS) * width
    kp[:, 1] = cy + rng.uniform(-0.35, 0.35, NUM_JOINTS) * height
    kp[:, 2] = rng.uniform(0.3, 1.0, NUM_JOINTS)
    kp[17] = (kp[17, 0], kp[17, 1], 0.05)  # low confidence: missing
    kp[16] = (0.0, 0.0, 0.0)  # OpenPose's "not detected"
    return kp


def write_bold_fixture(
    root: Path,
    *,
    clips_per_split: dict[str, int] | None = None,
    num_frames: int = 12,
    width: int = 64,
    height: int = 48,
    fps: float = 25.0,
    persons_per_clip: int = 2,
    test_columns: int = 4,
    seed: int = 0,
) -> BoldFixture:
    """Write a BoLD directory at ``root`` and return what it holds.

    Each clip has ``persons_per_clip`` annotated persons (ids 0, 1, ...) plus an unannotated
    bystander (id 9) detected in every frame. Person 0 is missing in frames 3, 8, 13, ...;
    person 1 only appears in frames 2 .. T-3. Frame 0 of person 0 has a duplicate, less
    confident row whose x is shifted by +1000 px (a loader must keep the confident one).
    """
    root = Path(root)
    counts = {"train": 3, "val": 2, "test": 2, **(clips_per_split or {})}
    rng = np.random.default_rng(seed)
    fx = BoldFixture(root=root, num_frames=num_frames, width=width, height=height, fps=fps)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    youtube_ids = ("IzvOYVMltkI", "a-B_c3D4e5F")
    clip_no = 0
    frames = [frame_for_index(i, height, width) for i in range(num_frames)]
    for split in ("train", "val", "test"):
        rows: list[list[str]] = []
        fx.splits[split] = []
        for _ in range(counts[split]):
            clip_no += 1
            video = f"003/{youtube_ids[clip_no % 2]}.mp4/{clip_no:04d}.mp4"
            with VideoWriter(root / "videos" / video, fps, width, height) as writer:
                for frame in frames:
                    writer.write(frame)
            offset = 1000 + 37 * clip_no
            fx.frame_offsets[video] = offset
            joint_rows = []
            for person in [*range(persons_per_clip), BYSTANDER_ID]:
                present = _person_frames(person, num_frames)
                for t in present.tolist():
                    kp = _keypoints(rng, person, t, width, height)
                    joint_rows.append(np.concatenate([[offset + t, person], kp.reshape(-1)]))
                    if person == 0 and t == 0:
                        dup = kp.copy()
                        dup[:, 0] += 1000.0
                        dup[:, 2] = np.minimum(dup[:, 2], 0.2)
                        dup[16] = 0.0
                        joint_rows.append(np.concatenate([[offset + t, person], dup.reshape(-1)]))
                if person != BYSTANDER_ID:
                    fx.present[(video, person)] = present
            joints = np.stack(joint_rows)
            joints = joints[rng.permutation(len(joints))]  # rows are not sorted in the release
            path = root / "joints" / Path(video).with_suffix(".npy")
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, joints.astype(np.float64))
            for person in range(persons_per_clip):
                key = (video, person)
                fx.splits[split].append(key)
                first = offset + int(fx.present[key][0])
                last = offset + int(fx.present[key][-1])
                if split == "test":
                    row = [video, str(person), str(first), str(last)]
                    row += [""] * (test_columns - 4)
                else:
                    cats = np.round(rng.uniform(0, 1, NUM_CATEGORIES), 3).astype(np.float32)
                    vad = np.round(rng.uniform(1, 10, 3), 2).astype(np.float32)
                    fx.labels[key] = (cats, vad)
                    row = [video, str(person), str(first), str(last)]
                    row += [f"{v:g}" for v in cats] + [f"{v:g}" for v in vad]
                    row += [str(int(rng.integers(0, 2))), str(int(rng.integers(0, 5))),
                            str(int(rng.integers(0, 6))), f"{rng.uniform(0.5, 1):.4f}"]
                rows.append(row)
        name = "test_meta.csv" if split == "test" else f"{split}.csv"
        with open(root / "annotations" / name, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)  # headerless, like the release
    return fx
