"""Quality of a version, from its GX validation result, and differences between versions.

``score`` is the share of the upload's rows that passed every expectation (0–100): the
number a consumer can reason about ("2 rows in 100 were quarantined"). GX's own view, the
share of expectations that held, is kept next to it. Failed expectations are listed with
their counts but never with the offending values (``partial_unexpected_list`` holds cell
values; it stays in the stored GX document for the provider's eyes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

QualityBucket = Literal["high", "medium", "low", "unknown"]
HIGH, MEDIUM = 99.0, 95.0
VALUE_STATS = ("min", "max", "mean", "histogram")
"""Statistics that reveal cell values (shown only to callers who may read the column)."""
SHAPE_KEYS = ("type", "arrow_type", "nullable", "unit", "pi", "source")
"""What makes a column's shape; a change in any of them is a schema change."""
NUMERIC_STATS = ("count", "nulls", "distinct_estimate", "min", "max", "mean")


def bucket(score: float | None) -> QualityBucket:
    if score is None:
        return "unknown"
    if score >= HIGH:
        return "high"
    return "medium" if score >= MEDIUM else "low"


def summarise(
    gx_result: Mapping[str, Any], *, rows_read: int, rows_rejected: int
) -> dict[str, Any]:
    """The quality summary of one version."""
    score = round(100.0 * (rows_read - rows_rejected) / rows_read, 2) if rows_read else None
    statistics = gx_result.get("statistics") or {}
    failed = [_failed(r) for r in gx_result.get("results") or [] if not r.get("success", True)]
    failed.sort(key=lambda f: (-int(f["unexpected_count"] or 0), f["expectation"], f["column"]))
    row_checks = gx_result.get("row_checks") or {}
    return {
        "score": score,
        "bucket": bucket(score),
        "success": gx_result.get("success"),
        "rows_checked": rows_read,
        "rows_rejected": rows_rejected,
        "expectations_evaluated": statistics.get("evaluated_expectations"),
        "expectations_failed": statistics.get("unsuccessful_expectations"),
        "expectation_success_percent": statistics.get("success_percent"),
        "failed_expectations": failed,
        "failures_by_rule": dict(row_checks.get("failures_by_rule") or {}),
    }


def _failed(result: Mapping[str, Any]) -> dict[str, Any]:
    config = result.get("expectation_config") or {}
    kwargs = config.get("kwargs") or {}
    counts = result.get("result") or {}
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ",".join(str(c) for c in kwargs["column_list"])
    return {
        "expectation": str(config.get("type") or config.get("expectation_type") or "unknown"),
        "column": str(column or ""),
        "unexpected_count": counts.get("unexpected_count"),
        "unexpected_percent": counts.get("unexpected_percent"),
    }


def trend(summaries: Iterable[tuple[int, Any, Mapping[str, Any]]]) -> dict[str, Any]:
    """Scores over versions (``(version, created_at, summary)`` in version order)."""
    points = [
        {
            "version": version,
            "created_at": created_at,
            "score": summary["score"],
            "bucket": summary["bucket"],
            "rows_checked": summary["rows_checked"],
            "rows_rejected": summary["rows_rejected"],
            "expectations_failed": summary["expectations_failed"],
        }
        for version, created_at, summary in summaries
    ]
    scores = [p["score"] for p in points if p["score"] is not None]
    direction = "flat"
    if len(scores) >= 2 and scores[-1] != scores[-2]:
        direction = "improving" if scores[-1] > scores[-2] else "declining"
    return {
        "points": points,
        "latest": scores[-1] if scores else None,
        "best": max(scores) if scores else None,
        "worst": min(scores) if scores else None,
        "direction": direction,
    }


INTERNAL_STATS = frozenset({"sketch"})
"""Kept with a version for merging appended statistics (HyperLogLog registers); never shown."""


def redact_stats(stats: Mapping[str, Any], readable: set[str]) -> dict[str, Any]:
    """Column statistics with value-revealing entries removed for columns not in
    ``readable``; counts (rows, nulls, distinct estimate) stay."""
    out: dict[str, Any] = {}
    for column, values in stats.items():
        if not isinstance(values, Mapping):
            out[column] = values
            continue
        shown = {k: v for k, v in values.items() if k not in INTERNAL_STATS}
        if column in readable:
            out[column] = shown
        else:
            out[column] = {k: v for k, v in shown.items() if k not in VALUE_STATS}
            out[column]["values_hidden"] = True
    return out


def diff_versions(
    old: Mapping[str, Any], new: Mapping[str, Any], readable: set[str]
) -> dict[str, Any]:
    """Schema and statistics differences between two versions (``schema``, ``stats``,
    ``row_count``, ``quality`` of each). Value statistics only for ``readable`` columns."""
    old_schema = {str(c["name"]): c for c in old["schema"]}
    new_schema = {str(c["name"]): c for c in new["schema"]}
    changed = []
    for name in [n for n in old_schema if n in new_schema]:
        before, after = old_schema[name], new_schema[name]
        changes = {
            key: {"from": before.get(key), "to": after.get(key)}
            for key in SHAPE_KEYS
            if before.get(key) != after.get(key)
        }
        if changes:
            changed.append({"name": name, "changes": changes})
    columns = {}
    for name in [n for n in new_schema if n in old_schema]:
        delta = _stats_delta(old["stats"].get(name) or {}, new["stats"].get(name) or {})
        if name not in readable:
            delta = {k: v for k, v in delta.items() if k not in VALUE_STATS}
        columns[name] = delta
    return {
        "schema": {
            "added": [new_schema[n] for n in new_schema if n not in old_schema],
            "removed": [old_schema[n] for n in old_schema if n not in new_schema],
            "changed": changed,
        },
        "row_count": _change(old["row_count"], new["row_count"]),
        "quality": _change(old["quality"]["score"], new["quality"]["score"]),
        "columns": columns,
    }


def _stats_delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _change(old.get(key), new.get(key)) for key in NUMERIC_STATS}


def _change(before: Any, after: Any) -> dict[str, Any]:
    change: dict[str, Any] = {"from": before, "to": after}
    if _number(before) and _number(after):
        change["delta"] = round(float(after) - float(before), 6)
    return change


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def readable_columns(
    schema: Sequence[Mapping[str, Any]],
    contract_columns: Sequence[Mapping[str, Any]],
    *,
    owner: bool,
    granted: list[str] | Literal[False] | None,
) -> set[str]:
    """Columns whose value statistics a caller may see: every column for the owning
    organisation; for a grant holder, granted columns classified ``non_pi`` (a masked or
    unclassified column's min/max would reveal what the mask hides); none otherwise.
    ``granted``: the grant's column list, None for every column, False for no grant."""
    names = {str(c["name"]) for c in schema}
    if owner:
        return names
    if granted is False:
        return set()
    non_pi = {str(c.get("name")) for c in contract_columns if c.get("pi") == "non_pi"}
    allowed = names if granted is None else names & set(granted)
    return allowed & non_pi
