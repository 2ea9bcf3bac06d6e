"""Scoring a model on a split: predictions for every instance, the BoLD metric, plots, JSON.

``predict_split`` is shared by the trainer's validation (sharded over DDP ranks and gathered back
in instance order), by ``evaluate_checkpoint`` (``beenet eval --checkpoint``) and by the ablation
runner, so a number means the same thing wherever it is printed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from beenet import atomic
from beenet.artifacts.loader import load_model
from beenet.context.build import load_context
from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset, collate, frame_level
from beenet.data.prepared import PreparedCache, find_prepared
from beenet.device import autocast_context, resolve_device, resolve_num_workers, to_device
from beenet.distributed import DistInfo, gather_rows, shard_indices
from beenet.errors import BeenetError, CheckpointError, ConfigError
from beenet.evaluation.predictions import instance_targets, write_predictions
from beenet.labels import NUM_CATEGORIES
from beenet.metrics import add_intervals, bold_scores, format_headline
from beenet.models.pooling import rows_checked_by_caller
from beenet.progress import progress
from beenet.run_config import RunConfig, model_needs_input_context, prepare_settings

log = logging.getLogger(__name__)

BatchHook = Callable[[dict[str, Any]], dict[str, Any]]


def split_loader(bold: Any, instances: Sequence[Any], data_cfg: Any, context: Mapping[str, np.ndarray] | None,
                 batch_size: int, device: str | torch.device, *, num_workers: int = 0, dist_info: Any = None,
                 frames: Any = None, persistent: bool = False) -> DataLoader:
    """The loader :func:`predict_split` reads: evaluation draws of this rank's share of ``instances``,
    in order. ``persistent`` keeps its workers between passes (the trainer's validation).
    ``num_workers`` -1 is ``run.num_workers``'s auto (:func:`~beenet.device.resolve_num_workers`)."""
    info = dist_info or DistInfo()
    num_workers = resolve_num_workers(num_workers)
    device = resolve_device(device)
    if len(instances) == 0:
        raise ConfigError("no instances to predict: the split is empty")
    dataset = BoLDDataset(bold, list(instances), data_cfg, train=False, context=context, seed=0, frames=frames)
    return DataLoader(  # k rows per instance with data.eval_stills = k (frame-level scoring)
        Subset(dataset, shard_indices(len(dataset), info)), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, collate_fn=collate, pin_memory=device.type == "cuda",
        prefetch_factor=4 if num_workers > 0 else None, persistent_workers=persistent and num_workers > 0,
        generator=torch.Generator(),  # leave the global RNG (dropout stream of a training run) alone
    )


@torch.no_grad()
def predict_split(
    model: torch.nn.Module,
    bold: Any,
    instances: Sequence[Any],
    data_cfg: Any,
    context: Mapping[str, np.ndarray] | None,
    batch_size: int,
    device: str | torch.device,
    *,
    num_workers: int = 0,
    amp: str = "off",
    dist_info: Any = None,
    batch_hook: BatchHook | None = None,
    desc: str = "predict",
    frames: Any = None,
    loader: DataLoader | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Category scores ``[N, 26]`` and VAD ``[N, 3]`` (raw scale) for ``instances``, in their order.
    With ``data_cfg.eval_stills`` = k > 1 (frame-level scoring): ``[k N, ...]``, row i the still
    i // N of instance i mod N (:func:`beenet.data.dataset.frame_level` repeats the targets).

    Evaluation sampling (middle frame / evenly spaced frames, no jitter). Under DDP (``dist_info``
    with world size > 1) each rank scores its share and every rank gets the whole result back.
    ``batch_hook`` may alter a batch before the model sees it (the ablation's stress tests).
    ``frames`` is the frame source (a prepared cache's; default: decode the videos). ``loader``:
    one :func:`split_loader` made for these arguments and kept (the trainer's validation: its
    workers live across epochs); default: a new one.
    """
    info = dist_info or DistInfo()
    device = resolve_device(device)
    if loader is None:
        loader = split_loader(bold, instances, data_cfg, context, batch_size, device, num_workers=num_workers,
                              dist_info=info, frames=frames)
    n = len(loader.dataset.dataset)  # k rows per instance with data.eval_stills = k (frame-level scoring)
    was_training = model.training
    model.eval()
    rows: list[torch.Tensor] = []
    index: list[torch.Tensor] = []
    try:
        for batch in progress(loader, desc=desc, unit="batch", disable=None if info.is_main else True):
            if batch_hook is not None:
                batch = batch_hook(batch)
            idx = torch.as_tensor(batch["index"]).long()
            with autocast_context(device, amp), rows_checked_by_caller():  # collate checked the masks
                out = model(to_device(batch, device))
            rows.append(torch.cat([out["categories"].float(), out["vad"].float()], dim=1))
            index.append(idx.to(rows[-1].device))
    finally:
        model.train(was_training)
    width = NUM_CATEGORIES + 3
    local = torch.cat(rows) if rows else torch.zeros((0, width), device=device)
    local_idx = torch.cat(index) if index else torch.zeros((0,), dtype=torch.long, device=device)
    full = gather_rows(local, local_idx.to(local.device), n, info).cpu().double().numpy()
    if not np.isfinite(full).all():
        bad = int(np.argwhere(~np.isfinite(full))[0, 0])
        inst = instances[bad % len(instances)]
        raise ConfigError(
            f"the model produced NaN/inf for instance ({inst.video!r}, {inst.person_id}); "
            "the weights have diverged: lower optim.lr or enable optim.grad_clip and retrain"
        )
    return full[:, :NUM_CATEGORIES], full[:, NUM_CATEGORIES:]


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """JSON written atomically (temp file in the same directory, then ``os.replace``)."""
    return atomic.write_json(path, obj, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def load_split_context(cfg: Any, bold: Any, instances: Sequence[Any], device: torch.device | str = "cpu",
                       ) -> dict[str, np.ndarray]:
    """Context labels of the clips of ``instances`` from the run config's context source."""
    videos = sorted({inst.video for inst in instances})
    return load_context(bold.video_paths(videos), cfg.context, device, root=bold.root)


def _checkpoint_and_config(checkpoint: str | os.PathLike[str], dev: torch.device,
                           ) -> tuple[torch.nn.Module, dict[str, Any], RunConfig]:
    """The model of ``checkpoint`` on ``dev``, the checkpoint itself and its run config."""
    model, ckpt = load_model(checkpoint, dev)
    try:
        cfg = RunConfig.from_dict(ckpt["config"], where=f"{checkpoint} config")
    except ConfigError as exc:
        raise CheckpointError(f"{checkpoint}: its run config does not load in this beenet ({exc})") from None
    return model, ckpt, cfg


def _input_context(cfg: RunConfig, bold: BoLD, instances: Sequence[Any], prepared: PreparedCache | None,
                   dev: torch.device) -> dict[str, np.ndarray] | None:
    """The context a model that reads it as input is given: the prepared cache's when it holds every
    clip, else the context source's (None for a model that reads no context input)."""
    if not model_needs_input_context(cfg.model):
        return None
    videos = sorted({inst.video for inst in instances})
    context = prepared.context(videos) if prepared is not None else None
    return context if context is not None else load_split_context(cfg, bold, instances, dev)


def _write_scores(result: dict[str, Any], out: Path, cats: np.ndarray, cat_t: np.ndarray, title: str,
                  plots: bool) -> None:
    """``metrics.json`` and (with ``plots``) the per-category bars and precision-recall curves."""
    write_json(out / "metrics.json", result)
    if plots:
        from beenet.evaluation.plots import plot_category_bars, plot_pr_curves  # lazy: imports matplotlib

        headline = format_headline(result, digits=3, sep=", ")
        plot_category_bars(result, out / "category_bars.png", title=f"Per-category scores: {title}\n{headline}")
        plot_pr_curves(cats, cat_t, out / "pr_curves.png", title=f"Precision-recall: {title}")
        result["plots"] = [str(out / "category_bars.png"), str(out / "pr_curves.png")]


def training_overlap(bold: BoLD, cfg: RunConfig, instances: Sequence[Any]) -> int:
    """How many of ``instances`` come from a clip of the checkpoint's training split (its
    ``run.protocol`` and ``run.split_seed``): an instance whose clip was trained on (that person or
    another one in it) is not held out. 0 for any split of the checkpoint's own protocol and seed
    except ``train``."""
    try:
        trained = {inst.video for inst in bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)}
    except (BeenetError, OSError) as exc:  # e.g. official protocol on a directory without train.csv
        log.warning("cannot check the overlap with the checkpoint's training split: %s", exc)
        return 0
    return sum(inst.video in trained for inst in instances)


def _overlap_error(checkpoint: Any, cfg: RunConfig, overlap: int, n: int, what: str) -> ConfigError:
    """The refusal of a split holding ``overlap`` of ``n`` instances from trained-on clips."""
    return ConfigError(
        f"{checkpoint} was trained on the {cfg.run.protocol} protocol's train split (seed "
        f"{cfg.run.split_seed}); {overlap} of the {n} instances of the {what} come from clips it "
        "trained on, so their scores are not held out. Score a split of the checkpoint's own protocol "
        "and seed (--protocol/--seed left out), or give --allow-overlap to score it anyway (the "
        "overlap is then printed beside every number)"
    )


def evaluate_checkpoint(
    data_dir: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    split: str = "val",
    protocol: str | None = None,
    seed: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 16,
    device: str = "auto",
    *,
    num_workers: int = 0,
    plots: bool = True,
    prepared_dir: str | os.PathLike[str] | None = None,
    allow_overlap: bool | None = None,
) -> dict[str, Any]:
    """Score a checkpoint on a split of a BoLD directory.

    A split (another ``protocol`` or ``seed`` than the checkpoint's, or ``train``) with instances
    from clips the checkpoint trained on (:func:`training_overlap`) is refused when
    ``allow_overlap`` is False (``beenet eval``'s default); otherwise it is scored and the result's
    ``overlap`` holds the count (``beenet eval --allow-overlap`` prints it beside every number).

    ``protocol``/``seed`` default to the checkpoint's run config. With ``out_dir``: writes
    ``metrics.json``, ``category_bars.png``, ``pr_curves.png`` and ``predictions_<split>.csv``.
    On an unlabelled split (the official test split) only the predictions are written (``out_dir``
    is then required) and the result has no metric keys. A prepared cache (``beenet prepare``)
    matching the checkpoint's config under ``prepared_dir`` (default: the run's
    ``run.prepared_dir``, else the default root) serves the frames; else they are decoded.
    """
    dev = resolve_device(device)
    model, ckpt, cfg = _checkpoint_and_config(checkpoint, dev)
    protocol = protocol or cfg.run.protocol
    seed = cfg.run.split_seed if seed is None else seed
    bold = BoLD(data_dir)
    instances = bold.instances(split, protocol=protocol, seed=seed)
    overlap = training_overlap(bold, cfg, instances)
    if overlap and allow_overlap is False:
        raise _overlap_error(checkpoint, cfg, overlap, len(instances), f"{protocol} {split} split (seed {seed})")
    labelled = all(inst.categories is not None and inst.vad is not None for inst in instances)
    out = Path(out_dir) if out_dir is not None else None
    if not labelled and out is None:
        raise ConfigError(
            f"the {split} split of the {protocol} protocol has no labels, so it cannot be scored; "
            "give an output directory (--out DIR) to write its predictions for submission"
        )
    prepared = find_prepared(prepare_settings(cfg), bold, sorted({inst.video for inst in instances}),
                             root=prepared_dir)
    context = _input_context(cfg, bold, instances, prepared, dev)
    cats, vad = predict_split(model, bold, instances, cfg.data, context, batch_size, dev,
                              num_workers=num_workers, amp=cfg.run.amp, desc=f"eval {split}",
                              frames=prepared.frames() if prepared is not None else None)
    base = {"split": split, "protocol": protocol, "n": len(instances), "checkpoint": str(checkpoint),
            "epoch": ckpt.get("epoch"),
            # Training chose its best epoch on val of its own protocol and split seed: scoring that
            # same split reports a number the checkpoint was selected on (docs/method.md 2.9).
            "selected_on_this_split": bool(
                ckpt.get("best") and split == "val" and protocol == cfg.run.protocol
                and (protocol == "official" or seed == cfg.run.split_seed)
            )}
    if overlap:
        base["overlap"] = overlap
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        n = len(instances)  # one row per instance: the mean over its stills (data.eval_stills)
        base["predictions"] = str(write_predictions(
            out / f"predictions_{split}.csv", [inst.key for inst in instances],
            cats.reshape(-1, n, cats.shape[1]).mean(0), vad.reshape(-1, n, vad.shape[1]).mean(0)))
    if not labelled:
        log.info("%s split (%s protocol) has no labels: wrote predictions only", split, protocol)
        base["labelled"] = False
        return base
    cat_t, vad_t = instance_targets(instances, f"the {split} split")
    cat_rows, vad_rows = frame_level(cat_t, len(cats)), frame_level(vad_t, len(vad))
    result = add_intervals(bold_scores(cats, cat_rows, vad, vad_rows), cats, cat_rows, vad, vad_rows)
    result.update(base)
    result["labelled"] = True
    if out is not None:
        _write_scores(result, out, cats, cat_t, f"{split} ({protocol} protocol), n={len(instances)}", plots)
    return result
