"""Bootstrap confidence intervals of the headline metrics on small eval splits."""

from __future__ import annotations

import numpy as np

from beenet.metrics import BOOTSTRAP_BELOW, HEADLINE_KEYS, add_intervals, bold_scores, bootstrap_intervals


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, 26)) < 0.3).astype(float)
    scores = 0.3 * targets + 0.7 * rng.random((n, 26))  # informative, not perfect
    vad_true = rng.uniform(1, 10, (n, 3))
    vad_pred = vad_true + rng.normal(0, 1.5, (n, 3))
    return scores, targets, vad_pred, vad_true


def test_intervals_hold_the_estimate_narrow_with_more_data_and_are_seeded() -> None:
    small, large = _data(40), _data(190, seed=1)
    a = bootstrap_intervals(*small, draws=150)
    point = bold_scores(*small)
    for k in HEADLINE_KEYS:
        lo, hi = a[k]
        assert lo < hi and lo <= point[k] <= hi, (k, lo, point[k], hi)
    assert a == bootstrap_intervals(*small, draws=150) and a != bootstrap_intervals(*small, draws=150, seed=1)
    b = bootstrap_intervals(*large, draws=150)
    assert (b["ERS"][1] - b["ERS"][0]) < (a["ERS"][1] - a["ERS"][0])
    assert a["level"] == 0.95 and a["used"]["ERS"] == 150


def test_only_small_splits_get_intervals() -> None:
    small, big = _data(BOOTSTRAP_BELOW - 1), _data(BOOTSTRAP_BELOW)
    assert "intervals" in add_intervals(bold_scores(*small), *small)
    assert "intervals" not in add_intervals(bold_scores(*big), *big)


def test_a_metric_undefined_in_every_resample_has_no_interval() -> None:
    scores, targets, vad_pred, vad_true = _data(30)
    vad_true[:] = 5.0  # constant truth: R2 undefined, so mR2 and ERS too
    got = bootstrap_intervals(scores, targets, vad_pred, vad_true, draws=50)
    assert got["mR2"] is None and got["ERS"] is None and got["used"]["mR2"] == 0
    assert got["mAP"] is not None


def test_the_resamples_do_not_log_what_the_metric_leaves_out(caplog) -> None:
    """The point estimate names the categories and dimensions it leaves out, once; the 500
    resamples of the bootstrap do not repeat it (an eval of a small split stays readable)."""
    import logging

    data = _data(12)
    data[1][:, 5] = 0.0  # a category with no positive
    data[3][:, 2] = 5.0  # a dimension with constant truth
    with caplog.at_level(logging.INFO, logger="beenet.metrics"):
        add_intervals(bold_scores(*data), *data)
    said = [r.getMessage() for r in caplog.records]
    assert sum("left out of mAP/mRA" in m for m in said) == 1
    assert sum("left out of mR2" in m for m in said) == 1
    assert sum("bootstrap intervals" in m for m in said) == 1
