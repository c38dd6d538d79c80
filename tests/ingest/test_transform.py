"""The steps' shortcuts against the exact paths they stand in for.

Each property runs the same generated batches through a step twice, once with the
shortcut and once with the exact (older, slower) path, and compares everything the step
leaves behind: typed values, rejection reasons, per-expectation counts, warnings.
"""

from __future__ import annotations

import string
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import transform
from ingest.contracts import DataContract
from ingest.transform import (
    BatchState,
    ColumnBinding,
    TransformContext,
    check_identifiers,
    parse_types,
    reject_control_characters,
    select_columns,
)

FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

IDENTIFIERS = DataContract.model_validate(
    {
        "columns": [
            {"name": "phone", "validator": "phone"},
            {"name": "other_phone", "validator": "phone"},
            {"name": "company", "validator": "uscc"},
        ]
    }
)

DIGITS = string.digits + "０１２５９٣"
PHONE_SHAPES = [
    "{8}",
    "+852 {4} {4}",
    "+852-{8}",
    "(852) {8}",
    "+86 1{2} {4} {4}",
    "0755-{4} {4}",
    "+86 20 {4} {4}",
    "{8} ext. {3}",
    "+853 6{3} {4}",
    "{4} {3}",
    "{9}",
    "{1}.{4}E+10",
    "+852\u3000{8}",
    "x{7}",
]


@st.composite
def phones(draw: st.DrawFn) -> str:
    """Phone numbers in the shapes partners write them, hostile ones included: other
    digit forms, extensions (a warning), Excel damage, too short, letters."""
    shape = draw(st.sampled_from(PHONE_SHAPES))
    out, rest = [], shape
    while "{" in rest:
        head, _, tail = rest.partition("{")
        count, _, rest = tail.partition("}")
        out.append(head + draw(st.text(DIGITS, min_size=int(count), max_size=int(count))))
    return "".join(out) + rest


def state_after(source: pa.RecordBatch, ctx: TransformContext) -> BatchState:
    state = BatchState(source=source, first_row=1)
    for step in (select_columns, reject_control_characters, parse_types, check_identifiers):
        state = step(state, ctx)
    return state


def outcome(state: BatchState) -> dict[str, Any]:
    return {
        "typed": {name: array.to_pylist() for name, array in state.typed.items()},
        "reasons": {row: [r.as_dict() for r in why] for row, why in sorted(state.reasons.items())},
        "tallies": {key: vars(tally) for key, tally in sorted(state.tallies.items())},
        "warnings": dict(state.warnings),
    }


def context() -> TransformContext:
    bindings = [ColumnBinding(c, c.name, i) for i, c in enumerate(IDENTIFIERS.columns)]
    return TransformContext(contract=IDENTIFIERS, bindings=bindings, region="HK")


def column_of(data: st.DataObject, values: list[str], rows: int) -> list[str]:
    return data.draw(st.lists(st.sampled_from(values), min_size=rows, max_size=rows))


def run_batches(batches: list[pa.RecordBatch], capacity: int) -> list[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transform, "KNOWN_IDENTIFIERS", capacity)
        ctx = context()
        outcomes = [outcome(state_after(batch, ctx)) for batch in batches]
    if capacity == 0:
        assert not any(len(known._raw) for known in ctx.known_identifiers.values())
    return outcomes


@pytest.mark.parametrize("capacity", [1 << 16, 3])
@FAST
@given(data=st.data())
def test_known_identifiers_give_what_check_gives(capacity: int, data: st.DataObject) -> None:
    """Values looked up among the clean values already checked get exactly what
    ``check`` gives them (canonical value, no finding), batch after batch, as the exact
    path (no lookup: ``KNOWN_IDENTIFIERS = 0``) does; with room for a few values too."""
    pool = data.draw(st.lists(phones(), min_size=1, max_size=30, unique=True))
    companies = ["91440300MA5G7K3P7P", "91440300MA5G7K3P7Q", " 91440300ma5g7k3p7p", ""]
    batches = []
    for _ in range(data.draw(st.integers(2, 4))):
        rows = data.draw(st.integers(1, 60))
        columns = {
            "phone": column_of(data, [*pool, ""], rows),
            "other_phone": column_of(data, pool, rows),
            "company": column_of(data, companies, rows),
        }
        batches.append(pa.RecordBatch.from_pydict(columns))
    assert run_batches(batches, 0) == run_batches(batches, capacity)


def test_known_identifiers_are_used_after_the_first_batch() -> None:
    """Not vacuous: a value seen clean once is looked up, not checked, afterwards."""
    ctx = context()
    batch = pa.RecordBatch.from_pydict(
        {"phone": ["5123 4567", "1234"], "other_phone": ["+852 5123 4567"] * 2, "company": ["", ""]}
    )
    state_after(batch, ctx)
    known = ctx.known_identifiers["phone"]
    assert sorted(known._raw.to_pylist()) == ["+852 5123 4567", "5123 4567"]
    assert known.canonical(pa.array(["5123 4567", "1234"])).to_pylist() == ["+85251234567", None]
    ctx.identifier_cache.clear()
    again = state_after(batch, ctx)
    assert list(ctx.identifier_cache) == [("phone", "1234")] and len(again.reasons) == 1
