"""Pass 2 of a prediction: the model on every window of every person, and the model engine.

:func:`load_engine` loads a checkpoint (``.pt``, ``.onnx``, an exported folder) into an engine
(:mod:`beenet.inference.engines`) and its :class:`~beenet.artifacts.spec.ModelSpec`; on the CPU
the default (``auto``) runs a ``.pt`` as its ONNX export, cached, and then loads no torch.
:class:`Scorer` decodes the frames the windows (:func:`~beenet.inference.windows.plan_windows`)
need once, in order, keeps only the frames a pending window samples, turns them into the model's
inputs as training did (with the torch engine, training's own transforms,
:mod:`beenet.media.transforms`; with ONNX Runtime, their numpy twins, :mod:`beenet.media.arrays`),
and runs the model on batches of
(person, window) items as soon as their frames have passed; a frame is dropped as soon as no
pending window needs it. The mean outputs per window become the rows of the table
(:func:`~beenet.inference.results.window_table`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from beenet.artifacts.pretrained import checkpoint_sha256, resolve_checkpoint
from beenet.artifacts.provenance import UNKNOWN_DATA, trained_on
from beenet.artifacts.spec import ModelSpec, spec_from_checkpoint, spec_from_onnx
from beenet.errors import BeenetError, CheckpointError, ConfigError
from beenet.inference.engines import ENGINES, OnnxEngine, TorchEngine, check_outputs
from beenet.inference.exported import cached_export
from beenet.inference.timing import StageTimer
from beenet.inference.windows import Sampling, WindowPlan, WindowSchedule, context_frames
from beenet.labels import NUM_CATEGORIES, NUM_JOINTS
from beenet.media.arrays import crop_array, frames_array, skeleton_arrays
from beenet.media.video import prefetch
from beenet.progress import progress

log = logging.getLogger(__name__)


#: The engines :func:`load_engine` takes: ``auto`` (ONNX Runtime on the CPU, PyTorch on a GPU; see
#: :func:`onnx_suits`) and each of :data:`~beenet.inference.engines.ENGINES`.
ENGINE_CHOICES: tuple[str, ...] = ("auto", *ENGINES)


@dataclass
class LoadedModel:
    """A checkpoint ready to score: its spec, the engine, what it was trained on (kind synthetic /
    bold / unknown, fingerprint, data, protocol), the temporary folder of an ONNX export that could
    not be cached (None: none; its owner removes it) and the device it runs on (a ``torch.device``
    for the torch engine, the device's name for ONNX Runtime)."""

    spec: ModelSpec
    engine: Any
    trained_on: dict[str, Any]
    tmpdir: str | None = None
    device: Any = "cpu"


def gpu_visible() -> bool:
    """Whether this machine shows an NVIDIA GPU, asked without torch (its driver's device node or
    tool): where none is, ``device="auto"`` is the CPU for torch too."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def onnx_suits(device: Any) -> bool:
    """Whether ``engine="auto"`` runs ONNX Runtime on ``device``: on the CPU (``cpu``, or ``auto``
    with no GPU to be seen), where it needs no torch (2x faster start-up) and runs the model at
    least as fast; a GPU keeps PyTorch (onnxruntime is the CPU build)."""
    name = str(device).strip()
    return name == "cpu" or (name == "auto" and not gpu_visible())


def load_engine(checkpoint: str | Path, engine: str, device: Any = "auto") -> LoadedModel:
    """Load ``checkpoint`` (a ``.pt``, an ``.onnx``, an exported folder, or a Hub id) into the
    ``engine`` (one of :data:`ENGINE_CHOICES`) on ``device``. A ``.pt`` on ONNX Runtime runs its
    export, made once and kept in the cache (:mod:`beenet.inference.exported`); with ``auto`` an
    export that fails (not a damaged checkpoint: that is an error either way) falls back to torch,
    with a warning."""
    if engine not in ENGINE_CHOICES:
        raise ConfigError(f"engine {engine!r}: choose one of {', '.join(ENGINE_CHOICES)}")
    # A .pt, an .onnx, an exported folder, or a Hub id (resolved to its local folder).
    path = resolve_checkpoint(checkpoint)
    if path.suffix.lower() == ".onnx" and path.is_file():
        if engine == "torch":
            raise ConfigError(f"{path} is an ONNX file: use --engine onnx (or auto), or give the .pt checkpoint")
        return _onnx_model(path, _onnx_device(device))
    if engine == "onnx" or (engine == "auto" and onnx_suits(device)):
        try:
            return _exported_model(path, _onnx_device(device))
        except CheckpointError:
            raise
        except Exception as exc:
            if engine == "onnx":
                raise
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("%s: no ONNX export (%s: %s); running the model on torch", path, type(exc).__name__, reason)
    return _torch_model(path, device)


def _onnx_device(device: Any) -> str:
    name = str(device).strip()
    return "cpu" if name == "auto" else name


def _onnx_model(path: Path, device: str, tmpdir: str | None = None) -> LoadedModel:
    eng = OnnxEngine(path, device)
    try:
        data = trained_on({"trained_on": json.loads(eng.metadata.get("beenet.trained_on", ""))})
    except ValueError:  # exported before the record existed
        data = dict(UNKNOWN_DATA)
    return LoadedModel(spec_from_onnx(path, eng.metadata), eng, data, tmpdir, device)


def _exported_model(path: Path, device: str) -> LoadedModel:
    """The ONNX engine on the cached export of the checkpoint ``path`` (made first when missing,
    made again once when the cached file cannot be loaded)."""
    onnx_path, tmpdir = cached_export(path)
    try:
        return _onnx_model(onnx_path, device, tmpdir)
    except CheckpointError as exc:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        log.warning("the cached ONNX export %s cannot be used (%s); exporting it again", onnx_path, exc)
    onnx_path, tmpdir = cached_export(path, fresh=True)
    return _onnx_model(onnx_path, device, tmpdir)


def _torch_model(path: Path, device: Any) -> LoadedModel:
    """The torch engine on the checkpoint ``path``, checked before the model is built."""
    from beenet.artifacts.checkpoint import load_checkpoint, weights_source  # lazy: torch, for this engine only
    from beenet.artifacts.sizes import checked_model_config  # lazy: torch, for this engine only
    from beenet.device import resolve_device  # lazy: torch, for this engine only
    from beenet.models import build_model  # lazy: torch, for this engine only

    dev = resolve_device(device)
    ckpt = load_checkpoint(path)
    data = trained_on(ckpt)
    spec = spec_from_checkpoint(ckpt, checkpoint_sha256(path), path)
    with one_torch_thread():
        cfg = checked_model_config(ckpt, path, weights_source(ckpt, path))  # sizes, shapes, NaN; pretrained off
        model = build_model(cfg)
        model.load_state_dict(ckpt["model"])  # keys, shapes and values checked above
    return LoadedModel(spec, TorchEngine(model, dev), data, None, dev)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread inside the block, its setting put back after (process-wide meanwhile).

    Checking and loading a checkpoint is hundreds of small memory-bound ops (NaN checks, init,
    copies); with two threads each op wakes torch's second OpenMP thread, which on a busy 2-core
    machine waits to be scheduled: ``Predictor`` took 1.0-1.9 s with two threads and 0.27-0.58 s
    with one there, the model's values the same (docs/predict.md, "Start-up")."""
    import torch  # lazy: loading a .pt needs torch, an exported model does not

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _preprocessing(exact: bool) -> tuple[Any, Any]:
    """``(frame_array, crop_array)``: frame ``[H, W, 3]`` uint8 -> float32 ``[3, S, S]``. ``exact``:
    training's torch transforms, bit for bit (the torch engine has torch loaded anyway); else
    :mod:`beenet.media.arrays` (numpy and Pillow: no torch; at most one grey level apart)."""
    if not exact:
        return frames_array, crop_array
    from beenet.media.transforms import crop_to_tensor, frames_to_tensor  # lazy: torch, loaded by the torch engine

    return (lambda frame, size: frames_to_tensor(frame[None], size)[0].numpy(),
            lambda frame, box, size: crop_to_tensor(frame[None], box, size)[0].numpy())


class _WindowFrames:
    """The frame tensors (and body crops) of each window's samples, kept from when a frame passes
    until the window is assembled: ``slots[window][sample] = [frames, crops]``."""

    def __init__(self, plans: list[WindowPlan], image_size: int, crop_size: int, crops: bool,
                 exact: bool = False) -> None:
        self.plans, self.image_size, self.crop_size, self.crops = plans, image_size, crop_size, crops
        self.frame_array, self.crop_array = _preprocessing(exact)
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
        full = self.frame_array(frame, self.image_size)
        for pi, si, pos in wanted:
            p = self.plans[pi]
            slots = self.slots.setdefault(pi, [[[None] * len(s), [None] * len(s)] for s in p.samples])
            slots[si][0][pos] = full
            if self.crops:
                slots[si][1][pos] = self.crop_array(frame, p.crop_boxes.get(idx) or p.box, self.crop_size)

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
        self.ready: list[tuple[int, dict[str, np.ndarray]]] = []
        self.sums = np.zeros((num_windows, NUM_CATEGORIES + 3), dtype=np.float64)
        self.counts = np.zeros(num_windows, dtype=np.int64)
        self.stream_sums: dict[str, np.ndarray] = {}

    @property
    def pending(self) -> int:
        return len(self.ready)

    @property
    def unscored(self) -> int:
        return int((self.counts == 0).sum())

    def add(self, window: int, items: list[dict[str, np.ndarray]]) -> None:
        """Queue a window's items (kept together in one batch); run the batch once it is full."""
        self.ready.extend((window, item) for item in items)
        if len(self.ready) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.ready:
            return
        batch = {k: np.stack([item[k] for _, item in self.ready]) for k in self.ready[0][1]}
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
        frames = _WindowFrames(plans, self.spec.image_size, self.spec.crop_size, "crops" in self.spec.input_names,
                               exact=getattr(self.engine, "name", "") == "torch")
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

    def items(self, p: WindowPlan, slots: list[list[list[np.ndarray]]],
              context: np.ndarray | None) -> list[dict[str, np.ndarray]]:
        """The model inputs of window ``p``: one item per sample (zero-padded to T frames)."""
        T, S, C = self.sampling.num_frames, self.spec.image_size, self.spec.crop_size
        names = self.spec.input_names
        skel = skel_mask = None
        if "skeleton" in names:
            skel, skel_mask = self.skeleton(p)
        items = []
        for (full, crops), sample in zip(slots, p.samples):
            k = len(sample)
            item: dict[str, np.ndarray] = {
                "frames": np.zeros((T, 3, S, S), np.float32), "frame_mask": np.zeros(T, dtype=bool)}
            item["frames"][:k] = np.stack(full)
            item["frame_mask"][:k] = True
            if "crops" in names:
                item["crops"] = np.zeros((T, 3, C, C), np.float32)
                item["crops"][:k] = np.stack(crops)
            if skel is not None:
                item["skeleton"], item["skeleton_mask"] = skel, skel_mask
            if context is not None:
                item["context"] = context
            items.append(item)
        return items

    def skeleton(self, p: WindowPlan) -> tuple[np.ndarray, np.ndarray]:
        """The skeleton input of window ``p`` (normalised, zero-padded) and its mask."""
        Ts = self.sampling.skeleton_frames
        skel = np.zeros((Ts, NUM_JOINTS, 3), np.float32)
        mask = np.zeros((Ts, NUM_JOINTS), dtype=bool)
        if p.skeleton is not None and len(p.skeleton):
            s, m = skeleton_arrays(p.skeleton)
            skel[: len(s)] = s
            mask[: len(m)] = m
        return skel, mask
