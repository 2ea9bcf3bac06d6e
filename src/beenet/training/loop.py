"""The training loop: one run directory per run, validation every epoch, exact resume, DDP.

Run directory (``out_dir``)::

    config.yaml   the resolved RunConfig (what ran; ``beenet train --resume`` reads it back)
    metrics.csv   one row per epoch: lr, train loss parts, val mAP/mRA/mR2/ERS, seconds
    best.pt       the checkpoint with the best val ERS so far
    last.pt       the checkpoint of the last finished epoch (optimizer, scheduler, RNG: resumable)
    train.log     the log of the run

Reproducibility: the model init and dropout draw from torch's RNG seeded from ``run.seed`` inside
a ``fork_rng`` scope (the caller's global RNG is left as it was); the batch order comes from a
sampler seeded by ``(seed, epoch)`` and each sample's frames from a generator seeded by
``(seed, epoch, index)``. ``last.pt`` stores the RNG state, so a run stopped after epoch k and
resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from beenet import atomic
from beenet.errors import BeenetError, CheckpointError, ConfigError
from beenet.device import autocast_context, resolve_device, to_device
from beenet.evaluation.evaluate import predict_split
from beenet.progress import progress
from beenet.training import distributed as D
from beenet.training.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from beenet.training.config import (
    RunConfig,
    config_diff,
    model_needs_input_context,
    needs_context,
    save_yaml,
)

log = logging.getLogger(__name__)

#: Keys a resumed run may change (hardware, logging, a longer schedule); anything else must match.
RESUMABLE_CHANGES = ("optim.epochs", "run.num_workers", "run.device", "run.log_every", "run.early_stop",
                     "run.eval_every", "context.cache_dir", "context.device")
HEADLINE = ("mAP", "mRA", "mR2", "ERS")
RUN_FILES = ("config.yaml", "metrics.csv", "last.pt", "best.pt", "train.log")


class TrainingDiverged(BeenetError, FloatingPointError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------- pieces


def build_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the paper) or AdamW, over the trainable parameters only."""
    params = [p for p in model.parameters() if p.requires_grad]
    o = cfg.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


def lr_factor(epoch: int, cfg: RunConfig) -> float:
    """Learning-rate multiplier of ``epoch`` (0-based): warm-up, then step / cosine / constant."""
    o = cfg.optim
    if o.warmup_epochs and epoch < o.warmup_epochs:
        return (epoch + 1) / (o.warmup_epochs + 1)
    e = epoch - o.warmup_epochs
    if o.schedule == "step":
        return o.gamma ** (e // o.step_epochs)
    if o.schedule == "cosine":
        span = max(o.epochs - o.warmup_epochs, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(e, span) / span))
    return 1.0


class EpochSchedule:
    """Per-epoch learning rate from :func:`lr_factor`; its state is just the epoch (resumable)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> None:
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lrs = [float(cfg.optim.lr) for _ in optimizer.param_groups]
        self.epoch = 0
        self.apply()

    def apply(self) -> None:
        f = lr_factor(self.epoch, self.cfg)
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * f

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.apply()

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self.apply()


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


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


class EpochTaggedSampler(Sampler):
    """Yields ``(epoch, index)`` pairs, so DataLoader workers learn the epoch with each index.

    That lets the workers persist across epochs (no re-spawn, no warm-up per epoch) while each
    sample's random draws still come from ``(seed, epoch, index)``.
    """

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = int(self.sampler.epoch)
        return ((epoch, int(i)) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochTaggedDataset(Dataset):
    """``dataset[(epoch, index)]`` -> the sample of ``index`` drawn as in ``epoch``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        if self.dataset.epoch != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


def _make_loader(dataset: Any, batch_size: int, sampler: Any, num_workers: int, device: torch.device,
                 seed: int) -> DataLoader:
    """The training loader; ``sampler`` must have ``set_epoch`` and ``epoch`` (DistributedSampler)."""
    from beenet.data.dataset import collate

    n = len(sampler)
    # A last batch of a single sample breaks BatchNorm in training mode: drop only that case.
    drop_last = n > batch_size and n % batch_size == 1
    gen = torch.Generator()
    gen.manual_seed(seed)  # the loader draws worker seeds from this, not from the global RNG
    return DataLoader(
        EpochTaggedDataset(dataset), batch_size=batch_size, sampler=EpochTaggedSampler(sampler),
        num_workers=num_workers, collate_fn=collate, pin_memory=device.type == "cuda", drop_last=drop_last,
        generator=gen, persistent_workers=num_workers > 0,
    )


@contextlib.contextmanager
def _rank0_first(info: D.DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first (writing caches, splits, downloads); then the others run it."""
    if info.enabled and not info.is_main:
        D.barrier(info)
    yield
    if info.enabled and info.is_main:
        D.barrier(info)


@contextlib.contextmanager
def _log_to_file(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("beenet")
    old_level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


class MetricsLog:
    """``metrics.csv``: one row per epoch, the header fixed by the first row written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
            self.fields = header or None

    def truncate_after(self, epoch: int) -> None:
        """Drop rows past ``epoch`` (1-based, as in the file): rows an interruption left without
        their checkpoint."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        keep = [r for r in rows if int(r["epoch"]) <= epoch]
        if len(keep) != len(rows):
            self._write_all(keep)

    def _write_all(self, rows: list[dict[str, Any]]) -> None:
        assert self.fields is not None
        with atomic.atomic_open(self.path, newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.fields)
            w.writeheader()
            w.writerows(rows)

    def append(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.fields).writeheader()
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(
                {k: _fmt(row.get(k)) for k in self.fields}
            )


def _fmt(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _ers(scores: dict[str, Any] | None) -> float:
    v = None if scores is None else scores.get("ERS")
    return float("-inf") if v is None else float(v)


def _check_run_dir(out: Path, resume: bool) -> None:
    if resume:
        if not (out / "last.pt").is_file():
            raise CheckpointError(
                f"{out / 'last.pt'}: nothing to resume (no last.pt in {out}); start the run without "
                "--resume, or point --out at the run directory you want to continue"
            )
        return
    if out.exists() and any(out.iterdir()):
        present = [f for f in RUN_FILES if (out / f).exists()]
        what = f"a run ({', '.join(present)})" if present else "other files"
        raise ConfigError(
            f"{out} already holds {what}; beenet never overwrites a run: pass --resume to continue "
            "it, or choose a new --out directory"
        )


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
    try:
        error: Exception | None = None
        if info.is_main:
            try:
                _check_run_dir(out, resume)
            except (ConfigError, CheckpointError) as exc:
                error = exc
        error = D.broadcast_object(error, info)  # every rank stops, not only rank 0
        if error is not None:
            raise error
        if info.enabled and device.type == "cuda":
            device = torch.device("cuda", info.local_rank)
        ckpt = None
        if resume:
            ckpt = load_checkpoint(out / "last.pt")
            saved = RunConfig.from_dict(ckpt["config"], where=str(out / "last.pt"))
            diff = {k: v for k, v in config_diff(saved, cfg).items() if k not in RESUMABLE_CHANGES}
            if diff:
                lines = ", ".join(f"{k}: run has {a!r}, given {b!r}" for k, (a, b) in list(diff.items())[:6])
                raise ConfigError(
                    f"{out}: the given config differs from the run's ({lines}); resume with the run's "
                    f"own config ({out / 'config.yaml'}); only {', '.join(RESUMABLE_CHANGES)} may change"
                )
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
        D.barrier(info)
        cuda_devices = [device] if device.type == "cuda" else []
        with _log_to_file(out / "train.log" if info.is_main else None), \
                torch.random.fork_rng(devices=cuda_devices):
            return _train(cfg, Path(data_dir), out, device, info, ckpt, stop_after_epoch)
    finally:
        D.cleanup(info)


def _train(cfg: RunConfig, data_dir: Path, out: Path, device: torch.device, info: D.DistInfo,
           ckpt: dict[str, Any] | None, stop_after_epoch: int | None) -> dict[str, Any]:
    from beenet.data.bold import BoLD
    from beenet.data.dataset import BoLDDataset, available_instances
    from beenet.metrics import bold_scores
    from beenet.models import build_model
    from beenet.training.losses import compute_loss

    t_setup = time.perf_counter()
    seed = cfg.run.seed
    if info.is_main:
        save_yaml(cfg, out / "config.yaml")
        log.info("run %s: data %s, protocol %s, device %s, world size %d", out, data_dir, cfg.run.protocol,
                 device, info.world_size)

    bold = BoLD(data_dir)
    with _rank0_first(info):  # the paper split is written to disk once, by rank 0
        train_inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
        val_inst = bold.instances("val", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    # Real BoLD downloads often miss a few clips: train on what is there, say what is not.
    need_joints = bool(cfg.data.skeleton or cfg.data.body_crop)
    train_inst = available_instances(bold, train_inst, need_joints=need_joints)
    val_inst = available_instances(bold, val_inst, need_joints=need_joints)
    for name, insts in (("train", train_inst), ("val", val_inst)):
        if not insts:
            raise ConfigError(f"the {name} split of {data_dir} ({cfg.run.protocol} protocol) is empty")
        unl = [i for i in insts if i.categories is None or i.vad is None]
        if unl:
            raise ConfigError(f"{len(unl)} {name} instance(s) have no labels, e.g. {unl[0]!r}")
    log.info("%d train and %d val instances", len(train_inst), len(val_inst))

    context: dict[str, np.ndarray] | None = None
    if cfg.context.source != "none" and needs_context(cfg):
        from beenet.context.build import load_context

        videos = sorted({i.video for i in train_inst} | {i.video for i in val_inst})
        with _rank0_first(info):  # rank 0 runs the experts (filling the cache), the others read it
            context = load_context(bold, videos, cfg.context, device)

    torch.manual_seed(seed)  # inside fork_rng: scoped to this run (dropout draws from it)
    # Resuming overwrites every weight: no need to fetch pretrained ones.
    model_cfg = dataclasses.replace(cfg.model, pretrained=False) if ckpt is not None else cfg.model
    with _rank0_first(info):  # one process downloads pretrained weights, the others find them cached
        model = build_model(model_cfg, seed=seed)
    if ckpt is None:
        fit_model_priors(model, train_inst, context)
    model.to(device)
    optimizer = build_optimizer(model, cfg)
    schedule = EpochSchedule(optimizer, cfg)
    use_scaler = device.type == "cuda" and cfg.run.amp == "fp16"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    start_epoch = 0
    best_ers, best_epoch, best_scores = float("-inf"), -1, None
    since_best = 0
    mlog = MetricsLog(out / "metrics.csv")
    if ckpt is not None:
        load_model_state(model, ckpt["model"], out / "last.pt")
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt and use_scaler:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"]) + 1
        best = ckpt.get("best", {})
        best_ers = float(best.get("ers", float("-inf")))
        best_epoch = int(best.get("epoch", -1))
        best_scores = best.get("scores")
        since_best = int(best.get("since", 0))
        states = ckpt.get("rng", {}).get("ranks", [])
        if len(states) == info.world_size:
            set_rng_state(states[info.rank], device)
        else:
            log.warning("resuming with %d processes, the run had %d: dropout masks will differ",
                        info.world_size, len(states))
            torch.manual_seed(seed + 7919 * start_epoch + info.rank)
        if info.is_main:
            mlog.truncate_after(int(ckpt["epoch"]) + 1)
        log.info("resumed %s after epoch %d", out, start_epoch - 1)
    elif info.rank:
        torch.manual_seed(seed + info.rank)  # each rank its own dropout masks

    train_ctx = context if (context is not None and needs_context(cfg)) else None
    val_ctx = context if model_needs_input_context(cfg.model) else None
    train_ds = BoLDDataset(bold, train_inst, cfg.data, train=True, context=train_ctx, seed=seed)
    sampler = D.make_train_sampler(train_ds, seed, info)
    loader = _make_loader(train_ds, cfg.optim.batch_size, sampler, cfg.run.num_workers, device, seed)
    if len(loader) == 0:
        raise ConfigError(f"no training batch: {len(train_ds)} instances, batch size {cfg.optim.batch_size}")

    net: torch.nn.Module = model
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    raw = model
    trainable = [p for p in raw.parameters() if p.requires_grad]
    log.info("model: %d trainable parameters; setup %.1fs", sum(p.numel() for p in trainable),
             time.perf_counter() - t_setup)

    last_scores: dict[str, Any] | None = None
    epochs_done = start_epoch
    stopped_early = False
    for epoch in range(start_epoch, cfg.optim.epochs):
        t0 = time.perf_counter()
        schedule.set_epoch(epoch)
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        net.train()
        sums: dict[str, float] = {}
        count = 0
        bar = progress(loader, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", unit="batch",
                       disable=None if info.is_main else True)
        for step, batch in enumerate(bar):
            batch = to_device(batch, device)
            with autocast_context(device, cfg.run.amp):
                outputs = net(batch)
                loss, parts = compute_loss(outputs, batch, cfg.loss)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"the training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"(lr {schedule.lr:g}); lower optim.lr or set optim.grad_clip (e.g. 5.0) and start again"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            bs = int(batch["frames"].shape[0])
            count += bs
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * bs
            for k, v in parts.items():
                if k != "loss":
                    sums[k] = sums.get(k, 0.0) + float(torch.as_tensor(v).detach()) * bs
            if info.is_main:
                bar.set_postfix(loss=f"{sums['loss'] / count:.4f}")
                if (step + 1) % cfg.run.log_every == 0:
                    log.info("epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, len(loader), sums["loss"] / count)
        train_means = D.all_reduce_mean({k: v / max(count, 1) for k, v in sums.items()}, info, device)

        do_eval = (epoch + 1) % cfg.run.eval_every == 0 or epoch + 1 == cfg.optim.epochs
        scores = None
        D.sync_buffers(raw, info)  # every rank validates (and rank 0 saves) the same model
        if do_eval:
            cat, vad = predict_split(raw, bold, val_inst, cfg.data, val_ctx, cfg.optim.batch_size, device,
                                     num_workers=cfg.run.num_workers, amp=cfg.run.amp, dist_info=info,
                                     desc=f"val {epoch + 1}")
            cat_t = np.stack([i.categories for i in val_inst])
            vad_t = np.stack([i.vad for i in val_inst])
            scores = bold_scores(cat, cat_t, vad, vad_t)
            last_scores = scores
        elapsed = time.perf_counter() - t0

        improved = scores is not None and _ers(scores) > best_ers
        if improved:
            best_ers, best_epoch, best_scores, since_best = _ers(scores), epoch, _headline(scores), 0
        elif scores is not None:
            since_best += 1
        rng_all = _gather_rng(device, info)
        if info.is_main:
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": schedule.lr}
            row.update({f"train_{k}": v for k, v in sorted(train_means.items())})
            row.update({f"val_{k}": (scores or {}).get(k) for k in HEADLINE})
            row["time_s"] = round(elapsed, 2)
            mlog.append(row)
            headline = " ".join(f"{k} {scores[k]:.4f}" if scores and scores.get(k) is not None else f"{k} n/a"
                                for k in HEADLINE) if scores else "(no validation)"
            log.info("epoch %d/%d: loss %.4f | val %s | %.1fs", epoch + 1, cfg.optim.epochs,
                     train_means.get("loss", float("nan")), headline, elapsed)
            state = {
                "model": raw, "config": cfg.to_dict(), "epoch": epoch,
                "metrics": {"val": _headline(scores) if scores else None, "train": train_means},
            }
            best_info = {"ers": best_ers, "epoch": best_epoch, "scores": best_scores, "since": since_best}
            if improved:
                save_checkpoint(out / "best.pt", **state, extra={"best": best_info})
            save_checkpoint(
                out / "last.pt", **state, optimizer=optimizer.state_dict(), scheduler=schedule.state_dict(),
                rng={"ranks": rng_all},
                extra={"best": best_info, **({"scaler": scaler.state_dict()} if use_scaler else {})},
            )
        D.barrier(info)
        epochs_done = epoch + 1
        if cfg.run.early_stop and since_best >= cfg.run.early_stop:
            log.info("val ERS has not improved for %d validations: stopping after epoch %d", since_best, epoch + 1)
            stopped_early = True
            break
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            log.info("stopping after epoch %d as asked (resume with --resume)", epoch + 1)
            break

    if info.is_main and not (out / "best.pt").exists() and (out / "last.pt").exists():
        # No validation ever beat -inf (e.g. every category undefined): the last model is the best.
        last = load_checkpoint(out / "last.pt")
        save_checkpoint(out / "best.pt", model=last["model"], config=last["config"], epoch=last["epoch"],
                        metrics=last["metrics"], extra={"best": last.get("best", {})})
    return {
        "val": last_scores,
        "best": best_scores,
        "best_epoch": best_epoch + 1 if best_epoch >= 0 else None,
        "epochs_done": epochs_done,
        "run_dir": str(out),
        "stopped_early": stopped_early,
    }


def _headline(scores: dict[str, Any] | None) -> dict[str, Any] | None:
    if scores is None:
        return None
    return {k: scores.get(k) for k in (*HEADLINE, "n")} | {"chance": scores.get("chance")}


def _gather_rng(device: torch.device, info: D.DistInfo) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank order), so a resumed DDP run continues each rank's stream."""
    mine = rng_state(device)
    if not info.enabled:
        return [mine]
    import torch.distributed as dist

    cpu_mine = {k: v.cpu() for k, v in mine.items()}
    allstates: list[Any] = [None] * info.world_size
    dist.all_gather_object(allstates, cpu_mine)
    return allstates
