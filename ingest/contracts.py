"""Data contracts: what a provider promises each upload of a dataset looks like.

A contract lists columns with a stable ``name`` (``[a-z_][a-z0-9_]{0,62}``), the
``source`` header in the partner's file (often Chinese), a logical type and the
rules a value must meet. ``ingest.validate`` compiles it to a Great Expectations
ExpectationSuite; ``ingest.run`` uses it to map, parse and type each record batch.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal["string", "integer", "double", "boolean", "date", "timestamp"]
PIClass = Literal["non_pi", "pi_direct_id", "pi_quasi_id", "pi_other", "spi"]

COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_COLUMNS = 1000
THOUSANDS_SEPARATORS = (",", ".", " ", "'", "\u00a0", "\u202f")


class ColumnContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Stable column name used in SQL.")
    type: ColumnType = "string"
    source: str | None = Field(
        default=None, description="Header in the uploaded file; defaults to name."
    )
    description: str | None = None
    unit: str | None = None
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = Field(
        default=None, description="Allowed values (strings as written)."
    )
    pattern: str | None = Field(
        default=None, description="Regular expression the text must match fully."
    )
    format: str | list[str] | None = Field(
        default=None,
        description=(
            "strptime format(s) for date/timestamp columns, tried in order, e.g. %d/%m/%Y or "
            "%Y年%m月%d日 (month and day need no leading zero; full-width and Chinese "
            "numerals are read). ISO dates (2025-07-11) are always accepted too: typed "
            "spreadsheet cells and Parquet dates arrive that way."
        ),
    )
    thousands: str | None = Field(
        default=None,
        description="Thousands separator, e.g. ',' for 1,234,567.50 or '.' for 1.234,50.",
    )
    decimal: str = Field(default=".", description="Decimal separator in numbers: '.' or ','.")
    currency: str | None = Field(
        default=None,
        description="Currency code or sign that may prefix or suffix amounts, e.g. MOP, HK$, ¥.",
    )
    validator: str | None = Field(
        default=None,
        description=(
            "Identifier validator (uscc, cn_resident_id, hkid, hk_brn, hk_br_cert_no, mo_bir, "
            "mo_tin, phone, container_no, awb): values are normalised and check digits verified."
        ),
    )
    unique: bool = Field(default=False, description="No two rows may hold the same value.")
    pi: PIClass | None = Field(
        default=None,
        description=(
            "Personal-information class. Left out, ingest scans the values and suggests one "
            "for the provider to confirm; free text defaults to pi_other."
        ),
    )

    @field_validator("name")
    @classmethod
    def _name_is_canonical(cls, value: str) -> str:
        if not COLUMN_NAME.match(value):
            raise ValueError(
                f"column name {value!r} must match [a-z_][a-z0-9_]{{0,62}}; "
                "put the partner's header in 'source'"
            )
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"pattern {value!r} is not a valid regular expression: {exc}"
                ) from exc
        return value

    @model_validator(mode="after")
    def _rules_fit_type(self) -> ColumnContract:
        if (self.min is not None or self.max is not None) and self.type not in (
            "integer",
            "double",
        ):
            raise ValueError(f"column {self.name}: min/max apply to integer or double columns only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name}: min {self.min} is greater than max {self.max}")
        return self

    @model_validator(mode="after")
    def _formats_work(self) -> ColumnContract:
        if self.format is not None and self.type not in ("date", "timestamp"):
            raise ValueError(
                f"column {self.name}: format applies to date or timestamp columns only"
            )
        if isinstance(self.format, list) and not self.format:
            raise ValueError(f"column {self.name}: format lists no format")
        if self.format is not None:
            from ingest.parsing import check_format

            for fmt in self.formats:
                try:
                    check_format(fmt)
                except ValueError as exc:
                    raise ValueError(f"column {self.name}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _number_rules_work(self) -> ColumnContract:
        number_rules = self.thousands is not None or self.decimal != "." or self.currency
        if number_rules and self.type not in ("integer", "double"):
            raise ValueError(
                f"column {self.name}: thousands/decimal/currency apply to integer or double "
                "columns only"
            )
        if self.decimal not in (".", ","):
            raise ValueError(f"column {self.name}: decimal must be '.' or ','")
        decimal_in_use = self.type == "double"  # an integer has no decimal separator
        if self.thousands is not None and (
            (decimal_in_use and self.thousands == self.decimal)
            or self.thousands not in THOUSANDS_SEPARATORS
        ):
            raise ValueError(
                f"column {self.name}: thousands must differ from decimal and be one of "
                f"{', '.join(repr(t) for t in THOUSANDS_SEPARATORS)}"
            )
        return self

    @model_validator(mode="after")
    def _validator_exists(self) -> ColumnContract:
        if self.validator is not None:
            from ingest.validators import VALIDATORS

            if self.validator not in VALIDATORS:
                raise ValueError(
                    f"column {self.name}: no identifier validator {self.validator!r}; use one "
                    f"of {', '.join(sorted(VALIDATORS))}"
                )
            if self.type != "string":
                raise ValueError(f"column {self.name}: validator applies to string columns")
        return self

    @property
    def header(self) -> str:
        return self.source if self.source is not None else self.name

    @property
    def formats(self) -> tuple[str, ...]:
        """The contract's parse formats (empty: the type's defaults)."""
        if self.format is None:
            return ()
        return (self.format,) if isinstance(self.format, str) else tuple(self.format)


class DataContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: list[ColumnContract] = Field(min_length=1, max_length=MAX_COLUMNS)
    primary_key: list[str] = Field(default_factory=list)
    max_invalid_ratio: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "An upload fails as a whole when more than this share of its rows is invalid "
            "(default: the platform's ingest.max_error_ratio, 5%)."
        ),
    )

    @model_validator(mode="after")
    def _names_unique_and_keys_known(self) -> DataContract:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names: {', '.join(dupes)}")
        headers = [c.header for c in self.columns]
        dupe_headers = sorted({h for h in headers if headers.count(h) > 1})
        if dupe_headers:
            raise ValueError(f"two columns read the same source header: {', '.join(dupe_headers)}")
        unknown = [k for k in self.primary_key if k not in names]
        if unknown:
            raise ValueError(f"primary_key names unknown columns: {', '.join(unknown)}")
        return self

    def column(self, name: str) -> ColumnContract:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)
