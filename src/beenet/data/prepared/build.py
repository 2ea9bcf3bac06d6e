"""``beenet prepare``: decode every clip once, in worker processes, into a prepared cache.

Each clip is decoded once: the frames any sampler can ask for, the person crops and the frames
the context experts label all come from that one decode. A clip already prepared for this
fingerprint (its sources unchanged in content, its file whole: size and CRC-32) is reused, so a
killed run continues where it stopped; a damaged one is named and made again. One prepare at a
time writes a cache (a lock in its folder); it first removes the temp files a killed run left.
A full disk stops the run at the first clip that meets it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet.context.base import CombinedContext, FrameExpertSource
from beenet.context.build import default_cache_dir, make_context_source
from beenet.context.cache import ContextCache
from beenet.context.config import ContextConfig
from beenet.data.bold import SPLITS, BoLD
from beenet.data.dataset import DataConfig
from beenet.data.prepared.folder import cache_folder, disk_full_error, save_manifest_after_full_disk
from beenet.data.prepared.format import (
    DEFAULT_STORAGE,
    PREPARED_FORMAT,
    STORAGES,
    cache_key,
    clip_path,
    clip_seen,
    clip_stamp,
    read_header,
    write_clip,
    write_context_table,
    write_manifest,
)
from beenet.data.prepared.integrity import DiskFullError, disk_full, verify_clip_file
from beenet.data.prepared.lookup import PrepareSettings, default_prepared_root, fingerprint, prepared_root
from beenet.data.prepared.stream import stream_clip
from beenet.device import resolve_device
from beenet.errors import BeenetError, ConfigError, DataNotFoundError
from beenet.progress import progress

log = logging.getLogger(__name__)


@dataclass
class PrepareResult:
    """What :func:`prepare` did."""

    path: Path
    clips: int
    reused: int
    prepared: int
    failed: list[tuple[str, str]]
    bytes: int
    seconds: float
    complete: bool


# --------------------------------------------------------------------------- one clip (in a worker)


_WORKER: dict[str, Any] = {}


def worker_device(device: str, index: int, gpus: int) -> str:
    """Where worker ``index`` of a prepare run puts its experts, with ``gpus`` GPUs visible.

    ``cuda`` without an index (what ``auto`` means on a GPU machine) is spread over the GPUs:
    worker i runs on ``cuda:(i % gpus)``. Anything else (``cpu``, an explicit ``cuda:N``) is kept.
    """
    if device == "cuda" and gpus > 0:
        return f"cuda:{index % gpus}"
    return device


def _worker_init(task: dict[str, Any], counter: Any = None) -> None:
    """Set up a worker; ``counter`` (a shared int) numbers the workers of a pool, for their GPU."""
    torch.set_num_threads(1)
    index = 0
    if counter is not None:
        with counter.get_lock():
            index = int(counter.value)
            counter.value += 1
    _WORKER.clear()
    _WORKER.update(task)
    _WORKER["index"] = index
    _WORKER["device"] = worker_device(task["device"], index, task["gpus"])
    if task["context"] is not None and task["context"].get("device") == "cuda":  # spread an explicit cuda too
        _WORKER["context"] = {**task["context"], "device": worker_device("cuda", index, task["gpus"])}
    _WORKER["bold"] = BoLD(task["root"])
    _WORKER["source"] = None


def _source() -> Any:
    if _WORKER["source"] is None and _WORKER["context"] is not None:
        cfg = ContextConfig.from_dict(_WORKER["context"])
        _WORKER["source"] = make_context_source(cfg, _WORKER["device"], _WORKER["root"])
    return _WORKER["source"]


def _parts(source: Any) -> list[Any]:
    """The frame experts of a source (one, or places and objects), [] for the sidecar."""
    if isinstance(source, CombinedContext):
        return list(source.parts)
    return [source] if isinstance(source, FrameExpertSource) else []


def _write_prepared_clip(video: str, persons: list[int]) -> tuple[int, tuple[int, int]]:
    """Decode one clip (as a stream: :mod:`.stream`), write its file; (stored frames, (file size, CRC-32))."""
    w = _WORKER
    bold: BoLD = w["bold"]
    dcfg = DataConfig(**w["data"])
    source = _source()
    clip = stream_clip(bold.video_path(video), bold.joints_path(video), video, persons, dcfg, w["storage"], source,
                       _parts(source), bool(w["frame_targets"]),
                       int((w["context"] or {}).get("label_every", 1)))
    header = {
        "format": PREPARED_FORMAT, "key": w["key"], "clip": video, "num_frames": clip.num_frames,
        "width": clip.width, "height": clip.height, "stamp": w["stamps"][video], "image_size": dcfg.image_size,
        "crop_size": dcfg.crop_size if dcfg.body_crop else None, "frames": clip.frames, "crops": clip.crops,
        "context": None if clip.context is None else [float(x) for x in clip.context],
        "context_parts": None if clip.parts is None else {k: [float(x) for x in v] for k, v in clip.parts.items()},
    }
    if clip.frame_context is not None:  # absent with clip targets: those files keep their bytes
        header["frame_context"] = clip.frame_context
    return len(clip.frames), write_clip(clip_path(Path(w["out"]), video), header, clip.blobs)


def _prepare_clip(job: tuple[str, list[int]]) -> dict[str, Any]:
    """Decode one clip once; write its file. Runs in a worker. Never raises: failures are returned
    (``disk_full`` when the disk or quota is full, which stops the run)."""
    video, persons = job
    try:
        frames, (size, crc) = _write_prepared_clip(video, persons)
        return {"video": video, "ok": True, "frames": frames, "bytes": size, "crc32": crc}
    except Exception as exc:  # noqa: BLE001 - a failed clip is listed and skipped, never fatal
        return {"video": video, "ok": False, "reason": f"{type(exc).__name__}: {exc}", "disk_full": disk_full(exc)}


# --------------------------------------------------------------------------- the whole cache


@dataclass
class _Plan:
    """The clips of a prepare run: who is in each, their sources' stamps, the reused and the to-do ones."""

    persons: dict[str, set[int]]
    stamps: dict[str, list[Any]]  # by content (clip_stamp): what a clip file is made from
    seen: dict[str, list[int]]  # (size, mtime) when stamped (clip_seen)
    entries: dict[str, dict[str, Any]]
    todo: list[str]
    failed: list[tuple[str, str]]
    reused: int = 0


def _split_instances(bold: BoLD, settings: PrepareSettings) -> list[Any]:
    out: list[Any] = []
    for split in SPLITS:
        try:
            out += bold.instances(split, protocol=settings.protocol, seed=settings.split_seed)
        except DataNotFoundError as exc:
            log.info("split %s: %s (skipped)", split, exc)
    return out


def _entry(plan: _Plan, video: str, frames: int, size: int, crc: int, header: dict[str, Any]) -> dict[str, Any]:
    return {"stamp": plan.stamps[video], "seen": plan.seen[video], "frames": frames, "bytes": size, "crc32": crc,
            "context": header.get("context"), "context_parts": header.get("context_parts")}


def _reusable(path: Path, key: str, stamp: list[Any]) -> tuple[dict[str, Any], int, int] | None:
    """(header, size, CRC-32) of the clip file at ``path`` when it was made for ``key`` from
    sources with ``stamp`` and is whole; None otherwise (a damaged file is named in a WARNING)."""
    if not path.is_file():
        return None
    why = verify_clip_file(path)
    try:
        header, _ = read_header(path) if why is None else ({}, 0)
    except BeenetError as exc:
        header, why = {}, str(exc)
    if why is not None:
        log.warning("prepare: %s is damaged (%s); decoding its clip again", path, why)
        return None
    if header.get("key") != key or header.get("stamp") != stamp:
        return None
    with open(path, "rb") as fh:
        fh.seek(-12, os.SEEK_END)
        crc = int.from_bytes(fh.read(4), "little")
    return header, path.stat().st_size, crc


def _plan(bold: BoLD, settings: PrepareSettings, out: Path, key: str) -> _Plan:
    persons: dict[str, set[int]] = {}
    for inst in _split_instances(bold, settings):
        persons.setdefault(inst.video, set()).add(int(inst.person_id))
    videos = sorted(persons)
    with ThreadPoolExecutor(max_workers=8) as pool:  # reading files: I/O, and zlib / hashlib drop the GIL
        seen = dict(zip(videos, pool.map(lambda v: clip_seen(bold, v), videos)))
        stamps = dict(zip(videos, pool.map(lambda v: clip_stamp(bold, v), videos)))
        plan = _Plan(persons, stamps, seen, {}, [], [])
        reuse = dict(zip(videos, pool.map(lambda v: _reusable(clip_path(out, v), key, stamps[v]), videos)))
    for v in videos:
        if stamps[v][0] < 0:
            plan.failed.append((str(bold.video_path(v)), "no video file"))
        elif reuse[v] is not None:
            header, size, crc = reuse[v]
            plan.entries[v] = _entry(plan, v, len(header["frames"]), size, crc, header)
        else:
            plan.todo.append(v)
    return plan


@contextmanager
def _results(task: dict[str, Any], jobs: list[tuple[str, list[int]]], workers: int) -> Iterator[Any]:
    """The outcome of each job, from ``workers`` spawned processes (or this one)."""
    if workers > 1 and len(jobs) > 1:
        ctx = mp.get_context("spawn")
        if task["gpus"] > 1 and task["device"] == "cuda":
            log.info("prepare: %d workers over %d GPUs (worker i on cuda:(i %% %d))", workers, task["gpus"],
                     task["gpus"])
        pool = ctx.Pool(workers, initializer=_worker_init, initargs=(task, ctx.Value("i", 0)))
        try:
            yield pool.imap_unordered(_prepare_clip, jobs)
        finally:
            pool.terminate()
            pool.join()
    else:
        _worker_init(task)
        yield map(_prepare_clip, jobs)


def _task(settings: PrepareSettings, bold: BoLD, out: Path, key: str, storage: str, plan: _Plan) -> dict[str, Any]:
    """What every worker needs to know (plain values: it is pickled to spawned processes)."""
    return {"root": str(bold.root), "out": str(out), "key": key, "storage": storage, "stamps": plan.stamps,
            "device": str(resolve_device(settings.device)),  # where experts run when context.device is auto
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,  # cuda is spread over them
            "data": {f: getattr(settings.data, f) for f in settings.data.__dataclass_fields__},
            "frame_targets": settings.frame_targets,
            "context": ({f: getattr(settings.context, f) for f in settings.context.__dataclass_fields__}
                        if settings.reads_context else None)}


def prepare(settings: PrepareSettings, data_dir: str | Path, out_root: str | Path | None = None, *,
            workers: int = 1, storage: str = DEFAULT_STORAGE, limit: int | None = None,
            show_progress: bool = True, rebuild: bool = False) -> PrepareResult:
    """Decode every clip of the protocol's splits once and store what training and evaluation read.

    A clip already prepared for this fingerprint (sources unchanged in content, file whole) is
    reused, so a killed run continues where it stopped; ``rebuild`` makes every clip again.
    ``limit`` stops after that many newly prepared clips (as a kill would, for tests). A clip
    that fails is listed in the manifest (file, reason) and skipped; a full disk stops the run
    (:class:`~.integrity.DiskFullError`).
    """
    if storage not in STORAGES:
        raise ConfigError(f"storage {storage!r}: choose one of {', '.join(STORAGES)}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit {limit}: give a number of clips >= 0")
    t0 = time.perf_counter()
    bold = BoLD(data_dir)
    fp = fingerprint(settings, data_dir, storage)
    key = cache_key(fp)
    base = Path(out_root) if out_root is not None else (prepared_root(settings.prepared_dir) or default_prepared_root())
    with cache_folder(base, key, rebuild) as out:
        plan = _plan(bold, settings, out, key)
        log.info("prepare %s -> %s: %d clips, %d reused from an earlier run, %d to decode (%d workers, %s storage)",
                 data_dir, out, len(plan.persons), len(plan.entries), len(plan.todo), workers, storage)
        try:
            _run(settings, bold, out, fp, storage, plan, workers, limit, show_progress)
        except DiskFullError:
            raise
        except OSError as exc:  # the manifest or context.npz met the full disk
            if not disk_full(exc):
                raise
            raise disk_full_error(out, None, len(plan.entries), str(exc)) from None
    total = sum(e["bytes"] for e in plan.entries.values())
    reused, failed = plan.reused, plan.failed
    complete = limit is None or len(plan.todo) <= limit
    result = PrepareResult(out, len(plan.persons), reused, len(plan.entries) - reused, failed, total,
                           time.perf_counter() - t0, complete)
    log.info("prepared %s: %d clips (%d reused, %d decoded now), %d failed, %.1f MB, %.1fs%s", out,
             len(plan.entries), reused, result.prepared, len(failed), total / 1e6, result.seconds,
             "" if complete else " (stopped before the end: run again to continue)")
    for path, reason in failed:
        log.warning("failed clip: %s: %s", path, reason)
    return result


def _run(settings: PrepareSettings, bold: BoLD, out: Path, fp: dict[str, Any], storage: str, plan: _Plan,
         workers: int, limit: int | None, show_progress: bool) -> None:
    """Decode the plan's clips (the first ``limit``), keeping the manifest up to date."""
    entries, failed = plan.entries, plan.failed
    plan.reused = len(entries)
    write_manifest(out, fp, entries, failed, complete=False)
    jobs = [(v, sorted(plan.persons[v])) for v in (plan.todo if limit is None else plan.todo[:limit])]
    with _results(_task(settings, bold, out, cache_key(fp), storage, plan), jobs, workers) as results:
        for done, res in enumerate(progress(results, total=len(jobs), desc="prepare", unit="clip",
                                            disable=None if show_progress else True), start=1):
            video = res["video"]
            if res["ok"]:
                header, _ = read_header(clip_path(out, video))
                entries[video] = _entry(plan, video, res["frames"], res["bytes"], res["crc32"], header)
            elif res.get("disk_full"):
                save_manifest_after_full_disk(out, fp, entries, failed)
                raise disk_full_error(out, video, len(entries), res["reason"])
            else:
                failed.append((str(bold.video_path(video)), res["reason"]))
                log.warning("prepare: %s failed (%s); skipped", bold.video_path(video), res["reason"])
            if done % 50 == 0:
                write_manifest(out, fp, entries, failed, complete=False)
    write_manifest(out, fp, entries, failed, complete=limit is None or len(plan.todo) <= limit)
    _write_context(out, settings, entries)


def _write_context(out: Path, settings: PrepareSettings, entries: dict[str, dict[str, Any]]) -> None:
    """``context.npz`` of the cache, and each expert's vectors into the context cache of
    ``context.cache_dir`` (so eval, predict and the ablation find them labelled too)."""
    have = {v: e for v, e in entries.items() if e.get("context") is not None}
    if not have:
        return
    write_context_table(out, {v: e["context"] for v, e in have.items()})
    if settings.context.source in ("sidecar", "none"):
        return
    cache = ContextCache(settings.context.cache_dir or default_cache_dir())
    for expert in _parts(make_context_source(settings.context, "cpu", None)):
        cache.put(expert, {v: np.asarray(have[v]["context_parts"][expert.name], np.float32) for v in sorted(have)
                           if (have[v].get("context_parts") or {}).get(expert.name) is not None})
