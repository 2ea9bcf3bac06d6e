"""The BoLD metric: mAP, mRA (ROC AUC), mR2 and ERS, with per-category and per-dimension detail.

The de-facto reference is scikit-learn (``average_precision_score``, ``roc_auc_score``,
``r2_score``), which the best published BoLD code uses. scikit-learn is not a runtime dependency of
beenet, so the same definitions are implemented here in numpy (float64) and the tests check them
against scikit-learn to 1e-6, ties included.

Ground-truth categories are binarised at ``labels.POSITIVE_THRESHOLD`` (>= 0.5) by
:func:`binarize_categories`, the only place in beenet that does so. A category without a positive
or without a negative in the evaluated set has no defined AP/AUC: it is excluded from the means and
listed in ``excluded_categories``, never counted as 0 or 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from beenet.errors import PredictionsError
from beenet.labels import CATEGORIES, NUM_CATEGORIES, NUM_VAD, POSITIVE_THRESHOLD, VAD_NAMES

log = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor

#: The headline keys of :func:`bold_scores`, in the order reports print them.
HEADLINE_KEYS: tuple[str, ...] = ("mAP", "mRA", "mR2", "ERS")


def format_headline(scores: Mapping[str, Any] | None, *, digits: int = 4, sep: str = "  ",
                    keys: Sequence[str] = HEADLINE_KEYS) -> str:
    """``"mAP 0.1234  mRA 0.5678  mR2 0.0123  ERS 0.3012"``; ``n/a`` for a key that is missing or
    None (a metric undefined on the split). Every log line, report title and CLI summary that
    prints the headline calls this, so they all read the same."""
    scores = scores or {}
    return sep.join(f"{k} {'n/a' if scores.get(k) is None else format(float(scores[k]), f'.{digits}f')}"
                    for k in keys)


def headline(scores: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The headline part of :func:`bold_scores`' result: the four metrics, ``n`` and ``chance``
    (what checkpoints and run summaries keep)."""
    if scores is None:
        return None
    return {k: scores.get(k) for k in (*HEADLINE_KEYS, "n")} | {"chance": scores.get("chance")}


def binarize_categories(targets: ArrayLike) -> np.ndarray:
    """Soft BoLD category scores -> bool labels (positive where the score is >= 0.5).

    Every part of beenet that needs binary category labels calls this, so the threshold and the
    ``>=`` (not ``>``) live in one place.
    """
    arr = _as_float64(targets, "category targets")
    return arr >= POSITIVE_THRESHOLD


def ers(m_r2: float, m_ap: float, m_ra: float) -> float:
    """Emotion Recognition Score: ``0.5 * (mR2 + 0.5 * (mAP + mRA))``."""
    return 0.5 * (m_r2 + 0.5 * (m_ap + m_ra))


def precision_recall_curve(scores: ArrayLike, positives: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and thresholds of one binary problem, as scikit-learn returns them.

    One point per distinct score (tied scores form one point), recall decreasing, ending with the
    point (recall 0, precision 1) that has no threshold. Requires at least one positive.
    """
    y_score = _as_float64(scores, "scores").ravel()
    y_true = np.asarray(positives, dtype=bool).ravel()
    tps, fps, thresholds = _binary_clf_curve(y_score, y_true)
    if tps.size == 0 or tps[-1] == 0:
        raise ValueError("precision_recall_curve needs at least one positive label")
    denom = tps + fps
    precision = np.divide(tps, denom, out=np.zeros_like(tps), where=denom > 0)
    recall = tps / tps[-1]
    precision = np.concatenate([precision[::-1], [1.0]])
    recall = np.concatenate([recall[::-1], [0.0]])
    return precision, recall, thresholds[::-1]


def average_precision(scores: ArrayLike, positives: ArrayLike) -> float | None:
    """Average precision (step-wise sum of precision over recall steps); None without a positive."""
    y_score = _as_float64(scores, "scores").ravel()
    y_true = np.asarray(positives, dtype=bool).ravel()
    if not y_true.any():
        return None
    tps, fps, _ = _binary_clf_curve(y_score, y_true)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))


def roc_auc(scores: ArrayLike, positives: ArrayLike) -> float | None:
    """Area under the ROC curve (ties count one half); None without a positive or a negative.

    Computed from average ranks (Mann-Whitney U), which equals the trapezoidal area of the ROC
    curve over distinct thresholds that scikit-learn computes.
    """
    y_score = _as_float64(scores, "scores").ravel()
    y_true = np.asarray(positives, dtype=bool).ravel()
    n_pos = int(y_true.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata  # lazy: scipy.stats costs ~0.5 s of beenet predict's start-up

    ranks = rankdata(y_score, method="average")
    u = ranks[y_true].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def r2(pred: ArrayLike, true: ArrayLike) -> float | None:
    """Coefficient of determination ``1 - SS_res / SS_tot``; None when the truth is constant."""
    p = _as_float64(pred, "predictions").ravel()
    t = _as_float64(true, "targets").ravel()
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot <= 0.0:
        return None
    ss_res = float(np.sum((t - p) ** 2))
    return 1.0 - ss_res / ss_tot


def ccc(pred: ArrayLike, true: ArrayLike) -> float | None:
    """Lin's concordance correlation coefficient; None when both series are the same constant."""
    p = _as_float64(pred, "predictions").ravel()
    t = _as_float64(true, "targets").ravel()
    mp, mt = p.mean(), t.mean()
    cov = float(np.mean((p - mp) * (t - mt)))
    denom = float(p.var() + t.var() + (mp - mt) ** 2)
    if denom <= 0.0:
        return None
    return 2.0 * cov / denom


def bold_scores(
    cat_scores: ArrayLike,
    cat_targets: ArrayLike,
    vad_pred: ArrayLike,
    vad_true: ArrayLike,
) -> dict[str, Any]:
    """Score predictions of N instances with the BoLD metric.

    Args:
        cat_scores: ``[N, 26]`` predicted category scores (any monotone score; only order matters).
        cat_targets: ``[N, 26]`` soft ground truth, binarised here at >= 0.5.
        vad_pred: ``[N, 3]`` predicted valence, arousal, dominance (raw BoLD scale).
        vad_true: ``[N, 3]`` ground truth on the same scale.

    Returns:
        A JSON-serialisable dict: ``mAP``, ``mRA``, ``mR2``, ``ERS`` (None when no category, or no
        dimension, is defined), ``per_category`` {name: {AP, AUC, positives, support}},
        ``per_dimension`` {name: {R2, CCC, MAE}}, ``excluded_categories`` (no positive or no
        negative: left out of mAP and mRA), ``excluded_dimensions`` (constant truth: R2 undefined,
        left out of mR2), ``chance`` (the same headline keys for a chance-level predictor) and ``n``.
    """
    scores, targets, vpred, vtrue = _checked_inputs(cat_scores, cat_targets, vad_pred, vad_true)
    n = scores.shape[0]
    per_category, excluded, aps, aucs, rates = _category_scores(scores, targets)
    per_dimension, excluded_dims, r2s = _dimension_scores(vpred, vtrue)

    m_ap = float(np.mean(aps)) if aps else None
    m_ra = float(np.mean(aucs)) if aucs else None
    m_r2 = float(np.mean(r2s)) if r2s else None
    total = ers(m_r2, m_ap, m_ra) if None not in (m_ap, m_ra, m_r2) else None
    chance_ap = float(np.mean(rates)) if rates else None
    chance = {
        "mAP": chance_ap,
        "mRA": 0.5,
        "mR2": 0.0,
        "ERS": ers(0.0, chance_ap, 0.5) if chance_ap is not None else None,
    }
    return {
        "mAP": m_ap,
        "mRA": m_ra,
        "mR2": m_r2,
        "ERS": total,
        "per_category": per_category,
        "per_dimension": per_dimension,
        "excluded_categories": excluded,
        "excluded_dimensions": excluded_dims,
        "chance": chance,
        "n": int(n),
    }


def _checked_inputs(cat_scores: ArrayLike, cat_targets: ArrayLike, vad_pred: ArrayLike,
                    vad_true: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four inputs of :func:`bold_scores` as checked matrices with one (and at least one) row
    per instance each; raises :class:`PredictionsError` naming what is wrong."""
    scores = _check_matrix(cat_scores, NUM_CATEGORIES, "category scores", is_prediction=True)
    targets = _check_matrix(cat_targets, NUM_CATEGORIES, "category targets", is_prediction=False)
    vpred = _check_matrix(vad_pred, NUM_VAD, "VAD predictions", is_prediction=True)
    vtrue = _check_matrix(vad_true, NUM_VAD, "VAD targets", is_prediction=False)
    n = scores.shape[0]
    sizes = {"category scores": n, "category targets": targets.shape[0],
             "VAD predictions": vpred.shape[0], "VAD targets": vtrue.shape[0]}
    if len(set(sizes.values())) != 1:
        raise PredictionsError(
            f"inputs disagree on the number of instances: {sizes}; pass one row per instance to each"
        )
    if n == 0:
        raise PredictionsError("no instances to score: the arrays have 0 rows")
    return scores, targets, vpred, vtrue


def _category_scores(
    scores: np.ndarray, targets: np.ndarray, quiet: bool = False
) -> tuple[dict[str, dict[str, Any]], list[str], list[float], list[float], list[float]]:
    """Per category AP, AUC, positives and support; the categories left out (no positive or no
    negative); and, over the others, the APs, the AUCs and the positive rates (chance-level AP)."""
    n = scores.shape[0]
    positives = binarize_categories(targets)
    per_category: dict[str, dict[str, Any]] = {}
    excluded: list[str] = []
    aps: list[float] = []
    aucs: list[float] = []
    rates: list[float] = []
    for i, name in enumerate(CATEGORIES):
        y = positives[:, i]
        n_pos = int(y.sum())
        ap = average_precision(scores[:, i], y)
        auc = roc_auc(scores[:, i], y)
        if ap is None or auc is None:
            excluded.append(name)
            ap = auc = None
        else:
            aps.append(ap)
            aucs.append(auc)
            rates.append(n_pos / n)
        per_category[name] = {"AP": ap, "AUC": auc, "positives": n_pos, "support": n}
    if excluded and not quiet:  # quiet: a bootstrap resample (hundreds of them) says nothing
        log.info("categories without a positive or a negative, left out of mAP/mRA: %s", ", ".join(excluded))
    return per_category, excluded, aps, aucs, rates


def _dimension_scores(
    vpred: np.ndarray, vtrue: np.ndarray, quiet: bool = False
) -> tuple[dict[str, dict[str, Any]], list[str], list[float]]:
    """Per VAD dimension R2, CCC and MAE; the dimensions left out (constant truth: R2 undefined);
    and the R2 values of the others."""
    per_dimension: dict[str, dict[str, Any]] = {}
    excluded_dims: list[str] = []
    r2s: list[float] = []
    for j, name in enumerate(VAD_NAMES):
        value = r2(vpred[:, j], vtrue[:, j])
        if value is None:
            excluded_dims.append(name)
        else:
            r2s.append(value)
        per_dimension[name] = {
            "R2": value,
            "CCC": ccc(vpred[:, j], vtrue[:, j]),
            "MAE": float(np.mean(np.abs(vpred[:, j] - vtrue[:, j]))),
        }
    if excluded_dims and not quiet:
        log.info("dimensions with constant ground truth, left out of mR2: %s", ", ".join(excluded_dims))
    return per_dimension, excluded_dims, r2s


def _binary_clf_curve(y_score: np.ndarray, y_true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positives at each distinct score, highest score first."""
    order = np.argsort(-y_score, kind="mergesort")
    y_score = y_score[order]
    y_true = y_true[order].astype(np.float64)
    distinct = np.where(np.diff(y_score))[0]
    last = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true)[last]
    fps = 1.0 + last - tps
    return tps, fps, y_score[last]


def _as_float64(x: ArrayLike, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PredictionsError(f"{what} are not numeric: {exc}") from exc


def _check_matrix(x: ArrayLike, width: int, what: str, *, is_prediction: bool) -> np.ndarray:
    """Float64 ``[N, width]`` or a PredictionsError saying what is wrong and where."""
    arr = _as_float64(x, what)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise PredictionsError(
            f"{what} must have shape [N, {width}], got {list(arr.shape)}; "
            f"columns follow beenet.labels ({'CATEGORIES' if width == NUM_CATEGORIES else 'VAD_NAMES'})"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        names = CATEGORIES if width == NUM_CATEGORIES else VAD_NAMES
        source = "the model or predictions file" if is_prediction else "the annotations"
        raise PredictionsError(
            f"{what} hold {int(bad.sum())} NaN/inf value(s), first at row {row}, column "
            f"{names[col]!r} (value {arr[row, col]}); fix {source} before scoring"
        )
    return arr


#: Below this many evaluated instances, the eval commands add bootstrap confidence intervals.
BOOTSTRAP_BELOW = 200


def bootstrap_intervals(cat_scores: ArrayLike, cat_targets: ArrayLike, vad_pred: ArrayLike, vad_true: ArrayLike,
                        *, draws: int = 500, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Percentile bootstrap intervals of the headline metrics: ``draws`` resamples of the instances
    (with replacement, ``numpy.random.default_rng(seed)``), each scored as :func:`bold_scores`
    does (a category or dimension undefined in a resample is left out of that resample's mean, as
    in the metric). Returns ``{"level", "draws", "seed", "mAP": [lo, hi] | None, ..., "used":
    {key: resamples where the metric was defined}}``."""
    scores, targets, vpred, vtrue = _checked_inputs(cat_scores, cat_targets, vad_pred, vad_true)
    rng = np.random.default_rng(seed)
    n = scores.shape[0]
    got: dict[str, list[float]] = {k: [] for k in HEADLINE_KEYS}
    for _ in range(draws):
        idx = rng.integers(0, n, n)
        _, _, aps, aucs, _ = _category_scores(scores[idx], targets[idx], quiet=True)
        _, _, r2s = _dimension_scores(vpred[idx], vtrue[idx], quiet=True)
        m = {"mAP": float(np.mean(aps)) if aps else None, "mRA": float(np.mean(aucs)) if aucs else None,
             "mR2": float(np.mean(r2s)) if r2s else None}
        m["ERS"] = ers(m["mR2"], m["mAP"], m["mRA"]) if None not in m.values() else None
        for k, v in m.items():
            if v is not None:
                got[k].append(v)
    tail = (1.0 - level) / 2 * 100
    out: dict[str, Any] = {"level": level, "draws": draws, "seed": seed,
                           "used": {k: len(v) for k, v in got.items()}}
    for k, v in got.items():
        out[k] = [float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))] if v else None
    return out


def add_intervals(result: dict[str, Any], cat_scores: ArrayLike, cat_targets: ArrayLike, vad_pred: ArrayLike,
                  vad_true: ArrayLike) -> dict[str, Any]:
    """``result["intervals"]`` (:func:`bootstrap_intervals`) when ``result["n"]`` is below
    :data:`BOOTSTRAP_BELOW`: a small eval split's numbers come with their uncertainty."""
    if int(result.get("n", 0)) < BOOTSTRAP_BELOW:
        result["intervals"] = bootstrap_intervals(cat_scores, cat_targets, vad_pred, vad_true)
        log.info("n=%d < %d: 95%% bootstrap intervals %s", result["n"], BOOTSTRAP_BELOW,
                 {k: result["intervals"][k] for k in HEADLINE_KEYS})
    return result
