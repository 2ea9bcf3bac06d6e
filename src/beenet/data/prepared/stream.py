"""One clip of ``beenet prepare``, decoded as a stream: what the cache stores, frame by frame.

The frames a clip needs are decoded in order, one at a time, and each is used as soon as it is
decoded: resized to the training size, its person crops cut, and (with per-frame context
targets) queued for the experts, who label :data:`LABEL_BATCH` frames at a time, as
:meth:`~beenet.context.base.FrameExpertSource.label_rows` always did. A worker holds at most
that batch and the few frames the clip's context is labelled from at full resolution, never the
clip: at 720p its memory no longer grows with the clip's length (it held every needed frame of
the clip, and copies of them, before: about 1.5 GB a worker on a 167-frame clip).

The clip file's blobs keep their order (whole frames, then each person's crops, then the
per-frame context table) and their bytes: every step sees the very pixels the whole-clip decode
gave it (resizing, cropping and labelling are per frame, and the experts get the same batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beenet.context.base import evenly_spaced, join_context
from beenet.data.dataset import DataConfig, candidate_frames, crop_boxes, crops_of
from beenet.data.joints import load_person_joints
from beenet.data.prepared.format import crop_pixels, encode_frame
from beenet.labels import CONTEXT_DIM
from beenet.media.transforms import resize_uint8
from beenet.media.video import VideoReader

#: Decoder threads of a worker: one, as each worker has a core (FFmpeg's default, about one a core
#: per decoder, oversubscribes a node running a worker a core and holds frames in every thread).
DECODE_THREADS = 1
#: Frames an expert labels at once for the per-frame targets (the batch of ``label_rows``).
LABEL_BATCH = 16


@dataclass
class ClipPlan:
    """What to make of one clip's frames: which to store, crop, and show to each expert."""

    num_frames: int
    width: int
    height: int
    stored: list[int]  # frames any sampler can pick (ascending)
    crops: dict[int, dict[int, Any]]  # person -> {frame: crop box or None}, ascending frames
    expert_frames: dict[str, list[int]]  # expert name -> the frames its clip label is made from
    labelled: list[int]  # stored frames whose per-frame labels are kept (with frame targets)

    @property
    def needed(self) -> list[int]:
        return sorted(set(self.stored).union(*(set(i) for i in self.expert_frames.values())))


@dataclass
class ClipOutput:
    """A clip's blobs and where they go: what :func:`~.format.write_clip` and the header need."""

    num_frames: int
    width: int
    height: int
    frames: dict[str, list[int]]
    crops: dict[str, list[int]]
    context: np.ndarray | None
    parts: dict[str, np.ndarray] | None
    frame_context: dict[str, Any] | None
    blobs: list[bytes] = field(default_factory=list)


def plan_clip(joints_path: Path, persons: list[int], reader: VideoReader, dcfg: DataConfig,
              experts: list[Any], label_every: int) -> ClipPlan:
    """The frames to store (where a person is present), each person's crop boxes, the expert frames."""
    n, width, height = reader.num_frames, reader.width, reader.height
    joints = {p: (load_person_joints(joints_path, p, num_frames=n) if joints_path.is_file() else None)
              for p in persons}
    cand = {p: candidate_frames(joints[p], n) for p in persons}
    stored = sorted(set().union(*(set(c.tolist()) for c in cand.values())))
    crops: dict[int, dict[int, Any]] = {}
    if dcfg.body_crop:
        for p in persons:
            idx = cand[p]
            crops[p] = dict(zip(idx.tolist(), crop_boxes(dcfg, idx, joints[p], width, height)))
    expert_frames = {e.name: evenly_spaced(n, e.frames_per_clip) for e in experts}
    return ClipPlan(n, width, height, stored, crops, expert_frames, stored[::max(1, int(label_every))])


class _Labeller:
    """Each expert's per-frame labels of the frames fed to it, :data:`LABEL_BATCH` at a time (the
    frames are copied into one reused buffer: no second copy of the batch is made to stack it)."""

    def __init__(self, experts: list[Any]) -> None:
        self.experts = experts
        self.buffer: np.ndarray | None = None
        self.count = 0
        self.rows: dict[str, list[np.ndarray]] = {e.name: [] for e in experts}

    def feed(self, frame: np.ndarray) -> None:
        if self.buffer is None or self.buffer.shape[1:] != frame.shape:
            self.flush()
            self.buffer = np.empty((LABEL_BATCH, *frame.shape), dtype=frame.dtype)
        self.buffer[self.count] = frame
        self.count += 1
        if self.count == LABEL_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.count:
            return
        batch, self.count = self.buffer[: self.count], 0
        for e in self.experts:
            self.rows[e.name].append(e.label_rows(batch, batch=LABEL_BATCH))

    def table(self) -> np.ndarray:
        self.flush()
        self.buffer = None
        halves = {e.part: np.concatenate(self.rows[e.name]) for e in self.experts}
        return join_context(halves.get("places"), halves.get("objects"))


def stream_clip(path: Path, joints_path: Path, video: str, persons: list[int], dcfg: DataConfig, storage: str,
                source: Any, experts: list[Any], frame_targets: bool, label_every: int) -> ClipOutput:
    """Decode clip ``video`` (at ``path``) frame by frame into its cache blobs and context labels.

    ``source`` is the context source (None: the run reads no context), ``experts`` its frame
    experts ([] for the sidecar, which labels the clip from its key).
    """
    with VideoReader(path, threads=DECODE_THREADS) as reader:
        plan = plan_clip(joints_path, persons, reader, dcfg, experts, label_every)
        stored, labelled = set(plan.stored), set(plan.labelled)
        held_for = set().union(*(set(i) for i in plan.expert_frames.values()))
        label = frame_targets and source is not None and bool(experts)
        labeller = _Labeller(experts)
        whole: list[bytes] = []
        crop_blobs: dict[int, list[bytes]] = {p: [] for p in plan.crops}
        held: dict[int, np.ndarray] = {}
        for t in plan.needed:
            frame = reader.read([t])[0]
            if t in held_for:
                held[t] = frame
            if t in stored:
                whole.append(encode_frame(resize_uint8(frame[None], dcfg.image_size)[0].numpy(), storage))
                for p, boxes in plan.crops.items():
                    if t in boxes:
                        crop = crop_pixels(crops_of(frame[None], [boxes[t]], dcfg.crop_size))[0]
                        crop_blobs[p].append(encode_frame(crop, storage))
                if label and t in labelled:
                    labeller.feed(frame)
        table = labeller.table() if label else None
    out = ClipOutput(plan.num_frames, plan.width, plan.height, {}, {}, None, None, None)
    offset = 0

    def add(data: bytes) -> list[int]:
        nonlocal offset
        out.blobs.append(data)
        offset += len(data)
        return [offset - len(data), len(data)]

    out.frames = {str(t): add(b) for t, b in zip(plan.stored, whole)}
    out.crops = {f"{p}:{t}": add(b) for p, boxes in plan.crops.items() for t, b in zip(boxes, crop_blobs[p])}
    if source is not None:
        out.context, out.parts = _clip_context(source, experts, plan, held, video, path)
        if frame_targets:
            if table is None:  # the sidecar knows one vector per clip: every frame gets it
                table = np.repeat(out.context[None], len(plan.labelled), axis=0)
            if table.shape != (len(plan.labelled), CONTEXT_DIM) or not np.isfinite(table).all():
                raise ValueError(f"per-frame context of shape {table.shape} or non-finite values")
            blob = add(np.ascontiguousarray(table, dtype="<f2").tobytes())
            out.frame_context = {"frames": plan.labelled, "dtype": "float16", "blob": blob}
    return out


def _clip_context(source: Any, experts: list[Any], plan: ClipPlan, held: dict[int, np.ndarray], video: str,
                  path: Path) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """The clip's 445 vector and each expert's own vector (None for the sidecar)."""
    parts = None
    if experts:
        parts = {e.name: e.label_frames(np.stack([held[t] for t in plan.expert_frames[e.name]])) for e in experts}
        vecs = list(parts.values())
        context = vecs[0] if len(vecs) == 1 else join_context(vecs[0][:365], vecs[1][365:])
    else:
        context = np.asarray(source.label_clip(video, path), np.float32)
    if context.shape != (CONTEXT_DIM,) or not np.isfinite(context).all():
        raise ValueError(f"context source returned shape {context.shape} or non-finite values")
    return context, parts
