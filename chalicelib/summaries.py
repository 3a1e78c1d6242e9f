"""What a set of result records says: a run's status, and samples of one model's results.

Pure. The same `Sample` reduces a run's results to the per-model `summary` stored with the
run, and a time range's results to `/api/stats`'s summaries and series points, so "p50 TTFT"
is computed one way everywhere.

Counting rules (one place): every result counts in `n`, in `successes`/`failures` and in
`cost_total` (a failed request costs 0); timing percentiles and `cost` percentiles are over
successful results only (a failed request has no TTFT, and its zero cost is not a price).
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from chalicelib.percentiles import percentiles

OK, PARTIAL, FAILED = "ok", "partial", "failed"
RUN_STATUSES = (OK, PARTIAL, FAILED)

# The metrics a sample keeps per successful result.
METRICS = ("ttft_ms", "output_speed_tps", "itl_p50_ms", "itl_p99_ms", "cost")
_DIGITS = {"cost": 8}  # timings and speeds: 2


def run_status(results: Sequence[dict[str, Any]]) -> str:
    """`ok` when every result succeeded, `failed` when none did (or there are none),
    `partial` otherwise."""
    successes = sum(1 for result in results if result.get("success"))
    if results and successes == len(results):
        return OK
    return PARTIAL if successes else FAILED


class Sample:
    """The results of one model (in one run, one time bucket, or one range), reduced to
    counts and the metric values percentiles are taken over."""

    __slots__ = ("n", "successes", "cost_total", "cost_unknown", "values")

    def __init__(self) -> None:
        self.n = 0
        self.successes = 0
        self.cost_total = 0.0
        self.cost_unknown = 0  # successful results whose model had no price (`cost_known` false)
        self.values: dict[str, list[float]] = {metric: [] for metric in METRICS}

    def add(self, result: dict[str, Any]) -> None:
        self.n += 1
        self.cost_total += _number(result.get("cost")) or 0.0
        if not result.get("success"):
            return
        self.successes += 1
        self.cost_unknown += result.get("cost_known") is False  # a failed request costs 0 at any price
        for metric in METRICS:
            value = _number(result.get(metric))
            if value is not None:
                self.values[metric].append(value)

    @property
    def failures(self) -> int:
        return self.n - self.successes

    def success_rate(self) -> float | None:
        return round(self.successes / self.n, 4) if self.n else None

    def percentiles(self, metric: str, qs: Sequence[float]) -> dict[str, float | None]:
        """`{"p50": ..., ...}` of `metric` over successful results, rounded; None each
        when no successful result carries it."""
        digits = _DIGITS.get(metric, 2)
        return {
            name: None if value is None else round(value, digits)
            for name, value in percentiles(self.values[metric], qs).items()
        }

    def extremes(self, metric: str) -> dict[str, float | None]:
        values, digits = self.values[metric], _DIGITS.get(metric, 2)
        if not values:
            return {"min": None, "max": None}
        return {"min": round(min(values), digits), "max": round(max(values), digits)}

    def total_cost(self) -> float:
        return round(self.cost_total, 8)


def by_model(results: Iterable[dict[str, Any]]) -> dict[str, Sample]:
    """One sample per model name, in the order the models first appear."""
    samples: dict[str, Sample] = {}
    for result in results:
        samples.setdefault(str(result.get("model")), Sample()).add(result)
    return samples


def run_summary(results: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The `summary` saved with a run: per model, its `n` results (runs × 1, warm-up never
    included) and their p50/p90; `cost_known` false when a result's model had no price (its
    `cost_total` then counts it as 0, which is not a price)."""
    return {
        model: {
            "n": sample.n,
            "successes": sample.successes,
            "ttft_ms": sample.percentiles("ttft_ms", (50, 90)),
            "output_speed_tps": sample.percentiles("output_speed_tps", (50, 90)),
            "itl_p50_ms": sample.percentiles("itl_p50_ms", (50, 90)),
            "itl_p99_ms": sample.percentiles("itl_p99_ms", (50, 90)),
            "cost_total": sample.total_cost(),
            "cost_known": not sample.cost_unknown,
        }
        for model, sample in by_model(results).items()
    }


def _number(value: Any) -> float | None:
    """A metric's value as a float; None for missing values, booleans and non-numbers
    (a stored record is data, not trusted to be well-typed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
