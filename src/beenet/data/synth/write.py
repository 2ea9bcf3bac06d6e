"""Writing a synthetic BoLD to disk: :func:`generate`, in the exact BoLD release layout.

``annotations/{train,val,test_meta}.csv`` (headerless, as released), ``videos/003/<id>.mp4/<NNNN>.mp4``,
``joints/003/<id>.mp4/<NNNN>.npy``, the sidecar with each clip's scene and objects, a README, and
the manifest ``beenet-synth.json`` (:data:`MANIFEST_NAME`), which marks the folder as synthetic: a
checkpoint trained on it records ``trained_on.kind = "synthetic"`` (:func:`synth_manifest`).
Clips are rendered by a small process pool (:func:`_render_all`); the output does not depend on the
number of workers. The dataset appears at ``out`` only when complete.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from beenet.version import __version__
from beenet.atomic import write_json
from beenet.context.sidecar import SIDECAR_NAME
from beenet.data.synth import render
from beenet.data.synth.plan import SPLIT_FRACTIONS, SynthConfig, SynthPlan, plan_dataset
from beenet.data.synth.rules import GENERATOR_VERSION, OBJECT_NAMES, SCENES
from beenet.errors import BeenetError
from beenet.labels import COCO_CLASSES
from beenet.progress import progress

log = logging.getLogger(__name__)


class OutputExistsError(BeenetError, FileExistsError):
    """The output directory holds something that ``beenet synth`` will not overwrite."""


#: The manifest at the root of every dataset ``beenet synth`` writes: what made it, and that it is
#: synthetic. Training reads it to record what a checkpoint learned from.
MANIFEST_NAME = "beenet-synth.json"
MANIFEST_FORMAT = "beenet-synth"


def manifest_dict(plan: SynthPlan) -> dict[str, Any]:
    """The ``beenet-synth.json`` content: the generator, its options, and the instance counts."""
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "synthetic": True,
        "what": "synthetic stick figures drawn by 'beenet synth'; no real people, not BoLD",
        "beenet_version": __version__,
        "generator_version": GENERATOR_VERSION,
        "config": dataclasses.asdict(plan.config),
        "instances": {s: len(plan.instances(s)) for s in SPLIT_FRACTIONS},
    }


def synth_manifest(root: str | Path) -> dict[str, Any] | None:
    """What marks ``root`` as a ``beenet synth`` dataset, or None for any other folder: the
    manifest's content, or, for datasets written before the manifest existed, a stand-in read off
    their sidecar or README (``{"synthetic": True, "format": "beenet-synth", "version": 0}``)."""
    root = Path(root)
    path = root / MANIFEST_NAME
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            doc = None
        if isinstance(doc, dict) and doc.get("format") == MANIFEST_FORMAT:
            return doc
    if _looks_generated(root):
        return {"format": MANIFEST_FORMAT, "version": 0, "synthetic": True}
    return None


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def annotation_rows(plan: SynthPlan, split: str) -> list[list[str]]:
    """The rows of ``train.csv`` / ``val.csv`` (37 columns) or ``test_meta.csv`` (4 columns)."""
    rows = []
    for clip, p in plan.instances(split):
        first = clip.frame_offset + p.start
        last = clip.frame_offset + p.end
        row = [clip.video, str(p.person_id), str(first), str(last)]
        if split != "test":
            assert p.categories is not None and p.vad is not None
            row += [_fmt(v) for v in p.categories] + [_fmt(v) for v in p.vad]
            row += [str(p.gender), str(p.age), str(p.ethnicity), _fmt(p.confidence)]
        rows.append(row)
    return rows


def sidecar_dict(plan: SynthPlan) -> dict[str, Any]:
    """The ``synthetic_context.json`` content (format in docs/design.md)."""
    return {
        "version": 1,
        "scenes": {name: idx for name, (idx, _) in SCENES.items()},
        "objects": {name: COCO_CLASSES.index(name) for name in OBJECT_NAMES},
        "clips": {c.video: {"scene": c.scene, "objects": [o.name for o in c.objects]} for c in plan.clips},
    }


def _readme(plan: SynthPlan) -> str:
    cfg = plan.config
    counts = {s: len(plan.instances(s)) for s in SPLIT_FRACTIONS}
    return (
        "SYNTHETIC DATA - this is not BoLD and contains no real people.\n\n"
        f"Made by 'beenet synth' (beenet {__version__}, synthetic generator version {GENERATOR_VERSION}).\n"
        f"seed: {cfg.seed}\nclips: {cfg.num_clips}\nframe size: {cfg.width}x{cfg.height}\n"
        f"frames per clip: {cfg.min_frames}..{cfg.max_frames}\n"
        f"instances: train {counts['train']}, val {counts['val']}, test {counts['test']}\n\n"
        "The layout is that of the BoLD release (annotations/, videos/003/<id>.mp4/<NNNN>.mp4,\n"
        f"joints/003/<id>.mp4/<NNNN>.npy) plus {SIDECAR_NAME}, the scene and objects of each clip.\n"
        "The rules that make the scenes, bodies and labels are in docs/synthetic-data.md of the\n"
        "beenet source. The same seed and options give byte-identical annotations and joints.\n"
    )


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _looks_generated(path: Path) -> bool:
    return (path / MANIFEST_NAME).is_file() or (path / SIDECAR_NAME).is_file() or (path / "README.txt").is_file() and \
        "beenet synth" in (path / "README.txt").read_text(errors="replace")


#: What ``beenet synth`` writes at the top of its output (and nothing else).
_TOP_FILES = frozenset({SIDECAR_NAME, "README.txt", MANIFEST_NAME})
_TOP_DIRS = {"annotations": (".csv",), "videos": (".mp4",), "joints": (".npy",),
             # not written by synth, but derived from its annotations by 'beenet train' (paper split):
             # stale once the data is replaced, so they go with it.
             "splits": (".json",)}
_ANNOTATION_FILES = frozenset({"train.csv", "val.csv", "test_meta.csv"})


def foreign_entries(out: Path) -> list[str]:
    """Paths under ``out`` (relative, sorted) that ``beenet synth`` did not write, and so must not
    delete: anything but its top-level files, the three annotation CSVs, ``.mp4`` under
    ``videos/``, ``.npy`` under ``joints/`` and ``splits/*.json``."""
    found = []
    for entry in sorted(out.iterdir()):
        name = entry.name
        if name in _TOP_FILES and entry.is_file() and not entry.is_symlink():
            continue
        if name not in _TOP_DIRS or not entry.is_dir() or entry.is_symlink():
            found.append(name + ("/" if entry.is_dir() else ""))
            continue
        for dirpath, dirnames, filenames in os.walk(entry):
            here = Path(dirpath)
            for d in dirnames:
                if (here / d).is_symlink():
                    found.append((here / d).relative_to(out).as_posix())
            for f in filenames:
                p = here / f
                ok = p.suffix.lower() in _TOP_DIRS[name] and not p.is_symlink()
                if name == "annotations":
                    ok = ok and here == entry and f in _ANNOTATION_FILES
                if not ok:
                    found.append(p.relative_to(out).as_posix())
    return found


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} is a file; give a directory path for the synthetic dataset")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} is not empty; pass --overwrite to replace it, or choose "
                                    "another directory")
        if not _looks_generated(out):
            raise OutputExistsError(f"{out} is not empty and does not look like 'beenet synth' output "
                                    f"(no {SIDECAR_NAME}); refusing to delete it even with --overwrite. "
                                    "Remove it yourself or choose another directory")
        foreign = foreign_entries(out)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputExistsError(f"{out} holds {len(foreign)} file(s) or folder(s) that 'beenet synth' did "
                                    f"not write: {shown}; --overwrite replaces only synth's own output. Move "
                                    "them out of the folder, or choose another directory")


@dataclass
class SynthResult:
    root: Path
    plan: SynthPlan
    seconds: float
    instances: dict[str, int]


def generate(out: str | Path, config: SynthConfig = SynthConfig(), *, overwrite: bool = False,
             workers: int | None = None, show_progress: bool | None = None) -> SynthResult:
    """Render and write the synthetic BoLD to ``out``.

    Everything is written to a hidden sibling directory that replaces ``out`` only when complete,
    so an interrupted run never leaves a dataset that looks whole. ``workers`` processes render
    the clips (default: up to 2, one per core); results do not depend on it.
    """
    t0 = time.perf_counter()
    out = Path(out).expanduser().absolute()
    _check_output(out, overwrite)
    plan = plan_dataset(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    tmp = _fresh_dir(out, "partial")
    try:
        _render_all(tmp, plan, workers, show_progress)
        (tmp / SIDECAR_NAME).write_text(json.dumps(sidecar_dict(plan), indent=1) + "\n")
        (tmp / "README.txt").write_text(_readme(plan))
        write_json(tmp / MANIFEST_NAME, manifest_dict(plan))
        ann = tmp / "annotations"  # last: a directory with annotations is a finished one
        ann.mkdir()
        _write_csv(ann / "train.csv", annotation_rows(plan, "train"))
        _write_csv(ann / "val.csv", annotation_rows(plan, "val"))
        _write_csv(ann / "test_meta.csv", annotation_rows(plan, "test"))
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    counts = {s: len(plan.instances(s)) for s in SPLIT_FRACTIONS}
    log.debug("wrote %d synthetic clips (%s) to %s in %.1fs", len(plan.clips), counts, out, seconds)
    return SynthResult(out, plan, seconds, counts)


def _fresh_dir(out: Path, kind: str) -> Path:
    """A new hidden sibling of ``out`` (made with mkdir, so it gets the user's usual permissions)."""
    while True:
        path = out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale_partials(out: Path) -> None:
    """Remove the hidden ``.OUT.partial-PID-*`` folders that killed runs for ``out`` left: those
    whose process (the PID in the name) no longer runs. (An ``.old-`` folder may hold the previous
    dataset of a run killed while swapping: it is left for the user.)"""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.partial-(\d+)-[0-9a-f]{{8}}")
    for entry in sorted(out.parent.iterdir()):
        m = pattern.fullmatch(entry.name)
        if m and entry.is_dir() and not entry.is_symlink() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed %s, left by a 'beenet synth' that was stopped before it finished", entry)


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        old = _fresh_dir(out, "old")
        os.replace(out, old / "data")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _render_all(root: Path, plan: SynthPlan, workers: int | None, show_progress: bool | None) -> None:
    cfg = plan.config
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    workers = max(1, min(workers, len(plan.clips)))
    bar = progress(total=len(plan.clips), desc="synth", unit="clip",
                   disable=None if show_progress is None else not show_progress)
    try:
        if workers == 1:
            for clip in plan.clips:
                render.write_clip(str(root), clip, cfg.width, cfg.height)
                bar.update(1)
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(render.write_clip, str(root), clip, cfg.width, cfg.height) for clip in plan.clips]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(1)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    finally:
        bar.close()
