"""Ablation studies: variants x seeds x split seeds, each trained on the same budget, selected on
val and scored on the held-out split (test under the paper protocols; :mod:`~beenet.ablation.scoring`).

Studies (``docs/training.md``):

- ``paper``: the paper's ablation table. Emotion stream only; + place; + object; + both with
  concatenation; + both with probabilistic pooling (``camode`` gate per sample, the authors'
  global gate ``camode-scaffold``, the ``beenet`` per-sample form).
- ``pooling``: ``docs/pooling.md``'s protocol, one site at a time with everything else fixed: site
  a (over frames) over every pooling kind, site c (over contexts) over every ``model.context_pool``
  choice, site b (over joints and time) when the skeleton stream is on; every run is also scored
  under stress: distractor frames (25% and 50% of each clip's frames replaced at test time by
  frames of other instances) and one context source dropped at test time.
- ``streams``: whole frame; + body crop; + skeleton; all.

Layout of ``out``: ``runs/<variant>/seed<k>/`` (``split<s>-seed<k>/`` for the other split seeds) (a normal run directory plus ``result.json``),
``results.csv`` (one row per run and stress setting), ``summary.csv`` and ``summary.md`` (mean and
std over seeds). A run with a ``result.json`` is skipped, an unfinished one resumes from its
``last.pt``: interrupting and re-running the same command continues the study.

One module per part: :mod:`~beenet.ablation.studies` (what runs),
:mod:`~beenet.ablation.stress` (the test-time stress settings),
:mod:`~beenet.ablation.timing` (latency), :mod:`~beenet.ablation.runner`
(training and scoring, resumable) and :mod:`~beenet.ablation.report` (the tables).
"""

from __future__ import annotations

from beenet.ablation.report import RESULT_FIELDS, TABLE_KEYS, summarise, summary_markdown
from beenet.ablation.runner import evaluate_run, run_ablation
from beenet.ablation.stress import Stress, distractor_hook, drop_context_input
from beenet.ablation.studies import (
    CONTEXT_POOL_SITE_C,
    STUDIES,
    Study,
    Variant,
    make_study,
    pool_kinds,
    stresses_for,
    variant_config,
)
from beenet.ablation.timing import dummy_batch, latency_ms

__all__ = [
    "CONTEXT_POOL_SITE_C", "RESULT_FIELDS", "STUDIES", "TABLE_KEYS", "Stress", "Study", "Variant",
    "distractor_hook", "drop_context_input", "dummy_batch", "evaluate_run", "latency_ms", "make_study",
    "pool_kinds", "run_ablation", "stresses_for", "summarise", "summary_markdown", "variant_config",
]
