"""The five regions of the platform and the jurisdiction each belongs to."""

from __future__ import annotations

from enum import StrEnum


class Region(StrEnum):
    GZ = "GZ"  # Guangzhou
    SZ = "SZ"  # Shenzhen
    DG = "DG"  # Dongguan
    HK = "HK"  # Hong Kong SAR
    MO = "MO"  # Macao SAR

    @property
    def jurisdiction(self) -> str:
        """``mainland``, ``HK`` or ``MO``: the legal system the region's data falls under."""
        return "mainland" if self in MAINLAND else self.value


MAINLAND = frozenset({Region.GZ, Region.SZ, Region.DG})


def parse_region(value: str) -> Region:
    """Parse a region code case-insensitively; the error lists the valid codes."""
    try:
        return Region(value.strip().upper())
    except ValueError:
        valid = ", ".join(r.value for r in Region)
        raise ValueError(f"unknown region {value!r}; use one of {valid}") from None
