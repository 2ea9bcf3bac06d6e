"""What an ablation run is scored on, and the numbers reported beside the headline.

- **Selection and scoring** (``docs/ablations.md``): every run selects ``best.pt`` on its val split
  (the training loop does); the ablation scores it on the held-out split of the protocol,
  :func:`held_out_split`: ``test`` under ``paper`` / ``paper-video``, where the split is ours and
  the test labels are known; ``val`` under ``official`` (BoLD withholds the test labels), where the
  number is then "selected and scored on val".
- **BatchNorm statistics** (``docs/method.md`` 2.7, ``docs/ablations.md`` section 5): a run trained
  with ``run.bn_recalibrate: 0`` (the ``paper`` preset, as the authors) keeps the running averages
  of training in its checkpoint; after a shortened run they can still lean on the init. The
  headline is the checkpoint as saved (the model that was selected); :func:`recalibrated_copy`
  gives the same weights with precise-BN statistics, scored beside it (``*_bn_recal`` columns).
  A run that recalibrated while training already holds recalibrated statistics: nothing is added.
- **Sign of the linear Eq. 16** (``docs/method.md`` 2.6.3): :func:`negative_share` is the share of
  category scores below 0 (a negative raw output z scaled by a larger prior ranks lower).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from beenet.data.dataset import BoLDDataset, collate, frame_level
from beenet.models.batchnorm import recalibrate_batchnorm
from beenet.device import to_device

log = logging.getLogger(__name__)

#: Training batches of the precise-BN pass scored beside a ``bn_recalibrate: 0`` run's headline.
RECAL_BATCHES = 25


def held_out_split(protocol: str) -> str:
    """The split an ablation scores on: ``test`` where the protocol's test labels are known."""
    return "val" if protocol == "official" else "test"


def selection_note(split: str) -> str:
    """How a number on ``split`` was obtained (``best.pt`` is always selected on val)."""
    return "selected on val, scored on test" if split == "test" else "selected and scored on val"


def negative_share(categories: np.ndarray) -> float:
    """Share of the category scores below 0 (only a ``linear`` Eq. 16 or plain ``linear`` head makes
    any; the sign flip of a per-sample prior, ``docs/method.md`` 2.6.3)."""
    cat = np.asarray(categories, dtype=np.float64)
    return float((cat < 0).mean()) if cat.size else float("nan")


def recalibrated_copy(model: torch.nn.Module, cfg: Any, bold: Any, train_instances: list[Any],
                      context: dict[str, np.ndarray] | None, device: torch.device,
                      batches: int = RECAL_BATCHES) -> torch.nn.Module:
    """A copy of ``model`` with every BatchNorm's statistics recomputed over ``batches`` training
    batches (training sampling, a fixed subset for ``run.seed``); ``model`` is left as it is."""
    bs = max(int(cfg.optim.batch_size), 2)
    ds = BoLDDataset(bold, list(train_instances), cfg.data, train=True, context=context, seed=cfg.run.seed)
    order = np.random.default_rng([cfg.run.seed, 9001]).permutation(len(ds))
    subset = Subset(ds, order[: batches * bs].tolist())
    loader = DataLoader(subset, batch_size=bs, shuffle=False, collate_fn=collate, drop_last=len(subset) > bs,
                        num_workers=0, generator=torch.Generator().manual_seed(cfg.run.seed))
    twin = copy.deepcopy(model)
    with torch.random.fork_rng():
        used = recalibrate_batchnorm(twin, loader, batches, lambda m, b: m(to_device(b, device)))
    log.info("BatchNorm statistics recomputed over %d training batches for the recalibrated score", used)
    return twin.eval()


def recalibrated_checkpoint_scores(checkpoint: Any, data_dir: Any, split: str = "val", device: Any = "cpu",
                                   batch_size: int = 16) -> dict[str, Any]:
    """The headline scores of ``checkpoint`` on ``split`` of its own protocol with BatchNorm
    statistics recalibrated over :data:`RECAL_BATCHES` training batches (``beenet train --epochs``
    of a ``run.bn_recalibrate: 0`` run prints them beside the stored-statistics headline)."""
    from beenet.artifacts.loader import load_model  # lazy: the ablation runner's imports stay as they were
    from beenet.data.bold import BoLD  # lazy: as above
    from beenet.device import resolve_device  # lazy: as above
    from beenet.evaluation.evaluate import load_split_context, predict_split  # lazy: as above
    from beenet.metrics import bold_scores, headline  # lazy: as above
    from beenet.run_config import RunConfig, model_needs_input_context  # lazy: as above

    dev = resolve_device(device)
    model, ckpt = load_model(checkpoint, dev)
    cfg = RunConfig.from_dict(ckpt["config"])
    bold = BoLD(data_dir)
    train_inst = bold.instances("train", protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    insts = bold.instances(split, protocol=cfg.run.protocol, seed=cfg.run.split_seed)
    needs = model_needs_input_context(cfg.model)
    twin = recalibrated_copy(model, cfg, bold, train_inst,
                             load_split_context(cfg, bold, train_inst, dev) if needs else None, dev)
    cat, vad = predict_split(twin, bold, insts, cfg.data,
                             load_split_context(cfg, bold, insts, dev) if needs else None, batch_size, dev,
                             desc=f"{split} (recalibrated BN)")
    cat_t, vad_t = np.stack([i.categories for i in insts]), np.stack([i.vad for i in insts])
    return headline(bold_scores(cat, frame_level(cat_t, len(cat)), vad, frame_level(vad_t, len(vad))))
