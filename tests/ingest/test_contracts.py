"""Contract validation: a contract that cannot work is refused when it is saved."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ingest.contracts import ColumnContract, DataContract


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"type": "date", "format": "%Y %y"}, "sets the same field twice"),
        ({"type": "date", "format": "%d/%m/%Y %"}, "lone %"),
        ({"type": "date", "format": []}, "lists no format"),
        ({"type": "double", "thousands": ",", "decimal": ","}, "thousands must differ"),
        ({"type": "double", "thousands": "_"}, "thousands must differ"),
        ({"type": "double", "decimal": ";"}, "decimal must be"),
        ({"type": "string", "currency": "MOP"}, "integer or double columns only"),
        ({"type": "string", "validator": "passport"}, "no identifier validator 'passport'"),
        ({"type": "integer", "validator": "uscc"}, "validator applies to string columns"),
        ({"type": "string", "min": 1}, "min/max apply"),
    ],
)
def test_unusable_column_rules_are_refused_with_the_reason(
    column: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ColumnContract.model_validate({"name": "c", **column})


def test_usable_rules_are_kept() -> None:
    column = ColumnContract.model_validate(
        {"name": "n", "type": "integer", "thousands": "."}  # integers have no decimal part
    )
    assert column.thousands == "."
    dates = ColumnContract.model_validate(
        {"name": "d", "type": "date", "format": ["%d/%m/%Y", "%Y年%m月%d日"]}
    )
    assert dates.formats == ("%d/%m/%Y", "%Y年%m月%d日")
    assert ColumnContract(name="x").pi is None  # unclassified until scanned and confirmed


def test_contract_level_rules() -> None:
    with pytest.raises(ValidationError, match="primary_key names unknown columns: nope"):
        DataContract.model_validate({"columns": [{"name": "a"}], "primary_key": ["nope"]})
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        DataContract.model_validate({"columns": [{"name": "a"}], "max_invalid_ratio": 2})
