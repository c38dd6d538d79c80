"""Our Arrow engine and Great Expectations' own pandas engine agree.

The contract compiles to one GX suite; ``ingest.transform`` evaluates it with pyarrow
compute for speed. Here the same generated batch goes through both: every row we
reject must be a row GX (or the type parse, which runs before GX) fails, under the
same rule, and every row GX fails must be one we reject. Uniqueness is left out: GX's
pandas engine flags every copy of a duplicate within a batch, ours keeps the first
across the whole file (tested in test_pipeline.py).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contracts import DataContract
from ingest.transform import ColumnBinding, TransformContext, transform_batch
from ingest.validate import ValidationSession, compile_suite, to_frame
from ingest.validators.uscc import ALPHABET, check_character, org_code_check

CONTRACT = DataContract.model_validate(
    {
        "columns": [
            {"name": "site", "allowed": ["DG01", "DG02", "SZ01"], "nullable": False},
            {"name": "meter", "pattern": "M[0-9]{5}"},
            {"name": "kwh", "type": "double", "min": 0, "max": 5000},
            {"name": "shift", "type": "integer", "min": 1, "max": 3},
            {"name": "company", "validator": "uscc"},
            {"name": "day", "type": "date", "format": "%d/%m/%Y"},
        ]
    }
)


def uscc(rng: random.Random) -> str:
    body = "".join(rng.choice(ALPHABET) for _ in range(8))
    first17 = "91441900" + body + org_code_check(body)
    return first17 + check_character(first17)


def batch(rows: int, seed: int) -> pa.RecordBatch:
    rng = random.Random(seed)

    def pick(good: str, *bad: str) -> str:
        return good if rng.random() > 0.08 else rng.choice(bad)

    columns: dict[str, list[str]] = defaultdict(list)
    for _ in range(rows):
        code = uscc(rng)
        wrong = code[:17] + ALPHABET[(ALPHABET.index(code[17]) + 1) % 31]
        columns["site"].append(pick(rng.choice(["DG01", "DG02", "SZ01"]), "", "DG9", "dg01"))
        columns["meter"].append(pick(f"M{rng.randrange(10**5):05d}", "M12", "X00001", ""))
        columns["kwh"].append(pick(f"{rng.uniform(0, 5000):.2f}", "-1", "5000.01", "abc", ""))
        columns["shift"].append(pick(str(rng.randint(1, 3)), "0", "4", "1.5", ""))
        columns["company"].append(pick(code, wrong, "ABC", f"  {code.lower()}", ""))
        day = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025"
        columns["day"].append(pick(day, "31/02/2025", "2025/01/01", ""))
    return pa.RecordBatch.from_pydict(dict(columns))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrow_engine_and_gx_pandas_engine_reject_the_same_rows(seed: int) -> None:
    source = batch(3000, seed)
    bindings = [ColumnBinding(c, c.name, i) for i, c in enumerate(CONTRACT.columns)]
    ctx = TransformContext(contract=CONTRACT, bindings=bindings, region="DG")
    state = transform_batch(source, 1, ctx)
    ours: dict[int, set[str]] = {
        row: {"identifier" if r.rule.isupper() else r.rule for r in reasons}
        for row, reasons in state.reasons.items()
    }

    # GX sees what it would see if it were the engine: the rows whose types parsed, typed
    typed_ok = [row for row in range(source.num_rows) if "type" not in ours.get(row, set())]
    take = pa.array(typed_ok, pa.int64())
    untyped = pa.table({name: source.column(name).take(take) for name in source.schema.names})
    # identifier values as written (GX's custom expectation normalises them itself)
    raw_typed = pa.table(
        {
            b.name: (
                untyped.column(b.name)
                if b.contract.type == "string"
                else state.typed[b.name].take(take)
            )
            for b in bindings
        }
    ).replace_schema_metadata(None)
    frame = to_frame(_blank_to_null(raw_typed), index=np.array(typed_ok))
    session = ValidationSession(compile_suite(CONTRACT, region="DG"))
    result = session.validate(frame)
    theirs: dict[int, set[str]] = defaultdict(set)
    for row, failures in result.failures.items():
        theirs[row] |= {f.rule for f in failures}
    for row, rules in ours.items():
        if "type" in rules:
            continue
        theirs_rules = theirs.get(row, set())
        # we stop at the first failing step; GX reports every failing expectation
        assert rules and rules <= theirs_rules, (row, rules, theirs_rules)
    rejected_by_gx = {row for row, rules in theirs.items() if rules}
    assert rejected_by_gx == {row for row, rules in ours.items() if "type" not in rules}
    assert len(rejected_by_gx) > 200  # the batch really exercises the rules


def _blank_to_null(table: pa.Table) -> pa.Table:
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type):
            column = pa.chunked_array(
                [[None if v == "" else v for v in column.to_pylist()]], pa.string()
            )
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def test_control_character_rows_match_a_per_value_regex() -> None:
    import re

    from ingest.transform import control_character_rows

    rng = random.Random(7)
    alphabet = ["a", "é", "广", "\t", "\n", "\r", "\x00", "\x07", "\x1f", "\x7f", "€", " "]
    values = [
        None if rng.random() < 0.05 else "".join(rng.choices(alphabet, k=rng.randint(0, 6)))
        for _ in range(2000)
    ]
    array = pa.array(["skip\x00", *values], pa.string()).slice(1)  # non-zero offset
    control = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
    expected = [i for i, v in enumerate(values) if v is not None and control.search(v)]
    assert control_character_rows(array).tolist() == expected
    assert expected  # the sample really has some


CONTROL_TEXT = "aé广€ \t\n\r\x00\x07\x08\x0b\x0c\x0e\x1b\x1f\x7f\x80\x9f\u2028"


@settings(max_examples=100, deadline=None, database=None)
@given(values=st.lists(st.none() | st.text(CONTROL_TEXT, max_size=8), max_size=40))
def test_control_character_rows_match_a_per_value_regex_on_any_text(
    values: list[str | None],
) -> None:
    """The byte scan (compares, then a lookup of the few low bytes) finds exactly the rows
    the regular expression finds, whatever the offsets and nulls."""
    import re

    from ingest.transform import control_character_rows

    array = pa.array(["skip\x01", *values, "tail\x00"], pa.string()).slice(1, len(values))
    control = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]")
    expected = [i for i, v in enumerate(values) if v is not None and control.search(v)]
    assert control_character_rows(array).tolist() == expected


def test_iso_dates_are_accepted_next_to_the_contracts_own_format() -> None:
    """Typed xlsx cells and Parquet dates arrive as ISO text whatever the contract says."""
    contract = DataContract.model_validate(
        {"columns": [{"name": "day", "type": "date", "format": "%d/%m/%Y"}]}
    )
    bindings = [ColumnBinding(contract.columns[0], "day", 0)]
    ctx = TransformContext(contract=contract, bindings=bindings)
    source = pa.RecordBatch.from_pydict({"day": ["11/07/2025", "2025-07-11", "07/11/2025x"]})
    state = transform_batch(source, 1, ctx)
    assert state.typed["day"].to_pylist()[:2] == [dt.date(2025, 7, 11)] * 2
    assert list(state.reasons) == [2]
    assert state.reasons[2][0].expected == "date (%d/%m/%Y or %Y-%m-%d)"


def test_declaring_a_format_adds_only_what_an_undeclared_column_accepts() -> None:
    contract = DataContract.model_validate(
        {
            "columns": [
                {"name": "a", "type": "timestamp", "format": "%d/%m/%Y %H:%M"},
                {"name": "b", "type": "timestamp"},
            ]
        }
    )
    bindings = [ColumnBinding(c, c.name, i) for i, c in enumerate(contract.columns)]
    ctx = TransformContext(contract=contract, bindings=bindings)
    value = "2025-07-11 08:45:02.338"
    state = transform_batch(pa.RecordBatch.from_pydict({"a": [value], "b": [value]}), 1, ctx)
    # neither accepts milliseconds: the ISO fallback is exactly the undeclared column's formats
    assert [(r.column, r.rule) for r in state.reasons[0]] == [("a", "type"), ("b", "type")]
