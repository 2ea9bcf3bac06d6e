"""Evaluation plots: PNGs are written, non-trivial, and tolerate excluded categories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beenet.evaluation.plots import plot_category_bars, plot_pr_curves
from beenet.labels import CATEGORIES
from beenet.metrics import bold_scores

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    targets = rng.choice([0.0, 0.3, 0.6, 1.0], size=(n, 26), p=[0.5, 0.2, 0.2, 0.1])
    targets[:, CATEGORIES.index("Fear")] = 0.0  # excluded: no positive
    targets[:, CATEGORIES.index("Peace")] = 0.8  # excluded: no negative
    scores = np.clip(0.5 * (targets >= 0.5) + rng.random((n, 26)) * 0.7, 0, 1)
    vad_true = rng.uniform(1, 10, (n, 3))
    return scores, targets, vad_true + rng.normal(0, 1, (n, 3)), vad_true


def _image(path: Path) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    return matplotlib.image.imread(path)


def test_category_bars_png(tmp_path: Path) -> None:
    scores, targets, vp, vt = _data()
    result = bold_scores(scores, targets, vp, vt)
    assert set(result["excluded_categories"]) == {"Fear", "Peace"}
    out = plot_category_bars(result, tmp_path / "figs" / "bars.png")
    assert out == tmp_path / "figs" / "bars.png"
    img = _image(out)
    assert img.shape[0] > img.shape[1] > 400  # tall: one row per category
    assert img[..., :3].std() > 0.05  # something was drawn, not a blank canvas


def test_pr_curves_png(tmp_path: Path) -> None:
    scores, targets, _, _ = _data()
    out = plot_pr_curves(scores, targets, tmp_path / "pr.png")
    img = _image(out)
    assert img.shape[1] > img.shape[0] > 400  # a wide grid of small panels
    assert img[..., :3].std() > 0.05


def test_pr_curves_shape_errors(tmp_path: Path) -> None:
    scores, targets, _, _ = _data(10)
    with pytest.raises(ValueError, match=r"\[N, 26\]"):
        plot_pr_curves(scores[:, :5], targets, tmp_path / "x.png")
    with pytest.raises(ValueError, match="differs"):
        plot_pr_curves(scores, targets[:5], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plots_do_not_use_pyplot(tmp_path: Path) -> None:
    import sys

    scores, targets, vp, vt = _data(20, 1)
    plot_category_bars(bold_scores(scores, targets, vp, vt), tmp_path / "a.png")
    plot_pr_curves(scores, targets, tmp_path / "b.png")
    if "matplotlib.pyplot" in sys.modules:  # imported by someone else in this session: no figures left open
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []
