"""Numbered work shared among workers that are not thread-safe (BlazePose engines: one per
thread), run side by side on a thread pool: LiteRT and OpenCV release the GIL while they compute."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any


class WorkerPool:
    """A pool of ``threads`` worker threads, made on first use; :meth:`close` lets them go (the
    next :meth:`share` makes it again)."""

    def __init__(self, threads: int, prefix: str = "beenet-pose") -> None:
        self.threads = threads
        self.prefix = prefix
        self._pool: ThreadPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether the threads exist (made, not closed since)."""
        return self._pool is not None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """``fn(*args)`` on one of the threads; its future."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=self.prefix)
        return self._pool.submit(fn, *args)

    def share(self, work: Callable[[Any, list], list], workers: Sequence[Any], items: Sequence[Any]) -> list:
        """``work(worker, [(index, item), ...]) -> [(index, result), ...]`` with ``items`` shared out
        among ``workers`` (one a thread, run side by side when more than one): each worker takes
        the next item when it is free (a worker whose items cost more takes fewer, so none idles
        while another has a queue); the results of all, ``(index, result)`` in item order. The
        results do not depend on which worker ran an item, so neither do they on the sharing."""
        numbered = list(enumerate(items))
        n = len(workers)
        if n == 1:
            done = work(workers[0], numbered)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=self.prefix)
            queue = iter(numbered)
            lock = threading.Lock()

            def take(worker: Any) -> list:
                out = []
                while True:
                    with lock:
                        item = next(queue, None)
                    if item is None:
                        return out
                    out += work(worker, [item])

            futures = [self._pool.submit(take, workers[k]) for k in range(n)]
            wait(futures)  # every worker free again before anything raises (a failed crop)
            done = [r for f in futures for r in f.result()]
        done.sort(key=lambda x: x[0])
        return done

    def close(self) -> None:
        """Wait for the threads to finish and let them go."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool = None
