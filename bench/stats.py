"""Percentiles and medians, small enough to read at a glance (no numpy on the Lambda path)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): an observed value, never an interpolated one."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median of repetitions: the figure the table reports for each measure."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def ms(seconds: float) -> float:
    return seconds * 1000.0
