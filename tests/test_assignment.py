"""The tracker's least-cost matching (beenet.inference.assignment) against scipy's, and the
tracker without scipy.optimize's import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_assignment

from beenet.inference.assignment import linear_sum_assignment


def _check(cost: np.ndarray) -> None:
    rows, cols = linear_sum_assignment(cost)
    want_rows, want_cols = scipy_assignment(cost)
    assert len(rows) == len(cols) == min(cost.shape)
    assert list(rows) == sorted(set(rows.tolist())) and len(set(cols.tolist())) == len(cols)
    assert cost[rows, cols].sum() == pytest.approx(cost[want_rows, want_cols].sum(), abs=1e-9)


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0), (1, 1), (1, 5), (5, 1), (4, 4), (3, 7), (7, 3), (12, 9)])
def test_the_least_total_cost_as_scipy_finds_it(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(60):
        _check(rng.random(shape))
        _check(rng.integers(0, 3, shape).astype(float))  # many matchings of the same cost
        gated = rng.random(shape)
        _check(np.where(gated > 0.5, 1e6, gated))  # the tracker's gate: pairs that cannot match


def test_a_unique_best_matching_is_scipys_pair_for_pair():
    rng = np.random.default_rng(7)
    for shape in [(5, 5), (4, 6), (6, 4)]:
        cost = rng.random(shape)
        for got, want in zip(linear_sum_assignment(cost), scipy_assignment(cost)):
            np.testing.assert_array_equal(got, want)


def test_a_greedy_choice_is_not_taken():
    # row 0's cheapest column is 0, but the least total gives it column 1: 2.0 + 1.5 < 1.0 + 9.0
    rows, cols = linear_sum_assignment(np.array([[1.0, 2.0], [1.5, 9.0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    rows, cols = linear_sum_assignment(np.array([[1.0, 2.0], [1.5, 9.0]]).T)  # the same, as columns
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


@pytest.mark.parametrize("bad", [np.zeros(3), np.array([[0.0, np.nan]]), np.array([[np.inf, 1.0]])])
def test_a_bad_matrix_is_refused(bad):
    with pytest.raises(ValueError):
        linear_sum_assignment(bad)


def test_the_tracker_matches_without_importing_scipy_optimize():
    """scipy.optimize's import took 0.54 s of every predict run, at the first posed frame."""
    code = (
        "import sys, numpy as np\n"
        "from beenet.inference.pose import PoseDetection\n"
        "from beenet.inference.tracking import Tracker\n"
        "def det(x):\n"
        "    kp = np.zeros((18, 3), np.float32); kp[:, 0] = x + np.arange(18); kp[:, 1] = 50 + 5 * np.arange(18); kp[:, 2] = 0.9\n"
        "    return PoseDetection(keypoints=kp, box=(x, 50.0, 18.0, 90.0), score=0.9)\n"
        "t = Tracker(min_hits=1)\n"
        "a = t.update(0, [det(10.0), det(200.0)])\n"
        "b = t.update(1, [det(202.0), det(11.0)])\n"
        "assert b == a[::-1], (a, b)\n"
        "print('scipy.optimize' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
