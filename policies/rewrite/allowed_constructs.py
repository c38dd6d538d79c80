"""What client SQL may contain, by exact sqlglot class, and how refusals are named.

Membership is by *exact* type (``type(node) in ...``), never ``isinstance``:
sqlglot subclasses freely (``exp.And``, ``exp.Case``, ``exp.Cast`` are all
``exp.Func`` subclasses in 30.30), and a new subclass must not inherit an
allowance by accident. Anything not listed is refused; ``exp.Anonymous``
(every function sqlglot does not model: ``read_csv_auto``, ``query``,
``glob``, ``current_setting``, ``getvariable``, ``duckdb_*``,
``parquet_metadata``, ``error``, ``date_part`` ...) is never listed.

Deliberately absent: table functions, ``UNNEST``/``range``/``repeat``/pads
(memory exhaustion), lists, structs and maps, lambdas, ``COLUMNS(...)``,
positional columns, sampling, ``ROLLUP``/``CUBE``/``GROUPING SETS``,
``LATERAL``, ``COLLATE``, dollar-quoted and escape strings, parameters, and
user-defined cast types (sqlglot re-emits their names unquoted, so a quoted
type name like ``"INT); DROP ..."`` would become SQL).
"""

from __future__ import annotations

import re

from sqlglot import exp

QUERY_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select,
        exp.Union,
        exp.Except,
        exp.Intersect,
        exp.Subquery,
        exp.With,
        exp.CTE,
        exp.From,
        exp.Join,
        exp.Where,
        exp.Group,
        exp.Having,
        exp.Qualify,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.Offset,
        exp.Distinct,
        exp.Values,
        exp.Tuple,
        exp.Table,
        exp.TableAlias,
        exp.Alias,
        exp.Column,
        exp.Star,
        exp.Identifier,
        exp.Window,
        exp.WindowSpec,
        exp.Filter,
        exp.IgnoreNulls,
        exp.RespectNulls,
    }
)

VALUE_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.Var,
        exp.Interval,
        exp.DataType,
        exp.DataTypeParam,
    }
)

OPERATORS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        exp.Neg,
        exp.DPipe,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.Escape,
        exp.And,
        exp.Or,
        exp.Not,
        exp.Exists,
        exp.Case,
        exp.If,
        exp.Coalesce,
        exp.Nullif,
        exp.Cast,
        exp.TryCast,
    }
)

AGGREGATE_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Min,
        exp.Max,
        exp.Median,
        exp.CountIf,
        exp.ApproxDistinct,
        exp.Stddev,
        exp.StddevPop,
        exp.StddevSamp,
        exp.Variance,
        exp.VariancePop,
        exp.Corr,
        exp.PercentileCont,
        exp.LogicalAnd,
        exp.LogicalOr,
    }
)

WINDOW_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.RowNumber,
        exp.Rank,
        exp.DenseRank,
        exp.PercentRank,
        exp.CumeDist,
        exp.Ntile,
        exp.Lag,
        exp.Lead,
        exp.FirstValue,
        exp.LastValue,
        exp.NthValue,
    }
)

STRING_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Substring,
        exp.Trim,
        exp.Concat,
        exp.Replace,
        exp.StrPosition,
        exp.Left,
        exp.Right,
        exp.Reverse,
        exp.StartsWith,
        exp.EndsWith,
        exp.Contains,
        exp.SplitPart,
        exp.Ascii,
        exp.Chr,
    }
)

MATH_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Abs,
        exp.Round,
        exp.Ceil,
        exp.Floor,
        exp.Sqrt,
        exp.Cbrt,
        exp.Ln,
        exp.Log,
        exp.Exp,
        exp.Pow,
        exp.Sign,
        exp.Greatest,
        exp.Least,
        exp.Trunc,
        exp.IsNan,
        exp.IsInf,
    }
)

DATE_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.CurrentDate,
        exp.CurrentTimestamp,
        exp.TimestampTrunc,
        exp.DateTrunc,
        exp.Extract,
        exp.Year,
        exp.Quarter,
        exp.Month,
        exp.Week,
        exp.Day,
        exp.DayOfWeek,
        exp.Hour,
        exp.Minute,
        exp.Second,
        exp.DateDiff,
        exp.DateAdd,
        exp.DateBin,
        exp.TimeToStr,
        exp.StrToTime,
        exp.DateFromParts,
        exp.LastDay,
        exp.Dayname,
        exp.Monthname,
    }
)

FUNCTIONS: frozenset[type[exp.Expr]] = (
    AGGREGATE_FUNCTIONS | WINDOW_FUNCTIONS | STRING_FUNCTIONS | MATH_FUNCTIONS | DATE_FUNCTIONS
)
ALLOWED: frozenset[type[exp.Expr]] = QUERY_NODES | VALUE_NODES | OPERATORS | FUNCTIONS

CAST_TYPES: frozenset[exp.DType] = frozenset(
    exp.DType[name]
    for name in (
        "BOOLEAN",
        "TINYINT",
        "SMALLINT",
        "INT",
        "BIGINT",
        "INT128",
        "UTINYINT",
        "USMALLINT",
        "UINT",
        "UBIGINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
        "TEXT",
        "VARCHAR",
        "CHAR",
        "DATE",
        "TIME",
        "TIMESTAMP",
        "TIMESTAMPTZ",
        "TIMESTAMPNTZ",
        "INTERVAL",
        "UUID",
    )
)

PLAIN_NAME = re.compile(r"\w+")  # dataset, org and CTE names: no paths, dots, spaces or quotes
KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # exp.Var text is re-emitted verbatim

FUNCTION_EXAMPLES: tuple[str, ...] = (
    "count(x)",
    "count_if(x > 0)",
    "sum(x)",
    "avg(x)",
    "min(x)",
    "max(x)",
    "median(x)",
    "approx_count_distinct(x)",
    "stddev(x)",
    "stddev_pop(x)",
    "stddev_samp(x)",
    "variance(x)",
    "var_pop(x)",
    "corr(x, y)",
    "quantile_cont(x, 0.5)",
    "bool_and(x > 0)",
    "bool_or(x > 0)",
    "row_number() OVER ()",
    "rank() OVER ()",
    "dense_rank() OVER ()",
    "percent_rank() OVER ()",
    "cume_dist() OVER ()",
    "ntile(4) OVER ()",
    "lag(x) OVER ()",
    "lead(x) OVER ()",
    "first_value(x) OVER ()",
    "last_value(x) OVER ()",
    "nth_value(x, 2) OVER ()",
    "lower(s)",
    "upper(s)",
    "length(s)",
    "substring(s, 1, 2)",
    "trim(s)",
    "concat(s, s)",
    "replace(s, 'a', 'b')",
    "strpos(s, 'a')",
    "left(s, 2)",
    "right(s, 2)",
    "reverse(s)",
    "starts_with(s, 'a')",
    "ends_with(s, 'a')",
    "contains(s, 'a')",
    "split_part(s, ',', 1)",
    "ascii(s)",
    "chr(65)",
    "abs(x)",
    "round(x, 2)",
    "ceil(x)",
    "floor(x)",
    "sqrt(x)",
    "cbrt(x)",
    "ln(x)",
    "log(x)",
    "exp(x)",
    "power(x, 2)",
    "sign(x)",
    "greatest(x, y)",
    "least(x, y)",
    "trunc(x)",
    "isnan(x)",
    "isinf(x)",
    "current_date",
    "current_timestamp",
    "date_trunc('day', t)",
    "date_trunc('day', CAST(t AS DATE))",
    "extract(year FROM t)",
    "year(t)",
    "quarter(t)",
    "month(t)",
    "week(t)",
    "day(t)",
    "dayofweek(t)",
    "hour(t)",
    "minute(t)",
    "second(t)",
    "date_diff('day', t, t)",
    "date_add(t, INTERVAL 1 DAY)",
    "time_bucket(INTERVAL 1 HOUR, t)",
    "strftime(t, '%Y')",
    "strptime(s, '%Y')",
    "make_date(2024, 1, 31)",
    "last_day(t)",
    "dayname(t)",
    "monthname(t)",
)
"""One DuckDB spelling per allowed function class (tests check both directions)."""


def spelling(example: str) -> str:
    """``"row_number() OVER ()"`` -> ``"row_number"``."""
    return example.split("(", 1)[0].split(" ", 1)[0]


FUNCTION_LIST = ", ".join(sorted({spelling(example) for example in FUNCTION_EXAMPLES}))

_NAMES: dict[type[exp.Expr], str] = {
    exp.PositionalColumn: "positional column",
    exp.TableSample: "sample",
    exp.Into: "INTO",
    exp.RawString: "dollar-quoted string",
    exp.ByteString: "escape string",
    exp.UnicodeString: "unicode string",
    exp.Dot: "field access",
    exp.Lateral: "lateral",
    exp.Block: "type",  # a quoted cast type holding statements: CAST(x AS "INT); DROP ...")
}

_HINTS: dict[str, str] = {
    "positional column": "name the column instead of #n",
    "sample": "filter with WHERE or cap with LIMIT instead of sampling",
    "INTO": "a query cannot create tables; drop the INTO clause",
    "dollar-quoted string": "use a single-quoted string ('...', with '' for a quote)",
    "escape string": "use a single-quoted string ('...', with '' for a quote)",
    "unicode string": "use a single-quoted string ('...', with '' for a quote)",
    "bitwise and": "use a single-quoted string instead of U&'...' escapes",
    "field access": "select columns by name",
    "lateral": "use a JOIN with an ON condition or a correlated subquery",
    "lambda": "lambdas are not supported; use CASE or a subquery",
    "placeholder": "parameters are not supported; write the values into the query",
    "time travel": "read an older version with FROM <org>.<dataset> AT (VERSION => <n>)",
    "parenthesised join": "write joins without parentheses, each with ON or USING",
    "type": (
        "only built-in scalar types may be used in CAST (e.g. INTEGER, BIGINT, DOUBLE, "
        "DECIMAL(p, s), VARCHAR, BOOLEAN, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL)"
    ),
}

DEFAULT_HINT = (
    "allowed: SELECT with WHERE, GROUP BY, HAVING, QUALIFY, ORDER BY, LIMIT/OFFSET, DISTINCT, "
    "joins with ON/USING, subqueries, CTEs, UNION/EXCEPT/INTERSECT, VALUES, CASE, "
    "CAST/TRY_CAST, window functions and the allowed functions"
)


def describe(node: exp.Expr) -> str:
    """A readable name for a refused construct: ``GETVARIABLE``, ``lambda``, ``sample``."""
    if isinstance(node, exp.Func):
        return function_name(node)
    named = _NAMES.get(type(node))
    if named is not None:
        return named
    return re.sub(r"(?<!^)(?=[A-Z])", " ", type(node).__name__).lower()


def hint_for(construct: str) -> str:
    return _HINTS.get(construct, DEFAULT_HINT)


def function_name(node: exp.Func) -> str:
    """The function name as DuckDB spells it (``RANGE``, not sqlglot's ``GENERATE_SERIES``)."""
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    try:
        head = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\(", node.sql(dialect="duckdb"))
    except Exception:  # naming a refusal must never hide it
        head = None
    if head is not None:
        return head.group(1).upper()
    return node.sql_name()
