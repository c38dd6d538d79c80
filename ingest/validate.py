"""The Great Expectations adapter: the only module that imports ``great_expectations``.

``compile_suite`` turns a ``DataContract`` into an ``ExpectationSuite``. Every
expectation carries ``meta = {"column", "rule", "expected"}`` so a failure maps
back to the contract rule that caused it, in the vocabulary of the quarantine
report (``not_null``, ``range``, ``allowed``, ``pattern``, ``unique``, ``type``).

``ValidationSession`` owns one ephemeral GX context with one pandas dataframe
datasource and batch definition; build it once per job and call ``validate``
per batch (``validate_batch`` without a session builds a throwaway one). GX runs
with ``result_format="COMPLETE"`` so ``unexpected_index_list`` names the failing
rows: the dataframe's index labels, which callers set to whatever row id they
want back.

``merge_results`` folds per-batch summaries (or earlier merges) into the compact
document stored with a dataset version: per expectation, success, counts,
unexpected percent and a few example values. It is associative, so a job can
keep one running summary instead of every batch's result.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx  # noqa: TID251 - this module is the GX adapter
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from great_expectations.core import (  # noqa: TID251 - GX adapter
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.data_context.types.base import (  # noqa: TID251 - GX adapter
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.execution_engine.pandas_execution_engine import (  # noqa: TID251
    PandasExecutionEngine,
)
from great_expectations.expectations.expectation import (  # noqa: TID251 - GX adapter
    ColumnMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (  # noqa: TID251
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (  # noqa: TID251
    ColumnMapMetricProvider,
)

from ingest.contracts import ColumnContract, DataContract
from ingest.errors import ContractError, ValidationEngineError
from ingest.validators import get_validator

PARTIAL_VALUES = 20
TRUNCATE = 200
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "是"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "否"})

# pandas dtype names GX reports for the dtypes ``to_frame`` produces.
PANDAS_TYPES: dict[str, str] = {
    "string": "str",
    "integer": "int64",
    "double": "float64",
    "boolean": "bool",
    "date": "datetime64",
    "timestamp": "datetime64",
}

_E: Any = gx.expectations  # GX does not re-export its expectation classes for mypy


# -- custom expectations -----------------------------------------------------------------


class ColumnValuesValidIdentifier(ColumnMapMetricProvider):
    """GX metric: the value passes the named identifier validator (``ingest.validators``)."""

    condition_metric_name = "column_values.valid_identifier"
    condition_value_keys = ("validator", "region")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, validator: str, region: str | None, **_: Any) -> Any:
        check = get_validator(validator).check
        return column.map(lambda value: check(str(value), region=region).ok)


class ExpectColumnValuesToBeValidIdentifier(ColumnMapExpectation):
    """Each value is a valid identifier of kind ``validator`` (uscc, hkid, cn_resident_id,
    phone, ...) after NFKC normalisation; ``region`` is the dataset's origin (GZ … MO),
    the default region of phone numbers. Failures name the validator's rule, e.g.
    ``USCC_CHECK`` or ``EXCEL_NUMERIC_COERCION``."""

    validator: str
    region: str | None = None

    map_metric = "column_values.valid_identifier"
    success_keys = ("validator", "region", "mostly")


@dataclass(frozen=True)
class SuiteRule:
    """One expectation of a compiled suite, as plain data for an execution engine."""

    key: str
    column: str
    rule: str
    expected: str
    expectation_type: str
    kwargs: dict[str, Any]


def suite_rules(suite: Any) -> list[SuiteRule]:
    """The suite's expectations in order, with their contract rule and GX kwargs."""
    rules = []
    for expectation in suite.expectations:
        meta = expectation.meta or {}
        kwargs = {k: v for k, v in expectation.configuration.kwargs.items() if k != "batch_id"}
        rules.append(
            SuiteRule(
                key=f"{meta['column']}:{meta['rule']}",
                column=meta["column"],
                rule=meta["rule"],
                expected=meta["expected"],
                expectation_type=expectation.expectation_type,
                kwargs=kwargs,
            )
        )
    return rules


@dataclass
class Tally:
    """Counts for one expectation over the rows an engine checked (GX's result fields)."""

    element_count: int = 0
    missing_count: int = 0
    unexpected_count: int = 0
    partial_unexpected_list: list[Any] = field(default_factory=list)

    def add(
        self, *, elements: int, missing: int, unexpected: int, examples: Iterable[Any] = ()
    ) -> None:
        """Count a batch; ``examples`` are unexpected values (the first 20 are kept)."""
        self.element_count += elements
        self.missing_count += missing
        self.unexpected_count += unexpected
        room = PARTIAL_VALUES - len(self.partial_unexpected_list)
        if room > 0:
            self.partial_unexpected_list.extend(jsonable(v) for v in list(examples)[:room])

    def merge(self, other: Tally) -> None:
        self.add(
            elements=other.element_count,
            missing=other.missing_count,
            unexpected=other.unexpected_count,
            examples=other.partial_unexpected_list,
        )


def result_document(suite: Any, tallies: Mapping[str, Tally], *, batches: int) -> dict[str, Any]:
    """A GX ``ExpectationSuiteValidationResult`` (as its JSON dict) built from ``tallies``.

    The engine that counted is ours (``ingest.transform``); the vocabulary, the result
    classes and the document shape are GX's, so the document reads like any GX run's.
    """
    results = []
    for expectation, rule in zip(suite.expectations, suite_rules(suite), strict=True):
        tally = tallies.get(rule.key, Tally())
        checked = tally.element_count - tally.missing_count
        percent = 100.0 * tally.unexpected_count / checked if checked else 0.0
        results.append(
            ExpectationValidationResult(
                success=tally.unexpected_count == 0,
                expectation_config=expectation.configuration,
                result={
                    "element_count": tally.element_count,
                    "missing_count": tally.missing_count,
                    "missing_percent": (
                        100.0 * tally.missing_count / tally.element_count
                        if tally.element_count
                        else 0.0
                    ),
                    "unexpected_count": tally.unexpected_count,
                    "unexpected_percent": round(percent, 6),
                    "partial_unexpected_list": tally.partial_unexpected_list,
                },
                exception_info={"raised_exception": False},
            )
        )
    successes = sum(1 for r in results if r.success)
    result = ExpectationSuiteValidationResult(
        success=successes == len(results),
        results=results,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": successes,
            "unsuccessful_expectations": len(results) - successes,
            "success_percent": 100.0 * successes / len(results) if results else 100.0,
        },
        meta={
            "great_expectations_version": gx.__version__,
            "engine": "ingest.transform (pyarrow), streamed",
            "batches": batches,
        },
    )
    return dict(result.to_json_dict())  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class RowFailure:
    """One broken rule in one row. ``actual`` is already truncated."""

    column: str
    rule: str
    expected: str
    actual: str | None


@dataclass
class BatchValidation:
    """What GX said about one batch.

    ``failures`` maps the dataframe's index label of each failing row to its failures;
    ``result`` is GX's own result object (``result.to_json_dict()`` for the document);
    ``summary`` is the compact, mergeable form (see ``merge_results``).
    """

    failures: dict[int, list[RowFailure]]
    result: Any
    summary: dict[str, Any]
    seconds: float = 0.0
    rows: int = 0


@dataclass
class _Rule:
    column: str
    rule: str
    expected: str
    expectation: Any = field(repr=False)


def truncate(value: object, limit: int = TRUNCATE) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- compiling ---------------------------------------------------------------------------


def compile_suite(
    contract: DataContract, *, name: str = "data_contract", region: str | None = None
) -> Any:
    """The contract as a GX ``ExpectationSuite`` (not yet bound to a context).

    ``region`` is the dataset's origin, the default region of identifier validators.
    """
    rules = [
        rule for column in contract.columns for rule in _column_rules(contract, column, region)
    ]
    if len(contract.primary_key) > 1:
        key = contract.primary_key
        rules.append(
            _Rule(
                "+".join(key),
                "unique",
                "unique",
                _E.ExpectCompoundColumnsToBeUnique(column_list=list(key)),
            )
        )
    expectations = []
    for rule in rules:
        rule.expectation.meta = {
            "column": rule.column,
            "rule": rule.rule,
            "expected": rule.expected,
        }
        expectations.append(rule.expectation)
    return gx.ExpectationSuite(name=name, expectations=expectations)


def _column_rules(
    contract: DataContract, column: ColumnContract, region: str | None = None
) -> list[_Rule]:
    name = column.name
    rules = [
        _Rule(
            name,
            "type",
            column.type,
            _E.ExpectColumnValuesToBeOfType(column=name, type_=PANDAS_TYPES[column.type]),
        )
    ]
    if column.validator is not None:
        rules.append(
            _Rule(
                name,
                "identifier",
                f"a valid {column.validator}",
                ExpectColumnValuesToBeValidIdentifier(
                    column=name, validator=column.validator, region=region
                ),
            )
        )
    if not column.nullable or name in contract.primary_key:
        rules.append(
            _Rule(name, "not_null", "a value", _E.ExpectColumnValuesToNotBeNull(column=name))
        )
    if column.min is not None or column.max is not None:
        rules.append(
            _Rule(
                name,
                "range",
                _range_text(column.min, column.max),
                _E.ExpectColumnValuesToBeBetween(
                    column=name, min_value=column.min, max_value=column.max
                ),
            )
        )
    if column.allowed is not None:
        values = allowed_values(column)
        rules.append(
            _Rule(
                name,
                "allowed",
                truncate(f"one of {column.allowed}") or "",
                _E.ExpectColumnValuesToBeInSet(column=name, value_set=values),
            )
        )
    if column.pattern is not None:
        rules.append(
            _Rule(
                name,
                "pattern",
                f"matches {column.pattern}",
                # GX's pandas engine *searches*; the contract means a full match.
                _E.ExpectColumnValuesToMatchRegex(column=name, regex=rf"^(?:{column.pattern})\Z"),
            )
        )
    if contract.primary_key == [name] or column.unique:
        rules.append(_Rule(name, "unique", "unique", _E.ExpectColumnValuesToBeUnique(column=name)))
    return rules


def _range_text(low: float | None, high: float | None) -> str:
    def show(value: float) -> str:
        return str(int(value)) if value.is_integer() else str(value)

    if low is not None and high is not None:
        return f"between {show(low)} and {show(high)}"
    if low is not None:
        return f">= {show(low)}"
    assert high is not None
    return f"<= {show(high)}"


def allowed_values(column: ColumnContract) -> list[Any]:
    """The contract's allowed values (written as strings) as values of the column's type."""
    assert column.allowed is not None
    out: list[Any] = []
    for text in column.allowed:
        try:
            out.append(_typed_allowed(column, text))
        except ValueError:
            raise ContractError(
                column.name, f"allowed value {text!r} is not a valid {column.type}"
            ) from None
    return out


def _typed_allowed(column: ColumnContract, text: str) -> object:
    if column.type == "string":
        return text
    if column.type == "integer":
        return int(text)
    if column.type == "double":
        return float(text)
    if column.type == "boolean":
        word = text.strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
    raise ValueError(text)


# -- running -----------------------------------------------------------------------------


def to_frame(table: pa.Table, index: npt.ArrayLike | None = None) -> pd.DataFrame:
    """The pandas frame GX validates.

    Numbers and booleans use numpy dtypes (doubles with NaN for null): GX's
    ``between`` is vectorised for those but maps a Python function over pandas'
    nullable extension dtypes, ~30x slower. Integer and boolean columns that contain
    nulls keep the nullable ``Int64``/``boolean`` dtypes so values stay exact.
    Dates become ``datetime64``.
    """
    columns: dict[str, Any] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        nullable = _NULLABLE_DTYPES.get(column.type) if column.null_count else None
        if nullable is not None:
            columns[name] = column.to_pandas(types_mapper={column.type: nullable}.get)
        else:
            columns[name] = column.to_pandas(date_as_object=False)
    frame = pd.DataFrame(columns)
    if index is not None:
        frame.index = pd.Index(index)
    return frame


_NULLABLE_DTYPES: dict[pa.DataType, Any] = {
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


class ValidationSession:
    """One ephemeral GX context + pandas datasource + suite, reused for every batch of a job."""

    def __init__(self, suite: Any) -> None:
        started = time.perf_counter()
        config = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        )
        self._context = gx.get_context(mode="ephemeral", project_config=config)
        self.suite = self._context.suites.add(suite)
        datasource = self._context.data_sources.add_pandas("ingest")
        asset = datasource.add_dataframe_asset("batch")
        self._batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        self.setup_seconds = time.perf_counter() - started

    def validate(self, data: pd.DataFrame | pa.Table | pa.RecordBatch) -> BatchValidation:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        frame = data if isinstance(data, pd.DataFrame) else to_frame(data)
        started = time.perf_counter()
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        with warnings.catch_warnings():
            # pandas warns that anchored patterns with groups are not extracted; we only match
            warnings.filterwarnings("ignore", "This pattern is interpreted as a regular expression")
            result = batch.validate(self.suite, result_format={"result_format": "COMPLETE"})
        seconds = time.perf_counter() - started
        failures: dict[int, list[RowFailure]] = {}
        summaries = []
        items: list[Any] = list(result.results)
        for item in items:
            _raise_if_crashed(item)
            meta = item.expectation_config.meta or {}
            details = item.result or {}
            if "column" in meta:
                failure_rows = zip(
                    details.get("unexpected_index_list") or [],
                    details.get("unexpected_list") or [],
                    strict=False,
                )
                for label, value in failure_rows:
                    failures.setdefault(int(label), []).append(
                        RowFailure(meta["column"], meta["rule"], meta["expected"], _actual(value))
                    )
            summaries.append(_summarise(item))
        summary = {
            "suite_name": self.suite.name,
            "gx_version": gx.__version__,
            "batches": 1,
            "results": summaries,
        }
        return BatchValidation(failures, result, summary, seconds, len(frame))


def _actual(value: object) -> str | None:
    plain = jsonable(value)
    return None if plain is None else truncate(plain)


def _raise_if_crashed(item: Any) -> None:
    info = item.exception_info or {}
    if info.get("raised_exception"):
        config = item.expectation_config
        raise ValidationEngineError(
            expectation=config.type,
            column=(config.meta or {}).get("column"),
            message=str(info.get("exception_message")),
        )


def validate_batch(
    data: pd.DataFrame | pa.Table | pa.RecordBatch,
    suite: Any,
    *,
    session: ValidationSession | None = None,
) -> BatchValidation:
    """Validate one batch. Pass the job's ``session``; without one a context is built."""
    return (session or ValidationSession(suite)).validate(data)


# -- merging -----------------------------------------------------------------------------


def _summarise(item: Any) -> dict[str, Any]:
    config = item.expectation_config
    meta = dict(config.meta or {})
    details = item.result or {}
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    summary: dict[str, Any] = {
        "key": f"{meta.get('column')}:{meta.get('rule')}",
        "expectation_type": config.type,
        "column": meta.get("column"),
        "rule": meta.get("rule"),
        "kwargs": jsonable(kwargs),
        "success": bool(item.success),
    }
    if "element_count" in details:
        summary["element_count"] = int(details.get("element_count") or 0)
        summary["missing_count"] = int(details.get("missing_count") or 0)
        summary["unexpected_count"] = int(details.get("unexpected_count") or 0)
        partial = details.get("partial_unexpected_list") or []
        summary["partial_unexpected_list"] = jsonable(partial[:PARTIAL_VALUES])
    if "observed_value" in details:
        summary["observed_value"] = jsonable(details["observed_value"])
    return summary


def merge_results(results: Iterable[BatchValidation | Mapping[str, Any]]) -> dict[str, Any]:
    """Fold batch summaries (or earlier merges) into one document; see the module doc."""
    merged: dict[str, dict[str, Any]] = {}
    header: dict[str, Any] = {"suite_name": None, "gx_version": gx.__version__, "batches": 0}
    for result in results:
        summary = result.summary if isinstance(result, BatchValidation) else result
        if not summary:
            continue
        header["suite_name"] = header["suite_name"] or summary.get("suite_name")
        header["batches"] += int(summary.get("batches", 1))
        for item in summary.get("results", []):
            _merge_item(merged, item)
    items = list(merged.values())
    for item in items:
        if "element_count" in item:
            checked = item["element_count"] - item["missing_count"]
            percent = 100.0 * item["unexpected_count"] / checked if checked else 0.0
            item["unexpected_percent"] = round(percent, 6)
    successes = sum(1 for item in items if item["success"])
    return {
        **header,
        "success": successes == len(items),
        "statistics": {
            "evaluated_expectations": len(items),
            "successful_expectations": successes,
            "unsuccessful_expectations": len(items) - successes,
            "success_percent": 100.0 * successes / len(items) if items else 100.0,
        },
        "results": items,
    }


def _merge_item(merged: dict[str, dict[str, Any]], item: Mapping[str, Any]) -> None:
    key = item["key"]
    if key not in merged:
        merged[key] = {k: (list(v) if isinstance(v, list) else v) for k, v in item.items()}
        return
    into = merged[key]
    into["success"] = bool(into["success"] and item["success"])
    for count in ("element_count", "missing_count", "unexpected_count"):
        if count in item:
            into[count] = into.get(count, 0) + item[count]
    if "partial_unexpected_list" in item:
        partial = into.setdefault("partial_unexpected_list", [])
        partial.extend(item["partial_unexpected_list"][: PARTIAL_VALUES - len(partial)])
    if "observed_value" in item:
        into["observed_value"] = item["observed_value"]


def jsonable(value: Any) -> Any:
    """``value`` with numpy/pandas scalars, dates and NaN made JSON-friendly (strings cut)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.date | dt.datetime | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return truncate(value)
    if isinstance(value, bool | int | float):
        return value
    return truncate(str(value))
