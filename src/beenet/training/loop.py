"""The training loop: one run directory per run, validation every epoch, exact resume, DDP.

:func:`train` checks the run directory (:mod:`beenet.training.rundir`), then runs the steps of
``_train`` in order: prepare (data, context, model and its priors, optimizer, loader), restore (a
resumed run's state), then per epoch train, validate and save, and finally finish (``best.pt``, the
result). The optimiser and its schedule live in :mod:`beenet.training.optim`, the loader in
:mod:`beenet.training.loader`, the RNG and DDP helpers in :mod:`beenet.distributed`.

Reproducibility: the model init and dropout draw from torch's RNG seeded from ``run.seed`` inside
a ``fork_rng`` scope (the caller's global RNG is left as it was); the batch order comes from a
sampler seeded by ``(seed, epoch)`` and each sample's frames from a generator seeded by
``(seed, epoch, index)``. ``last.pt`` stores the RNG state, so a run stopped after epoch k and
resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beenet.device import autocast_context, resolve_amp, resolve_device, to_device
from beenet.errors import BeenetError, CheckpointError, ConfigError
from beenet.evaluation.evaluate import predict_split
from beenet.metrics import HEADLINE_KEYS, bold_scores, format_headline, headline
from beenet.progress import progress
from beenet import distributed as D
from beenet.weights import pretrained_weights
from beenet.artifacts.checkpoint import (
    InterruptedAfterWrite,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    saved_epochs,
    training_data_record,
)
from beenet.run_config import (
    RunConfig,
    config_diff,
    model_needs_input_context,
    needs_context,
    prepare_settings,
    save_yaml,
)
from beenet.training.loader import make_train_loader, resolve_num_workers
from beenet.training.optim import EpochSchedule, build_optimizer, load_optimizer_state
from beenet.training.rundir import (
    LOCK_FILE,
    MetricsLog,
    RunLock,
    check_run_dir,
    clear_stale_temp_files,
    log_to_file,
    prepare_restart,
)

log = logging.getLogger(__name__)

#: Keys a resumed run may change (hardware, logging, a longer schedule); anything else must match.
RESUMABLE_CHANGES = ("optim.epochs", "run.num_workers", "run.device", "run.log_every", "run.early_stop",
                     "run.eval_every", "context.cache_dir", "context.device", "run.prepared_dir", "run.amp",
                     "run.compile")


class _ValidationFailed(Exception):
    """A validation pass raised ``error`` (a BeenetError); the loop saves the epoch, then reports it."""

    def __init__(self, error: BeenetError) -> None:
        super().__init__(str(error))
        self.error = error


class TrainingDiverged(BeenetError, FloatingPointError):
    """The loss became NaN or infinite."""


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


# --------------------------------------------------------------------------- train


def train(
    cfg: RunConfig,
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    *,
    stop_after_epoch: int | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` on the BoLD directory ``data_dir``; write the run into ``out_dir``.

    ``resume`` continues from ``out_dir/last.pt`` (config from the checkpoint; only the keys in
    :data:`RESUMABLE_CHANGES` may differ). ``stop_after_epoch`` ends the call after that epoch
    (0-based) as an interruption would, leaving a resumable run (tests, time-sliced jobs).
    Returns the final validation scores: ``{"val": ..., "best": ..., "best_epoch", "epochs_done",
    "run_dir", "stopped_early"}``.
    """
    out = Path(out_dir)
    device = resolve_device(cfg.run.device)
    info = D.init_distributed(device)
    lock: RunLock | None = None
    where: dict[str, Any] = {"epoch": None, "run": None}  # what an interruption reports
    try:
        error: Exception | None = None
        restart = False
        if info.is_main:  # only rank 0 writes, so only rank 0 holds the run's lock
            try:
                if (out / LOCK_FILE).is_file():  # a run's directory: a live writer is named first
                    lock = RunLock(out).acquire()
                check_run_dir(out, resume)  # refuse before creating anything
                out.mkdir(parents=True, exist_ok=True)
                lock = lock or RunLock(out).acquire()
                restart = check_run_dir(out, resume)  # again, now that no one else can write
            except (ConfigError, CheckpointError) as exc:
                error = exc
        error = D.broadcast_object(error, info)  # every rank stops, not only rank 0
        if error is not None:
            raise error
        if info.enabled and device.type == "cuda":
            device = torch.device("cuda", info.local_rank)
        ckpt = _resume_checkpoint(cfg, out) if resume else None
        D.barrier(info)
        cuda_devices = [device] if device.type == "cuda" else []
        with log_to_file(out / "train.log" if info.is_main else None), \
                torch.random.fork_rng(devices=cuda_devices):
            if info.is_main:
                clear_stale_temp_files(out)
                if restart:
                    log.info("%s: restarting from scratch: the run has no checkpoint yet (it stopped before "
                             "its first epoch ended)", out)
                    prepare_restart(out)
            return _train(cfg, Path(data_dir), out, device, info, ckpt, stop_after_epoch, where)
    except KeyboardInterrupt:
        if info.is_main:
            log.warning("%s", _interrupted_message(out, data_dir, where))
        raise
    finally:
        if lock is not None:
            lock.release()
        D.cleanup(info)


def _interrupted_message(out: Path, data_dir: Any, where: dict[str, Any]) -> str:
    """Where an interrupted run stands and how to continue it."""
    during = "during setup" if where["epoch"] is None else f"during epoch {where['epoch'] + 1}"
    run = where["run"]
    # The file says what it holds: a Ctrl-C between its rename and the bookkeeping after it would
    # otherwise name the epoch before.
    done = saved_epochs(out / "last.pt")
    if done is None and run is not None:
        done = run.saved_epochs
    if not done and not (out / "last.pt").is_file():
        return (f"interrupted {during}; no epoch finished, so nothing was saved: run the same command "
                f"again (without --resume) to restart {out} from scratch")
    held = f"epoch {done}" if done else "its last finished epoch"
    return (f"interrupted {during}; {out / 'last.pt'} holds {held} intact: continue with "
            f"beenet train --data {data_dir} --out {out} --resume")


def _resume_checkpoint(cfg: RunConfig, out: Path) -> dict[str, Any]:
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
class _Run:
    """What the steps of one run share: its parts (made by :func:`_prepare`) and its progress."""

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
    #: Where the val frames come from (a prepared cache, or None = decode the videos).
    val_frames: Any = None
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


def _train(cfg: RunConfig, data_dir: Path, out: Path, device: torch.device, info: D.DistInfo,
           ckpt: dict[str, Any] | None, stop_after_epoch: int | None,
           where: dict[str, Any] | None = None) -> dict[str, Any]:
    where = {} if where is None else where
    t_setup = time.perf_counter()
    run = _prepare(cfg, data_dir, out, device, info, resumed=ckpt is not None)
    _restore(run, ckpt)
    net = _parallel(run)
    log.info("model: %d trainable parameters; setup %.1fs",
             sum(p.numel() for p in run.model.parameters() if p.requires_grad), time.perf_counter() - t_setup)

    run.epochs_done = run.start_epoch
    where["run"] = run
    for epoch in range(run.start_epoch, cfg.optim.epochs):
        where["epoch"] = epoch
        t0 = time.perf_counter()
        train_means = _train_one_epoch(run, net, epoch)
        try:
            scores = _validate(run, epoch)
        except _ValidationFailed as failed:
            # The trained epoch is kept: saved without val scores, then the run stops.
            _save(run, epoch, train_means, None, time.perf_counter() - t0)
            reason = str(failed.error).strip().splitlines()[-1]  # a DataLoader worker adds its traceback
            raise BeenetError(
                f"validation after epoch {epoch + 1} failed: {reason}; the epoch is saved in "
                f"{out / 'last.pt'}: fix or remove that file, then continue with --resume"
            ) from None
        _save(run, epoch, train_means, scores, time.perf_counter() - t0)
        run.epochs_done = epoch + 1
        if cfg.run.early_stop and run.since_best >= cfg.run.early_stop:
            log.info("val ERS has not improved for %d validations: stopping after epoch %d", run.since_best, epoch + 1)
            run.stopped_early = True
            break
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            log.info("stopping after epoch %d as asked (resume with --resume)", epoch + 1)
            break
    return _finish(run)


# --------------------------------------------------------------------------- step 1: prepare


def _prepare(cfg: RunConfig, data_dir: Path, out: Path, device: torch.device, info: D.DistInfo,
             resumed: bool) -> _Run:
    """Everything a run needs before its first step: instances, context, model, optimizer, loader."""
    from beenet.data.dataset import BoLDDataset
    from beenet.data.prepared import context_targets, find_prepared

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels
    if info.is_main:
        save_yaml(cfg, out / "config.yaml")
        log.info("run %s: data %s, protocol %s, device %s, world size %d", out, data_dir, cfg.run.protocol,
                 device, info.world_size)
    bold, train_inst, val_inst = _instances(cfg, data_dir, info)
    prepared = find_prepared(prepare_settings(cfg), bold,
                             sorted({i.video for i in train_inst} | {i.video for i in val_inst}))
    context = _load_context(cfg, bold, train_inst, val_inst, device, info, prepared)
    model = _model(cfg, train_inst, context, device, info, resumed)
    optimizer = build_optimizer(model, cfg)
    schedule = EpochSchedule(optimizer, cfg)
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
    loader = make_train_loader(train_ds, cfg.optim.batch_size, sampler, workers, device, seed)
    if len(loader) == 0:
        raise ConfigError(f"no training batch: {len(train_ds)} instances, batch size {cfg.optim.batch_size}")
    return _Run(cfg=cfg, out=out, device=device, info=info, bold=bold, train_inst=train_inst, val_inst=val_inst,
                val_ctx=val_ctx, model=model, optimizer=optimizer, schedule=schedule, scaler=scaler,
                train_ds=train_ds, sampler=sampler, loader=loader, mlog=MetricsLog(out / "metrics.csv", tensorboard=info.is_main and cfg.run.tensorboard == "auto"),
                val_frames=frames,
                trained_on=training_data_record(data_dir, cfg.run.protocol, cfg.run.split_seed,
                                                {"train": train_inst, "val": val_inst}))


def _instances(cfg: RunConfig, data_dir: Path, info: D.DistInfo) -> tuple[Any, list[Any], list[Any]]:
    """The BoLD reader and the usable labelled train and val instances (see :mod:`beenet.data.usable`)."""
    from beenet.data.bold import BoLD
    from beenet.data.usable import clip_statuses, usable_instances

    bold = BoLD(data_dir)
    with D.rank0_first(info):  # the paper split is written to disk once, by rank 0
        train_inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
        val_inst = bold.instances("val", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    # Real BoLD downloads often miss or truncate a few clips: every clip is opened once here (its
    # video header, its joints file), the run goes on without the unusable ones and names them.
    need_joints = bool(cfg.data.skeleton or cfg.data.body_crop)
    t0 = time.perf_counter()
    statuses = clip_statuses(bold, [i.clip for i in train_inst] + [i.clip for i in val_inst])
    train_inst, left_train = usable_instances(bold, train_inst, need_joints, what="train instances",
                                              statuses=statuses)
    val_inst, left_val = usable_instances(bold, val_inst, need_joints, what="val instances", statuses=statuses)
    log.info("checked %d clips in %.1fs: %d train and %d val instances left out as unusable",
             len(statuses), time.perf_counter() - t0, len(left_train), len(left_val))
    for name, insts in (("train", train_inst), ("val", val_inst)):
        if not insts:
            raise ConfigError(f"the {name} split of {data_dir} ({cfg.run.protocol} protocol) is empty")
        unl = [i for i in insts if i.categories is None or i.vad is None]
        if unl:
            raise ConfigError(f"{len(unl)} {name} instance(s) have no labels, e.g. {unl[0]!r}")
    log.info("%d train and %d val instances", len(train_inst), len(val_inst))
    return bold, train_inst, val_inst


def _load_context(cfg: RunConfig, bold: Any, train_inst: list[Any], val_inst: list[Any], device: torch.device,
                  info: D.DistInfo, prepared: Any = None) -> dict[str, np.ndarray] | None:
    """The context labels of every train and val clip (None when the model reads none): from the
    prepared cache when it holds them all (no rank waits), else through the context cache, which
    rank 0 fills while the others wait (run ``beenet prepare`` first on a large dataset)."""
    if cfg.context.source == "none" or not needs_context(cfg):
        return None
    from beenet.context.build import load_context

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
    from beenet.models import build_model

    torch.manual_seed(cfg.run.seed)  # inside fork_rng: scoped to this run (dropout draws from it)
    # Resuming overwrites every weight: no need to fetch pretrained ones.
    model_cfg = dataclasses.replace(cfg.model, pretrained=False) if resumed else cfg.model
    with D.rank0_first(info):  # one process downloads pretrained weights, the others find them cached
        model = build_model(model_cfg, seed=cfg.run.seed)
    if not resumed:
        fit_model_priors(model, train_inst, context)
    return model.to(device)


def unused_parameters(model: torch.nn.Module, dataset: Any, cfg: RunConfig, device: torch.device) -> list[str]:
    """Names of the trainable parameters of ``model`` that get no gradient from a training step.

    A dry forward + backward of the loss on a batch of the first two training samples, on a copy
    of ``model`` (its weights and BatchNorm statistics stay as they are) with the RNGs restored
    afterwards, so the run itself draws exactly what it would have drawn without this check.
    """
    from beenet.data.dataset import collate
    from beenet.training.losses import compute_loss

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


def _parallel(run: _Run) -> torch.nn.Module:
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


# --------------------------------------------------------------------------- step 2: restore


def _restore(run: _Run, ckpt: dict[str, Any] | None) -> None:
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


# --------------------------------------------------------------------------- step 3: one epoch


def _train_one_epoch(run: _Run, net: torch.nn.Module, epoch: int) -> dict[str, float]:
    """One pass over the training loader; the mean loss parts over every rank's samples."""
    from beenet.training.losses import compute_loss

    cfg, info, device = run.cfg, run.info, run.device
    run.schedule.set_epoch(epoch)
    run.sampler.set_epoch(epoch)
    run.train_ds.set_epoch(epoch)
    net.train()
    trainable = [p for p in run.model.parameters() if p.requires_grad]
    sums: dict[str, float] = {}
    count = 0
    bar = progress(run.loader, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", unit="batch",
                   disable=None if info.is_main else True)
    # On a GPU the loss is read back (a host sync) only every ``log_every`` steps and at the end.
    sync_every = cfg.run.log_every if device.type == "cuda" else 1
    last_step = len(run.loader) - 1
    replaced = 0  # training samples that could not be read (the next instance stood in)
    for step, batch in enumerate(bar):
        rep = batch.pop("replaced", None)  # on the CPU: no device sync
        if rep is not None:
            replaced += int((rep > 0).sum())  # samples whose own instance could not be read
        batch = to_device(batch, device)
        with autocast_context(device, cfg.run.amp):
            outputs = net(batch)
            loss, parts = compute_loss(outputs, batch, cfg.loss)
        bs = int(batch["frames"].shape[0])
        count += bs
        for k, v in (("loss", loss), *((k, v) for k, v in parts.items() if k != "loss")):
            sums[k] = sums.get(k, 0.0) + torch.as_tensor(v).detach().float() * bs
        synced = (step + 1) % sync_every == 0 or step == last_step
        if synced and not torch.isfinite(sums["loss"]):
            raise TrainingDiverged(
                f"the training loss became {float(sums['loss'])} at epoch {epoch + 1}, by step {step + 1} "
                f"(lr {run.schedule.lr:g}); lower optim.lr or set optim.grad_clip (e.g. 5.0) and start again"
            )
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if info.is_main and synced:
            mean = float(sums["loss"]) / count
            bar.set_postfix(loss=f"{mean:.4f}")
            if (step + 1) % cfg.run.log_every == 0:
                log.info("epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, len(run.loader), mean)
    # One reduction for the loss parts and the replaced count (a mean over ranks, so times the ranks).
    means = D.all_reduce_mean({**{k: float(v) / max(count, 1) for k, v in sums.items()},
                               "replaced": float(replaced)}, info, device)
    replaced = round(means.pop("replaced") * info.world_size)
    if replaced and info.is_main:
        log.warning("epoch %d: %d training sample(s) could not be read and were replaced by the next instance "
                    "(the warnings above name them; 'beenet data check --deep' lists every unreadable clip)",
                    epoch + 1, replaced)
    return means


# --------------------------------------------------------------------------- step 4: validate


def _validate(run: _Run, epoch: int) -> dict[str, Any] | None:
    """The val scores after ``epoch`` (None on an epoch that ``run.eval_every`` skips)."""
    cfg = run.cfg
    D.sync_buffers(run.model, run.info)  # every rank validates (and rank 0 saves) the same model
    if not ((epoch + 1) % cfg.run.eval_every == 0 or epoch + 1 == cfg.optim.epochs):
        return None
    if cfg.run.bn_recalibrate > 0:
        _recalibrate_batchnorm(run, epoch)
    try:
        # No gradients to hold: evaluation takes twice the training batch (same scores, fewer steps).
        cat, vad = predict_split(run.model, run.bold, run.val_inst, cfg.data, run.val_ctx, 2 * cfg.optim.batch_size,
                                 run.device, num_workers=resolve_num_workers(cfg.run.num_workers),
                                 amp=cfg.run.amp, dist_info=run.info, desc=f"val {epoch + 1}", frames=run.val_frames)
    except BeenetError as exc:  # e.g. a val clip that opened at setup but does not decode
        raise _ValidationFailed(exc) from None
    cat_t = np.stack([i.categories for i in run.val_inst])
    vad_t = np.stack([i.vad for i in run.val_inst])
    scores = bold_scores(cat, cat_t, vad, vad_t)
    run.last_scores = scores
    return scores


def _recalibrate_batchnorm(run: _Run, epoch: int) -> None:
    """Precise BN before validating (``run.bn_recalibrate`` batches; docs/ablations.md section 5).

    The batches are a fixed random subset of the training set for ``(run.seed, epoch)`` with this
    epoch's training draws (augmentation, frames): the same on every rank and on a resumed run, and
    the training sampler's own random state is not touched. Rank 0 computes the statistics on the
    bare model (no DDP collective in its forward) and every rank then takes rank 0's buffers, so
    validation and the saved checkpoint use them.
    """
    from torch.utils.data import DataLoader, Subset

    from beenet.models.batchnorm import recalibrate_batchnorm

    cfg, info = run.cfg, run.info
    if info.is_main:
        bs = cfg.optim.batch_size
        order = np.random.default_rng([cfg.run.seed, epoch]).permutation(len(run.train_ds))
        subset = Subset(run.train_ds, order[: cfg.run.bn_recalibrate * bs].tolist())
        loader = DataLoader(subset, batch_size=bs, shuffle=False, collate_fn=run.loader.collate_fn,
                            drop_last=len(subset) > bs,  # a 1-sample tail batch breaks BatchNorm
                            num_workers=resolve_num_workers(cfg.run.num_workers),
                            pin_memory=run.device.type == "cuda",
                            # its own generator, and the global RNG forked below: the trained
                            # weights are those of a run without recalibration
                            generator=torch.Generator().manual_seed(cfg.run.seed * 1000 + epoch))

        def forward(model: torch.nn.Module, batch: dict[str, Any]) -> None:
            with autocast_context(run.device, cfg.run.amp):
                model(to_device(batch, run.device))

        t0 = time.perf_counter()
        # Dropout draws in the train-mode forwards come from the global RNG: fork it, so training
        # goes on with the draws it would have had.
        cuda = [run.device] if run.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            used = recalibrate_batchnorm(run.model, loader, cfg.run.bn_recalibrate, forward)
        log.info("epoch %d: BatchNorm statistics recomputed over %d training batches (%.1f s)",
                 epoch + 1, used, time.perf_counter() - t0)
    D.sync_buffers(run.model, info)


# --------------------------------------------------------------------------- step 5: save


def _save(run: _Run, epoch: int, train_means: dict[str, float], scores: dict[str, Any] | None,
          elapsed: float) -> None:
    """Track the best val ERS; rank 0 appends the metrics row, logs the epoch and writes
    ``last.pt`` (and ``best.pt`` when val ERS improved)."""
    cfg, info = run.cfg, run.info
    improved = scores is not None and _ers(scores) > run.best_ers
    if improved:
        run.best_ers, run.best_epoch, run.best_scores, run.since_best = _ers(scores), epoch, headline(scores), 0
    elif scores is not None:
        run.since_best += 1
    rng_all = D.gather_rng(run.device, info)
    if info.is_main:
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.schedule.lr}
        row.update({f"train_{k}": v for k, v in sorted(train_means.items())})
        row.update({f"val_{k}": (scores or {}).get(k) for k in HEADLINE_KEYS})
        row["time_s"] = round(elapsed, 2)
        run.mlog.append(row)
        log.info("epoch %d/%d: loss %.4f | val %s | %.1fs", epoch + 1, cfg.optim.epochs,
                 train_means.get("loss", float("nan")),
                 format_headline(scores, sep=" ") if scores else "(no validation)", elapsed)
        state = {
            "model": run.model, "config": cfg.to_dict(), "epoch": epoch,
            "metrics": {"val": headline(scores) if scores else None, "train": train_means},
        }
        best_info = {"ers": run.best_ers, "epoch": run.best_epoch, "scores": run.best_scores,
                     "since": run.since_best}
        if improved:
            save_checkpoint(run.out / "best.pt", **state, extra={"best": best_info}, started_from=run.started_from,
                            trained_on=run.trained_on)
        try:
            save_checkpoint(
                run.out / "last.pt", **state, optimizer=run.optimizer.state_dict(),
                scheduler=run.schedule.state_dict(), rng={"ranks": rng_all},
                extra={"best": best_info, **({"scaler": run.scaler.state_dict()} if run.use_scaler else {})},
                started_from=run.started_from, trained_on=run.trained_on,
            )
        except InterruptedAfterWrite:  # Ctrl-C during the write: last.pt was written whole first
            run.saved_epochs = epoch + 1
            raise
        run.saved_epochs = epoch + 1
    D.barrier(info)


def _ers(scores: dict[str, Any] | None) -> float:
    v = None if scores is None else scores.get("ERS")
    return float("-inf") if v is None else float(v)


# --------------------------------------------------------------------------- finish


def _finish(run: _Run) -> dict[str, Any]:
    """Make sure ``best.pt`` exists; the result of :func:`train`."""
    out = run.out
    run.mlog.close()
    if run.info.is_main and not (out / "best.pt").exists() and (out / "last.pt").exists():
        # No validation ever beat -inf (e.g. every category undefined): the last model is the best.
        last = load_checkpoint(out / "last.pt")
        save_checkpoint(out / "best.pt", model=last["model"], config=last["config"], epoch=last["epoch"],
                        metrics=last["metrics"], extra={"best": last.get("best", {})},
                        started_from=last.get("pretrained_weights", {}), trained_on=last.get("trained_on"))
    return {
        "val": run.last_scores,
        "best": run.best_scores,
        "best_epoch": run.best_epoch + 1 if run.best_epoch >= 0 else None,
        "epochs_done": run.epochs_done,
        "run_dir": str(out),
        "stopped_early": run.stopped_early,
    }
