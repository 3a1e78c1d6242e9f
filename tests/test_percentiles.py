"""Percentiles (linear interpolation, NumPy's default) against hand-computed values, and the
counting rules of run summaries."""
from __future__ import annotations

import pytest

from chalicelib import summaries
from chalicelib.percentiles import percentile, percentiles


@pytest.mark.parametrize(
    "values, q, expected",
    [
        # rank = (n - 1) * q / 100, interpolated between its neighbours
        ([1, 2, 3, 4], 50, 2.5),            # rank 1.5: 2 + 0.5 * (3 - 2)
        ([10, 20, 30], 90, 28.0),           # rank 1.8: 20 + 0.8 * 10
        ([100, 200, 300, 400], 90, 370.0),  # rank 2.7: 300 + 0.7 * 100
        ([100, 200, 300, 400], 99, 397.0),  # rank 2.97
        ([100, 200, 300, 400], 10, 130.0),  # rank 0.3
        ([4, 1, 3, 2], 25, 1.75),           # unsorted input; rank 0.75: 1 + 0.75
        ([7], 90, 7),                       # one value: every percentile is it
        ([5, 5, 5], 37, 5),
        ([1, 9], 0, 1),                     # p0 is the min
        ([1, 9], 100, 9),                   # p100 is the max
        ([0.5, 2.5], 50, 1.5),
    ],
)
def test_percentile_by_linear_interpolation(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None
    assert percentiles([], (10, 90)) == {"p10": None, "p90": None}


def test_several_percentiles_are_named_by_their_rank():
    assert percentiles([10, 20, 30, 40, 50], (10, 50, 99.5)) == pytest.approx(
        {"p10": 14.0, "p50": 30.0, "p99.5": 49.8}
    )


@pytest.mark.parametrize("q", [-1, 100.5])
def test_a_percentile_outside_0_to_100_is_a_programming_error(q):
    with pytest.raises(ValueError):
        percentile([1, 2], q)


def ok(model: str, ttft: float, *, speed: float = 50.0, itl50: float = 10.0, cost: float = 0.001) -> dict:
    return {"model": model, "success": True, "ttft_ms": ttft, "output_speed_tps": speed,
            "itl_p50_ms": itl50, "itl_p99_ms": itl50 * 2, "cost": cost}


def failed(model: str) -> dict:
    return {"model": model, "success": False, "ttft_ms": None, "output_speed_tps": None,
            "itl_p50_ms": None, "itl_p99_ms": None, "cost": 0.0, "error_type": "http_500"}


@pytest.mark.parametrize(
    "results, status",
    [
        ([ok("a", 1), ok("b", 1)], "ok"),
        ([ok("a", 1), failed("b")], "partial"),
        ([failed("a"), failed("b")], "failed"),
        ([], "failed"),
    ],
)
def test_run_status(results, status):
    assert summaries.run_status(results) == status


def test_a_run_summary_counts_failures_but_takes_percentiles_over_successes_only():
    results = [ok("a", 100, speed=10, cost=0.5), ok("a", 200, speed=30, cost=0.25), failed("a"), failed("b")]
    summary = summaries.run_summary(results)
    assert summary == {
        "a": {
            "n": 3, "successes": 2,
            "ttft_ms": {"p50": 150.0, "p90": 190.0},
            "output_speed_tps": {"p50": 20.0, "p90": 28.0},
            "itl_p50_ms": {"p50": 10.0, "p90": 10.0},
            "itl_p99_ms": {"p50": 20.0, "p90": 20.0},
            "cost_total": 0.75,
            "cost_known": True,
        },
        "b": {
            "n": 1, "successes": 0,
            "ttft_ms": {"p50": None, "p90": None},
            "output_speed_tps": {"p50": None, "p90": None},
            "itl_p50_ms": {"p50": None, "p90": None},
            "itl_p99_ms": {"p50": None, "p90": None},
            "cost_total": 0.0,
            "cost_known": True,
        },
    }


def test_a_run_summary_says_when_a_model_had_no_price():
    unpriced = {**ok("a", 100, cost=0.0), "cost_known": False}
    summary = summaries.run_summary([ok("a", 120), unpriced, ok("b", 90)])
    assert summary["a"]["cost_known"] is False and summary["a"]["cost_total"] == 0.001
    assert summary["b"]["cost_known"] is True


def test_a_sample_ignores_values_that_are_not_numbers():
    sample = summaries.Sample()
    sample.add({"model": "a", "success": True, "ttft_ms": True, "cost": "1"})
    sample.add({"model": "a", "success": True, "ttft_ms": 12.346})
    assert sample.n == 2 and sample.cost_total == 0.0
    assert sample.percentiles("ttft_ms", (50,)) == {"p50": 12.35}
    assert sample.extremes("ttft_ms") == {"min": 12.35, "max": 12.35}
