"""Fixed-bucket histograms kept as hash fields, and percentiles read back from them.

A histogram `name` is the fields `h:name:<i>` (observations in bucket i, the last index
for values above every bound), `h:name:sum` (the sum, in thousandths of the unit) and
`h:name:n`. A percentile is the upper bound of the bucket that holds it: exact to the
bucket width, and None when it falls above the last bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Waits and handle times, seconds: from seconds to a week.
WAIT_BOUNDS: tuple[float, ...] = (
    5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400,
    172800, 604800,
)  # fmt: skip
# Responder latency, milliseconds.
LATENCY_BOUNDS: tuple[float, ...] = (
    50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 8000, 15000, 30000, 60000,
)  # fmt: skip
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))


def bucket_of(value: float, bounds: tuple[float, ...]) -> int:
    for i, bound in enumerate(bounds):
        if value <= bound:
            return i
    return len(bounds)


def observe(name: str, value: float, bounds: tuple[float, ...]) -> dict[str, int]:
    """The field increments that record one observation."""
    return {
        f"h:{name}:{bucket_of(value, bounds)}": 1,
        f"h:{name}:sum": round(value * 1000),
        f"h:{name}:n": 1,
    }


def percentiles(
    fields: Mapping[str, int], name: str, bounds: tuple[float, ...], unit: str
) -> dict[str, Any]:
    counts = [int(fields.get(f"h:{name}:{i}", 0)) for i in range(len(bounds) + 1)]
    n = sum(counts)
    total = int(fields.get(f"h:{name}:sum", 0)) / 1000
    out: dict[str, Any] = {
        "count": n,
        "unit": unit,
        "mean": round(total / n, 3) if n else None,
    }
    for label, q in QUANTILES:
        out[label] = _quantile(counts, bounds, q) if n else None
    return out


def _quantile(counts: list[int], bounds: tuple[float, ...], q: float) -> float | None:
    rank = max(1, math.ceil(q * sum(counts)))
    seen = 0
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return float(bounds[i]) if i < len(bounds) else None
    return None
