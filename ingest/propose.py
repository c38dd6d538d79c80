"""A data contract proposed from a sample of a dataset's first upload.

``propose_contract`` looks at the header row and a sample of string cells and proposes,
per column, a stable name, the type, the number or date format, nullability, an
identifier validator, an allowed-value list and the primary key. Every inference comes
with a human-readable note, because the provider confirms the proposal before it is
used. Types are decided with the parsers ingest uses (``ingest.parsing`` and the boolean
parser of ``ingest.transform``), so a value the proposal counted as parseable is one
ingest accepts.

Not proposed: ``min``/``max`` (the provider decides ranges), ``pi`` (the PII scan
decides), ``unique`` and ``pattern``. The result depends only on the inputs.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ingest.contracts import (
    COLUMN_NAME,
    THOUSANDS_SEPARATORS,
    ColumnContract,
    ColumnType,
    DataContract,
)
from ingest.parsing import describe_expected, parse_number, parse_temporal
from ingest.sources import source_for
from ingest.sources.base import SourceOptions
from ingest.validators import get_validator

__all__ = [
    "DATE_CANDIDATES",
    "REGIONS",
    "TIMESTAMP_CANDIDATES",
    "Proposal",
    "column_names",
    "propose_contract",
]

REGIONS = ("GZ", "SZ", "DG", "HK", "MO")
TYPE_SHARE = 95
"""Percent of non-empty sample values that must parse for a type or validator to be chosen."""
ALLOWED_MAX_VALUES = 12
ALLOWED_MIN_ROWS = 200
MAX_NAME = 63
MAX_DATE_FORMATS = 3
EXAMPLES = 3

DATE_CANDIDATES = ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d")
"""Date formats tried, in order (a tie goes to the earlier one). No month-first format:
``07/11/2025`` is never guessed to be US order (DOMAIN.md V-81)."""
TIMESTAMP_CANDIDATES = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
)

# Number layouts (thousands, decimal) in order of preference: a tie between two layouts
# that read every value goes to the region's convention (Macao: 1.234,50; DOMAIN.md §3.6).
_DOT_FIRST: tuple[tuple[str | None, str], ...] = (
    (None, "."),
    (",", "."),
    (None, ","),
    (".", ","),
    *((sep, dec) for sep in THOUSANDS_SEPARATORS[2:] for dec in (".", ",")),
)
_COMMA_FIRST = (_DOT_FIRST[3], _DOT_FIRST[2], _DOT_FIRST[0], _DOT_FIRST[1], *_DOT_FIRST[4:])
_LAYOUTS = {region: _COMMA_FIRST if region == "MO" else _DOT_FIRST for region in REGIONS}
_TYPE_ORDER: dict[ColumnType, int] = {
    "integer": 0,
    "double": 1,
    "boolean": 2,
    "date": 3,
    "timestamp": 4,
}

_CURRENCY_WORDS = frozenset(
    {"元", "圆", "圓", "人民币", "人民幣", "港元", "港币", "港幣", "澳门元", "澳門元", "澳门币",
     "澳門幣"}
)  # fmt: skip
_CURRENCY_CODE = re.compile(r"[A-Z]{3}|[A-Z]{1,3}\$")
_NUMBER_CHARS = "0-9+\\-\u2212.,'\\s\u00a0\u202f"
_PREFIX = f"^(?P<token>[^{_NUMBER_CHARS}]+)"
_SUFFIX = f"(?P<token>[^{_NUMBER_CHARS}]+)$"
_LEADING_ZERO = "^[+\\-\u2212]?0[0-9]"

# Validators with a check character (a random value rarely passes) come first; the
# format-only ones need a hint in the header: an 8-digit quantity column, or ISO dates
# (2025-07-11 normalises to 20250711), must not become HK business registration numbers.
_CHECKED_VALIDATORS = ("uscc", "cn_resident_id", "hkid", "container_no", "awb", "hk_br_cert_no")
_FORMAT_VALIDATORS = {
    "GZ": ("phone", "hk_brn", "mo_bir", "mo_tin"),
    "SZ": ("phone", "hk_brn", "mo_bir", "mo_tin"),
    "DG": ("phone", "hk_brn", "mo_bir", "mo_tin"),
    "HK": ("phone", "hk_brn", "mo_bir", "mo_tin"),
    "MO": ("phone", "mo_bir", "mo_tin", "hk_brn"),
}
_HINTS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "phone": (
        frozenset({"phone", "tel", "telephone", "mobile", "fax", "msisdn", "contact"}),
        ("电话", "電話", "手机", "手機", "联系", "聯絡", "聯繫", "手提", "传真", "傳真"),
    ),
    "hk_brn": (
        frozenset({"brn", "ubi"}),
        ("business registration", "商业登记", "商業登記", "登记号", "登記號"),
    ),
    "mo_tin": (frozenset({"tin", "taxpayer", "nif"}), ("纳税", "納稅", "税号", "稅號")),
    "mo_bir": (frozenset({"bir", "birp", "birnp"}), ("身份证", "身份證")),
}
_ID_WORDS = frozenset({"id", "no", "nr", "number", "uuid"})
_PERSONAL_VALIDATORS = frozenset({"hkid", "cn_resident_id", "mo_bir", "phone"})
"""Personal identifiers are masked or tokenised downstream (DOMAIN.md §6): never a key."""
_ID_HEADER_PARTS = ("编号", "編號", "号", "號", "编码", "編碼", "代码", "代碼")


@dataclass(frozen=True)
class Proposal:
    """A proposed contract and, per column name, why each part of it was proposed."""

    contract: DataContract
    notes: dict[str, list[str]]


def propose_contract(headers: Sequence[str], sample: pa.Table, *, region: str) -> Proposal:
    """Propose a contract for a file with these ``headers`` from a sample of its rows.

    ``sample`` holds the file's cells as strings, one column per header in the same order
    (empty string or null = missing). ``region`` is the dataset's origin: GZ, SZ, DG, HK
    or MO. A type, format or validator is chosen when at least 95% of the non-empty
    sample values satisfy it; ties between equally good readings go to the region's
    convention and are noted.
    """
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; use one of {', '.join(REGIONS)}")
    if not headers:
        raise ValueError("a contract needs at least one column; the header row is empty")
    if len(headers) != sample.num_columns:
        raise ValueError(
            f"{len(headers)} headers but the sample has {sample.num_columns} columns; "
            "give one sample column per header, in file order"
        )
    names, name_notes = column_names(headers)
    columns: list[ColumnContract] = []
    notes: dict[str, list[str]] = {}
    key_candidates: list[str] = []
    for position, header in enumerate(headers):
        guess = _ColumnGuess(header, names[position], _cells(sample.column(position)), region)
        guess.infer()
        columns.append(guess.contract())
        notes[names[position]] = [name_notes[position], *guess.notes]
        if guess.key_note is not None:
            key_candidates.append(names[position])
            notes[names[position]].append(guess.key_note)
    primary_key = _primary_key(key_candidates, notes)
    return Proposal(DataContract(columns=columns, primary_key=primary_key), notes)


def _primary_key(candidates: list[str], notes: dict[str, list[str]]) -> list[str]:
    if len(candidates) == 1:
        notes[candidates[0]].append("proposed as the primary key")
        return candidates
    for name in candidates:
        others = ", ".join(c for c in candidates if c != name)
        notes[name].append(f"not proposed as the primary key: so could {others}")
    return []


# -- names -----------------------------------------------------------------------------------


def column_names(headers: Sequence[str]) -> tuple[list[str], list[str]]:
    """A unique ``[a-z_][a-z0-9_]{0,62}`` name per header and a note on how it was made.

    ASCII headers become snake case (``Device ID`` → ``device_id``, ``deviceId`` →
    ``device_id``), accents are dropped, Chinese headers are written in pinyin
    (``设备编号`` → ``she_bei_bian_hao``); a header with nothing usable becomes
    ``column_N`` (N counts from 1). Repeats get ``_2``, ``_3``, … in header order.
    """
    bases = [_base_name(header) for header in headers]
    taken = {base for base, _ in bases if base is not None}
    names: list[str] = []
    notes: list[str] = []
    used: set[str] = set()
    for position, (header, (base, how)) in enumerate(zip(headers, bases, strict=True)):
        if base is None:
            name = _free(f"column_{position + 1}", used | taken)
            note = f"name {name!r}: header {header!r} has no letters or digits to use"
        elif base in used:
            name = _free(base, used | taken)
            note = f"name {name!r}: {how} of {header!r} gives {base!r}, used by an earlier column"
        else:
            name, note = base, f"name {base!r}: {how} of header {header!r}"
        used.add(name)
        names.append(name)
        notes.append(note)
    return names, notes


def _free(base: str, used: set[str]) -> str:
    if base not in used:
        return base
    counter = 2
    while True:
        suffix = f"_{counter}"
        candidate = base[: MAX_NAME - len(suffix)].rstrip("_") + suffix
        if candidate not in used:
            return candidate
        counter += 1


def _base_name(header: str) -> tuple[str | None, str]:
    """The snake-case name a header gives on its own, and how it was made."""
    text = unicodedata.normalize("NFKC", header).strip()
    how = "snake case"
    if any(_is_cjk(ch) for ch in text):
        text = " ".join(_pinyin(text))
        how = "pinyin"
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not text:
        return None, how
    if text[0].isdigit():
        text = "c_" + text
    name = text[:MAX_NAME].rstrip("_")
    assert COLUMN_NAME.match(name), name
    return name, how


def _pinyin(text: str) -> list[str]:
    from pypinyin import lazy_pinyin  # loads its dictionaries on first use

    return [str(syllable) for syllable in lazy_pinyin(text)]


_CJK_RANGES = (("\u3400", "\u9fff"), ("\uf900", "\ufaff"), ("\U00020000", "\U0003134f"))


def _is_cjk(ch: str) -> bool:
    return any(low <= ch <= high for low, high in _CJK_RANGES)


# -- one column --------------------------------------------------------------------------------


def _cells(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


@dataclass(frozen=True, eq=False)
class _Choice:
    """One reading of a column: the contract fields it sets and how many values it reads."""

    type: ColumnType
    fields: dict[str, Any]
    parsed: pa.Array
    count: int
    description: str
    caveats: tuple[str, ...] = ()
    rank: tuple[int, int] = (0, 0)
    """Numbers: (currency, layout) preference; lower wins a tie in ``count``."""


@dataclass
class _ColumnGuess:
    header: str
    name: str
    cells: pa.Array
    region: str
    fields: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    key_note: str | None = None
    values: pa.Array = field(init=False)
    """The non-empty cells."""
    rows: int = field(init=False)
    n: int = field(init=False)
    missing: int = field(init=False)

    def __post_init__(self) -> None:
        present = pc.fill_null(pc.not_equal(self.cells, ""), False)
        self.values = self.cells.filter(present)
        self.rows = len(self.cells)
        self.n = len(self.values)
        self.missing = self.rows - self.n

    def contract(self) -> ColumnContract:
        return ColumnContract(name=self.name, source=self.header, **self.fields)

    def infer(self) -> None:
        self.fields["nullable"] = self.missing > 0
        if self.missing:
            self.notes.append(f"nullable: {_share(self.missing, self.rows)} are empty")
        else:
            self.notes.append(f"not nullable: none of the {self.rows:,} sample values is empty")
        if self.n == 0:
            self.fields["type"] = "string"
            self.notes.append("string: the sample has no value to infer a type from")
            return
        leading_zero = self._leading_zero_examples()
        unhinted = self._validator()
        if "validator" in self.fields:
            return
        choice = self._typed(allow_numbers=not leading_zero)
        if choice is not None:
            self.fields.update(type=choice.type, **choice.fields)
            self.notes.append(f"{choice.description}: {_share(choice.count, self.n)} parse")
            self.notes.extend(choice.caveats)
            self._note_rejects(choice.parsed)
            self._check_key(choice.parsed)
        else:
            self.fields["type"] = "string"
            if leading_zero:
                self.notes.append(
                    f"string, not a number: leading zeros would be lost ({_quote(leading_zero)})"
                )
            else:
                self.notes.append(f"string: no type reads {TYPE_SHARE}% of the values")
            self._allowed()
            self._check_key(self.cells)
        if self.fields["type"] in ("string", "integer"):
            self.notes.extend(unhinted)

    # -- validators ------------------------------------------------------------------------

    def _validator(self) -> list[str]:
        """Set the first validator that enough values pass; identifiers without a check
        character (phone, BRN, BIR, TIN) only when the header names them. Returns notes on
        those that passed without a header hint."""
        distinct = _distinct(self.values)
        unhinted: list[str] = []
        for name in (*_CHECKED_VALIDATORS, *_FORMAT_VALIDATORS[self.region]):
            hinted = name in _HINTS and self._hinted(name)
            if name in _HINTS and not hinted and unhinted:
                continue  # one "could be" note is enough
            passed = _passing(name, distinct, self.n, self.region)
            if passed is None:
                if hinted:
                    self.notes.append(
                        f"the header suggests validator {name}, but fewer than {TYPE_SHARE}% "
                        "of the values pass it"
                    )
                continue
            count, canonical = passed
            if name in _HINTS and not hinted:
                unhinted.append(
                    f"{_share(count, self.n)} pass validator {name}, but the header does not "
                    f"name it: set validator {name} if that is what they are"
                )
                continue
            self.fields.update(type="string", validator=name)
            why = " and the header names it" if hinted else ""
            self.notes.append(f"string, validator {name}: {_share(count, self.n)} pass{why}")
            typed = pa.array([canonical.get(v) for v in self.values.to_pylist()], pa.string())
            self._note_rejects(typed)
            if name in _PERSONAL_VALIDATORS:
                self.notes.append(f"never proposed as a key: {name} values are personal data")
            else:
                self._check_key(typed)
            return []
        return unhinted

    def _hinted(self, validator: str) -> bool:
        words, phrases = _HINTS[validator]
        header = unicodedata.normalize("NFKC", self.header).lower()
        return bool(words & set(re.findall(r"[a-z0-9]+", header))) or any(
            p in header for p in phrases
        )

    # -- types -----------------------------------------------------------------------------

    def _typed(self, *, allow_numbers: bool) -> _Choice | None:
        """The reading that parses most values (at least ``TYPE_SHARE``%); ties go to the
        region's number layout, then to integer, double, boolean, date, timestamp."""
        numbers = self._numbers() if allow_numbers else []
        choices = [*numbers, self._boolean(), self._temporal("date"), self._temporal("timestamp")]
        enough = [c for c in choices if _enough(c.count, self.n)]
        if not enough:
            return None
        best = min(enough, key=lambda c: (-c.count, c.rank, _TYPE_ORDER[c.type]))
        if any(best is number for number in numbers):
            return dataclasses.replace(best, caveats=self._number_ties(best, numbers))
        return best

    def _numbers(self) -> list[_Choice]:
        """Every integer and double reading: layouts with separators that occur in the
        values, without and with the most frequent currency sign."""
        present = [sep for sep in THOUSANDS_SEPARATORS if _contains(self.values, sep)]
        currencies: list[str | None] = [None, *self._currency()]
        layouts = [
            (sep, dec)
            for sep, dec in _LAYOUTS[self.region]
            if (sep is None or sep in present) and (dec == "." or "," in present or sep == ".")
        ]
        choices = []
        for type_ in ("integer", "double"):
            for currency_rank, currency in enumerate(currencies):
                for layout_rank, (sep, dec) in enumerate(layouts):
                    rules: dict[str, Any] = {"thousands": sep, "decimal": dec, "currency": currency}
                    column = ColumnContract(name="x", type=type_, **rules)
                    parsed = parse_number(self.values, column)
                    choices.append(
                        _Choice(
                            type_,
                            rules,
                            parsed,
                            len(parsed) - parsed.null_count,
                            describe_expected(column),
                            rank=(currency_rank, layout_rank),
                        )
                    )
        return choices

    def _number_ties(self, best: _Choice, numbers: list[_Choice]) -> tuple[str, ...]:
        """A note when another layout reads as many values, but as other numbers."""
        chosen = best.parsed.cast(pa.float64())
        for other in numbers:
            if other is best or other.count != best.count:
                continue
            if pc.any(pc.not_equal(other.parsed.cast(pa.float64()), chosen)).as_py():
                return (
                    f"the values also read as {other.description}, giving other numbers; "
                    f"{best.description} is preferred in {self.region}: confirm",
                )
        return ()

    def _currency(self) -> list[str]:
        """The most frequent currency sign or code written before or after the numbers."""
        counts: dict[str, int] = {}
        for pattern in (_PREFIX, _SUFFIX):
            found = pc.extract_regex(self.values, pattern)
            tokens = pc.struct_field(found, "token").drop_null()
            for token, count in _distinct(tokens):
                if _is_currency(token):
                    counts[token] = counts.get(token, 0) + count
        if not counts:
            return []
        return [min(counts, key=lambda token: (-counts[token], token))]

    def _boolean(self) -> _Choice:
        from ingest.transform import parse_boolean  # imports GX, slow: only when proposing

        parsed = parse_boolean(self.values, ColumnContract(name="x", type="boolean"))
        return _Choice("boolean", {}, parsed, len(parsed) - parsed.null_count, "boolean")

    def _temporal(self, type_: ColumnType) -> _Choice:
        candidates = DATE_CANDIDATES if type_ == "date" else TIMESTAMP_CANDIDATES
        parsed_by = {
            fmt: parse_temporal(self.values, ColumnContract(name="x", type=type_, format=fmt))
            for fmt in candidates
        }
        masks = {fmt: _valid(parsed) for fmt, parsed in parsed_by.items()}
        chosen: list[str] = []
        covered = np.zeros(self.n, dtype=bool)
        while len(chosen) < MAX_DATE_FORMATS and not _enough(int(covered.sum()), self.n):
            gains = {
                fmt: int((m & ~covered).sum()) for fmt, m in masks.items() if fmt not in chosen
            }
            fmt = max(gains, key=lambda f: gains[f])  # first of equals: candidate order
            if gains[fmt] == 0:
                break
            chosen.append(fmt)
            covered |= masks[fmt]
        if not chosen:
            empty = pa.nulls(self.n, pa.date32() if type_ == "date" else pa.timestamp("ms"))
            return _Choice(type_, {}, empty, 0, type_)
        column = ColumnContract(name="x", type=type_, format=chosen)
        parsed = parse_temporal(self.values, column)
        description = f"{type_} {' or '.join(chosen)}"
        caveats = tuple(_day_first_caveats(chosen, parsed_by))
        if type_ == "timestamp":
            zoned = any("%z" in fmt for fmt in chosen)
            caveats += (
                "values carry a UTC offset and are stored in UTC"
                if zoned
                else "values carry no UTC offset and are stored as written (local time)",
            )
        return _Choice(type_, {"format": chosen}, parsed, int(covered.sum()), description, caveats)

    # -- strings ---------------------------------------------------------------------------

    def _allowed(self) -> None:
        distinct = _distinct(self.values)
        if len(distinct) <= ALLOWED_MAX_VALUES and self.n >= ALLOWED_MIN_ROWS:
            self.fields["allowed"] = sorted(value for value, _ in distinct)
            self.notes.append(
                f"allowed: {len(distinct)} distinct values in {self.n:,} non-empty rows"
            )

    # -- notes and keys --------------------------------------------------------------------

    def _leading_zero_examples(self) -> list[str]:
        mask = pc.match_substring_regex(self.values, _LEADING_ZERO)
        return _examples(self.values.filter(mask))

    def _note_rejects(self, parsed: pa.Array) -> None:
        failed = self.values.filter(pc.is_null(parsed))
        if len(failed):
            self.notes.append(
                f"{_share(len(failed), self.n)} would be rejected, e.g. {_quote(_examples(failed))}"
            )

    def _check_key(self, typed: pa.Array) -> None:
        """Note whether this column could be the primary key (unique, never empty, id-like)."""
        if self.missing or typed.null_count or len(typed) != self.rows or self.rows < 2:
            return
        if pc.count_distinct(typed).as_py() != self.rows or not self._id_like():
            return
        self.key_note = f"unique and never empty in {self.rows:,} rows; the header names an id"

    def _id_like(self) -> bool:
        header = unicodedata.normalize("NFKC", self.header)
        return bool(_ID_WORDS & set(self.name.split("_"))) or any(
            part in header for part in _ID_HEADER_PARTS
        )


# -- helpers -----------------------------------------------------------------------------------

MONTHS = 12


def _day_first_caveats(chosen: list[str], parsed_by: dict[str, pa.Array]) -> list[str]:
    """V-81: day-first values that month-first would read too are not proof of the order."""
    caveats = []
    for fmt in chosen:
        read = parsed_by[fmt].drop_null()
        if fmt.startswith("%d/%m/") and len(read) and pc.max(pc.day(read)).as_py() <= MONTHS:
            caveats.append(
                f"every {fmt} value has day and month ≤ 12, so month-first would read them "
                "too: confirm the partner writes the day first"
            )
    return caveats


def _passing(
    name: str, distinct: list[tuple[str, int]], n: int, region: str
) -> tuple[int, dict[str, str]] | None:
    """How many values pass validator *name* and the canonical form of each passing value,
    or None when fewer than ``TYPE_SHARE``% pass (stops as soon as that is certain)."""
    validator = get_validator(name)
    budget = n - -(-TYPE_SHARE * n // 100)
    failed = 0
    canonical: dict[str, str] = {}
    for value, count in distinct:
        checked = validator.check(value, region=region)
        # A format-only rule that merely warns (HK_BR_CERT_FORMAT, MO_TIN_FORMAT) still
        # means "not this kind of identifier" for a proposal.
        wrong_shape = any(f.rule.endswith("_FORMAT") for f in checked.findings)
        if not checked.ok or checked.value is None or wrong_shape:
            failed += count
            if failed > budget:
                return None
        else:
            canonical[value] = checked.value
    return n - failed, canonical


def _distinct(values: pa.Array) -> list[tuple[str, int]]:
    """Distinct values with their counts, most frequent first, then by value."""
    counts = pc.value_counts(values)
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    return sorted(((v, c) for v, c in pairs if v is not None), key=lambda p: (-p[1], p[0]))


def _is_currency(token: str) -> bool:
    return (
        bool(_CURRENCY_CODE.fullmatch(token))
        or token in _CURRENCY_WORDS
        or (len(token) == 1 and unicodedata.category(token) == "Sc")
    )


def _contains(values: pa.Array, text: str) -> bool:
    return bool(pc.any(pc.match_substring(values, text)).as_py())


def _valid(values: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)


def _enough(count: int, total: int) -> bool:
    return total > 0 and count * 100 >= TYPE_SHARE * total


def _share(count: int, total: int) -> str:
    percent = count * 100 // total if total else 0
    return f"{count:,} of {total:,} values ({percent}%)"


def _examples(values: pa.Array) -> list[str]:
    return [value for value, _ in _distinct(values)[:EXAMPLES]]


def _quote(examples: list[str]) -> str:
    return ", ".join(repr(e if len(e) <= 40 else e[:40] + "…") for e in examples)


SAMPLE_ROWS = 2000
"""Rows of an uploaded sample the proposal looks at by default."""


def propose_from_file(
    path: Path,
    *,
    fmt: str,
    encoding: str,
    region: str,
    sheet: str | None = None,
    header_row: int | None = None,
    rows: int = SAMPLE_ROWS,
) -> Proposal:
    """Propose a contract from the first ``rows`` rows of a file, read by the same source
    (encoding, header detection, limits) the ingest job will use."""
    options = SourceOptions(encoding=encoding, delimiter="\t" if fmt == "tsv" else ",")
    with source_for(fmt, sheet=sheet, header_row=header_row).open(path, options) as opened:
        batches: list[pa.RecordBatch] = []
        seen = 0
        for batch in opened:
            batches.append(batch)
            seen += batch.num_rows
            if seen >= rows:
                break
        headers = list(opened.headers)
    schema = pa.schema([pa.field(h, pa.string()) for h in headers])
    sample = pa.Table.from_batches(
        [b.rename_columns(headers) for b in batches], schema=schema
    ).slice(0, rows)
    return propose_contract(headers, sample, region=region)
