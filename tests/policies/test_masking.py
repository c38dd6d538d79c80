"""Masks: key derivation, the SQL HMAC against Python's ``hmac``, parameters, key redaction."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import duckdb  # noqa: TID251 - tests drive the real engine directly (STYLE T2)
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from policies.masking import (
    InvalidMask,
    MaskKeyUnavailable,
    derive_mask_key,
    hmac_token,
    mask_expression,
)
from policies.model import GovernedSource, Mask
from policies.rewrite import govern
from tests.policies import TEST_MASK_SECRET, GrantCatalog, run_governed

VALUES = ["Chan Tai Man", "李小龙", "", "x" * 200, "A123456(7)", 'it\'s "quoted"', None]


def _sql_tokens(values: list[str | None], org: str) -> list[str | None]:
    key = derive_mask_key(TEST_MASK_SECRET, org)
    expression = mask_expression(Mask("v", "hmac"), exp.column("v"), key, dataset="t.t")
    select = exp.select(expression).from_("t")
    con = duckdb.connect()
    try:
        con.register("t", pa.table({"v": pa.array(values, pa.string())}))
        return [row[0] for row in con.execute(select.sql(dialect="duckdb")).fetchall()]
    finally:
        con.close()


def test_hmac_mask_in_duckdb_equals_python_hmac_sha256() -> None:
    key = derive_mask_key(TEST_MASK_SECRET, "org-a")
    expected = [
        None
        if value is None
        else hmac.new(key.secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
        for value in VALUES
    ]
    assert _sql_tokens(VALUES, "org-a") == expected
    assert [hmac_token(key, value) for value in VALUES] == expected


def test_hmac_mask_differs_per_consumer_and_per_key_version() -> None:
    first, second = _sql_tokens(["Chan Tai Man"], "org-a"), _sql_tokens(["Chan Tai Man"], "org-b")
    assert first != second
    rotated = derive_mask_key(TEST_MASK_SECRET, "org-a", version=2)
    assert hmac_token(rotated, "Chan Tai Man") != first[0]
    assert derive_mask_key(TEST_MASK_SECRET, "org-a") == derive_mask_key(TEST_MASK_SECRET, "org-a")


def test_mask_key_repr_never_shows_the_secret() -> None:
    key = derive_mask_key(TEST_MASK_SECRET, "org-a")
    assert key.secret.hex() not in repr(key)
    assert key.label == "org-a/v1"


@pytest.mark.parametrize(
    ("secret", "version"), [(b"short", 1), (TEST_MASK_SECRET, 0)], ids=["short_secret", "v0"]
)
def test_derive_mask_key_refuses_weak_input(secret: bytes, version: int) -> None:
    with pytest.raises(ValueError):
        derive_mask_key(secret, "org-a", version=version)


@pytest.mark.parametrize(
    "mask",
    [
        Mask("v", "partial", {"keep_prefix": 0, "keep_suffix": 0}),
        Mask("v", "partial", {"keep_prefix": -1}),
        Mask("v", "partial", {"keep_prefix": "3"}),
        Mask("v", "generalise", {"to": "minute"}),
        Mask("v", "generalise", {"bucket": 0}),
        Mask("v", "generalise", {"bucket": True}),
        Mask("v", "generalise", {"to": "month", "bucket": 10}),
        Mask("v", "generalise", {}),
        Mask("v", "redact", {"text": 42}),
        Mask("v", "shuffle"),  # type: ignore[arg-type]
    ],
    ids=lambda mask: f"{mask.kind}-{sorted(mask.params.items())}",
)
def test_mask_expression_refuses_invalid_parameters(mask: Mask) -> None:
    with pytest.raises(InvalidMask) as raised:
        mask_expression(mask, exp.column("v"), None, dataset="dg.t")
    assert "steward" in str(raised.value)
    assert raised.value.attrs()["column"] == "v"


def _masked_source(tmp_path: Path, masks: tuple[Mask, ...]) -> GovernedSource:
    path = tmp_path / "people.parquet"
    pq.write_table(pa.table({"name": ["Chan Tai Man", "Ho"], "pin": ["1234", "5678"]}), path)
    return GovernedSource("ds-p", "hk_lab", "people", 1, (str(path),), ("name", "pin"), masks=masks)


def test_govern_without_mask_key_fails_closed_for_hmac_masks(tmp_path: Path) -> None:
    source = _masked_source(tmp_path, (Mask("name", "hmac"),))
    with pytest.raises(MaskKeyUnavailable) as raised:
        govern("SELECT name FROM hk_lab.people", GrantCatalog([source]), max_rows=10)
    assert "DATASHARE_QUERY__MASK_SECRET" in str(raised.value)


def test_partial_mask_never_shows_a_short_value_whole(tmp_path: Path) -> None:
    source = _masked_source(tmp_path, (Mask("name", "partial", {"keep_prefix": 2}),))
    query = govern("SELECT name FROM hk_lab.people", GrantCatalog([source]), max_rows=10)
    assert sorted(run_governed(query.sql, query.allowed_paths)) == [("***",), ("Ch***",)]


def test_redacted_sql_hides_key_material_but_runs_the_same_shape(tmp_path: Path) -> None:
    source = _masked_source(tmp_path, (Mask("name", "hmac"), Mask("pin", "redact")))
    key = derive_mask_key(TEST_MASK_SECRET, "org-a")
    query = govern(
        "SELECT name, pin FROM hk_lab.people", GrantCatalog([source]), max_rows=10, mask_key=key
    )
    padded = key.secret.ljust(64, b"\0")
    for pad in (0x36, 0x5C):
        material = bytes(byte ^ pad for byte in padded).hex()
        assert material in query.sql
        assert material not in query.redacted_sql
    assert query.redacted_sql.count("<mask key redacted>") == 2
    rows = run_governed(query.sql, query.allowed_paths)
    assert sorted(rows) == sorted((hmac_token(key, n), "***") for n in ("Chan Tai Man", "Ho"))
