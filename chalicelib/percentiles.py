"""Percentiles, one method for the whole app: linear interpolation between closest ranks.

This is NumPy's default (`numpy.percentile(..., method="linear")`, Hyndman & Fan type 7,
also Excel's PERCENTILE.INC): sort the n values, take rank r = (n - 1) * q / 100, and
interpolate between the values at floor(r) and ceil(r). So p50 of [1, 2, 3, 4] is 2.5,
p90 of [10, 20, 30] is 28, and any percentile of one value is that value. It never invents
a value outside [min, max], and p0/p100 are the min and max.

Pure (no I/O, no app imports): statistics, run summaries and anyone else share it, so a
"p90" means the same thing on every screen.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float | None:
    """The `q`-th percentile (0–100) of `values`; None when there are none."""
    return _at(sorted(values), q)


def percentiles(values: Iterable[float], qs: Sequence[float]) -> dict[str, float | None]:
    """Several percentiles of one sample, sorted once: `{"p50": ..., "p90": ...}`."""
    ordered = sorted(values)
    return {f"p{q:g}": _at(ordered, q) for q in qs}


def _at(ordered: Sequence[float], q: float) -> float | None:
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
