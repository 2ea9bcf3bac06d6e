"""The least-cost one-to-one matching of a cost matrix's rows to its columns (the linear sum
assignment problem), for the tracker's few people a frame.

:func:`linear_sum_assignment` gives what ``scipy.optimize.linear_sum_assignment`` gives (a
matching of least total cost, ``min(rows, cols)`` pairs, rows in increasing order), without
importing ``scipy.optimize``: that import alone took 0.54 s of every ``beenet predict`` run, on
the main thread at the first posed frame, while the pose workers waited for it (``python -X
importtime``, 2026-12-07). Where two matchings cost the same, the two may choose differently.

The method is the Hungarian algorithm with potentials (Kuhn 1955, Munkres 1957; the shortest
augmenting path form, O(n^2 m) for n <= m rows), its inner loop over the columns in numpy.
"""

from __future__ import annotations

import numpy as np


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``: the pairs of a least-cost matching of the rows of ``cost`` (a 2-D array of
    finite numbers) to its columns, ``min(cost.shape)`` of them, rows increasing."""
    a = np.asarray(cost, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"the cost matrix must be 2-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("the cost matrix holds a value that is not finite (NaN or inf)")
    if a.shape[0] > a.shape[1]:  # more rows than columns: match the columns to the rows
        cols, rows = linear_sum_assignment(a.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    n, m = a.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    u = np.zeros(n + 1)  # row potentials (index 0: no row)
    v = np.zeros(m + 1)  # column potentials (index 0: the start of each augmenting path)
    owner = np.zeros(m + 1, dtype=np.int64)  # the row (1-based) matched to each column, 0: none
    way = np.zeros(m + 1, dtype=np.int64)  # the column before each one on the shortest path
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:  # grow the shortest path tree until it reaches a free column
            used[j0] = True
            i0 = owner[j0]
            cur = a[i0 - 1] - u[i0] - v[1:]
            free = ~used[1:]
            better = free & (cur < slack[1:])
            slack[1:][better] = cur[better]
            way[1:][better] = j0
            masked = np.where(free, slack[1:], np.inf)
            j1 = int(np.argmin(masked)) + 1
            delta = masked[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            slack[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the matching along the path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.flatnonzero(owner[1:])
    rows = owner[1:][cols] - 1
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
