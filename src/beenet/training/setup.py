"""Setting up a training run: everything :func:`beenet.training.loop.train` does before its first
epoch.

:func:`prepare_run` builds the parts of a run (the usable instances, the context labels, the model
with its priors, optimiser, schedule, gradient scaler, dataset, sampler and loader, the metrics log)
into a :class:`Run`; :func:`restore_run` continues a resumed run from its ``last.pt`` (checked
against the given config by :func:`resume_checkpoint`); :func:`parallel_model` is the module the
training steps call (DDP under torchrun, ``torch.compile`` with ``run.compile``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet import distributed as D
from beenet.artifacts.checkpoint import (
    load_checkpoint,
    load_model_state,
    training_data_record,
)
from beenet.context.build import load_context
from beenet.data.bold import BoLD
from beenet.data.dataset import BoLDDataset, collate
from beenet.data.prepared import PreparedCache, context_targets, find_prepared
from beenet.data.usable import clip_statuses, usable_instances
from beenet.device import autocast_context, resolve_amp, to_device
from beenet.errors import BeenetError, ConfigError
from beenet.models import build_model
from beenet.run_config import (
    RunConfig,
    config_diff,
    model_needs_input_context,
    needs_context,
    prepare_settings,
    save_yaml,
)
from beenet.training.init import freeze
from beenet.training.loader import (
    check_shared_memory,
    make_train_loader,
    resolve_num_workers,
    sample_bytes,
    shm_free_bytes,
)
from beenet.training.losses import compute_loss
from beenet.training.optim import EpochSchedule, build_optimizer, load_optimizer_state
from beenet.training.recipe import batch_plan, recipe_warning
from beenet.training.rundir import MetricsLog
from beenet.weights import pretrained_weights

#: The run's log speaks as one module (the name in train.log's lines), set up or looping.
log = logging.getLogger("beenet.training.loop")

#: Keys a resumed run may change (hardware, logging, a longer schedule); anything else must match.
RESUMABLE_CHANGES = ("optim.epochs", "run.num_workers", "run.device", "run.log_every", "run.early_stop",
                     "run.eval_every", "context.cache_dir", "context.device", "run.prepared_dir", "run.amp",
                     "run.compile", "run.deterministic")


@contextlib.contextmanager
def deterministic_kernels(enabled: bool) -> Iterator[None]:
    """``run.deterministic``: deterministic kernels inside the block (the process's settings are put
    back after it). ``CUBLAS_WORKSPACE_CONFIG`` must be set before cuBLAS starts: it is set here
    (``:4096:8``) unless the environment has it; set it yourself when CUDA ran before the run."""
    if not enabled:
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)  # an op without one warns, the run goes on
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def fit_model_priors(model: torch.nn.Module, train_instances: list[Any],
                     context: dict[str, np.ndarray] | None) -> None:
    """Fit the priors (context-emotion priors and the VAD mean/std) on the training split only."""
    cats = torch.from_numpy(np.stack([np.asarray(i.categories, dtype=np.float32) for i in train_instances]))
    vad = torch.from_numpy(np.stack([np.asarray(i.vad, dtype=np.float32) for i in train_instances]))
    ctx = None
    if context is not None:
        missing = [i.video for i in train_instances if i.video not in context]
        if missing:
            raise ConfigError(f"no context labels for {len(missing)} training clip(s), e.g. {missing[0]!r}")
        ctx = torch.from_numpy(np.stack([np.asarray(context[i.video], dtype=np.float32) for i in train_instances]))
    model.fit_priors(ctx, cats, vad)
    log.info("fitted the priors on %d training instances%s", len(train_instances),
             "" if ctx is not None else " (VAD statistics only: no context)")


def resume_checkpoint(cfg: RunConfig, out: Path) -> dict[str, Any]:
    """``out/last.pt``, refused when ``cfg`` differs from the run's config beyond RESUMABLE_CHANGES."""
    ckpt = load_checkpoint(out / "last.pt")
    saved = RunConfig.from_dict(ckpt["config"], where=str(out / "last.pt"))
    diff = {k: v for k, v in config_diff(saved, cfg).items() if k not in RESUMABLE_CHANGES}
    if diff:
        lines = ", ".join(f"{k}: run has {a!r}, given {b!r}" for k, (a, b) in list(diff.items())[:6])
        raise ConfigError(
            f"{out}: the given config differs from the run's ({lines}); resume with the run's "
            f"own config ({out / 'config.yaml'}); only {', '.join(RESUMABLE_CHANGES)} may change"
        )
    return ckpt


@dataclasses.dataclass
class Run:
    """What the steps of one run share: its parts (made by :func:`prepare_run`) and its progress."""

    cfg: RunConfig
    out: Path
    device: torch.device
    info: D.DistInfo
    bold: Any
    train_inst: list[Any]
    val_inst: list[Any]
    val_ctx: dict[str, np.ndarray] | None
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: EpochSchedule
    scaler: torch.amp.GradScaler
    train_ds: Any
    sampler: Any
    loader: Any
    mlog: MetricsLog
    #: Samples each process loads per step (``optim.batch_size`` read by ``optim.batch_size_is``).
    batch_size: int = 0
    #: Where the val frames come from (a prepared cache, or None = decode the videos).
    val_frames: Any = None
    #: The validation loader, made at the first validation and kept (its workers live across epochs).
    val_loader: Any = None
    # progress, restored on resume
    start_epoch: int = 0
    best_ers: float = float("-inf")
    best_epoch: int = -1
    best_scores: dict[str, Any] | None = None
    since_best: int = 0
    last_scores: dict[str, Any] | None = None
    #: The published weights the run's model started from (``pretrained_weights`` of checkpoints).
    started_from: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: What the run trains on (``trained_on`` of checkpoints: kind, fingerprint, data, protocol).
    trained_on: dict[str, Any] | None = None
    epochs_done: int = 0
    #: Epochs whose state ``last.pt`` holds (set once it is written).
    saved_epochs: int = 0
    stopped_early: bool = False

    @property
    def use_scaler(self) -> bool:
        return self.scaler.is_enabled()


def prepare_run(cfg: RunConfig, data_dir: Path, out: Path, device: torch.device, info: D.DistInfo,
                resumed: bool) -> Run:
    """Everything a run needs before its first step: instances, context, model, optimizer, loader."""
    plan = batch_plan(cfg.optim, info.world_size)  # first: a batch that does not split stops the run at once
    if device.type == "cuda":  # fixed input sizes: let cuDNN pick its fastest kernels (not deterministic)
        torch.backends.cudnn.benchmark = not cfg.run.deterministic
    if info.is_main:
        save_yaml(cfg, out / "config.yaml")
        log.info("run %s: data %s, protocol %s, device %s, world size %d", out, data_dir, cfg.run.protocol,
                 device, info.world_size)
    bold, train_inst, val_inst, prepared = _instances(cfg, data_dir, info)
    context = _load_context(cfg, bold, train_inst, val_inst, device, info, prepared)
    model = _model(cfg, train_inst, context, device, info, resumed)
    if info.is_main:
        log.info("%s (optim.batch_size=%d, optim.batch_size_is=%s, optim.scale_lr=%s)", plan.describe(),
                 cfg.optim.batch_size, cfg.optim.batch_size_is, cfg.optim.scale_lr)
        warning = recipe_warning(plan, cfg.optim.scale_lr)
        if warning:
            log.warning("%s", warning)
    freeze(model, cfg.optim.freeze)  # before the optimizer: frozen parameters are in no group
    # The optimiser and schedule step with the scaled LR; config.yaml and checkpoints keep the recipe's.
    stepping = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=plan.lr))
    optimizer = build_optimizer(model, stepping)
    schedule = EpochSchedule(optimizer, stepping)
    amp = resolve_amp(cfg.run.amp, device)
    if info.is_main:
        log.info("mixed precision: %s (run.amp=%s)", amp, cfg.run.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")

    seed = cfg.run.seed
    train_ctx = context if (context is not None and needs_context(cfg)) else None
    val_ctx = context if model_needs_input_context(cfg.model) else None
    frames = prepared.frames() if prepared is not None else None
    train_ds = BoLDDataset(bold, train_inst, cfg.data, train=True, context=train_ctx, seed=seed, frames=frames,
                           context_targets=context_targets(prepare_settings(cfg), prepared,
                                                           [i.video for i in train_inst]))
    sampler = D.make_train_sampler(train_ds, seed, info)
    workers = resolve_num_workers(cfg.run.num_workers)
    loader = make_train_loader(train_ds, plan.per_process, sampler, workers, device, seed)
    if len(loader) == 0:
        raise ConfigError(f"no training batch: {len(train_ds)} instances, batch size {plan.per_process}")
    if workers > 0:  # before the first batch: a worker short of shared memory dies with "Bus error"
        shm = check_shared_memory(2 * plan.per_process * sample_bytes(train_ds[0]), workers, shm_free_bytes(),
                                  local_procs=int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
        if shm and info.is_main:
            log.warning("%s", shm)
    mlog = MetricsLog(out / "metrics.csv", tensorboard=info.is_main and cfg.run.tensorboard == "auto")
    return Run(cfg=cfg, out=out, device=device, info=info, bold=bold, train_inst=train_inst, val_inst=val_inst,
               val_ctx=val_ctx, model=model, optimizer=optimizer, schedule=schedule, scaler=scaler,
               train_ds=train_ds, sampler=sampler, loader=loader, mlog=mlog, batch_size=plan.per_process,
               val_frames=frames,
               trained_on=training_data_record(data_dir, cfg.run.protocol, cfg.run.split_seed,
                                               {"train": train_inst, "val": val_inst}))


def _launch_check(cfg: RunConfig, bold: BoLD, instances: list[Any]) -> tuple[PreparedCache | None, dict[str, Any]]:
    """The prepared cache that serves the run's clips (or None), and each clip's usable verdict:
    from the cache's record for the clips it serves, else by opening the clip's video header and
    loading its joints file (:func:`beenet.data.usable.clip_statuses`)."""
    prepared = find_prepared(prepare_settings(cfg), bold, sorted({i.video for i in instances}))
    trusted = prepared.statuses(bold) if prepared is not None else {}
    opened = clip_statuses(bold, [i.clip for i in instances if i.clip not in trusted])
    return prepared, {**opened, **trusted}


def _instances(cfg: RunConfig, data_dir: Path, info: D.DistInfo) -> tuple[Any, list[Any], list[Any], Any]:
    """The BoLD reader, the usable labelled train and val instances (see :mod:`beenet.data.usable`)
    and the prepared cache that serves them (None: decode the videos)."""
    bold = BoLD(data_dir)
    with D.rank0_first(info):  # the paper split is written to disk once, by rank 0
        train_inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
        val_inst = bold.instances("val", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    # Real BoLD downloads often miss or truncate a few clips: each clip is checked once here (its
    # video header, its joints file; for a clip the prepared cache serves, the cache's record), the
    # run goes on without the unusable ones and names them. Rank 0 checks, the others take its verdict.
    need_joints = bool(cfg.data.skeleton or cfg.data.body_crop)
    t0 = time.perf_counter()
    verdict: Any = None
    if info.is_main:
        try:
            verdict = (True, _launch_check(cfg, bold, train_inst + val_inst))
        except BeenetError as exc:
            verdict = (False, exc)
    ok, found = D.broadcast_object(verdict, info)  # type: ignore[misc]
    if not ok:
        raise found
    prepared, statuses = found
    train_inst, left_train = usable_instances(bold, train_inst, need_joints, what="train instances",
                                              statuses=statuses)
    val_inst, left_val = usable_instances(bold, val_inst, need_joints, what="val instances", statuses=statuses)
    log.info("checked %d clips in %.1fs (%d from the prepared cache's record): %d train and %d val instances "
             "left out as unusable", len(statuses), time.perf_counter() - t0,
             len(prepared.statuses(bold)) if prepared is not None else 0, len(left_train), len(left_val))
    for name, insts in (("train", train_inst), ("val", val_inst)):
        if not insts:
            raise ConfigError(f"the {name} split of {data_dir} ({cfg.run.protocol} protocol) is empty")
        unl = [i for i in insts if i.categories is None or i.vad is None]
        if unl:
            raise ConfigError(f"{len(unl)} {name} instance(s) have no labels, e.g. {unl[0]!r}")
    log.info("%d train and %d val instances", len(train_inst), len(val_inst))
    return bold, train_inst, val_inst, prepared


def _load_context(cfg: RunConfig, bold: Any, train_inst: list[Any], val_inst: list[Any], device: torch.device,
                  info: D.DistInfo, prepared: Any = None) -> dict[str, np.ndarray] | None:
    """The context labels of every train and val clip (None when the model reads none): from the
    prepared cache when it holds them all (no rank waits), else through the context cache, which
    rank 0 fills while the others wait (run ``beenet prepare`` first on a large dataset)."""
    if cfg.context.source == "none" or not needs_context(cfg):
        return None
    videos = sorted({i.video for i in train_inst} | {i.video for i in val_inst})
    cached = prepared.context(videos) if prepared is not None else None
    if cached is not None:
        log.info("context labels of %d clips from the prepared cache %s", len(videos), prepared.path)
        return cached
    if info.enabled and cfg.context.source != "sidecar":
        log.warning("rank 0 labels the clips with the context experts while the other ranks wait; on a large "
                    "dataset run 'beenet prepare' before torchrun")
    with D.rank0_first(info):  # rank 0 runs the experts (filling the cache), the others read it
        return load_context(bold.video_paths(videos), cfg.context, device, root=bold.root)


def _model(cfg: RunConfig, train_inst: list[Any], context: dict[str, np.ndarray] | None, device: torch.device,
           info: D.DistInfo, resumed: bool) -> torch.nn.Module:
    """The model on ``device``, its priors fitted on the training split (a resumed run loads them)."""
    torch.manual_seed(cfg.run.seed)  # inside fork_rng: scoped to this run (dropout draws from it)
    # Resuming overwrites every weight: no need to fetch pretrained ones.
    model_cfg = dataclasses.replace(cfg.model, pretrained=False) if resumed else cfg.model
    with D.rank0_first(info):  # one process downloads pretrained weights, the others find them cached
        model = build_model(model_cfg, seed=cfg.run.seed)
    if not resumed and cfg.context.priors == "fit":  # "init": beenet.training.init.start_from loads them
        fit_model_priors(model, train_inst, context)
    return model.to(device)


def unused_parameters(model: torch.nn.Module, dataset: Any, cfg: RunConfig, device: torch.device) -> list[str]:
    """Names of the trainable parameters of ``model`` that get no gradient from a training step.

    A dry forward + backward of the loss on a batch of the first two training samples, on a copy
    of ``model`` (its weights and BatchNorm statistics stay as they are) with the RNGs restored
    afterwards, so the run itself draws exactly what it would have drawn without this check.
    """
    n = min(2, len(dataset))
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        probe = copy.deepcopy(model).train()
        batch = to_device(collate([dataset[i] for i in range(n)]), device)
        with autocast_context(device, cfg.run.amp):
            loss, _ = compute_loss(probe(batch), batch, cfg.loss)
        loss.backward()
        unused = [name for name, p in probe.named_parameters() if p.requires_grad and p.grad is None]
    del probe
    return unused


def compiled_for_training(model: torch.nn.Module, cfg: RunConfig) -> torch.nn.Module:
    """``torch.compile(model)`` with ``run.compile``, else ``model``. The compiled module shares
    its parameters with ``model``, which is what checkpoints save (no ``_orig_mod.`` keys) and
    what validation runs (uncompiled: its batch size differs)."""
    return torch.compile(model) if cfg.run.compile else model


def parallel_model(run: Run) -> torch.nn.Module:
    """The module the training steps call: ``model`` itself, or its DDP wrapper under torchrun;
    compiled with ``run.compile`` (after the DDP wrap, as torch recommends, so that its
    DDPOptimizer splits the graph at the gradient buckets). DDP looks for unused parameters
    after every backward (a second pass over the graph) only when a dry step finds trainable
    parameters without a gradient."""
    model, device, info, cfg = run.model, run.device, run.info, run.cfg
    net: torch.nn.Module = model
    if info.enabled:
        # Every rank must pass the same flag: rank 0 looks, the others take its finding.
        unused = unused_parameters(model, run.train_ds, cfg, device) if info.is_main else None
        unused = list(D.broadcast_object(unused, info))  # type: ignore[arg-type]
        if info.is_main:
            if unused:
                log.info("DDP: %d trainable parameter(s) get no gradient (e.g. %s): find_unused_parameters on",
                         len(unused), unused[0])
            else:
                log.info("DDP: every trainable parameter gets a gradient: find_unused_parameters off")
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=bool(unused)
        )
    if cfg.run.compile and info.is_main:
        log.info("model compiled with torch.compile (the first steps compile it)")
    return compiled_for_training(net, cfg)


def restore_run(run: Run, ckpt: dict[str, Any] | None) -> None:
    """Continue a resumed run from ``ckpt`` (weights, optimizer, schedule, best so far, RNG); a new
    run only gives each rank its own dropout stream."""
    seed, info = run.cfg.run.seed, run.info
    if ckpt is None:
        run.started_from = pretrained_weights(run.model)
        if info.rank:
            torch.manual_seed(seed + info.rank)  # each rank its own dropout masks
        return
    load_model_state(run.model, ckpt["model"], run.out / "last.pt")
    run.started_from = dict(ckpt.get("pretrained_weights") or {})
    load_optimizer_state(run.optimizer, ckpt["optimizer"], run.model)
    run.schedule.load_state_dict(ckpt["scheduler"])
    if "scaler" in ckpt and run.use_scaler:
        run.scaler.load_state_dict(ckpt["scaler"])
    run.start_epoch = run.saved_epochs = int(ckpt["epoch"]) + 1
    best = ckpt.get("best", {})
    run.best_ers = float(best.get("ers", float("-inf")))
    run.best_epoch = int(best.get("epoch", -1))
    run.best_scores = best.get("scores")
    run.since_best = int(best.get("since", 0))
    states = ckpt.get("rng", {}).get("ranks", [])
    if len(states) == info.world_size:
        D.set_rng_state(states[info.rank], run.device)
    else:
        log.warning("resuming with %d processes, the run had %d: dropout masks will differ",
                    info.world_size, len(states))
        torch.manual_seed(seed + 7919 * run.start_epoch + info.rank)
    if info.is_main:
        run.mlog.truncate_after(int(ckpt["epoch"]) + 1)
    log.info("resumed %s after epoch %d", run.out, run.start_epoch - 1)

