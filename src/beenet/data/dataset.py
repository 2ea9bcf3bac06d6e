"""The BoLD dataset as tensors: one sample dict per (clip, person) instance.

Only the sampled frames are decoded. Sampling is reproducible and resumable: each sample draws
from its own ``torch.Generator`` seeded from (seed, epoch, index), so a run restarted at epoch e
sees exactly the frames it would have seen, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from beenet.data.bold import BoLD, Instance
from beenet.data.joints import PersonJoints, load_person_joints
from beenet.data.usable import usable_instances
from beenet.data.worker_cache import BoundedCache
from beenet.media.transforms import (
    Box,
    box_from_keypoints,
    crop_to_tensor,
    frames_to_tensor,
    frames_to_uint8,
    normalize_skeleton,
    resize_uint8,
)
from beenet.media.video import VideoReader
from beenet.errors import BoLDFormatError, ConfigError, DataNotFoundError, VideoDecodeError
from beenet.labels import CONTEXT_DIM, NUM_CATEGORIES, NUM_JOINTS, NUM_VAD
from beenet.data.sampling import DataConfig, spread

log = logging.getLogger(__name__)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample, well mixed from (seed, epoch, index)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def _pad(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad the first dimension of ``x`` to ``length`` (no copy when it is already that long)."""
    if x.shape[0] == length:
        return x
    out = x.new_zeros((length, *x.shape[1:]))
    out[: x.shape[0]] = x
    return out


def crop_window(frame: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """The part of ``frame`` that :func:`crop_to_tensor` reads for ``box``, and the box moved
    into it: cropping the window gives the very same tensor, without converting the whole frame.
    """
    H, W = frame.shape[:2]
    bx, by, bw, bh = box
    side = max(bw, bh)
    cx, cy = bx + bw / 2.0, by + bh / 2.0
    x0 = max(0, math.floor(cx - side / 2.0) - 2)
    y0 = max(0, math.floor(cy - side / 2.0) - 2)
    x1 = min(W, math.ceil(cx + side / 2.0) + 2)
    y1 = min(H, math.ceil(cy + side / 2.0) + 2)
    # An even shift: crop_to_tensor rounds half to even, which only an even shift leaves unchanged.
    x0, y0 = x0 - x0 % 2, y0 - y0 % 2
    if x1 <= x0 or y1 <= y0:
        return frame, box
    return frame[y0:y1, x0:x1], (bx - x0, by - y0, bw, bh)


class ClipFrames(Protocol):
    """The frames of one open clip, as a :class:`FrameSource` serves them."""

    num_frames: int
    width: int  # of the original video (boxes and keypoints are in its pixels)
    height: int

    def frames(self, indices: np.ndarray, size: int) -> torch.Tensor:
        """Frames ``indices`` resized to ``size`` (:func:`resize_uint8`): uint8 ``[K, size, size, 3]``."""

    def crops(self, person_id: int, indices: np.ndarray, boxes: Sequence[Box | None], size: int) -> torch.Tensor:
        """Person crops of the frames last read by :meth:`frames`: float ``[K, 3, size, size]``, normalised."""

    def close(self) -> None: ...


class FrameSource(Protocol):
    """Where a dataset gets the frames of a clip: the video itself (:class:`VideoFrames`) or a
    prepared cache (:class:`beenet.data.prepared.PreparedFrames`). The training loop and the
    evaluation pick the source; the dataset only asks it for frames."""

    def open(self, bold: BoLD, video: str) -> ClipFrames: ...


class _VideoClip:
    """A clip decoded on the fly: only the asked frames, from the video file."""

    def __init__(self, path: Any) -> None:
        self.reader = VideoReader(path)
        self.num_frames, self.width, self.height = self.reader.num_frames, self.reader.width, self.reader.height
        self._last: np.ndarray | None = None

    def frames(self, indices: np.ndarray, size: int) -> torch.Tensor:
        self._last = self.reader.read(indices)
        return resize_uint8(self._last, size)

    def crops(self, person_id: int, indices: np.ndarray, boxes: Sequence[Box | None], size: int) -> torch.Tensor:
        assert self._last is not None and len(self._last) == len(boxes), "frames() first, one box per frame"
        return crops_of(self._last, boxes, size)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "_VideoClip":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class VideoFrames:
    """The default frame source: decode each asked frame from the clip's mp4."""

    def open(self, bold: BoLD, video: str) -> _VideoClip:
        return _VideoClip(bold.video_path(video))


def crops_of(frames: np.ndarray, boxes: Sequence[Box | None], size: int) -> torch.Tensor:
    """Crops ``[K, 3, size, size]`` (normalised) of full-resolution ``frames`` ``[K, H, W, 3]``,
    one box per frame; ``None`` = the whole frame."""
    crops = []
    for k, box in enumerate(boxes):
        if box is None:
            crops.append(frames_to_tensor(frames[k : k + 1], size))
        else:
            window, local_box = crop_window(frames[k], box)
            crops.append(crop_to_tensor(window[None], local_box, size))
    return torch.cat(crops)


def candidate_frames(joints: PersonJoints | None, num_frames: int) -> np.ndarray:
    """The frames a sampler may pick for a person: those where the person is present, or every
    frame of the clip when there are no joints (or the person is never seen)."""
    if joints is not None and joints.present.any():
        return joints.present_frames
    return np.arange(num_frames)


def crop_boxes(cfg: DataConfig, indices: np.ndarray, joints: PersonJoints | None, width: int,
               height: int) -> list[Box | None]:
    """The crop box of each frame of ``indices``: the person's keypoint box in that frame, else the
    box around all their keypoints, else ``None`` (the whole frame)."""
    margin = float(cfg.box_margin)
    union = None
    if joints is not None and joints.present.any():
        union = box_from_keypoints(joints.keypoints[joints.present], width, height, margin)
    boxes: list[Box | None] = []
    for t in np.asarray(indices).tolist():
        box = box_from_keypoints(joints.keypoints[t], width, height, margin) if joints is not None else None
        boxes.append(box if box is not None else union)
    return boxes


class BoLDDataset(Dataset):
    """``instances`` of ``bold`` as sample dicts (keys in ``docs/design.md``).

    ``context`` maps a clip (``Instance.video``) to its float32 ``[445]`` context vector.
    ``train`` switches random sampling on (a random still, jittered uniform frames).
    ``frames`` is where the pixels come from (default: decode the video on the fly).
    ``context_targets``: ``clip`` = ``sample["context"]`` is the clip's vector from ``context``;
    ``frame`` = the per-frame labels of the sampled frames (their mean for T frames), read from a
    prepared cache (``frames`` must serve every clip; ``context.targets=frame``).
    """

    def __init__(
        self,
        bold: BoLD,
        instances: Sequence[Instance] | str,
        cfg: DataConfig,
        train: bool,
        context: Mapping[str, np.ndarray] | None = None,
        seed: int = 0,
        frames: FrameSource | None = None,
        context_targets: Literal["clip", "frame"] = "clip",
    ) -> None:
        self.bold = bold
        self.frame_source: FrameSource = frames if frames is not None else VideoFrames()
        self.instances: list[Instance] = (
            bold.instances(instances) if isinstance(instances, str) else list(instances)
        )
        self.cfg = cfg
        self.train = bool(train)
        self.context = context
        if context_targets not in ("clip", "frame"):
            raise ConfigError(f"context_targets {context_targets!r}: choose clip or frame")
        self.context_targets = context_targets
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch`` (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Instances x ``data.stills_per_instance`` in training (index i is instance i mod N, each
        index its own random draw), the instances themselves in evaluation."""
        return len(self.instances) * (self.cfg.stills_per_instance if self.train else self.eval_copies)

    @property
    def eval_copies(self) -> int:
        """Evaluation samples per instance: ``data.eval_stills`` for stills, else 1."""
        return self.cfg.eval_stills if self.cfg.sampling == "still" else 1

    def generator(self, index: int) -> torch.Generator:
        return torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))

    # -- sampling --------------------------------------------------------------------------
    #: Bytes of joints each process (each DataLoader worker) keeps: a person needs only their
    #: present frames (~0.7 kB) when the sample reads no keypoint (no body crop, no skeleton), so
    #: the whole of BoLD (13k persons) fits; with keypoints (~37 kB a person) ~1,700 persons do.
    JOINTS_CACHE_BYTES = 64 << 20

    def _joints(self, inst: Instance, num_frames: int) -> PersonJoints | None:
        """The person's joints, read once per process (:data:`JOINTS_CACHE_BYTES`); None without a file."""
        cache = self.__dict__.get("_joints_cache")
        if cache is None:
            cache = self.__dict__["_joints_cache"] = BoundedCache(self.JOINTS_CACHE_BYTES)
        key = (inst.video, inst.person_id, int(num_frames))
        hit = cache.get(key)
        if hit is not None:
            return hit[0]
        path = self.bold.joints_path(inst.video)
        if not path.is_file():
            log.debug("%s: no joints file, using the whole clip and the whole frame", path)
            return cache.put(key, (None,), 0)[0]
        joints = load_person_joints(path, inst.person_id, num_frames=num_frames)
        if not (self.cfg.body_crop or self.cfg.skeleton):  # only the present frames are read
            joints = PersonJoints(joints.person_id, np.empty((joints.num_frames, 0, 3), np.float32),
                                  joints.present, joints.frame_offset)
        return cache.put(key, (joints,), joints.keypoints.nbytes + joints.present.nbytes)[0]

    def _frame_indices(self, candidates: np.ndarray, g: torch.Generator | None, copy: int = 0) -> np.ndarray:
        if self.cfg.sampling == "still":
            if g is not None:
                return candidates[[int(torch.randint(len(candidates), (1,), generator=g))]]
            if self.eval_copies > 1:  # frame-level scoring: still ``copy`` of k evenly spaced ones
                stills = spread(candidates, self.eval_copies, None)
                return stills[[min(copy, len(stills) - 1)]]
            return candidates[[len(candidates) // 2]]
        return spread(candidates, self.cfg.num_frames, g)

    def _skeleton(self, joints: PersonJoints | None, g: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        Ts = self.cfg.skeleton_frames
        skel = torch.zeros(Ts, NUM_JOINTS, 3)
        mask = torch.zeros(Ts, NUM_JOINTS, dtype=torch.bool)
        if joints is None or not joints.present.any():
            return skel, mask
        present = joints.present_frames
        # A contiguous stretch from first to last detection keeps the motion's timing.
        span = np.arange(present[0], present[-1] + 1)
        picked = spread(span, Ts, g)
        s, m = normalize_skeleton(joints.keypoints[picked])
        skel[: len(picked)] = s
        mask[: len(picked)] = m
        return skel, mask

    #: Training only: how many following instances to try when one cannot be read.
    FALLBACK_TRIES = 8

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not self.train:
            return self._sample(index)
        # A clip that opened at setup may still fail to decode (a file truncated inside its
        # frames): training logs it and takes the next instance instead of stopping the run.
        for k in range(min(self.FALLBACK_TRIES, len(self))):
            j = (index + k) % len(self)
            try:
                sample = self._sample(j)
            except (VideoDecodeError, BoLDFormatError) as exc:
                log.warning("skipped a sample of epoch %d: %s (using the next instance instead)",
                            self.epoch + 1, exc)
                continue
            sample["replaced"] = torch.tensor(k)  # failed reads before this one (> 0: this sample stands in)
            return sample
        raise VideoDecodeError(f"{self.FALLBACK_TRIES} instances in a row from index {index} cannot be "
                               "read; run 'beenet data check --deep' on the data directory")

    def _sample(self, index: int) -> dict[str, Any]:
        inst = self.instances[index % len(self.instances)]
        cfg = self.cfg
        g = self.generator(index) if self.train else None
        with self.frame_source.open(self.bold, inst.video) as clip:
            joints = self._joints(inst, clip.num_frames)
            indices = self._frame_indices(candidate_frames(joints, clip.num_frames), g,
                                          copy=index // len(self.instances))
            whole_u8 = clip.frames(indices, cfg.image_size)
            crops = None
            if cfg.body_crop:
                boxes = crop_boxes(cfg, indices, joints, clip.width, clip.height)
                crops = clip.crops(inst.person_id, indices, boxes, cfg.crop_size)
            frame_context = self._frame_context(clip, inst, indices) if self.context_targets == "frame" else None

        T = cfg.frames_per_sample
        k = len(indices)
        frame_mask = torch.zeros(T, dtype=torch.bool)
        frame_mask[:k] = True
        # uint8 [T, 3, S, S]: the model normalises on its device (media.transforms.normalize_uint8).
        whole = frames_to_uint8(whole_u8, cfg.image_size)
        sample: dict[str, Any] = {"frames": _pad(whole, T), "frame_mask": frame_mask}
        if crops is not None:
            sample["crops"] = _pad(crops, T)
        if cfg.skeleton:
            sample["skeleton"], sample["skeleton_mask"] = self._skeleton(joints, g)
        if frame_context is not None:
            sample["context"] = frame_context
        elif self.context is not None:
            sample["context"] = self._context(inst)
        # Copies: a sample must never share memory with the instance table it came from.
        sample["categories"] = (
            torch.from_numpy(np.array(inst.categories, dtype=np.float32))  # a copy: never the table's memory
            if inst.categories is not None else torch.zeros(NUM_CATEGORIES)
        )
        sample["vad"] = (
            torch.from_numpy(np.array(inst.vad, dtype=np.float32)) if inst.vad is not None else torch.zeros(NUM_VAD)
        )
        sample["labelled"] = inst.categories is not None
        sample["index"] = int(index)
        return sample

    def _frame_context(self, clip: ClipFrames, inst: Instance, indices: np.ndarray) -> torch.Tensor:
        """The per-frame target of the sampled ``indices`` (``context.targets=frame``)."""
        read = getattr(clip, "frame_context", None)
        if read is None:
            raise DataNotFoundError(
                f"clip {inst.video!r} is decoded on the fly, so it has no per-frame context labels "
                "(context.targets=frame); run 'beenet prepare' with this config first"
            )
        return torch.from_numpy(np.asarray(read(indices), dtype=np.float32).copy())

    def _context(self, inst: Instance) -> torch.Tensor:
        try:
            vec = self.context[inst.video]  # type: ignore[index]
        except KeyError:
            raise DataNotFoundError(
                f"no context vector for clip {inst.video!r}; recompute the context cache for this dataset"
            ) from None
        vec = np.asarray(vec, dtype=np.float32)
        if vec.shape != (CONTEXT_DIM,):
            raise ConfigError(
                f"context vector of clip {inst.video!r} has shape {vec.shape}, expected ({CONTEXT_DIM},)"
            )
        return torch.from_numpy(vec.copy())


def frame_level(targets: np.ndarray, rows: int) -> np.ndarray:
    """The per-instance ``targets`` ``[N, ...]`` repeated for ``rows`` = k x N evaluation rows
    (``data.eval_stills`` = k: row i is instance i mod N); the targets themselves when k = 1."""
    targets = np.asarray(targets)
    k, rest = divmod(rows, len(targets))
    if rest or k < 1:
        raise ValueError(f"{rows} evaluation rows for {len(targets)} instances: not a multiple")
    return targets if k == 1 else np.tile(targets, (k,) + (1,) * (targets.ndim - 1))


def available_instances(bold: BoLD, instances: Sequence[Instance], need_joints: bool = False) -> list[Instance]:
    """The usable instances, in order (:func:`beenet.data.usable.usable_instances`: the video opens,
    the joints file loads; with ``need_joints`` it must exist). What is left out is logged with
    its file and reason; ``beenet data check`` gives the same verdict."""
    return usable_instances(bold, instances, need_joints)[0]


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack a list of sample dicts into a batch dict (bools and ints become tensors)."""
    if not samples:
        raise ValueError("collate() got an empty batch")
    keys = list(samples[0].keys())
    for i, s in enumerate(samples[1:], start=1):
        if set(s.keys()) != set(keys):
            raise ValueError(f"sample {i} has keys {sorted(s)}, sample 0 has {sorted(keys)}")
    batch: dict[str, torch.Tensor] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(values[0], (bool, np.bool_)):
            batch[key] = torch.tensor([bool(v) for v in values], dtype=torch.bool)
        elif isinstance(values[0], (int, np.integer)):
            batch[key] = torch.tensor([int(v) for v in values], dtype=torch.long)
        else:
            batch[key] = torch.as_tensor(np.stack([np.asarray(v) for v in values]))
    mask = batch.get("frame_mask")
    if mask is not None and mask.ndim == 2 and not mask.any(dim=1).all():
        # Checked here, on the host (in the loader's worker), so that the model's pools need not
        # read it back from the device at every step (models.pooling.rows_checked_by_caller).
        rows = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"samples {rows[:10]} of the batch have no real frame (frame_mask all False)")
    return batch
