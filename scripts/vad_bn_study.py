"""Val mR2 / mAP of trained checkpoints with their stored BatchNorm statistics and after
``beenet.models.batchnorm.recalibrate_batchnorm`` on training batches (docs/ablations.md, "VAD
after a short run").

    python scripts/vad_bn_study.py DATA RUN [RUN ...] [--batches 50]

RUN is a ``beenet train`` run directory (its last.pt is read). Prints one line per run and the
mean +- std (ddof 1) over the runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader


def main() -> None:
    from beenet.data.bold import BoLD
    from beenet.data.dataset import BoLDDataset, collate
    from beenet.evaluation.evaluate import load_split_context, predict_split
    from beenet.metrics import bold_scores
    from beenet.models.batchnorm import recalibrate_batchnorm
    from beenet.artifacts.loader import load_model
    from beenet.run_config import RunConfig, model_needs_input_context

    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--batches", type=int, default=50)
    args = ap.parse_args()
    dev = torch.device("cpu")
    bold = BoLD(args.data)
    table: dict[str, list[tuple[float, float]]] = {"stored BN": [], "recalibrated BN": []}
    for run in args.runs:
        model, ckpt = load_model(Path(run) / "last.pt", dev)
        cfg = RunConfig.from_dict(ckpt["config"])
        val = bold.instances("val", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
        train = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
        need_ctx = model_needs_input_context(cfg.model)
        val_ctx = load_split_context(cfg, bold, val, dev) if need_ctx else None
        train_ctx = load_split_context(cfg, bold, train, dev) if need_ctx else None
        cat_t, vad_t = np.stack([i.categories for i in val]), np.stack([i.vad for i in val])
        line = [f"{run} (checkpoint epoch index {ckpt.get('epoch')})"]
        for tag in table:
            if tag == "recalibrated BN":
                ds = BoLDDataset(bold, train, cfg.data, train=True, context=train_ctx, seed=0)
                loader = DataLoader(ds, batch_size=cfg.optim.batch_size, shuffle=True, collate_fn=collate,
                                    generator=torch.Generator().manual_seed(0))
                recalibrate_batchnorm(model, loader, args.batches)
            cat, vad = predict_split(model, bold, val, cfg.data, val_ctx, 32, dev, desc=tag)
            s = bold_scores(cat, cat_t, vad, vad_t)
            table[tag].append((s["mR2"], s["mAP"]))
            line.append(f"{tag}: mR2 {s['mR2']:.4g} mAP {s['mAP']:.3f}")
        print("  ".join(line))
    for tag, rows in table.items():
        r2, m_ap = np.array(rows).T
        sd = r2.std(ddof=1) if len(r2) > 1 else float("nan")
        print(f"{tag}: mR2 {r2.mean():.4g} +- {sd:.4g}  mAP {m_ap.mean():.3f}  (n={len(r2)})")


if __name__ == "__main__":
    main()
