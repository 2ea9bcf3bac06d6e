"""Tiny synthetic datasets and configs for the training-side tests (seconds, not minutes)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

from beenet.data.synth import SynthConfig, generate
from beenet.run_config import RunConfig, load_config

#: Overrides that shrink any preset to a model that trains in a second or two per epoch.
TINY = [
    "data.image_size=32", "data.crop_size=32", "data.skeleton_frames=8", "data.num_frames=2",
    "model.pretrained=false", "model.stream_channels=16", "model.stream_layers=1",
    "model.skeleton_channels=8", "optim.batch_size=8", "optim.epochs=2", "run.num_workers=0",
    "run.device=cpu", "context.pretrained=false",
]


def write_tiny_synth(root: Path, clips: int = 24, seed: int = 0) -> Path:
    """A small ``beenet synth`` dataset: 64x48 frames, 8-16 frames per clip."""
    generate(root, SynthConfig(num_clips=clips, seed=seed, width=64, height=48, min_frames=8, max_frames=16),
             workers=1, show_progress=False)
    return root


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV report (metrics.csv, results.csv, summary.csv) as dicts."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def tiny_config(preset: str = "demo", extra: list[str] | tuple[str, ...] = ()) -> RunConfig:
    return load_config(preset, TINY + list(extra))


def restore_root_logging() -> Iterator[None]:
    """Fixture body: undo the handlers ``beenet.cli.main`` adds (``logging.basicConfig``) so that a
    handler bound to a captured, later closed stream does not outlive the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
