"""The query benchmark's summary over several TPC-H passes (no timing is asserted)."""

from __future__ import annotations

import math

from benchmarks.query import tpch_summary


def _pass(*ratios: float) -> list[dict[str, float]]:
    return [{"query": i, "ratio": r, "ratio_fresh": r / 2} for i, r in enumerate(ratios, 1)]


def test_the_reported_mean_is_the_median_of_the_passes_geometric_means() -> None:
    passes = [_pass(1.0, 4.0), _pass(9.0, 4.0), _pass(1.0, 1.0)]  # means 2, 6, 1
    summary = tpch_summary(passes)
    assert [round(g, 9) for g in summary["tpch_geomean_passes"]] == [2.0, 6.0, 1.0]
    assert math.isclose(summary["tpch_geomean_ratio"], 2.0)
    assert math.isclose(summary["tpch_geomean_ratio_fresh"], 1.0)
    assert summary["tpch"] is passes[-1]  # the per-query rows are the last pass's
