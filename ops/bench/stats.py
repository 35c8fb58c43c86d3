"""Pure arithmetic over measurements: percentiles, latency summaries, medians, ratios."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at `fraction` (0..1) of the sorted values, nearest rank; ValueError if empty."""
    if not values:
        raise ValueError("no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction {fraction} is outside 0..1")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency_summary(latencies_ms: Sequence[float], elapsed_s: float, errors: int = 0) -> dict[str, Any]:
    """requests, errors, p50/p90/p99 (ms, None when nothing answered) and throughput (req/s)."""
    figures: dict[str, Any] = {"requests": len(latencies_ms) + errors, "errors": errors}
    for name, fraction in (("p50_ms", 0.50), ("p90_ms", 0.90), ("p99_ms", 0.99)):
        figures[name] = round(percentile(latencies_ms, fraction), 2) if latencies_ms else None
    figures["throughput_rps"] = round(len(latencies_ms) / elapsed_s, 1) if elapsed_s > 0 else None
    return figures


def medians(runs: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per key, the median over the runs that have it (keys in first-seen order)."""
    collected: dict[str, list[float]] = {}
    for run in runs:
        for key, value in run.items():
            collected.setdefault(key, []).append(value)
    return {key: round(statistics.median(values), 4) for key, values in collected.items()}


def ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    """numerator / denominator, rounded; None when either is missing or the denominator is 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)
