"""Predict on a batch of inputs into a folder, as ``beenet predict`` does:
:func:`predict_many` (also :meth:`Predictor.predict_many <beenet.inference.predictor.Predictor.predict_many>`).

Inputs (videos, folders, joints files: :func:`~beenet.inference.inputs.resolve_inputs`) become
jobs, each with the stem its files get in ``out``; under torchrun (``WORLD_SIZE``, ``RANK``) each
rank takes every WORLD_SIZE-th video (:func:`~beenet.inference.inputs.shard`). A video whose
outputs all exist is skipped (unless ``overwrite``); a repeated input is done once. Each video's
files (:func:`~beenet.inference.results.write_outputs`) are written to a hidden staging folder
inside ``out``, then moved into place, so a video that fails leaves neither partial files nor a
half-replaced earlier result; a failure of one video of any kind is reported with its file and
the others are still processed. ``predict_summary.json`` (one per rank under torchrun) is
rewritten atomically after every input, with ``status`` running, done or interrupted; Ctrl-C
removes the staging folders, saves the summary and raises :class:`BatchInterrupted`.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from beenet.atomic import to_builtins, write_json
from beenet.errors import BeenetError, ConfigError, caused_by_interrupt
from beenet.inference.inputs import Job, resolve_inputs, shard
from beenet.inference.results import VideoResult, output_endings, write_outputs
from beenet.inference.columns import FORMATS

log = logging.getLogger(__name__)

SUMMARY = "predict_summary.json"
#: Hidden folders in --out where one video's files are written before they are moved into place.
STAGE_PREFIX = ".beenet-predict-"
#: How to get each table writer that is not always installed.
WRITER_INSTALL: dict[str, tuple[str, str]] = {"parquet": ("pyarrow.parquet", "pip install 'beenet[parquet]'")}


class SetupError(BeenetError):
    """Something a batch needs is missing (a writer, a folder, a keypoints file): found once,
    before any work (``beenet predict`` exits 2 with this one message)."""


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, raised once the staging folders are gone and the summary says
    ``interrupted``; ``run`` is what was done."""

    def __init__(self, run: BatchRun) -> None:
        super().__init__()
        self.run = run


class Predicts(Protocol):
    """What a batch needs of a :class:`~beenet.inference.predictor.Predictor`."""

    checkpoint: Path

    @property
    def metadata(self) -> dict[str, Any]: ...

    def check_pose(self) -> Any: ...

    def take_synthetic_warning(self, video: str | Path) -> str | None: ...

    def run(self, video: str | Path, keypoints: Any = None, name: str | None = None) -> VideoResult: ...


class Report:
    """Where a batch says what it does: one line per input and a last line (``info``), failures
    and the interrupt (``error``), a summary that cannot be written (``warning``). This one logs
    them (:func:`predict_many`'s default); :class:`ConsoleReport` prints them."""

    def info(self, text: str) -> None:
        log.info("%s", text)

    def error(self, text: str) -> None:
        log.warning("%s", text)

    def warning(self, text: str) -> None:
        log.warning("%s", text)


class ConsoleReport(Report):
    """Prints as ``beenet predict`` does: ``info`` on stdout, ``error`` and ``warning`` on stderr."""

    def info(self, text: str) -> None:
        print(text)

    def error(self, text: str) -> None:
        print(text, file=sys.stderr)

    def warning(self, text: str) -> None:
        print(f"beenet predict: warning: {text}", file=sys.stderr)


# -- set-up -------------------------------------------------------------------------------------
def parse_formats(text: str) -> list[str]:
    """``--format``: table formats, comma separated (each once, in order); ConfigError otherwise."""
    fmts = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if not fmts or bad:
        raise ConfigError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma separated)")
    return list(dict.fromkeys(fmts))


def check_writers(formats: list[str]) -> None:
    """Every --format can be written here (the optional ones need their package)."""
    for fmt in formats:
        if fmt not in WRITER_INSTALL:
            continue
        module, fix = WRITER_INSTALL[fmt]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SetupError(f"--format {fmt} needs the {module.split('.')[0]} package, which is not installed "
                             f"({exc}); install it: {fix}  (or leave {fmt} out of --format)") from None


def check_out(out: Path) -> str | None:
    """None when ``out`` can be created and written, else why not (found once, before any work)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=".beenet-probe-", dir=out))
        try:
            (probe / "probe").write_bytes(b"\n")
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` under torchrun (``RANK`` / ``WORLD_SIZE``), else ``(0, 1)``."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0, 1
    if world < 1 or not 0 <= rank < world:
        return 0, 1
    return rank, world


def summary_name(rank: int, world: int) -> str:
    """``predict_summary.json``; under torchrun each rank writes its own,
    ``predict_summary.rank<R>-of-<W>.json`` (no rank waits for another)."""
    return SUMMARY if world == 1 else f"predict_summary.rank{rank}-of-{world}.json"


def ranks_done(out: Path, world: int) -> bool:
    """Whether every rank's summary in ``out`` says ``done`` (each rank saves its own before it
    asks, so of ranks finishing together the last to ask sees them all)."""
    for r in range(world):
        try:
            if json.loads((out / summary_name(r, world)).read_text(encoding="utf-8")).get("status") != "done":
                return False
        except (OSError, ValueError):
            return False
    return True


@dataclass
class Batch:
    """The work of one process: its ``jobs`` (this rank's share of ``all_jobs``), where they go
    (``out``; ``root`` resolved) and what each video writes."""

    out: Path
    root: Path
    formats: list[str]
    per_frame: bool
    video: bool
    keypoints: bool
    overwrite: bool
    all_jobs: list[Job]
    jobs: list[Job]
    rank: int = 0
    world: int = 1

    @property
    def endings(self) -> list[str]:
        return output_endings(self.formats, self.video, self.per_frame, self.keypoints)

    @property
    def summary_path(self) -> Path:
        return self.out / summary_name(self.rank, self.world)

    def finished(self, job: Job) -> bool:
        """Whether every output of ``job`` exists in ``out`` already."""
        return all((self.out / f"{job.stem}{e}").is_file() for e in self.endings)


def plan_batch(inputs: Sequence[str | os.PathLike[str]], out: Path, formats: list[str], *,
               per_frame: bool = False, video: bool = False, save_keypoints: bool = False,
               overwrite: bool = False, keypoints: str | os.PathLike[str] | None = None) -> Batch:
    """The jobs of ``inputs`` for this rank, each with its stem in ``out`` (created); staging
    folders left by a killed predict are removed. ``keypoints``: precomputed joints for the one
    video given. Raises :class:`SetupError` for an ``out`` that cannot be written and keypoints
    that do not fit the inputs."""
    why = check_out(out)
    if why is not None:
        raise SetupError(f"--out {out}: cannot create or write this folder ({why}); choose another --out")
    root = out.resolve()
    clear_stale_stages(out)
    endings = output_endings(formats, video, per_frame, save_keypoints)
    rank, world = distributed_rank()
    all_jobs = resolve_inputs(list(inputs), outputs=endings, reserved=(SUMMARY, summary_name(rank, world)))
    if keypoints is not None:
        runnable = [j for j in all_jobs if j.error is None and j.duplicate_of is None]
        if len(all_jobs) != 1 or len(runnable) != 1:
            raise SetupError(f"--keypoints {keypoints} belongs to one video, but the inputs hold "
                             f"{len(all_jobs)}; give one video with its keypoints")
        if not Path(keypoints).exists():
            raise SetupError(f"--keypoints {keypoints}: no such file or folder")
        runnable[0].keypoints = Path(keypoints)
    return Batch(out, root, list(formats), per_frame, video, save_keypoints, overwrite, all_jobs,
                 shard(all_jobs, rank, world), rank, world)


def needs_pose(jobs: Sequence[Job]) -> bool:
    """Whether some job runs the pose backend (a video to do, without precomputed joints)."""
    return any(j.error is None and j.duplicate_of is None and j.keypoints is None for j in jobs)


# -- staging ------------------------------------------------------------------------------------
def clear_own_stages(out: Path) -> None:
    """Remove this process's staging folders (an interrupt can land between making one and the
    ``finally`` that removes it, or inside that removal)."""
    for d in out.glob(f"{STAGE_PREFIX}{os.getpid()}-*.tmp"):
        shutil.rmtree(d, ignore_errors=True)


def clear_stale_stages(out: Path) -> None:
    """Remove staging folders left by a predict that was killed (its process is gone)."""
    for d in out.glob(f"{STAGE_PREFIX}*.tmp"):
        try:
            pid = int(d.name[len(STAGE_PREFIX):].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def inside(root: Path, path: Path) -> bool:
    """Whether ``path`` (links followed) lies inside the resolved folder ``root``."""
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def publish(stage: Path, out: Path, root: Path) -> list[Path]:
    """Move every file written under ``stage`` to the same place under ``out`` (each checked to
    lie inside ``out``); returns the final paths."""
    moved = []
    for f in sorted(p for p in stage.rglob("*") if p.is_file()):
        dest = out / f.relative_to(stage)
        if not inside(root, dest.parent) or not inside(root, dest):
            raise OSError(f"refusing to write {dest}: it lies outside --out {out} (a symbolic link?)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
        moved.append(dest)
    return moved


def predict_job(predictor: Predicts, batch: Batch, job: Job) -> tuple[VideoResult, list[Path]]:
    """Predict on ``job`` and write its files into a staging folder inside ``batch.out``, then
    move them into place; returns the result and the files' final paths."""
    out, root = batch.out, batch.root
    stage: Path | None = None
    try:
        outside = [e for e in batch.endings if not inside(root, out / f"{job.stem}{e}")]
        if outside:
            raise BeenetError(f"{out / (job.stem + outside[0])} would lie outside --out {out} "
                              "(a symbolic link inside it?); nothing written for this video")
        # Everything is written to a hidden folder inside --out, then moved into place: a
        # video that fails leaves neither partial files nor a half-replaced earlier result.
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", suffix=".tmp", dir=out))
        (stage / job.stem).parent.mkdir(parents=True, exist_ok=True)
        result = predictor.run(job.video, job.keypoints, name=job.name)
        write_outputs(result, stage, job.stem, batch.formats, per_frame=batch.per_frame,
                      keypoints=batch.keypoints, video=batch.video, title=job.name)
        return result, publish(stage, out, root)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


# -- the summary and the run --------------------------------------------------------------------
def describe_failure(exc: BaseException) -> str:
    """One line for a per-video failure of any kind."""
    if isinstance(exc, BeenetError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError); try a smaller --batch-size, a shorter --window or --device cpu"
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc} (unexpected; run 'beenet -v predict ...' for the traceback and report it)"


class Summary:
    """``predict_summary.json``, rewritten atomically after every input, so a batch that is
    interrupted (or killed) still has one; ``status`` is running, done or interrupted. A write
    that fails is told to ``warn`` once (until one succeeds) and kept in ``write_error``."""

    def __init__(self, path: Path, checkpoint: str, metadata: dict[str, object],
                 warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.doc: dict[str, object] = {"checkpoint": checkpoint, **metadata, "status": "running",
                                       "videos": [], "failures": [], "duplicates": [],
                                       "skipped": []}
        self.write_error: str | None = None
        self.warn = warn or Report().warning

    def add(self, key: str, entry: dict[str, object]) -> None:
        self.doc[key].append(entry)  # type: ignore[union-attr]
        self.save()

    def save(self, status: str | None = None) -> None:
        if status is not None:
            self.doc["status"] = status
        try:
            write_json(self.path, self.doc)
        except OSError as exc:
            if self.write_error is None:
                self.warn(f"cannot write {self.path}: {exc.strerror or exc}")
            self.write_error = exc.strerror or str(exc)
        else:
            self.write_error = None


def stage_seconds(timings: dict[str, float], seconds: float) -> dict[str, float]:
    """Where a video's ``seconds`` went, as the main thread waited on each stage (pass 1's
    ``decode``, ``shots``, ``pose``, ``track``; pass 2's; ``total`` for the prediction) and
    ``outputs``: the files written after it (the rest of ``seconds``)."""
    out = {k: round(float(v), 3) for k, v in timings.items()}
    if "total" in timings:
        out["outputs"] = round(max(0.0, seconds - float(timings["total"])), 3)
    return out


@dataclass
class BatchRun:
    """What a batch did: its summary and the counts of inputs done, failed, repeated, skipped."""

    batch: Batch
    summary: Summary
    report: Report = field(default_factory=Report)
    done: int = 0
    failed: int = 0
    repeated: int = 0
    skipped: int = 0

    def fail(self, source: str, message: str) -> None:
        self.failed += 1
        self.report.error(f"FAILED {source}: {message}")
        self.summary.add("failures", {"input": source, "error": message})

    def passed(self, job: Job) -> bool:
        """Whether ``job`` is not to be done (failed to resolve, repeated, or finished before),
        saying so; else False."""
        if job.error is not None:
            self.fail(job.source, job.error)
            return True
        if job.duplicate_of is not None:
            self.repeated += 1
            self.report.info(f"skipped {job.source}: the same video as {job.duplicate_of.source} (done once)")
            self.summary.add("duplicates", {"input": job.source, "same_as": job.duplicate_of.source})
            return True
        if not self.batch.overwrite and self.batch.finished(job):
            self.skipped += 1
            self.report.info(f"skipped {job.source}: its outputs exist in {self.batch.out} (--overwrite to redo)")
            self.summary.add("skipped", {"input": job.source, "video": str(job.video),
                                         "outputs": [f"{job.stem}{e}" for e in self.batch.endings]})
            return True
        return False

    def record(self, job: Job, result: VideoResult, written: list[Path], seconds: float) -> None:
        """A video done: its summary entry and its line."""
        duration = result.num_frames / result.fps if result.fps else 0.0
        self.done += 1
        entry: dict[str, object] = {
            "video": str(job.video), "input": job.source,
            "outputs": [p.relative_to(self.batch.out).as_posix() for p in written],
            "people": result.stats.get("people", 0), "windows": len(result.table),
            "posed_frames": result.stats.get("posed_frames"), "frames": result.num_frames,
            "seconds": round(seconds, 3),
            "realtime_factor": round(seconds / duration, 3) if duration else None,
            "stage_seconds": stage_seconds(result.timings, seconds)}
        if result.note:
            entry["note"] = result.note
        self.summary.add("videos", entry)
        note = f" (note: {result.note})" if result.note else ""
        people = result.stats.get("people", 0)
        posed = (f" (posed {result.stats['posed_frames']} of {result.num_frames} frames)"
                 if "posed_frames" in result.stats else "")
        self.report.info(f"ok {job.video}: {people} {'person' if people == 1 else 'people'}{posed}, "
                         f"{len(result.table)} windows, {seconds:.1f} s for {duration:.1f} s of video{note} "
                         f"-> {', '.join(p.name for p in written)}")


def _do(predictor: Predicts, run: BatchRun, job: Job) -> None:
    """One input of the batch: skipped, failed, or predicted and written."""
    if run.passed(job):
        return
    t0 = time.perf_counter()
    try:
        result, written = predict_job(predictor, run.batch, job)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if caused_by_interrupt(exc):
            raise KeyboardInterrupt() from exc
        log.debug("%s failed", job.source, exc_info=True)
        run.fail(job.source, describe_failure(exc))
        return
    run.record(job, result, written, time.perf_counter() - t0)


def run_batch(predictor: Predicts, batch: Batch, report: Report | None = None,
              checkpoint: str | None = None) -> BatchRun:
    """Do every job of ``batch`` (see the module); ``checkpoint``: the summary's (default: the
    predictor's). Raises :class:`BatchInterrupted` on Ctrl-C, with the summary saved."""
    report = report or Report()
    jobs = batch.jobs
    if batch.world > 1:
        report.info(f"rank {batch.rank} of {batch.world}: "
                    f"{sum(j.error is None and j.duplicate_of is None for j in jobs)} of "
                    f"{sum(j.error is None and j.duplicate_of is None for j in batch.all_jobs)} videos")
    warning = next((w for w in (predictor.take_synthetic_warning(j.video) for j in jobs if j.error is None) if w),
                   None)
    if warning is not None:
        report.info(f"warning: {warning}")
    summary = Summary(batch.summary_path, checkpoint if checkpoint is not None else str(predictor.checkpoint),
                      {**predictor.metadata, "rank": batch.rank, "world_size": batch.world}, warn=report.warning)
    summary.save()
    run = BatchRun(batch, summary, report)
    try:
        for job in jobs:
            _do(predictor, run, job)
    except KeyboardInterrupt as exc:
        clear_own_stages(batch.out)
        summary.save("interrupted")
        report.error(f"interrupted: {run.done} of {len(jobs)} inputs done, {run.failed} failed; "
                     f"summary in {summary.path}")
        raise BatchInterrupted(run) from exc
    return run


def finish_batch(run: BatchRun) -> None:
    """The summary says ``done``; the last line says what was done."""
    run.summary.save("done")
    batch = run.batch
    extra = f", {run.repeated} repeated input(s) done once" if run.repeated else ""
    if run.skipped:
        extra += f", {run.skipped} skipped (outputs exist; --overwrite to redo)"
    share = f" (rank {batch.rank} of {batch.world})" if batch.world > 1 else ""
    run.report.info(f"{run.done} of {run.done + run.failed} inputs done{share}, {run.failed} failed{extra}; "
                    f"results in {batch.out}")


def predict_many(predictor: Predicts, inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 out: str | os.PathLike[str], *, formats: str | Sequence[str] = "csv", per_frame: bool = False,
                 video: bool = False, save_keypoints: bool = False, overwrite: bool = False,
                 keypoints: str | os.PathLike[str] | None = None, report: Report | None = None) -> dict[str, Any]:
    """What ``beenet predict INPUTS --out OUT`` does, with ``predictor`` (a
    :class:`~beenet.inference.predictor.Predictor`): the same files, the same
    ``predict_summary.json`` (returned, as a dict), finished videos skipped unless ``overwrite``.
    ``report``: where the lines ``beenet predict`` prints go (default: this module's log;
    :class:`ConsoleReport` prints them). Raises :class:`SetupError` (and the predictor's
    ``PoseBackendError``) before any video, :class:`BatchInterrupted` on Ctrl-C."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    fmts = parse_formats(formats if isinstance(formats, str) else ",".join(formats))
    check_writers(fmts)
    batch = plan_batch(items, Path(out), fmts, per_frame=per_frame, video=video, save_keypoints=save_keypoints,
                       overwrite=overwrite, keypoints=keypoints)
    if needs_pose(batch.jobs):
        predictor.check_pose()
    run = run_batch(predictor, batch, report)
    finish_batch(run)
    return to_builtins(run.summary.doc)
