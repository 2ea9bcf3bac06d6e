"""The Python parts of ``benchmarks/gpu_accept.sh``: environment, compute sweep, compile counts,
run comparison. Each subcommand prints ``key: value`` lines the script copies into its summary.

  env      --device D                      GPU name, CUDA, NCCL, bf16, free /dev/shm
  sweep    --device D --data DIR ...       samples/s and GPU memory per sample of one training
                                           step (forward + backward + optimizer step on a batch
                                           already on the device) for batch x amp x channels_last
  compile  --device D --data DIR --out RUN one epoch of 'beenet train' with run.compile=true, in
                                           this process, counting dynamo's graph breaks and
                                           recompiles
  ddp      --device D --data DIR ...       under torchrun: torch DDP over NCCL (gloo on CPU) around
                                           beenet's model, a few training steps, an all_reduce
  interrupt --data DIR --out RUN ...       'beenet train' stopped after its first epoch (resumable)
  compare  RUN_A RUN_B                     metrics.csv of two runs, every column but time_s
"""

from __future__ import annotations

import argparse
import csv
import functools
import logging
import os
import shutil
import sys
import time
from pathlib import Path


def _device(name: str):
    from beenet.device import resolve_device

    return resolve_device(name)


def cmd_env(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    dev = _device(args.device)
    print(f"torch: {torch.__version__}")
    if dev.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(dev)} x{torch.cuda.device_count()}")
        print(f"cuda: {torch.version.cuda}")
        nccl = dist.is_nccl_available()
        raw = torch.cuda.nccl.version() if nccl else "-"
        version = ".".join(map(str, raw)) if isinstance(raw, tuple) else str(raw)
        print(f"nccl: {'available ' + version if nccl else 'NOT available'}")
        print(f"bf16: {'supported' if torch.cuda.is_bf16_supported() else 'not supported (amp=auto means fp16)'}")
        free, total = torch.cuda.mem_get_info(dev)
        print(f"gpu memory: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB")
    else:
        print(f"cpu: {os.cpu_count()} cores (no GPU: gloo instead of NCCL, mixed precision off)")
        print(f"gloo: {'available' if dist.is_gloo_available() else 'NOT available'}")
    shm = Path("/dev/shm")
    if shm.is_dir():
        print(f"/dev/shm free: {shutil.disk_usage(shm).free / 2**20:.0f} MiB")
    else:
        print("/dev/shm free: none (no /dev/shm)")
    return 0


def _config(args: argparse.Namespace, extra: list[str] = ()):
    from beenet.run_config import load_config

    return load_config(args.config, [*args.overrides, f"run.device={args.device}", *extra])


def _dataset(args: argparse.Namespace, cfg):
    """The training split of ``--data`` as training reads it (videos decoded on the fly)."""
    from beenet.context.build import load_context
    from beenet.data.bold import BoLD
    from beenet.data.dataset import BoLDDataset

    bold = BoLD(args.data)
    inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    ctx = (load_context(bold.video_paths(sorted({i.video for i in inst})), cfg.context, "cpu", root=bold.root)
           if cfg.context.source != "none" else None)
    return BoLDDataset(bold, inst, cfg.data, train=True, context=ctx, seed=0)


def _batch(ds, size: int, device) -> dict:
    """A training batch of ``size`` samples of ``ds`` (repeated when the split is shorter)."""
    from beenet.data.dataset import collate
    from beenet.device import to_device

    samples = [ds[i] for i in range(min(size, len(ds)))]
    return to_device(collate([samples[i % len(samples)] for i in range(size)]), device)


def _stepper(cfg, net, model, batch: dict, device):
    """One training step of ``net`` (``model`` or a wrapper of it) on ``batch``, as training does it:
    autocast forward, loss, backward (scaled with fp16), optimizer step; returns the loss."""
    import torch

    from beenet.device import autocast_context, resolve_amp
    from beenet.training.losses import compute_loss
    from beenet.training.optim import build_optimizer

    opt = build_optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=resolve_amp(cfg.run.amp, device) == "fp16")

    def step() -> float:
        with autocast_context(device, cfg.run.amp):
            loss, _ = compute_loss(net(batch), batch, cfg.loss)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    return step


def _step_rate(cfg, batch: dict, device, steps: int) -> tuple[float, float | None]:
    """(samples/s, peak GPU MiB per sample) of training steps on ``batch``."""
    import torch

    from beenet.models import build_model

    model = build_model(cfg.model, seed=0).to(device).train()
    step = _stepper(cfg, model, model, batch, device)

    cuda = device.type == "cuda"
    for _ in range(2):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize(device)
    rate = steps * int(batch["frames"].shape[0]) / (time.perf_counter() - t0)
    mem = torch.cuda.max_memory_allocated(device) / 2**20 / int(batch["frames"].shape[0]) if cuda else None
    return rate, mem


def cmd_sweep(args: argparse.Namespace) -> int:
    import torch

    device = _device(args.device)
    amps = [a for a in args.amps.split(",") if device.type == "cuda" or a == "off"]
    batches = [int(b) for b in args.batches.split(",")]
    cache: dict[int, dict] = {}
    ds = None
    print(f"{'batch':>5s} {'amp':>4s} {'chlast':>6s} {'samples/s':>10s} {'MiB/sample':>10s}")
    best = (0.0, "")
    for b in batches:
        for amp in amps:
            for cl in args.channels_last.split(","):
                cfg = _config(args, [f"run.amp={amp}", f"model.channels_last={'true' if cl == 'on' else 'false'}"])
                try:
                    if b not in cache:
                        ds = ds if ds is not None else _dataset(args, cfg)
                        cache[b] = _batch(ds, b, device)
                    rate, mem = _step_rate(cfg, cache[b], device, args.steps)
                except torch.OutOfMemoryError:
                    print(f"{b:5d} {amp:>4s} {cl:>6s} {'OOM':>10s} {'-':>10s}", flush=True)
                    torch.cuda.empty_cache()
                    continue
                print(f"{b:5d} {amp:>4s} {cl:>6s} {rate:10.1f} {'-' if mem is None else f'{mem:.1f}':>10s}",
                      flush=True)
                if rate > best[0]:
                    best = (rate, f"batch {b} amp {amp} channels_last {cl}")
    print(f"sweep best: {best[0]:.1f} samples/s ({best[1]})")
    return 0


class _Count(logging.Handler):
    """Counts (and keeps the first line of) the records of one of torch's artifact loggers."""

    def __init__(self, logger: str) -> None:
        super().__init__(logging.DEBUG)
        self.n = 0
        self.firsts: dict[str, int] = {}
        log = logging.getLogger(logger)
        log.addHandler(self)
        log.propagate = False  # counted here, not printed (TORCH_LOGS=graph_breaks,recompiles prints them)

    def emit(self, record: logging.LogRecord) -> None:
        self.n += 1
        try:
            first = next((ln.strip() for ln in record.getMessage().splitlines() if ln.strip()), "")[:160]
        except Exception:  # noqa: BLE001 - a message that does not format is still counted
            first = "?"
        self.firsts[first] = self.firsts.get(first, 0) + 1


def cmd_compile(args: argparse.Namespace) -> int:
    import torch
    import torch._dynamo.utils as dynamo_utils

    from beenet.training.loop import train

    if args.backend != "inductor":  # run.compile calls torch.compile(model): give it this backend
        torch.compile = functools.partial(torch.compile, backend=args.backend)
    torch._logging.set_logs(recompiles=True, graph_breaks=True)
    breaks = _Count("torch._dynamo.symbolic_convert.__graph_breaks")
    recompiles = _Count("torch._dynamo.guards.__recompiles")
    dynamo_utils.counters.clear()
    cfg = _config(args, ["run.compile=true", "optim.epochs=1"])
    t0 = time.perf_counter()
    train(cfg, args.data, args.out)
    seconds = time.perf_counter() - t0
    print(f"compile epoch: {seconds:.1f}s (backend {args.backend}, compilation included)")
    print(f"graph breaks: {breaks.n}")
    for first, n in sorted(breaks.firsts.items(), key=lambda kv: -kv[1])[:3]:
        print(f"  {n} x {first}")
    print(f"recompiles: {recompiles.n}")
    for first, n in sorted(recompiles.firsts.items(), key=lambda kv: -kv[1])[:3]:
        print(f"  {n} x {first}")
    print(f"graphs compiled: {dynamo_utils.counters['stats']['unique_graphs']}")
    return 0


def cmd_ddp(args: argparse.Namespace) -> int:
    """Under torchrun: torch's DDP over NCCL (gloo on CPU) around beenet's model, as
    ``training.setup.parallel_model`` wraps it, for a few steps; an all_reduce checked."""
    import torch
    import torch.distributed as dist

    from beenet.models import build_model
    from beenet.training.setup import unused_parameters

    device = _device(args.device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    try:
        world = dist.get_world_size()
        probe = torch.ones(1, device=device)
        dist.all_reduce(probe)
        if int(probe.item()) != world:
            print(f"ddp: all_reduce gave {probe.item()} on {world} process(es)")
            return 1
        cfg = _config(args, ["run.amp=auto"])
        ds = _dataset(args, cfg)
        model = build_model(cfg.model, seed=0).to(device).train()
        unused = unused_parameters(model, ds, cfg, device)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=bool(unused))
        step = _stepper(cfg, net, model, _batch(ds, int(cfg.optim.batch_size), device), device)
        losses = [float(step()) for _ in range(max(2, args.steps))]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ok = all(torch.isfinite(torch.tensor(losses)).tolist())
        print(f"ddp: backend {backend}, world size {world}, all_reduce ok, {len(losses)} steps, "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}{'' if ok else ' (NOT finite)'}")
        return 0 if ok else 1
    finally:
        dist.destroy_process_group()


def cmd_interrupt(args: argparse.Namespace) -> int:
    """``beenet train`` for ``--epochs`` epochs stopped after the first, as an interruption would
    (``train(stop_after_epoch=0)``): ``beenet train --resume`` then finishes it."""
    from beenet.training.loop import train

    cfg = _config(args, [f"optim.epochs={args.epochs}"])
    train(cfg, args.data, args.out, stop_after_epoch=0)
    print(f"interrupted after epoch 1 of {args.epochs}: {args.out}")
    return 0


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(fh)]


def cmd_compare(args: argparse.Namespace) -> int:
    a, b = _rows(Path(args.run_a)), _rows(Path(args.run_b))
    if len(a) != len(b):
        print(f"resume vs rerun: DIFFER ({len(a)} vs {len(b)} epochs)")
        return 1
    worst, where = 0.0, ""
    for ra, rb in zip(a, b):
        for k in ra:
            try:
                d = abs(float(ra[k]) - float(rb[k]))
            except ValueError:
                d = 0.0 if ra[k] == rb[k] else float("inf")
            if d > worst:
                worst, where = d, f"epoch {ra.get('epoch')} {k}"
    verdict = "identical" if worst == 0 else ("close" if worst <= args.tolerance else "DIFFER")
    print(f"resume vs rerun: {verdict} over {len(a)} epochs (max |diff| {worst:.3g}{' at ' + where if where else ''})")
    return 0 if worst <= args.tolerance else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    env = sub.add_parser("env")
    env.add_argument("--device", default="cuda")
    for name in ("sweep", "compile", "ddp", "interrupt"):
        p = sub.add_parser(name)
        p.add_argument("--device", default="cuda")
        p.add_argument("--data", required=True)
        p.add_argument("--config", default="paper")
        p.add_argument("--set", dest="overrides", action="append", default=[])
        if name == "sweep":
            p.add_argument("--batches", default="8,32,128")
            p.add_argument("--amps", default="off,bf16")
            p.add_argument("--channels-last", default="off,on")
            p.add_argument("--steps", type=int, default=10)
        elif name == "ddp":
            p.add_argument("--steps", type=int, default=10)
        elif name == "interrupt":
            p.add_argument("--out", required=True)
            p.add_argument("--epochs", type=int, default=2)
        else:
            p.add_argument("--out", required=True)
            p.add_argument("--backend", default="inductor",
                           help="torch.compile backend (eager: dynamo only, no code generation; the graph "
                                "breaks and recompiles are dynamo's, the same for every backend)")
    cmp = sub.add_parser("compare")
    cmp.add_argument("run_a")
    cmp.add_argument("run_b")
    cmp.add_argument("--tolerance", type=float, default=0.0,
                     help="largest |difference| still accepted (0: bit-exact, as on CPU)")
    args = ap.parse_args(argv)
    os.environ.setdefault("BEENET_NO_PROGRESS", "1")
    logging.basicConfig(level=logging.WARNING)
    commands = {"env": cmd_env, "sweep": cmd_sweep, "compile": cmd_compile, "ddp": cmd_ddp,
                "interrupt": cmd_interrupt, "compare": cmd_compare}
    return commands[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
