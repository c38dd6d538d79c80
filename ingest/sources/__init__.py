"""Source plug-ins: one module per file format, all behind ``base.Source``."""

from __future__ import annotations

from ingest.sources.base import OpenSource, Source, SourceOptions, normalise_header
from ingest.sources.csv import CsvSource

SOURCES: dict[str, Source] = {"csv": CsvSource(), "tsv": CsvSource()}
"""Format name → source. TSV is the CSV source with ``SourceOptions(delimiter="\\t")``."""

__all__ = ["SOURCES", "CsvSource", "OpenSource", "Source", "SourceOptions", "normalise_header"]
