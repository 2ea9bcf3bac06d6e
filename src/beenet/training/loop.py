"""The training loop: one run directory per run, validation every epoch, exact resume, DDP.

:func:`train` checks the run directory (:mod:`beenet.training.rundir`), then runs the steps of
``_train`` in order: set up (:mod:`beenet.training.setup`: data, context, model and its priors,
optimizer, loader, and a resumed run's state), then per epoch train, validate and save, and
finally finish (``best.pt``, the result). The optimiser and its schedule live in
:mod:`beenet.training.optim`, the loader in :mod:`beenet.training.loader`, the RNG and DDP helpers
in :mod:`beenet.distributed`.

Reproducibility: the model init and dropout draw from torch's RNG seeded from ``run.seed`` inside
a ``fork_rng`` scope (the caller's global RNG is left as it was); the batch order comes from a
sampler seeded by ``(seed, epoch)`` and each sample's frames from a generator seeded by
``(seed, epoch, index)``. ``last.pt`` stores the RNG state, so a run stopped after epoch k and
resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from beenet import distributed as D
from beenet.artifacts.checkpoint import (
    InterruptedAfterWrite,
    load_checkpoint,
    save_checkpoint,
    saved_epochs,
)
from beenet.data.dataset import frame_level
from beenet.device import autocast_context, resolve_device, to_device
from beenet.errors import BeenetError, CheckpointError, ConfigError
from beenet.evaluation.evaluate import predict_split, split_loader
from beenet.metrics import HEADLINE_KEYS, bold_scores, format_headline, headline
from beenet.models.batchnorm import recalibrate_batchnorm
from beenet.models.pooling import rows_checked_by_caller
from beenet.progress import progress
from beenet.run_config import RunConfig
from beenet.training.loader import resolve_num_workers
from beenet.training.losses import compute_loss
from beenet.training.init import start_from
from beenet.training.rundir import (
    LOCK_FILE,
    RunLock,
    check_run_dir,
    clear_stale_temp_files,
    log_to_file,
    prepare_restart,
)
from beenet.training.setup import (
    RESUMABLE_CHANGES,
    Run,
    compiled_for_training,
    deterministic_kernels,
    fit_model_priors,
    parallel_model,
    prepare_run,
    restore_run,
    resume_checkpoint,
    unused_parameters,
)

#: ``RESUMABLE_CHANGES``, ``fit_model_priors``, ``unused_parameters`` and ``compiled_for_training``
#: live in :mod:`beenet.training.setup`; they are named here too, where callers found them.
__all__ = ["RESUMABLE_CHANGES", "TrainingDiverged", "compiled_for_training", "fit_model_priors", "train",
           "unused_parameters"]

log = logging.getLogger(__name__)


class _ValidationFailed(Exception):
    """A validation pass raised ``error`` (a BeenetError); the loop saves the epoch, then reports it."""

    def __init__(self, error: BeenetError) -> None:
        super().__init__(str(error))
        self.error = error


class TrainingDiverged(BeenetError, FloatingPointError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------- train


def train(
    cfg: RunConfig,
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    *,
    stop_after_epoch: int | None = None,
    init: str | None = None,
) -> dict[str, Any]:
    """Train ``cfg`` on the BoLD directory ``data_dir``; write the run into ``out_dir``.

    ``resume`` continues from ``out_dir/last.pt`` (config from the checkpoint; only the keys in
    :data:`RESUMABLE_CHANGES` may differ). ``stop_after_epoch`` ends the call after that epoch
    (0-based) as an interruption would, leaving a resumable run (tests, time-sliced jobs).
    ``init``: a new run starts from these weights (checkpoint, folder or Hub id;
    :func:`beenet.training.init.start_from`); ignored when resuming (the run's own weights count).
    Returns the final validation scores: ``{"val": ..., "best": ..., "best_epoch", "epochs_done",
    "run_dir", "stopped_early"}``.
    """
    out = Path(out_dir)
    if cfg.context.priors == "init" and init is None and not resume:
        raise ConfigError("context.priors=init keeps the priors of the weights a run starts from: give "
                          "--init CHECKPOINT, or set context.priors=fit (and a context source)")
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
        ckpt = resume_checkpoint(cfg, out) if resume else None
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
            with deterministic_kernels(cfg.run.deterministic):
                return _train(cfg, Path(data_dir), out, device, info, ckpt, stop_after_epoch, where, init)
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


# --------------------------------------------------------------------------- the epochs


def _train(cfg: RunConfig, data_dir: Path, out: Path, device: torch.device, info: D.DistInfo,
           ckpt: dict[str, Any] | None, stop_after_epoch: int | None,
           where: dict[str, Any] | None = None, init: str | None = None) -> dict[str, Any]:
    where = {} if where is None else where
    t_setup = time.perf_counter()
    run = prepare_run(cfg, data_dir, out, device, info, resumed=ckpt is not None)
    restore_run(run, ckpt)
    if init is not None and ckpt is None:
        start_from(run, init)
        if cfg.context.priors == "fit":  # the priors of this training split, not the init's
            fit_model_priors(run.model, run.train_inst, run.train_ds.context)
    net = parallel_model(run)
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


# --------------------------------------------------------------------------- one epoch


def _train_one_epoch(run: Run, net: torch.nn.Module, epoch: int) -> dict[str, float]:
    """One pass over the training loader; the mean loss parts over every rank's samples.

    No step reads a value back from the device (a host sync) except the running loss, every
    ``run.log_every`` steps and at the last step: the loss parts add up on the device, the count of
    replaced samples on the host, and the pools skip their per-call mask check
    (:func:`~beenet.models.pooling.rows_checked_by_caller`; ``collate`` checked the masks).
    """
    cfg, info, device = run.cfg, run.info, run.device
    run.schedule.set_epoch(epoch)
    run.sampler.set_epoch(epoch)
    run.train_ds.set_epoch(epoch)
    net.train()
    trainable = [p for p in run.model.parameters() if p.requires_grad]
    sums: dict[str, torch.Tensor] = {}
    count = 0
    bar = progress(run.loader, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", unit="batch",
                   disable=None if info.is_main else True)
    last_step = len(run.loader) - 1
    replaced = torch.zeros((), dtype=torch.long)  # samples that could not be read (the next instance stood in)
    for step, batch in enumerate(bar):
        rep = batch.pop("replaced", None)  # a host tensor: summed on the host, read after the epoch
        if rep is not None:
            replaced += (rep > 0).sum()
        with torch.profiler.record_function("beenet.train_step"):
            batch = to_device(batch, device)
            with autocast_context(device, cfg.run.amp), rows_checked_by_caller():
                outputs = net(batch)
                loss, parts = compute_loss(outputs, batch, cfg.loss)
            bs = int(batch["frames"].shape[0])
            count += bs
            for k, v in (("loss", loss), *((k, v) for k, v in parts.items() if k != "loss")):
                part = torch.as_tensor(v).detach().float() * bs
                sums[k] = sums[k] + part if k in sums else part
            synced = (step + 1) % cfg.run.log_every == 0 or step == last_step
            mean = float(sums["loss"]) / count if synced else None  # the one read-back, every log_every steps
            if mean is not None and not math.isfinite(mean):
                raise TrainingDiverged(
                    f"the training loss became {mean} at epoch {epoch + 1}, by step {step + 1} "
                    f"(lr {run.schedule.lr:g}); lower optim.lr or set optim.grad_clip (e.g. 5.0) and start again"
                )
            run.optimizer.zero_grad(set_to_none=True)
            run.scaler.scale(loss).backward()
            if cfg.optim.grad_clip > 0:
                run.scaler.unscale_(run.optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip)
            run.scaler.step(run.optimizer)
            run.scaler.update()
        if info.is_main and mean is not None:
            bar.set_postfix(loss=f"{mean:.4f}")
            if (step + 1) % cfg.run.log_every == 0:
                log.info("epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, len(run.loader), mean)
    # One reduction for the loss parts and the replaced count (a mean over ranks, so times the ranks).
    means = D.all_reduce_mean({**{k: float(v) / max(count, 1) for k, v in sums.items()},
                               "replaced": float(replaced)}, info, device)
    replaced_all = round(means.pop("replaced") * info.world_size)
    if replaced_all and info.is_main:
        log.warning("epoch %d: %d training sample(s) could not be read and were replaced by the next instance "
                    "(the warnings above name them; 'beenet data check --deep' lists every unreadable clip)",
                    epoch + 1, replaced_all)
    return means


# --------------------------------------------------------------------------- validate


def _validate(run: Run, epoch: int) -> dict[str, Any] | None:
    """The val scores after ``epoch`` (None on an epoch that ``run.eval_every`` skips)."""
    cfg = run.cfg
    D.sync_buffers(run.model, run.info)  # every rank validates (and rank 0 saves) the same model
    if not ((epoch + 1) % cfg.run.eval_every == 0 or epoch + 1 == cfg.optim.epochs):
        return None
    if cfg.run.bn_recalibrate > 0:
        _recalibrate_batchnorm(run, epoch)
    try:
        # No gradients to hold: evaluation takes twice the training batch (same scores, fewer steps).
        if run.val_loader is None:  # made once: its workers live across epochs
            run.val_loader = split_loader(run.bold, run.val_inst, cfg.data, run.val_ctx, 2 * run.batch_size,
                                          run.device, num_workers=resolve_num_workers(cfg.run.num_workers),
                                          dist_info=run.info, frames=run.val_frames, persistent=True)
        cat, vad = predict_split(run.model, run.bold, run.val_inst, cfg.data, run.val_ctx, 2 * run.batch_size,
                                 run.device, amp=cfg.run.amp, dist_info=run.info, desc=f"val {epoch + 1}",
                                 loader=run.val_loader)
    except BeenetError as exc:  # e.g. a val clip that opened at setup but does not decode
        raise _ValidationFailed(exc) from None
    cat_t = frame_level(np.stack([i.categories for i in run.val_inst]), len(cat))  # data.eval_stills
    vad_t = frame_level(np.stack([i.vad for i in run.val_inst]), len(vad))
    scores = bold_scores(cat, cat_t, vad, vad_t)
    run.last_scores = scores
    return scores


def _recalibrate_batchnorm(run: Run, epoch: int) -> None:
    """Precise BN before validating (``run.bn_recalibrate`` batches; docs/ablations.md section 5).

    The batches are a fixed random subset of the training set for ``(run.seed, epoch)`` with this
    epoch's training draws (augmentation, frames): the same on every rank and on a resumed run, and
    the training sampler's own random state is not touched. Rank 0 computes the statistics on the
    bare model (no DDP collective in its forward) and every rank then takes rank 0's buffers, so
    validation and the saved checkpoint use them.
    """
    cfg, info = run.cfg, run.info
    if info.is_main:
        bs = run.batch_size
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


# --------------------------------------------------------------------------- save


def _save(run: Run, epoch: int, train_means: dict[str, float], scores: dict[str, Any] | None,
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


def _finish(run: Run) -> dict[str, Any]:
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
