"""A small per-process cache with a cap in bytes, for what a DataLoader worker reads again and again.

Each worker holds its own copy (the dataset is copied into every worker), so what a worker reads
once (a clip's joints, a prepared clip's header) it keeps until the cap evicts the least recently
used entry. Sizes are what the entry holds (its arrays' bytes plus a fixed overhead), so the cap
is a real bound on the memory a worker adds, whatever the dataset's size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

#: Bytes counted for an entry besides its arrays (the Python objects around them).
ENTRY_OVERHEAD = 512


class BoundedCache:
    """A least-recently-used mapping holding at most ``max_bytes`` (by the sizes given to :meth:`put`)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any:
        """The value stored for ``key`` (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> Any:
        """Store ``value`` (``nbytes`` plus :data:`ENTRY_OVERHEAD`), evicting the least recently used
        entries over the cap; a value larger than the cap is returned but not kept."""
        size = int(nbytes) + ENTRY_OVERHEAD
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if size > self.max_bytes:
            return value
        while self._entries and self.bytes + size > self.max_bytes:
            _, (_, freed) = self._entries.popitem(last=False)
            self.bytes -= freed
        self._entries[key] = (value, size)
        self.bytes += size
        return value
