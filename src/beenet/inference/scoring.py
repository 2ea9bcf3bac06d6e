"""Pass 2 of a prediction: the model on every window of every person, and the model engine.

:func:`load_engine` loads a checkpoint (``.pt``, ``.onnx``, an exported folder) into an engine
(:mod:`beenet.inference.engines`) and its :class:`~beenet.artifacts.spec.ModelSpec`.
:class:`Scorer` decodes the frames the windows (:func:`~beenet.inference.windows.plan_windows`)
need once, in order, keeps only the frames a pending window samples, turns them into tensors
exactly as training did (:mod:`beenet.media.transforms`), and runs the model on batches of
(person, window) items as soon as their frames have passed; a frame is dropped as soon as no
pending window needs it. The mean outputs per window become the rows of the table
(:func:`~beenet.inference.results.window_table`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet.artifacts.checkpoint import (
    UNKNOWN_DATA,
    checkpoint_sha256,
    load_checkpoint,
    trained_on,
    weights_source,
)
from beenet.artifacts.pretrained import resolve_checkpoint
from beenet.artifacts.sizes import checked_model_config
from beenet.artifacts.spec import ModelSpec, spec_from_checkpoint, spec_from_onnx
from beenet.errors import BeenetError, ConfigError
from beenet.inference.engines import ENGINES, OnnxEngine, TorchEngine, check_outputs
from beenet.inference.onnx import export_onnx
from beenet.inference.timing import StageTimer
from beenet.inference.windows import Sampling, WindowPlan, WindowSchedule, context_frames
from beenet.labels import NUM_CATEGORIES, NUM_JOINTS
from beenet.media.transforms import crop_to_tensor, frames_to_tensor, normalize_skeleton
from beenet.media.video import prefetch
from beenet.models import build_model
from beenet.progress import progress


@dataclass
class LoadedModel:
    """A checkpoint ready to score: its spec, the engine, what it was trained on (kind synthetic /
    bold / unknown, fingerprint, data, protocol) and the temporary folder of an on-the-fly ONNX
    export (None: none; its owner removes it)."""

    spec: ModelSpec
    engine: Any
    trained_on: dict[str, Any]
    tmpdir: str | None = None


def load_engine(checkpoint: str | Path, engine: str, device: Any) -> LoadedModel:
    """Load ``checkpoint`` (a ``.pt``, an ``.onnx``, an exported folder, or a Hub id) into the
    ``engine`` (one of :data:`~beenet.inference.engines.ENGINES`) on ``device``; a ``.pt`` with
    ``engine="onnx"`` is exported to a temporary ONNX file first."""
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    # A .pt, an .onnx, an exported folder, or a Hub id (resolved to its local folder).
    path = resolve_checkpoint(checkpoint)
    if path.suffix.lower() == ".onnx" and path.is_file():
        if engine != "onnx":
            raise ConfigError(f"{path} is an ONNX file: use --engine onnx (or give the .pt checkpoint)")
        eng = OnnxEngine(path, str(device))
        try:
            data = trained_on({"trained_on": json.loads(eng.metadata.get("beenet.trained_on", ""))})
        except ValueError:  # exported before the record existed
            data = dict(UNKNOWN_DATA)
        return LoadedModel(spec_from_onnx(path, eng.metadata), eng, data)
    ckpt = load_checkpoint(path)
    data = trained_on(ckpt)
    spec = spec_from_checkpoint(ckpt, checkpoint_sha256(path), path)
    if engine == "onnx":
        tmpdir = tempfile.mkdtemp(prefix="beenet-onnx-")
        try:
            eng = OnnxEngine(export_onnx(path, Path(tmpdir) / "model.onnx"), str(device))
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        return LoadedModel(spec, eng, data, tmpdir)
    with one_torch_thread():
        cfg = checked_model_config(ckpt, path, weights_source(ckpt, path))  # sizes, shapes, NaN; pretrained off
        model = build_model(cfg)
        model.load_state_dict(ckpt["model"])  # keys, shapes and values checked above
    return LoadedModel(spec, TorchEngine(model, device), data)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread inside the block, its setting put back after (process-wide meanwhile).

    Checking and loading a checkpoint is hundreds of small memory-bound ops (NaN checks, init,
    copies); with two threads each op wakes torch's second OpenMP thread, which on a busy 2-core
    machine waits to be scheduled: ``Predictor`` took 1.0-1.9 s with two threads and 0.27-0.58 s
    with one there, the model's values the same (docs/predict.md, "Start-up")."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


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

    def __init__(self, source: Any, plans: list[WindowPlan], timer: StageTimer) -> None:
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

    def __init__(self, engine: Any, num_windows: int, batch_size: int, streams: bool, timer: StageTimer,
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


@dataclass
class Scorer:
    """Pass 2 with one model: ``engine`` (``spec`` says its inputs), the windows sampled as
    ``sampling`` says, ``batch_size`` items a call, the per-stream outputs kept with ``streams``,
    ``context`` (an object with ``label_frames``) for models that read expert context, else None.
    ``model`` names the checkpoint in error messages."""

    spec: ModelSpec
    engine: Any
    sampling: Sampling
    batch_size: int
    streams: bool
    context: Any = None
    model: str | Path = "model"
    show_progress: bool | None = None

    def score(self, reader: Any, plans: list[WindowPlan], timer: StageTimer,
              stats: dict[str, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Decode the frames the windows need once, in order, and score each window as soon as its
        last frame has passed; returns the mean outputs per window (and per stream)."""
        context = _SpanContext(self.context, plans, timer) if self.context is not None else None
        schedule = WindowSchedule.for_plans(plans, context.frames_per_span if context else 0)
        frames = _WindowFrames(plans, self.spec.image_size, self.spec.crop_size, "crops" in self.spec.input_names)
        batches = _Batches(self.engine, len(plans), self.batch_size, self.streams, timer, self.model, reader.path)
        first, last = schedule.first_frame, schedule.last_frame
        bar = progress(total=last - first + 1, desc=f"model {reader.path.name}",
                       disable=None if self.show_progress is None else not self.show_progress)
        max_held = 0
        decoded = timer.timed_iter(prefetch(reader.iter_frames(first, last + 1)), "decode2")
        with closing(decoded):  # closed also when scoring raises (see people.track_people)
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
                    items = self.items(plans[pi], frames.pop(pi), context.vector(plans[pi]) if context else None)
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

    def items(self, p: WindowPlan, slots: list[list[list[torch.Tensor]]],
              context: np.ndarray | None) -> list[dict[str, torch.Tensor]]:
        """The model inputs of window ``p``: one item per sample (zero-padded to T frames)."""
        T, S, C = self.sampling.num_frames, self.spec.image_size, self.spec.crop_size
        names = self.spec.input_names
        skel = skel_mask = None
        if "skeleton" in names:
            skel, skel_mask = self.skeleton(p)
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

    def skeleton(self, p: WindowPlan) -> tuple[torch.Tensor, torch.Tensor]:
        """The skeleton input of window ``p`` (normalised, zero-padded) and its mask."""
        Ts = self.sampling.skeleton_frames
        skel = torch.zeros(Ts, NUM_JOINTS, 3)
        mask = torch.zeros(Ts, NUM_JOINTS, dtype=torch.bool)
        if p.skeleton is not None and len(p.skeleton):
            s, m = normalize_skeleton(p.skeleton)
            skel[: len(s)] = s
            mask[: len(m)] = m
        return skel, mask
