"""Chart geometry for inline SVG (no chart library, no CDN): the templates draw what these
functions compute from the statistics stored with each version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

WIDTH: Final = 320
HEIGHT: Final = 120
AXIS: Final = 18  # room below the bars for the min/max labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    low: float
    high: float
    count: int


def histogram_bars(histogram: dict[str, Any] | None) -> list[Bar]:
    """Bars of a stored histogram (``edges``: n+1 bin edges, ``counts``: n counts)."""
    if not isinstance(histogram, dict):
        return []
    edges = [float(e) for e in histogram.get("edges") or []]
    counts = [int(c) for c in histogram.get("counts") or []]
    if not counts or len(edges) != len(counts) + 1:
        return []
    tallest = max(counts) or 1
    width = WIDTH / len(counts)
    plot = HEIGHT - AXIS
    bars = []
    for index, count in enumerate(counts):
        height = plot * count / tallest
        if count and height < 1:
            height = 1.0  # a non-empty bin stays visible
        bars.append(
            Bar(
                x=round(index * width + 1, 2),
                y=round(plot - height, 2),
                width=round(max(width - 2, 1), 2),
                height=round(height, 2),
                low=edges[index],
                high=edges[index + 1],
                count=count,
            )
        )
    return bars


@dataclass(frozen=True)
class TrendPoint:
    x: float
    y: float
    version: int
    share: float  # rows that passed validation, 0..1


def quality_trend(versions: list[dict[str, Any]]) -> list[TrendPoint]:
    """Share of valid rows per version, oldest first, as points of a polyline."""
    ordered = sorted(versions, key=lambda v: int(v.get("version", 0)))
    shares = []
    for version in ordered:
        valid = int(version.get("row_count") or 0)
        rejected = int(version.get("rejected_count") or 0)
        total = valid + rejected
        shares.append((int(version.get("version", 0)), valid / total if total else 1.0))
    if not shares:
        return []
    step = WIDTH / max(len(shares) - 1, 1)
    plot = HEIGHT - AXIS
    return [
        TrendPoint(
            x=round(index * step if len(shares) > 1 else WIDTH / 2, 2),
            y=round(plot - plot * share, 2),
            version=number,
            share=share,
        )
        for index, (number, share) in enumerate(shares)
    ]
