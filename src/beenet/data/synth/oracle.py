"""How much the context is needed: the generator's own upper bounds, scored with the BoLD metric.

The rules (:mod:`beenet.data.synth.rules`) give the expected soft scores of every instance
exactly. Two oracles predict them: one that knows the body archetype, the scene and the objects
(``body_context``), and one that knows the body only (``body_only``: the expected scores averaged
over the plan's instances of the same archetype). Both are scored by
:func:`beenet.metrics.bold_scores`, the metric every other number in beenet comes from, so the
oracle rows of a report compare with the model's rows directly.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from beenet.data.synth.plan import SynthPlan
from beenet.data.synth.poses import ARCHETYPES
from beenet.data.synth.rules import (
    EMOTION_TABLE,
    GROUP_CONFUSION,
    SCENE_NAMES,
    VOTE_IN_GROUP,
    archetype_groups,
    cell_weights,
    vad_from_scores,
    vote_probabilities,
)
from beenet.labels import CATEGORIES
from beenet.metrics import HEADLINE_KEYS, binarize_categories, bold_scores, format_headline

#: The oracles of :func:`oracle_predictions`, with the label :func:`format_report` prints.
ORACLES: dict[str, str] = {"body_context": "body + context", "body_only": "body only"}


def expected_scores(archetype: str, scene: str, objects: list[str]) -> np.ndarray:
    """E[soft category scores | body archetype, scene, objects] under the generator's rules."""
    group = EMOTION_TABLE[archetype][scene]
    others = [g for g in archetype_groups(archetype) if g != group]
    p_in = float(np.mean(VOTE_IN_GROUP))
    e = (1.0 - GROUP_CONFUSION) * vote_probabilities(group, objects, p_in)
    for g in others:
        e += GROUP_CONFUSION / len(others) * vote_probabilities(g, objects, p_in)
    return e


def group_accuracy_rules() -> dict[str, float]:
    """Exact Bayes-optimal accuracy of naming the group the annotators saw, under the rules' own
    distribution (label noise included): from the body archetype alone, and from body + scene."""
    cells = cell_weights()
    body = 0.0
    for i, a in enumerate(ARCHETYPES):
        groups = archetype_groups(a)
        others = max(1, len(groups) - 1)
        # P(perceived = g | a) for every group the archetype can express
        p = Counter()
        for j, s in enumerate(SCENE_NAMES):
            true = EMOTION_TABLE[a][s]
            for g in groups:
                p[g] += cells[i, j] * ((1.0 - GROUP_CONFUSION) if g == true else GROUP_CONFUSION / others)
        body += max(p.values())
    return {"body_only": float(body), "body_scene": 1.0 - GROUP_CONFUSION}


def oracle_targets(plan: SynthPlan) -> tuple[np.ndarray, np.ndarray]:
    """The ground truth of ``plan.instances()``: soft categories ``[N, 26]`` and VAD ``[N, 3]``."""
    inst = plan.instances()
    return np.array([p.categories for _, p in inst]), np.array([p.vad for _, p in inst])


def oracle_predictions(plan: SynthPlan) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each oracle's (category scores ``[N, 26]``, VAD ``[N, 3]``) for ``plan.instances()``."""
    inst = plan.instances()
    ctx = np.array([expected_scores(p.archetype, c.scene, [o.name for o in c.objects]) for c, p in inst])
    arch = np.array([ARCHETYPES.index(p.archetype) for _, p in inst])
    body = np.zeros_like(ctx)
    for k in range(len(ARCHETYPES)):
        if (arch == k).any():
            body[arch == k] = ctx[arch == k].mean(axis=0)
    scores = {"body_context": ctx, "body_only": body}
    return {name: (e, np.clip(vad_from_scores(e), 1.0, 10.0)) for name, e in scores.items()}


def oracle_report(plan: SynthPlan) -> dict[str, Any]:
    """How far a body-only model can go, and how far one that also sees the context can.

    * ``group_accuracy``: Bayes-optimal accuracy of naming the emotion group the annotators saw,
      from the body archetype alone vs from archetype + scene: exact under the rules
      (``rules``, see :func:`group_accuracy_rules`) and measured on this plan's instances;
    * ``ambiguous_fraction``: instances whose archetype maps to more than one group;
    * ``oracle``: the headline BoLD scores (mAP, mRA, mR2, ERS of :func:`beenet.metrics.bold_scores`
      on all instances, test included) of each of :func:`oracle_predictions`' oracles.
    """
    inst = plan.instances()
    if not inst:
        return {}
    cells = cell_weights()
    best_body = {}
    for i, a in enumerate(ARCHETYPES):
        mass = Counter()
        for j, s in enumerate(SCENE_NAMES):
            mass[EMOTION_TABLE[a][s]] += cells[i, j]
        best_body[a] = mass.most_common(1)[0][0]

    categories, vad = oracle_targets(plan)
    oracle = {}
    for name, (cat_pred, vad_pred) in oracle_predictions(plan).items():
        scores = bold_scores(cat_pred, categories, vad_pred, vad)
        oracle[name] = {k: scores[k] for k in HEADLINE_KEYS}
    y = binarize_categories(categories)
    return {
        "instances": len(inst),
        "ambiguous_fraction": float(np.mean([len(archetype_groups(p.archetype)) > 1 for _, p in inst])),
        "group_accuracy": {
            "body_only": float(np.mean([p.perceived == best_body[p.archetype] for _, p in inst])),
            "body_scene": float(np.mean([p.perceived == p.group for _, p in inst])),
            "rules": group_accuracy_rules(),
        },
        "oracle": oracle,
        "positive_rate": {c: float(y[:, k].mean()) for k, c in enumerate(CATEGORIES)},
    }


def format_report(report: dict[str, Any]) -> str:
    """The oracle report as a few readable lines."""
    if not report:
        return "no annotated instances"
    g, o = report["group_accuracy"], report["oracle"]
    lines = [
        f"instances: {report['instances']}, ambiguous from the body alone: {report['ambiguous_fraction']:.0%}",
        f"emotion group, Bayes-optimal accuracy: body only {g['body_only']:.3f} "
        f"(rules: {g['rules']['body_only']:.3f}), body + scene {g['body_scene']:.3f} "
        f"(rules: {g['rules']['body_scene']:.3f})",
    ]
    for name, label in ORACLES.items():
        lines.append(f"oracle, {label:<14}  {format_headline(o[name], digits=3)}")
    rates = report["positive_rate"]
    rare = min(rates, key=rates.get)
    lines.append(f"rarest category: {rare} ({rates[rare]:.1%} positive)")
    return "\n".join(lines)
