"""Shared pytest set-up: keep torch to the two cores we have and make runs repeatable."""

from __future__ import annotations

import os

os.environ.setdefault("BEENET_NO_PROGRESS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.set_num_threads(2)
    yield
