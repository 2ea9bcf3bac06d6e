"""Stress settings: test-time corruptions an ablation run is also scored under.

A :class:`Stress` is written as one word in tables, ``result.json`` and variant definitions:

- ``none``: the plain val split;
- ``distractors-<percent>``: ``percent``% of each instance's real frames (and crops) replaced by
  frames of other instances (:func:`distractor_hook`);
- ``drop-<part>``: one context source lost, ``part`` a key of ``beenet.labels.CONTEXT_SLICES``
  (``places`` or ``objects``): the part of an input context vector is zeroed
  (:func:`drop_context_input`), or the model's own stream for it outputs uniform probabilities.

``Stress.parse(str(s)) == s`` for every valid setting; a string that is none of these raises a
:class:`~beenet.errors.ConfigError` listing the valid forms. :func:`applied` puts a stress on a
model for the duration of one prediction pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch

from beenet.errors import ConfigError
from beenet.labels import CONTEXT_SLICES

BatchHook = Callable[[dict[str, Any]], dict[str, Any]]

#: Context part -> the ``ModelConfig`` switch and ``BEENet`` attribute of the stream that predicts it.
STREAM_OF_PART: dict[str, str] = {"places": "place_stream", "objects": "object_stream"}
assert set(STREAM_OF_PART) == set(CONTEXT_SLICES)

StressKind = Literal["none", "distractors", "drop"]


@dataclass(frozen=True)
class Stress:
    """One stress setting; ``str()`` gives its name (``none``, ``distractors-25``, ``drop-places``)."""

    kind: StressKind = "none"
    #: distractors: the share of each instance's real frames replaced, in percent (0..100).
    percent: int = 0
    #: drop: the context part lost (a key of ``CONTEXT_SLICES``).
    part: str = ""

    def __post_init__(self) -> None:
        if self.kind == "none":
            ok = self.percent == 0 and not self.part
        elif self.kind == "distractors":
            ok = 0 <= self.percent <= 100 and not self.part
        elif self.kind == "drop":
            ok = self.percent == 0 and self.part in CONTEXT_SLICES
        else:
            ok = False
        if not ok:
            raise ConfigError(f"not a stress setting: {self!r}; {_VALID}")

    def __str__(self) -> str:
        if self.kind == "distractors":
            return f"distractors-{self.percent}"
        if self.kind == "drop":
            return f"drop-{self.part}"
        return "none"

    @property
    def fraction(self) -> float:
        """The distractors' share of frames, 0..1."""
        return self.percent / 100.0

    @classmethod
    def parse(cls, text: str) -> Stress:
        """``"none"``, ``"distractors-25"``, ``"drop-places"`` -> a :class:`Stress`."""
        kind, _, arg = text.partition("-")
        if kind == "none" and not arg:
            return cls()
        if kind == "distractors" and arg.isdigit():
            return cls("distractors", percent=int(arg))
        if kind == "drop" and arg:
            return cls("drop", part=arg)
        raise ConfigError(f"unknown stress {text!r}; {_VALID}")


_VALID = ("valid: none, distractors-<percent> (0..100, e.g. distractors-25), "
          + ", ".join(f"drop-{part}" for part in CONTEXT_SLICES))


@contextmanager
def applied(stress: Stress, model: torch.nn.Module, fusion_context: str, seed: int) -> Iterator[BatchHook | None]:
    """Put ``stress`` on ``model`` for the ``with`` block; yields the batch hook to predict with
    (None when the stress needs none). ``fusion_context`` is the model's ``model.fusion_context``:
    with ``input`` a dropped part is zeroed in the inputs, otherwise the model's stream for it is
    silenced."""
    hook: BatchHook | None = None
    dropper: _DropStream | None = None
    if stress.kind == "distractors":
        hook = distractor_hook(stress.fraction, seed=seed)
    elif stress.kind == "drop":
        if fusion_context == "input":
            hook = drop_context_input(stress.part)
        else:
            dropper = _DropStream(getattr(model, STREAM_OF_PART[stress.part]))
    try:
        yield hook
    finally:
        if dropper is not None:
            dropper.remove()


def distractor_hook(fraction: float, seed: int) -> BatchHook:
    """Replace ``fraction`` of each instance's real frames (and crops) by frames of other instances.

    Donors are the batch rolled by one (another instance), or the previous batch for a batch of one.
    A still (one real frame) is replaced with probability ``fraction``. Seeded, so every variant sees
    the same corruption.
    """
    g = torch.Generator().manual_seed(seed)
    state: dict[str, dict[str, torch.Tensor]] = {}

    def hook(batch: dict[str, Any]) -> dict[str, Any]:
        batch = dict(batch)
        keys = [k for k in ("frames", "crops") if k in batch]
        B = batch["frames"].shape[0]
        donors = {k: (torch.roll(batch[k], 1, 0) if B > 1 else state.get("prev", {}).get(k)) for k in keys}
        state["prev"] = {k: batch[k].clone() for k in keys}
        if any(d is None or d.shape[1:] != batch[k].shape[1:] for k, d in donors.items()):
            return batch
        mask = batch["frame_mask"]
        new = {k: batch[k].clone() for k in keys}
        for b in range(B):
            real = torch.nonzero(mask[b]).flatten()
            n = int(real.numel())
            if n == 0:
                continue
            if n == 1:
                k = int(torch.rand((), generator=g).item() < fraction)
            else:
                k = int(math.floor(fraction * n + 0.5))
            if k == 0:
                continue
            pick = real[torch.randperm(n, generator=g)[:k]]
            for key in keys:
                dm = donors[key]
                new[key][b, pick] = dm[b % dm.shape[0], pick]
        batch.update(new)
        return batch

    return hook


def drop_context_input(part: str) -> BatchHook:
    """Zero the ``places`` or ``objects`` part of ``batch["context"]`` (a context source lost)."""
    sl = CONTEXT_SLICES[part]

    def hook(batch: dict[str, Any]) -> dict[str, Any]:
        if "context" not in batch:
            return batch
        batch = dict(batch)
        ctx = batch["context"].clone()
        ctx[:, sl] = 0.0
        batch["context"] = ctx
        return batch

    return hook


class _DropStream:
    """Forward hook that makes a context stream uninformative (zero logits: a uniform softmax)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.handle = module.register_forward_hook(self._hook)

    @staticmethod
    def _hook(module: torch.nn.Module, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (torch.zeros_like(output[0]), *output[1:])
        return torch.zeros_like(output)

    def remove(self) -> None:
        self.handle.remove()
