"""Progress bars: tqdm on every loop a person waits for: on a terminal, and in a Jupyter
notebook (tqdm.auto's widget bar); silent when stderr goes to a file or a pipe.

Set ``BEENET_NO_PROGRESS=1`` (the tests do; ``beenet -q`` does) or pass ``disable=True`` to
silence them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    if os.environ.get("BEENET_NO_PROGRESS", "").strip() not in ("", "0"):
        return False
    return sys.stderr.isatty() or in_notebook()


def in_notebook() -> bool:
    """True inside a Jupyter kernel, whose stderr is an ipykernel stream (not a terminal, but a
    person is watching the cell's output)."""
    return type(sys.stderr).__module__.split(".")[0] == "ipykernel"


def progress(iterable: Iterable[T] | None = None, *, disable: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` that is off unless a person is watching a terminal."""
    off = (not progress_enabled()) if disable is None else disable
    return tqdm(iterable, disable=off, dynamic_ncols=True, leave=False, **kwargs)
