"""Training throughput: the whole pipeline against the model alone, and the cost of a context expert.

1. Samples/s of training through the whole pipeline (BoLDDataset decode + transforms, DataLoader
   workers, model forward + backward + step) against the same model's forward + backward + step on
   batches already in memory, in the same run. The ratio says how much the data side costs
   (target >= 0.85 once the context labels are cached: the loader should hide behind the model).
2. First- vs second-epoch time of a run whose context comes from an expert that must be run
   (Places365 ResNet-18 with random weights, so nothing is downloaded): the first epoch pays for
   labelling every clip, the second reads the on-disk cache.

Usage:
  python benchmarks/bench_train.py                       # 96 synthetic clips, demo config
  python benchmarks/bench_train.py --clips 200 --workers 2 --set data.image_size=96
  python benchmarks/bench_train.py --device cuda         # paper + video presets, prepared cache,
                                                         # amp off/auto x channels_last off/on
  python benchmarks/bench_train.py --device cpu --clips 24 --steps 4 --set data.image_size=64
The machine it runs on matters: say which, and whether it was shared, with the numbers.

3. ``--device cuda|cpu``: for the paper and video presets, on data prepared with ``beenet
   prepare`` (context from the synthetic sidecar, so no expert runs), samples/s of the whole
   pipeline (prepared-cache loader with ``run.num_workers`` workers, host-to-device copy, autocast
   forward + backward + step, as in training) against pure compute (one batch already on the
   device, repeated), with mixed precision off and ``auto`` (CUDA only) and channels_last off and
   on; the ratio's target is >= 0.9. Each measurement times ``--steps`` steps after 3 warm-up steps.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def _pipeline_vs_model(data: Path, cfg, steps: int) -> dict[str, float]:
    from beenet.context.build import load_context
    from beenet.data.bold import BoLD
    from beenet.data.dataset import BoLDDataset
    from beenet.models import build_model
    from beenet import distributed as D
    from beenet.training.loader import make_train_loader
    from beenet.training.loop import fit_model_priors
    from beenet.training.losses import compute_loss
    from beenet.training.optim import build_optimizer

    bold = BoLD(data)
    inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    ctx = (load_context(bold.video_paths(sorted({i.video for i in inst})), cfg.context, "cpu", root=bold.root)
           if cfg.context.source != "none" else None)
    model = build_model(cfg.model, seed=0)
    fit_model_priors(model, inst, ctx)
    model.train()
    opt = build_optimizer(model, cfg)
    ds = BoLDDataset(bold, inst, cfg.data, train=True, context=ctx, seed=0)
    sampler = D.make_train_sampler(ds, 0, D.DistInfo())
    loader = make_train_loader(ds, cfg.optim.batch_size, sampler, cfg.run.num_workers, torch.device("cpu"), 0)

    def step(batch):
        out = model(batch)
        loss, _ = compute_loss(out, batch, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # Whole pipeline: iterate the loader as training does; the first batch (worker start) is warm-up.
    kept: list[dict] = []
    n_samples, t0, done = 0, None, 0
    epoch = 0
    while done < steps + 1:
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)
        for batch in loader:
            if len(kept) < 4:
                kept.append(batch)
            step(batch)
            if done == 0:
                t0 = time.perf_counter()
            else:
                n_samples += int(batch["frames"].shape[0])
            done += 1
            if done >= steps + 1:
                break
        epoch += 1
    pipe = n_samples / (time.perf_counter() - t0)

    # Model alone on batches already in memory, same number of steps.
    step(kept[0])
    t0 = time.perf_counter()
    n_model = 0
    for i in range(steps):
        b = kept[i % len(kept)]
        step(b)
        n_model += int(b["frames"].shape[0])
    model_only = n_model / (time.perf_counter() - t0)
    return {"pipeline": pipe, "model": model_only, "ratio": pipe / model_only}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _preset_pipeline_vs_compute(data: Path, cfg, device: torch.device, steps: int, prepared_root: Path
                                ) -> dict[str, float]:
    """Pipeline (prepared-cache loader + step) vs pure compute (one batch on the device, repeated)."""
    from beenet.context.build import load_context
    from beenet.data.bold import BoLD
    from beenet.data.dataset import BoLDDataset
    from beenet.data.prepared import find_prepared
    from beenet.run_config import prepare_settings
    from beenet.device import autocast_context, resolve_amp, to_device
    from beenet.models import build_model
    from beenet import distributed as D
    from beenet.training.loader import make_train_loader
    from beenet.training.loop import fit_model_priors
    from beenet.training.losses import compute_loss
    from beenet.training.optim import build_optimizer

    bold = BoLD(data)
    inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    videos = sorted({i.video for i in inst})
    cache = find_prepared(prepare_settings(cfg), bold, videos, root=prepared_root)
    if cache is None:
        raise SystemExit("no prepared cache matched the config: the benchmark would measure mp4 decoding")
    ctx = cache.context(videos)
    if ctx is None:
        ctx = load_context(bold.video_paths(videos), cfg.context, "cpu", root=bold.root)
    model = build_model(cfg.model, seed=0)
    fit_model_priors(model, inst, ctx)
    model = model.to(device).train()
    opt = build_optimizer(model, cfg)
    amp = resolve_amp(cfg.run.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    ds = BoLDDataset(bold, inst, cfg.data, train=True, context=ctx, seed=0, frames=cache.frames())
    sampler = D.make_train_sampler(ds, 0, D.DistInfo())
    loader = make_train_loader(ds, cfg.optim.batch_size, sampler, cfg.run.num_workers, device, 0)

    def step(batch):
        with autocast_context(device, cfg.run.amp):
            loss, _ = compute_loss(model(batch), batch, cfg.loss)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    warm = 3
    done, n, t0, first = 0, 0, 0.0, None
    epoch = 0
    while done < warm + steps:
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)
        for batch in loader:
            batch = to_device(batch, device)
            if first is None:
                first = batch
            step(batch)
            done += 1
            if done == warm:
                _sync(device)
                t0 = time.perf_counter()
            elif done > warm:
                n += int(batch["frames"].shape[0])
            if done >= warm + steps:
                break
        epoch += 1
    _sync(device)
    pipe = n / (time.perf_counter() - t0)
    del loader  # stop its workers before timing the model alone

    for _ in range(warm):
        step(first)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(first)
    _sync(device)
    compute = steps * int(first["frames"].shape[0]) / (time.perf_counter() - t0)
    return {"pipeline": pipe, "compute": compute, "ratio": pipe / compute, "amp": amp}


def _device_table(args, device: torch.device) -> None:
    from beenet.data.prepared import prepare
    from beenet.data.synth import SynthConfig, generate
    from beenet.run_config import load_config, prepare_settings

    amps = ["off", "auto"] if device.type == "cuda" else ["off"]
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        print(f"device {device}: {name}, bf16 supported: {torch.cuda.is_bf16_supported()}")
    else:
        print(f"device cpu ({os.cpu_count()} CPUs, {torch.get_num_threads()} threads): mixed precision is off on CPU")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        generate(work / "synth", SynthConfig(num_clips=args.clips, seed=0), show_progress=False)
        print(f"{'preset':7s} {'amp':5s} {'chlast':6s} {'pipeline/s':>10s} {'compute/s':>10s} {'ratio':>6s}")
        for preset in ("paper", "video"):
            base = ["model.pretrained=false", "context.source=sidecar", "context.pretrained=false",
                    f"run.device={device}", f"run.num_workers={args.workers}", *args.overrides]
            cfg = load_config(preset, base)
            res = prepare(prepare_settings(cfg), work / "synth", work / "prepared", workers=max(1, args.workers),
                          show_progress=False)
            print(f"# {preset}: image {cfg.data.image_size}, {cfg.data.sampling}, T={cfg.data.frames_per_sample}, "
                  f"batch {cfg.optim.batch_size}, workers {args.workers}; prepared {res.clips} clips "
                  f"in {res.seconds:.1f}s")
            for amp in amps:
                for cl in ("false", "true"):
                    c = load_config(preset, base + [f"run.amp={amp}", f"model.channels_last={cl}"])
                    r = _preset_pipeline_vs_compute(work / "synth", c, device, args.steps, work / "prepared")
                    print(f"{preset:7s} {r['amp']:5s} {cl:6s} {r['pipeline']:10.1f} {r['compute']:10.1f} "
                          f"{r['ratio']:6.2f}", flush=True)
        print("target: ratio >= 0.9")


def _expert_epochs(data: Path, cfg_name: str, overrides: list[str], work: Path) -> dict[str, float]:
    from beenet.run_config import load_config
    from beenet.training.loop import train

    cfg = load_config(cfg_name, overrides + [
        "context.source=places365", "context.pretrained=false", f"context.cache_dir={work / 'cache'}",
        "context.frames_per_clip=3", "model.fusion_context=input", "model.object_stream=false",
        "optim.epochs=2",
    ])
    t0 = time.perf_counter()
    train(cfg, data, work / "expert-run")
    total = time.perf_counter() - t0
    with open(work / "expert-run" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    e1, e2 = float(rows[0]["time_s"]), float(rows[1]["time_s"])
    setup = total - e1 - e2  # labelling every clip with the expert (cache empty) + building the model
    # A second run with the cache warm: its setup no longer labels anything.
    t0 = time.perf_counter()
    train(load_config(cfg_name, overrides + [
        "context.source=places365", "context.pretrained=false", f"context.cache_dir={work / 'cache'}",
        "context.frames_per_clip=3", "model.fusion_context=input", "model.object_stream=false",
        "optim.epochs=1"]), data, work / "expert-run-warm")
    warm_total = time.perf_counter() - t0
    with open(work / "expert-run-warm" / "metrics.csv", newline="") as fh:
        warm_e1 = float(list(csv.DictReader(fh))[0]["time_s"])
    return {"first_epoch": setup + e1, "second_epoch": e2, "cold_setup": setup,
            "warm_setup": warm_total - warm_e1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=96)
    ap.add_argument("--config", default="demo")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the pipeline measurement")
    ap.add_argument("--steps", type=int, default=12, help="timed training steps of each measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--skip-expert", action="store_true")
    ap.add_argument("--device", choices=["cuda", "cpu"], default=None,
                    help="measure the paper and video presets on this device (section 3 of the docstring)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("BEENET_NO_PROGRESS", "1")
    logging.basicConfig(level=logging.WARNING)
    if args.device is not None:
        from beenet.device import resolve_device

        _device_table(args, resolve_device(args.device))
        return 0

    from beenet.data.synth import SynthConfig, generate
    from beenet.run_config import load_config

    overrides = ["model.pretrained=false", "run.device=cpu", f"run.num_workers={args.workers}", *args.overrides]
    cfg = load_config(args.config, overrides)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"config {args.config} (image {cfg.data.image_size}, {cfg.data.sampling}, T={cfg.data.frames_per_sample}, "
          f"batch {cfg.optim.batch_size}, workers {args.workers})")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        generate(work / "synth", SynthConfig(num_clips=args.clips, seed=0), show_progress=False)
        print(f"synthesised {args.clips} clips in {time.perf_counter() - t0:.1f}s")
        r = _pipeline_vs_model(work / "synth", cfg, args.steps)
        print(f"training, whole pipeline : {r['pipeline']:7.1f} samples/s")
        print(f"training, model only     : {r['model']:7.1f} samples/s (batches already in memory)")
        print(f"ratio pipeline / model   : {r['ratio']:7.2f}   (target >= 0.85)")
        if not args.skip_expert:
            e = _expert_epochs(work / "synth", args.config, overrides, work)
            print(f"expert context (places365, random weights, {args.clips} clips, cache empty then warm):")
            print(f"  first epoch  {e['first_epoch']:7.1f}s  (of which labelling + setup {e['cold_setup']:.1f}s)")
            print(f"  second epoch {e['second_epoch']:7.1f}s")
            print(f"  a new run with the cache warm: setup {e['warm_setup']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
