"""The pose workers' pool (``beenet.inference.pose.pool``): items go to whichever worker is free,
and the results come back in item order whoever ran them."""

from __future__ import annotations

import threading

from beenet.inference.pose.pool import WorkerPool


def test_a_free_worker_takes_the_next_item_while_another_is_busy():
    """Item 0 blocks its worker until items 1-3 are all done: the other worker must take all
    three (round-robin would keep item 2 waiting behind item 0, and the event never comes)."""
    rest_done = threading.Event()
    done: list[int] = []
    lock = threading.Lock()

    def work(worker: str, share: list) -> list:
        out = []
        for k, item in share:
            if k == 0:
                ok = rest_done.wait(timeout=30)
                out.append((k, (worker, item, ok)))
                continue
            with lock:
                done.append(k)
                if len(done) == 3:
                    rest_done.set()
            out.append((k, (worker, item, True)))
        return out

    pool = WorkerPool(2)
    try:
        done = pool.share(work, ["a", "b"], ["slow", "x", "y", "z"])
    finally:
        pool.close()
    assert [k for k, _ in done] == [0, 1, 2, 3]
    results = [r for _, r in done]
    assert [r[1] for r in results] == ["slow", "x", "y", "z"]  # item order
    assert results[0][2], "the other worker did not take the items behind the blocked one"
    assert len({r[0] for r in results[1:]}) == 1 and results[1][0] != results[0][0]


def test_one_worker_runs_every_item_in_order_on_the_calling_thread():
    seen = []

    def work(worker: str, share: list) -> list:
        seen.append(threading.current_thread())
        return [(k, item * 2) for k, item in share]

    assert WorkerPool(2).share(work, ["only"], [1, 2, 3]) == [(0, 2), (1, 4), (2, 6)]
    assert seen == [threading.current_thread()]
