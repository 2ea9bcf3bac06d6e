"""How much should rare contexts be shrunk toward the marginal? (``docs/method.md`` section 2.5)

Fits the priors on the train part of the paper split (context from the run config's source, the
sidecar on synthetic data) for several pseudo-counts m, and scores the context alone on the
held-out val + test parts: the per-sample prior p^(x) of the ``beenet`` fusion (max over contexts)
as category scores (mAP, mRA), and the VAD from context (``vad_context_pool``: probability, mean,
or the older max) as VAD predictions (mR2). No training: a minute on 2 CPU cores.

    python benchmarks/prior_pseudocount.py synth300 --seeds 42 43 44
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from beenet.data.bold import BoLD
from beenet.evaluation.evaluate import load_split_context
from beenet.metrics import bold_scores, headline
from beenet.models.fusion import BEENetFusion, ContextPriors
from beenet.run_config import load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--config", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--counts", type=float, nargs="+", default=[0, 1, 3, 10, 30, 100])
    args = ap.parse_args()
    cfg = load_config(args.config)
    bold = BoLD(args.data)
    rows: dict[tuple[str, float], list[dict]] = {}
    for seed in args.seeds:
        train = bold.instances("train", protocol="paper", seed=seed)
        held = bold.instances("val", protocol="paper", seed=seed) + bold.instances("test", protocol="paper", seed=seed)
        ctx = load_split_context(cfg, bold, train + held)

        def stack(insts, what):
            return torch.from_numpy(np.stack([np.asarray(getattr(i, what) if what != "ctx" else ctx[i.video],
                                                         dtype=np.float32) for i in insts]))

        c_tr, y_tr, v_tr = stack(train, "ctx"), stack(train, "categories"), stack(train, "vad")
        c_te, y_te, v_te = stack(held, "ctx"), stack(held, "categories"), stack(held, "vad")
        for m in args.counts:
            pr = ContextPriors(c_tr.shape[1], pseudocount=m)
            pr.fit(c_tr, y_tr, v_tr)
            for vad_pool in ("probability", "mean", "context_pool"):
                f = BEENetFusion(8, pool="max", vad_pool=vad_pool)
                with torch.no_grad():
                    prior = f.prior(c_te, pr)
                    vad = pr.vad_mean + pr.vad_std * f.context_vad(c_te, pr)
                sc = headline(bold_scores(prior.numpy(), y_te.numpy(), vad.numpy(), v_te.numpy()))
                rows.setdefault((vad_pool, m), []).append(sc)
    print(f"held-out val+test of the paper split, seeds {args.seeds}; the context alone (no network)")
    print("| m | mAP (prior) | mRA (prior) | mR2 VAD probability | mR2 VAD mean | mR2 VAD max (older) |")
    print("|---|---|---|---|---|---|")
    for m in args.counts:
        def ms(pool, key):
            x = np.array([r[key] for r in rows[(pool, m)]], dtype=float)
            return f"{x.mean():.3f} ± {x.std(ddof=1) if len(x) > 1 else 0:.3f}"
        print(f"| {m:g} | {ms('probability', 'mAP')} | {ms('probability', 'mRA')} | {ms('probability', 'mR2')} "
              f"| {ms('mean', 'mR2')} | {ms('context_pool', 'mR2')} |")


if __name__ == "__main__":
    main()
