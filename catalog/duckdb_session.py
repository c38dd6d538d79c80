"""The DuckDB adapter: the only module that imports ``duckdb``.

``sandboxed_connection`` opens one fresh, locked-down in-memory connection for
one governed query (SECURITY.md §1.4, §3.12). The bootstrap order matters:

1. ``duckdb.connect`` with a config that disables extension auto-install and
   auto-load, community extensions, Python replacement scans, persistent
   secrets and the progress bar, and sets threads, memory limit and the
   private temp (spill) directory;
2. ``SET max_temp_directory_size`` (the value passed to ``connect`` is shown
   but not enforced, SECURITY.md finding 5);
3. ``LOAD '<path>'`` of the httpfs extension from its pip package, and one
   scoped ``CREATE SECRET`` per S3 credential, only when S3 is needed;
4. ``SET allowed_directories = []`` (DuckDB then adds the temp directory
   itself, finding 2) and ``SET allow_unredacted_secrets = false``; then, once
   the query's files are known, ``SET allowed_paths`` to exactly those files;
5. ``SET enable_external_access = false`` and ``SET lock_configuration = true``.

What this does **not** give (observed on 1.5.5, see tests/catalog/test_duckdb_session.py):
an allowed local file can still be overwritten by ``COPY … TO '<file>'
(USE_TMP_FILE false)``; the temp directory is readable and writable by SQL; a
``COPY`` to an allowed ``s3://`` file reaches the server (only a read-only key
stops it); ``CREATE SECRET``/``ATTACH ':memory:'`` and session state still
work after the lock. The query worker adds OS-level limits (rlimits, Landlock)
for that reason; the SQL it runs comes from the policy rewrite, never a client.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb  # noqa: TID251 - this module is the DuckDB adapter
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from catalog.errors import CatalogError, InvalidInput
from catalog.json_text import small_json_rows

DuckDBConnection = duckdb.DuckDBPyConnection
DuckDBError = duckdb.Error  # for ``except`` clauses outside the adapter

ErrorKind = Literal["interrupted", "out_of_memory", "temp_limit", "permission", "engine"]

_GLOB_CHARS = frozenset("*?[]{}")


@dataclass(frozen=True)
class S3ReadCredentials:
    """A read-only S3 key scoped to one bucket prefix (``s3://bucket/``)."""

    scope: str
    endpoint: str  # host:port, no scheme
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    url_style: Literal["path", "vhost"] = "path"
    use_ssl: bool = False

    def __post_init__(self) -> None:
        if not self.scope.startswith("s3://") or len(self.scope) <= len("s3://"):
            raise InvalidInput(
                f"S3 secret scope {self.scope!r} must be s3://bucket/…", field="scope"
            )
        if "://" in self.endpoint or not self.endpoint:
            raise InvalidInput(
                f"S3 endpoint {self.endpoint!r} must be host:port without a scheme",
                field="endpoint",
            )
        if self.url_style not in ("path", "vhost"):
            raise InvalidInput(f"unknown S3 url_style {self.url_style!r}", field="url_style")

    def __repr__(self) -> str:
        return (
            f"S3ReadCredentials(scope={self.scope!r}, endpoint={self.endpoint!r}, "
            f"access_key={self.access_key!r}, secret_key='***', region={self.region!r}, "
            f"url_style={self.url_style!r}, use_ssl={self.use_ssl!r})"
        )


@dataclass(frozen=True)
class SandboxLimits:
    threads: int
    memory_limit_mb: int
    max_temp_mb: int
    temp_dir: Path  # private to one query; DuckDB makes it readable and writable by SQL


def ping() -> str:
    """The DuckDB library version, after proving a connection can be opened."""
    with duckdb.connect(":memory:") as con:
        row = con.execute("SELECT version()").fetchone()
    return str(row[0]) if row else duckdb.__version__


_HASHING = threading.local()


def hash_rows(table: pa.Table) -> npt.NDArray[np.uint64]:
    """DuckDB's 64-bit ``hash`` of each row of ``table`` (all its columns together).

    ~10x faster than hashing strings in Python space (pandas' ``hash_array`` converts
    every value to a Python object first). Runs on a private in-memory connection per
    thread with external access off; the SQL is fixed, column names are ours.
    """
    return _hash(table, [", ".join(f"c{i}" for i in range(table.num_columns))])[0]


def hash_columns(table: pa.Table) -> list[npt.NDArray[np.uint64]]:
    """DuckDB's ``hash`` of each value of each column of ``table`` (a null hashes too):
    for one column the same as ``hash_rows``, in one query for all of them (each query
    costs a few milliseconds whatever its size)."""
    if table.num_columns == 0:
        return []
    return _hash(table, [f"c{i}" for i in range(table.num_columns)])


def _hash(table: pa.Table, arguments: list[str]) -> list[npt.NDArray[np.uint64]]:
    con = getattr(_HASHING, "con", None)
    if con is None:
        con = duckdb.connect(
            ":memory:",
            config={
                "threads": 1,
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        _HASHING.con = con
    renamed = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    select = ", ".join(f"hash({a})" for a in arguments)
    con.register("rows_to_hash", renamed)
    try:
        result = con.execute(f"SELECT {select} FROM rows_to_hash").to_arrow_table()
    finally:
        con.unregister("rows_to_hash")
    out = []
    for index in range(len(arguments)):
        column = result.column(index)
        hashes = column.combine_chunks() if result.num_rows else pa.array([], pa.uint64())
        out.append(np.asarray(hashes.to_numpy(zero_copy_only=False), dtype=np.uint64))
    return out


def warm_up() -> None:
    """Run one tiny query to Arrow, so lazy imports and first-use setup happen now.

    A pre-started query worker calls this while it waits for work.
    """
    with duckdb.connect(":memory:") as con:
        con.execute("SELECT 1 AS x").to_arrow_reader(16).read_all()


def extension_path(name: str) -> Path:
    """``<name>.duckdb_extension`` shipped by the ``duckdb_extension_<name>`` pip package."""
    package = f"duckdb_extension_{name}"
    pip_name = f"duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError(
            f"DuckDB extension {name!r} is not installed; pip install {pip_name}",
            extension=name,
        )
    relative = Path("extensions") / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    for root in spec.submodule_search_locations:
        candidate = Path(root) / relative
        if candidate.is_file():
            return candidate
    raise CatalogError(
        f"package {package} has no {name}.duckdb_extension for DuckDB {duckdb.__version__}; "
        f"pip install {pip_name}",
        extension=name,
    )


def statement_types(con: DuckDBConnection, sql: str) -> list[str]:
    """DuckDB's own parse of ``sql``: one type name per statement (``SELECT``, ``COPY``, …).

    ``execute`` runs every statement in a string, so callers that may only read
    check for exactly ``["SELECT"]`` first. Raises DuckDB's parser error.
    """
    return [statement.type.name for statement in con.extract_statements(sql)]


def sql_string(value: str) -> str:
    """``value`` as a DuckDB string literal: quotes doubled; NUL and other controls refused.

    Values are inlined rather than bound because DuckDB's Python client imports
    pandas (about a second) on the first bound parameter.
    """
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise InvalidInput("control characters are not allowed in DuckDB settings", field="value")
    return "'" + value.replace("'", "''") + "'"


def create_secret_statement(name: str, creds: S3ReadCredentials) -> str:
    """The one place that builds ``CREATE SECRET``; every value goes through ``sql_string``.

    ``name`` is generated by this module (``gw_s3_<n>``), never taken from input.
    Never log the result: it contains the secret key.
    """
    if not name.isidentifier() or not name.isascii():
        raise InvalidInput(f"secret name {name!r} is not a plain identifier", field="name")
    options = {
        "KEY_ID": sql_string(creds.access_key),
        "SECRET": sql_string(creds.secret_key),
        "REGION": sql_string(creds.region),
        "ENDPOINT": sql_string(creds.endpoint),
        "URL_STYLE": sql_string(creds.url_style),
        "USE_SSL": "true" if creds.use_ssl else "false",
        "SCOPE": sql_string(creds.scope),
    }
    body = ", ".join(f"{key} {value}" for key, value in options.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET {name} (TYPE s3, PROVIDER config, {body})"


def error_kind(exc: BaseException) -> ErrorKind:
    """Classify a DuckDB (or allocation) failure without exposing DuckDB's classes.

    Errors raised while pyarrow pulls batches from DuckDB arrive as ``OSError``
    with DuckDB's text, so the message prefix counts as much as the class.
    """
    text = str(exc)
    if isinstance(exc, duckdb.InterruptException) or text.startswith("INTERRUPT Error"):
        return "interrupted"
    out_of_memory = isinstance(exc, duckdb.OutOfMemoryException | MemoryError) or text.startswith(
        "Out of Memory Error"
    )
    if (out_of_memory and "max_temp_directory_size" in text) or "File too large" in text:
        return "temp_limit"  # the spill limit, or RLIMIT_FSIZE in the worker
    if out_of_memory or "bad allocation" in text:
        return "out_of_memory"
    permission = isinstance(exc, duckdb.PermissionException) or text.startswith("Permission Error")
    if permission or "Permission denied" in text:
        return "permission"  # DuckDB's allowed_paths, or the OS (Landlock) refusing a write
    return "engine"


def _checked_paths(paths: Sequence[str]) -> list[str]:
    checked: list[str] = []
    for path in paths:
        is_s3 = path.startswith("s3://")
        if not (is_s3 or path.startswith("/")) or _GLOB_CHARS.intersection(path) or "\x00" in path:
            raise InvalidInput(
                f"allowed path {path!r} must be one absolute file path or s3:// URL, no globs",
                field="allowed_paths",
            )
        checked.append(path)
    return checked


def _connect_config(limits: SandboxLimits) -> dict[str, str | bool | int | float | list[str]]:
    return {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
        "enable_http_metadata_cache": False,
        "threads": limits.threads,
        "memory_limit": f"{limits.memory_limit_mb}MiB",
        "temp_directory": str(limits.temp_dir),
    }


def _load_s3(con: DuckDBConnection, s3: Sequence[S3ReadCredentials]) -> None:
    con.execute(f"LOAD {sql_string(str(extension_path('httpfs')))}")
    for index, creds in enumerate(s3):
        statement = create_secret_statement(f"gw_s3_{index}", creds)
        try:
            con.execute(statement)
        except duckdb.Error as exc:  # never let DuckDB echo the statement or values
            raise CatalogError(
                f"could not register S3 credentials for {creds.scope} ({type(exc).__name__})",
                scope=creds.scope,
            ) from None


@dataclass
class PreparedConnection:
    """Bootstrap steps 1–3 (and the query-independent part of 4) done ahead of time on a
    brand-new database: no query has run on it yet, it is not locked, and it must be
    ``lock_down``-ed before any query.

    A query worker prepares one while it is idle, so a query for new files pays only for
    the last steps; once locked down, the worker keeps it for later queries on the same
    files, each on a new connection (``gateway.query_worker.Databases``)."""

    con: DuckDBConnection
    limits: SandboxLimits
    s3: tuple[S3ReadCredentials, ...]
    httpfs: bool

    def fits(self, s3: Sequence[S3ReadCredentials], limits: SandboxLimits) -> bool:
        return tuple(s3) == self.s3 and limits == self.limits

    def close(self) -> None:
        self.con.close()


def prepare_connection(
    *, s3: Sequence[S3ReadCredentials], limits: SandboxLimits, httpfs: bool = False
) -> PreparedConnection:
    """Steps 1–3 of the bootstrap, and the part of step 4 that is the same for every query
    (see the module docstring), on a new in-memory database."""
    limits.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    con = duckdb.connect(":memory:", config=_connect_config(limits))
    try:
        con.execute(f"SET max_temp_directory_size = '{int(limits.max_temp_mb)}MiB'")
        httpfs = httpfs or bool(s3)
        if httpfs:
            _load_s3(con, s3)
        con.execute("SET enable_progress_bar = false")
        # step 4's settings that do not depend on the query's files: done ahead of time
        con.execute("SET allowed_directories = []")
        con.execute("SET allow_unredacted_secrets = false")
    except BaseException:
        con.close()
        raise
    return PreparedConnection(con, limits, tuple(s3), httpfs)


def lock_down(prepared: PreparedConnection, allowed_paths: Sequence[str]) -> DuckDBConnection:
    """Steps 4–5: allow exactly ``allowed_paths``, no other external access, lock the
    configuration. The prepared connection is consumed (closed on failure)."""
    con = prepared.con
    try:
        paths = _checked_paths(allowed_paths)
        prepared.limits.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not prepared.httpfs and any(path.startswith("s3://") for path in paths):
            _load_s3(con, prepared.s3)
        listed = ", ".join(sql_string(path) for path in paths)
        # one call for the three statements (~0.3 ms of DuckDB overhead each on their own)
        con.execute(
            f"SET allowed_paths = [{listed}]; SET enable_external_access = false; "
            "SET lock_configuration = true"
        )
    except BaseException:
        con.close()
        raise
    return con


def sandboxed_connection(
    *,
    allowed_paths: Sequence[str],
    s3: Sequence[S3ReadCredentials],
    limits: SandboxLimits,
) -> DuckDBConnection:
    """A fresh in-memory connection that may read exactly ``allowed_paths``.

    Use it for one query and close it. The caller owns ``limits.temp_dir``
    (create it private, delete it afterwards).
    """
    paths = _checked_paths(allowed_paths)
    httpfs = any(path.startswith("s3://") for path in paths)
    return lock_down(prepare_connection(s3=s3, limits=limits, httpfs=httpfs), paths)


JsonShape = Literal["array", "object"]


def _json_value_sql(index: int, field: pa.Field) -> str:
    """DuckDB expression for column ``c<index>`` as a JSON-ready value (see ``JsonRenderer``)."""
    column, kind = f"c{index}", field.type
    if pa.types.is_floating(kind):
        return f"CASE WHEN isfinite({column}) THEN {column} END"  # NaN/Infinity are not JSON
    if pa.types.is_decimal(kind):
        return f"CAST({column} AS VARCHAR)"  # exact: no detour through a double
    if pa.types.is_timestamp(kind):
        return f"replace(CAST({column} AS VARCHAR), ' ', 'T')"  # ISO 8601
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return f"base64({column})"
    return column


class JsonRenderer:
    """Renders Arrow record batches as JSON text inside DuckDB, never as per-row Python objects
    (except a batch of a few rows of plain types: ``catalog.json_text``, the same bytes).

    ``shape="array"``: each row is ``[v0,v1,…]`` (columns by position, so duplicate names
    survive); ``shape="object"``: ``{"name":v,…}`` (NDJSON). Each row is preceded by
    ``prefix`` and followed by ``suffix``. Floats that are NaN or infinite become ``null``,
    decimals are strings (exact), timestamps ISO 8601 (UTC for zoned ones), binary base64.

    Each ``render`` uses the calling thread's own connection (one batch at a time), with
    no file or network access, holding only the registered batch; the SQL is built from
    column positions and ``sql_string``-quoted names, never from data.
    """

    def __init__(
        self, schema: pa.Schema, *, shape: JsonShape, prefix: str = "", suffix: str = ""
    ) -> None:
        self._names = [f"c{i}" for i in range(len(schema))]
        self._shape, self._prefix, self._suffix = shape, prefix, suffix
        values = [_json_value_sql(i, field) for i, field in enumerate(schema)]
        if shape == "array":
            row = f"json_array({', '.join(values)})"
        else:
            pairs = (f"{_text_sql(f.name)}, {v}" for f, v in zip(schema, values, strict=True))
            row = f"json_object({', '.join(pairs)})"
        self._sql = (
            f"SELECT {_text_sql(prefix)} || CAST({row} AS VARCHAR) || {_text_sql(suffix)} "
            "FROM gw_batch"
        )

    def render(self, batch: pa.RecordBatch) -> bytes:
        if batch.num_rows == 0:
            return b""
        small = small_json_rows(batch, shape=self._shape, prefix=self._prefix, suffix=self._suffix)
        if small is not None:  # a few rows of plain types: the same bytes, ~100x sooner
            return small
        return self.render_in_duckdb(batch)

    def render_in_duckdb(self, batch: pa.RecordBatch) -> bytes:
        """``render`` without the small-batch shortcut."""
        if batch.num_rows == 0:
            return b""
        # the connection of the thread running this call (a streaming body moves between
        # threads from one batch to the next; a connection is never shared across threads)
        con = _renderer_connection()
        con.register("gw_batch", batch.rename_columns(self._names))
        try:
            text = con.execute(self._sql).to_arrow_table().column(0)
        finally:
            con.unregister("gw_batch")
        return b"".join(_string_bytes(chunk) for chunk in text.chunks)

    def close(self) -> None:
        """Nothing to release: the connection is the thread's, reused by the next renderer."""


_RENDERING = threading.local()


def _renderer_connection() -> DuckDBConnection:
    """This thread's rendering connection: no file or network access, configuration locked;
    it only ever holds the one batch being rendered (registered, then unregistered)."""
    con: DuckDBConnection | None = getattr(_RENDERING, "con", None)
    if con is None:
        con = duckdb.connect(
            ":memory:",
            config={
                "threads": 1,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "python_enable_replacements": False,
                "enable_external_access": False,
            },
        )
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
        _RENDERING.con = con
    return con


def _text_sql(text: str) -> str:
    """A DuckDB string expression for any ``text``: control characters become ``chr(n)``."""
    parts: list[str] = []
    plain = ""
    for char in text:
        if ord(char) < 32 or ord(char) == 127:
            if plain:
                parts.append(sql_string(plain))
            parts.append(f"chr({ord(char)})")
            plain = ""
        else:
            plain += char
    if plain or not parts:
        parts.append(sql_string(plain))
    return " || ".join(parts)


def _string_bytes(array: pa.Array) -> bytes:
    """The UTF-8 bytes of a string array's values, back to back (one copy, no Python str)."""
    if len(array) == 0:
        return b""
    large = pa.types.is_large_string(array.type)
    if not (large or pa.types.is_string(array.type)):
        array = array.cast(pa.large_string())
        large = True
    _, offsets_buffer, values = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64 if large else np.int32)
    start, end = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    return values[start:end].to_pybytes() if values is not None else b""
