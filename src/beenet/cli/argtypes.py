"""argparse ``type=`` helpers shared by the subcommands: every float flag is parsed by
:func:`finite_float` (or one of its ranges), so ``nan`` and ``inf`` are usage errors at parse time
(exit 2, the flag named) instead of failing after the model and the pose backend have loaded."""

from __future__ import annotations

import argparse
import math


def finite_float(text: str) -> float:
    """A finite number: ``nan``, ``inf`` and text that is not a number are refused."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a length of time, a tolerance)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (seconds that may be zero)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A finite number in [0, 1] (a share of frames, a detection score)."""
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value
