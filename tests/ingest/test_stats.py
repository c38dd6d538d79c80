"""Column statistics: streamed per upload, merged for appended versions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import stats as stats_module
from ingest.contracts import DataContract
from ingest.stats import (
    KNOWN_DISTINCT,
    ColumnStats,
    DistinctCounter,
    NumericSample,
    histogram,
    merge_stats,
    update_stats,
)
from ingest.transform import fast_hash

CONTRACT = DataContract.model_validate(
    {"columns": [{"name": "n", "type": "double"}, {"name": "code", "type": "string"}]}
)


def stream(batches: list[tuple[list[float | None], list[str | None]]]) -> dict[str, dict]:
    stats = {c.name: ColumnStats(c) for c in CONTRACT.columns}
    for numbers, codes in batches:
        stats["n"].update(pa.array(numbers, pa.float64()))
        stats["code"].update(pa.array(codes, pa.string()))
    return {name: s.result() for name, s in stats.items()}


def test_numeric_columns_get_a_histogram_exact_for_small_and_scaled_for_large() -> None:
    contract = DataContract.model_validate({"columns": [{"name": "n", "type": "integer"}]})
    stats = ColumnStats(contract.columns[0])
    for start in range(0, 100, 10):
        stats.update(pa.array([*range(start, start + 10), None], pa.int64()))
    result = stats.result()
    assert result["count"] == 100 and result["nulls"] == 10
    exact = result["histogram"]
    assert exact["counts"] == [5] * 20 and not exact["estimated"]
    assert exact["edges"][0] == 0 and exact["edges"][-1] == 99

    sample = NumericSample(size=2000, seed=1)
    rng = np.random.default_rng(5)
    for _ in range(50):  # 100,000 values, 90% in the lower half
        sample.add(
            np.where(rng.random(2000) < 0.9, rng.random(2000) * 50, 50 + rng.random(2000) * 50)
        )
    scaled = histogram(sample.values, 100_000, 0.0, 100.0, integer=False)
    assert scaled["estimated"] and scaled["sample_size"] == 2000
    low_half = sum(scaled["counts"][:10])
    assert abs(low_half - 90_000) < 3_000  # ~3 standard errors of a 2,000-value sample
    assert abs(sum(scaled["counts"]) - 100_000) <= 20


def test_distinct_estimate_is_within_a_few_percent() -> None:
    counter = DistinctCounter()
    for start in range(0, 200_000, 50_000):  # 200k distinct strings, each seen twice
        chunk = pa.array([f"HK{i:08d}" for i in range(start, start + 50_000)])
        counter.add(fast_hash(chunk))
        counter.add(fast_hash(chunk))
    assert abs(counter.estimate() - 200_000) < 200_000 * 0.05
    small = DistinctCounter()
    small.add(fast_hash(pa.array(list(range(300)) * 3, pa.int64())))
    assert abs(small.estimate() - 300) <= 6


def test_merging_an_append_equals_one_pass_over_both_uploads() -> None:
    rng = np.random.default_rng(3)
    first = [(list(rng.normal(10, 2, 5000)), [f"A{i % 700}" for i in range(5000)])]
    second = [([*rng.normal(40, 5, 3000), None, None], [f"B{i % 400}" for i in range(3002)])]
    parent, upload, both = stream(first), stream(second), stream(first + second)
    merged = merge_stats(parent, upload, parent_rows=5000)

    for name in ("n", "code"):
        for key in ("count", "nulls", "min", "max", "distinct_estimate"):
            assert merged[name][key] == both[name][key], (name, key)
    assert merged["code"]["sketch"] == both["code"]["sketch"]  # HLL union is exact
    assert merged["n"]["mean"] == pytest.approx(both["n"]["mean"])
    rebinned = merged["n"]["histogram"]
    assert rebinned["edges"] == both["n"]["histogram"]["edges"]
    assert sum(rebinned["counts"]) == pytest.approx(8000, abs=20)
    # the two humps stay where they are: mass near 10 and near 40, little in between
    centres = np.convolve(rebinned["edges"], [0.5, 0.5], "valid")
    counts = np.array(rebinned["counts"])
    assert counts[centres < 20].sum() == pytest.approx(5000, rel=0.05)
    assert counts[centres > 28].sum() == pytest.approx(3000, rel=0.08)


def test_histograms_with_the_same_bins_add_up_exactly() -> None:
    parent = stream([([float(i) for i in range(100)], ["x"] * 100)])
    upload = stream([([float(i) for i in range(100)], ["y"] * 100)])
    merged = merge_stats(parent, upload, parent_rows=100)
    assert merged["n"]["histogram"]["counts"] == [10] * 20
    assert not merged["n"]["histogram"]["estimated"]
    assert merged["code"]["distinct_estimate"] == 2


def test_a_parent_without_sketches_gives_a_flagged_lower_bound() -> None:
    parent = stream([([1.0, 2.0], ["a", "b"])])
    for column in parent.values():
        del column["sketch"]  # a version committed before sketches were stored
    merged = merge_stats(parent, stream([([3.0], ["c"])]), parent_rows=2)
    assert merged["code"]["distinct_estimate"] == 2 and merged["code"]["distinct_lower_bound"]
    assert "sketch" not in merged["code"]


def test_a_column_new_in_the_upload_counts_the_parents_rows_as_nulls() -> None:
    parent = {"n": stream([([1.0, 2.0], ["a", "b"])])["n"]}
    merged = merge_stats(parent, stream([([3.0], ["c"])]), parent_rows=2)
    assert (merged["code"]["count"], merged["code"]["nulls"]) == (1, 2)


def test_sketches_round_trip() -> None:
    counter = DistinctCounter()
    counter.add(fast_hash(pa.array([f"k{i}" for i in range(10_000)])))
    again = DistinctCounter.from_sketch(counter.to_sketch())
    assert again.estimate() == counter.estimate()
    assert len(counter.to_sketch()) < 6000
    with pytest.raises(ValueError):
        DistinctCounter.from_sketch("hll12:" + "A" * 8)


def test_hashing_all_string_columns_at_once_keeps_the_same_sketches() -> None:
    """``update_stats`` hashes the string columns in one query: the registers (stored with
    each version and merged with later appends) are exactly those of one column at a time."""
    contract = DataContract.model_validate(
        {"columns": [{"name": "a"}, {"name": "b"}, {"name": "n", "type": "integer"}]}
    )
    rng = np.random.default_rng(7)
    batches = [
        pa.table(
            {
                "a": pa.array([f"S{v}" for v in rng.integers(0, 5000, 3000)]),
                "b": pa.array([None if v < 3 else f"城{v}" for v in rng.integers(0, 40, 3000)]),
                "n": pa.array(rng.integers(-50, 50, 3000)),
            }
        )
        for _ in range(3)
    ]
    together = {c.name: ColumnStats(c) for c in contract.columns}
    apart = {c.name: ColumnStats(c) for c in contract.columns}
    for table in batches:
        update_stats(together, table)
        for name, stats in apart.items():
            stats.update(table.column(name))
    assert {n: s.result() for n, s in together.items()} == {n: s.result() for n, s in apart.items()}
    assert together["b"].result()["nulls"] > 0


@pytest.mark.parametrize("known_distinct", [KNOWN_DISTINCT, 4])
@settings(max_examples=60, deadline=None, database=None)
@given(data=st.data())
def test_batches_of_known_values_give_the_statistics_of_counting_them(
    known_distinct: int, data: st.DataObject
) -> None:
    """``update_stats`` skips string columns whose values were all counted before; the
    statistics are exactly those of counting every batch one column at a time (the
    exact path), whether a column stays under the limit of known values or crosses it."""
    pool = data.draw(st.lists(st.text("aAé广 \x00" + "\u0301", max_size=4), min_size=1, max_size=8))
    contract = DataContract.model_validate(
        {"columns": [{"name": "few"}, {"name": "more"}, {"name": "n", "type": "integer"}]}
    )
    batches = []
    for _ in range(data.draw(st.integers(1, 5))):
        rows = data.draw(st.integers(0, 12))
        few = data.draw(st.lists(st.none() | st.sampled_from(pool), min_size=rows, max_size=rows))
        more = data.draw(
            st.lists(st.none() | st.text("xyz", max_size=3), min_size=rows, max_size=rows)
        )
        numbers = data.draw(st.lists(st.integers(-5, 5), min_size=rows, max_size=rows))
        batches.append(
            pa.table(
                {
                    "few": pa.array(few, pa.string()),
                    "more": pa.array(more, pa.string()),
                    "n": pa.array(numbers, pa.int64()),
                }
            )
        )
    together = {c.name: ColumnStats(c) for c in contract.columns}
    apart = {c.name: ColumnStats(c) for c in contract.columns}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stats_module, "KNOWN_DISTINCT", known_distinct)
        for table in batches:
            update_stats(together, table)
            for name, column_stats in apart.items():
                column_stats.update(table.column(name))
    assert {n: s.result() for n, s in together.items()} == {n: s.result() for n, s in apart.items()}


def test_a_batch_of_known_values_is_not_hashed_again() -> None:
    """Not vacuous: the second batch of a few repeated codes only counts."""
    contract = DataContract.model_validate({"columns": [{"name": "code"}]})
    stats = {"code": ColumnStats(contract.columns[0])}
    update_stats(stats, pa.table({"code": pa.array(["b", "a", None, "b"])}))
    assert sorted(stats["code"].known.to_pylist()) == ["a", "b"]
    assert stats["code"].only_known(pa.array(["a", None, "a"]))
    assert not stats["code"].only_known(pa.array(["a", "c"]))
    update_stats(stats, pa.table({"code": pa.array(["a", None, "a"])}))
    result = stats["code"].result()
    assert (result["count"], result["nulls"], result["min"], result["max"]) == (5, 2, "a", "b")
