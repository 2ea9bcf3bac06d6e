"""The BoLD metric against scikit-learn, exclusion of undefined categories, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from beenet.errors import PredictionsError  # noqa: E402
from beenet.labels import CATEGORIES, NUM_CATEGORIES, POSITIVE_THRESHOLD, VAD_NAMES  # noqa: E402
from beenet.metrics import (  # noqa: E402
    average_precision,
    binarize_categories,
    bold_scores,
    ccc,
    ers,
    precision_recall_curve,
    roc_auc,
)


def _random_set(n: int, seed: int, ties: bool = True) -> tuple[np.ndarray, ...]:
    """Soft targets with exact 0.5 values and scores with many ties (quantised)."""
    rng = np.random.default_rng(seed)
    targets = rng.choice([0.0, 0.2, 0.4, 0.5, 0.6, 1.0], size=(n, NUM_CATEGORIES))
    scores = rng.random((n, NUM_CATEGORIES))
    if ties:
        scores = np.round(scores * 5) / 5
    vad_true = rng.uniform(1, 10, size=(n, 3))
    vad_pred = vad_true + rng.normal(0, 2, size=(n, 3))
    return scores, targets, vad_pred, vad_true


def test_binarize_uses_greater_or_equal_half() -> None:
    t = np.array([[0.49999, POSITIVE_THRESHOLD, 0.75, 0.0]])
    assert binarize_categories(t).tolist() == [[False, True, True, False]]
    assert binarize_categories(torch.tensor(t)).tolist() == [[False, True, True, False]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_with_ties(seed: int) -> None:
    scores, targets, vad_pred, vad_true = _random_set(80, seed)
    result = bold_scores(scores, targets, vad_pred, vad_true)
    y = targets >= 0.5
    aps, aucs = [], []
    for i, name in enumerate(CATEGORIES):
        ap = sklearn_metrics.average_precision_score(y[:, i], scores[:, i])
        auc = sklearn_metrics.roc_auc_score(y[:, i], scores[:, i])
        assert result["per_category"][name]["AP"] == pytest.approx(ap, abs=1e-6)
        assert result["per_category"][name]["AUC"] == pytest.approx(auc, abs=1e-6)
        assert result["per_category"][name]["positives"] == int(y[:, i].sum())
        assert result["per_category"][name]["support"] == 80
        aps.append(ap)
        aucs.append(auc)
    r2s = [sklearn_metrics.r2_score(vad_true[:, j], vad_pred[:, j]) for j in range(3)]
    for j, name in enumerate(VAD_NAMES):
        assert result["per_dimension"][name]["R2"] == pytest.approx(r2s[j], abs=1e-6)
        mae = sklearn_metrics.mean_absolute_error(vad_true[:, j], vad_pred[:, j])
        assert result["per_dimension"][name]["MAE"] == pytest.approx(mae, abs=1e-9)
    assert result["mAP"] == pytest.approx(np.mean(aps), abs=1e-6)
    assert result["mRA"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert result["mR2"] == pytest.approx(sklearn_metrics.r2_score(vad_true, vad_pred), abs=1e-6)
    expected_ers = 0.5 * (np.mean(r2s) + 0.5 * (np.mean(aps) + np.mean(aucs)))
    assert result["ERS"] == pytest.approx(expected_ers, abs=1e-6)
    assert result["excluded_categories"] == []
    assert result["n"] == 80


def test_torch_inputs_give_the_same_result() -> None:
    arrays = _random_set(40, 3)
    a = bold_scores(*arrays)
    b = bold_scores(*(torch.tensor(x, dtype=torch.float64) for x in arrays))
    assert a == b


def test_pr_curve_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    s = np.round(rng.random(60) * 4) / 4
    y = rng.random(60) < 0.3
    p, r, t = precision_recall_curve(s, y)
    p_ref, r_ref, t_ref = sklearn_metrics.precision_recall_curve(y, s)
    np.testing.assert_allclose(p, p_ref, atol=1e-12)
    np.testing.assert_allclose(r, r_ref, atol=1e-12)
    np.testing.assert_allclose(t, t_ref, atol=1e-12)


def test_single_metrics_edge_cases() -> None:
    assert average_precision([0.1, 0.2], [False, False]) is None
    assert roc_auc([0.1, 0.2], [True, True]) is None
    assert roc_auc([0.3, 0.3, 0.3], [True, False, False]) == pytest.approx(0.5)
    assert ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert ccc([2.0, 2.0], [2.0, 2.0]) is None
    assert ers(0.0, 0.2, 0.5) == pytest.approx(0.175)


def test_categories_without_positive_or_negative_are_excluded() -> None:
    scores, targets, vad_pred, vad_true = _random_set(50, 4)
    targets[:, 3] = 0.0  # Anticipation: no positive
    targets[:, 7] = 0.5  # Pleasure: all positive (>= 0.5), no negative
    result = bold_scores(scores, targets, vad_pred, vad_true)
    assert result["excluded_categories"] == [CATEGORIES[3], CATEGORIES[7]]
    for i in (3, 7):
        row = result["per_category"][CATEGORIES[i]]
        assert row["AP"] is None and row["AUC"] is None
    assert result["per_category"][CATEGORIES[7]]["positives"] == 50
    y = targets >= 0.5
    keep = [i for i in range(NUM_CATEGORIES) if i not in (3, 7)]
    ap_ref = np.mean([sklearn_metrics.average_precision_score(y[:, i], scores[:, i]) for i in keep])
    auc_ref = np.mean([sklearn_metrics.roc_auc_score(y[:, i], scores[:, i]) for i in keep])
    assert result["mAP"] == pytest.approx(ap_ref, abs=1e-6)
    assert result["mRA"] == pytest.approx(auc_ref, abs=1e-6)
    assert result["chance"]["mAP"] == pytest.approx(np.mean(y[:, keep].mean(axis=0)), abs=1e-12)
    assert result["chance"]["mRA"] == 0.5 and result["chance"]["mR2"] == 0.0
    assert result["chance"]["ERS"] == pytest.approx(0.5 * 0.5 * (result["chance"]["mAP"] + 0.5))


def test_all_categories_excluded_does_not_crash() -> None:
    scores, targets, vad_pred, vad_true = _random_set(5, 5)
    result = bold_scores(scores, np.zeros_like(targets), vad_pred, vad_true)
    assert result["mAP"] is None and result["mRA"] is None and result["ERS"] is None
    assert result["chance"]["mAP"] is None
    assert len(result["excluded_categories"]) == NUM_CATEGORIES
    assert result["mR2"] is not None


def test_constant_vad_truth_is_excluded_from_mr2() -> None:
    scores, targets, vad_pred, vad_true = _random_set(30, 6)
    vad_true[:, 2] = 5.0
    result = bold_scores(scores, targets, vad_pred, vad_true)
    assert result["per_dimension"]["dominance"]["R2"] is None
    assert result["excluded_dimensions"] == ["dominance"]
    ref = np.mean([sklearn_metrics.r2_score(vad_true[:, j], vad_pred[:, j]) for j in range(2)])
    assert result["mR2"] == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_predictions_raise(bad: float) -> None:
    scores, targets, vad_pred, vad_true = _random_set(10, 8)
    scores[4, 11] = bad
    with pytest.raises(PredictionsError, match=r"row 4, column 'Doubt/Confusion'"):
        bold_scores(scores, targets, vad_pred, vad_true)
    scores[4, 11] = 0.3
    vad_pred[2, 1] = bad
    with pytest.raises(PredictionsError, match=r"VAD predictions.*row 2, column 'arousal'"):
        bold_scores(scores, targets, vad_pred, vad_true)


def test_wrong_shapes_raise() -> None:
    scores, targets, vad_pred, vad_true = _random_set(10, 9)
    with pytest.raises(PredictionsError, match=r"\[N, 26\], got \[10, 25\]"):
        bold_scores(scores[:, :25], targets, vad_pred, vad_true)
    with pytest.raises(PredictionsError, match=r"\[N, 3\]"):
        bold_scores(scores, targets, vad_pred[:, 0], vad_true)
    with pytest.raises(PredictionsError, match="number of instances"):
        bold_scores(scores[:9], targets, vad_pred, vad_true)
    with pytest.raises(PredictionsError, match="0 rows"):
        bold_scores(scores[:0], targets[:0], vad_pred[:0], vad_true[:0])


_sizes = st.integers(min_value=4, max_value=30)


@settings(max_examples=25, deadline=None)
@given(n=_sizes, seed=st.integers(0, 2**32 - 1))
def test_permuting_instances_does_not_change_the_result(n: int, seed: int) -> None:
    scores, targets, vad_pred, vad_true = _random_set(n, seed)
    perm = np.random.default_rng(seed + 1).permutation(n)
    a = bold_scores(scores, targets, vad_pred, vad_true)
    b = bold_scores(scores[perm], targets[perm], vad_pred[perm], vad_true[perm])
    assert a["excluded_categories"] == b["excluded_categories"]
    for key in ("mAP", "mRA", "mR2", "ERS"):
        if a[key] is None:
            assert b[key] is None
        else:
            assert b[key] == pytest.approx(a[key], abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=_sizes, seed=st.integers(0, 2**32 - 1))
def test_perfect_predictor_scores_one(n: int, seed: int) -> None:
    _, targets, _, vad_true = _random_set(n, seed)
    perfect = binarize_categories(targets).astype(np.float64)
    result = bold_scores(perfect, targets, vad_true, vad_true)
    if len(result["excluded_categories"]) < NUM_CATEGORIES:
        assert result["mAP"] == pytest.approx(1.0)
        assert result["mRA"] == pytest.approx(1.0)
    if result["mR2"] is not None:
        assert result["mR2"] == pytest.approx(1.0)
    if result["ERS"] is not None:
        assert result["ERS"] == pytest.approx(1.0)
