"""The DuckDB adapter's sandbox, on real DuckDB 1.5.5 and real Parquet files.

Several tests pin DuckDB behaviour that the sandbox does NOT stop (writes via
``USE_TMP_FILE false``, the writable temp directory, ``ATTACH ':memory:'``,
``CREATE SECRET`` after the lock). They document why the query worker adds
OS-level limits; if DuckDB tightens one of them, update the docstring of
``catalog.duckdb_session`` and flip the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.duckdb_session import (
    DuckDBConnection,
    DuckDBError,
    S3ReadCredentials,
    SandboxLimits,
    create_secret_statement,
    error_kind,
    extension_path,
    ping,
    sandboxed_connection,
    sql_string,
)
from catalog.errors import CatalogError, InvalidInput

FAKE_S3 = S3ReadCredentials(
    scope="s3://gba-gz/",
    endpoint="127.0.0.1:9",
    access_key="reader-key",
    secret_key="s3cr3t-'quoted'-value",
)


@pytest.fixture
def lake(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "lake" / "ds1"
    root.mkdir(parents=True)
    granted, sibling = root / "part-0.parquet", root / "other.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), granted)
    pq.write_table(pa.table({"secret": ["not granted"]}), sibling)
    return {"granted": granted, "sibling": sibling, "dir": root}


@pytest.fixture
def limits(tmp_path: Path) -> SandboxLimits:
    spill = tmp_path / "spill"
    return SandboxLimits(threads=1, memory_limit_mb=256, max_temp_mb=64, temp_dir=spill)


@pytest.fixture
def con(lake: dict[str, Path], limits: SandboxLimits) -> Iterator[DuckDBConnection]:
    connection = sandboxed_connection(allowed_paths=[str(lake["granted"])], s3=[], limits=limits)
    yield connection
    connection.close()


def refused(con: DuckDBConnection, sql: str) -> str:
    """Run ``sql``; it must fail. Returns the error kind."""
    with pytest.raises(DuckDBError) as caught:
        con.execute(sql).fetchall()
    return error_kind(caught.value)


def test_sandboxed_connection_reads_allowed_parquet(
    con: DuckDBConnection, lake: dict[str, Path]
) -> None:
    rows = con.execute(f"SELECT id, name FROM read_parquet('{lake['granted']}') ORDER BY id")
    assert rows.fetchall() == [(1, "a"), (2, "b"), (3, "c")]
    assert con.execute(f"SELECT count(*) FROM '{lake['granted']}'").fetchone() == (3,)


def test_sandboxed_connection_refuses_etc_passwd(con: DuckDBConnection) -> None:
    assert refused(con, "SELECT * FROM read_csv('/etc/passwd', sep=':')") == "permission"
    assert refused(con, "SELECT * FROM read_text('/etc/passwd')") == "permission"


def test_sandboxed_connection_refuses_sibling_not_in_allowed_paths(
    con: DuckDBConnection, lake: dict[str, Path]
) -> None:
    assert refused(con, f"SELECT * FROM read_parquet('{lake['sibling']}')") == "permission"
    assert refused(con, f"SELECT * FROM read_parquet('{lake['dir']}/*.parquet')") == "permission"
    assert refused(con, f"SELECT * FROM glob('{lake['dir']}/*')") == "permission"
    assert refused(con, f"SELECT * FROM '{lake['dir']}/../ds1/other.parquet'") == "permission"


def test_sandboxed_connection_refuses_copy_to_new_file_and_default_overwrite(
    con: DuckDBConnection, lake: dict[str, Path]
) -> None:
    new_file = lake["dir"] / "planted.parquet"
    assert refused(con, f"COPY (SELECT 1 AS id) TO '{new_file}'") == "permission"
    # COPY first writes tmp_<name>, which is not an allowed path: the dataset survives.
    assert refused(con, f"COPY (SELECT 1 AS id) TO '{lake['granted']}'") == "permission"
    assert not new_file.exists()
    assert pq.read_table(lake["granted"]).num_rows == 3


def test_sandboxed_connection_allowed_path_writable_without_tmp_file(
    con: DuckDBConnection, lake: dict[str, Path]
) -> None:
    """DuckDB limitation: allowed_paths grants write access too; the worker's Landlock stops it."""
    con.execute(f"COPY (SELECT 1 AS id) TO '{lake['granted']}' (USE_TMP_FILE false)")
    assert pq.read_table(lake["granted"]).num_rows == 1


def test_sandboxed_connection_temp_directory_is_an_allowed_directory(
    con: DuckDBConnection, limits: SandboxLimits
) -> None:
    """SECURITY.md finding 2: the private spill directory is readable and writable by SQL."""
    setting = con.execute("SELECT current_setting('allowed_directories')").fetchone()
    assert setting == ([f"{limits.temp_dir}/"],)
    planted = limits.temp_dir / "planted.csv"
    con.execute(f"COPY (SELECT 42 AS x) TO '{planted}'")
    assert con.execute(f"SELECT x FROM read_csv('{planted}')").fetchall() == [(42,)]


def test_sandboxed_connection_refuses_attach_file_allows_memory(
    con: DuckDBConnection, lake: dict[str, Path]
) -> None:
    assert refused(con, f"ATTACH '{lake['dir']}/evil.duckdb' AS evil") == "permission"
    assert not (lake["dir"] / "evil.duckdb").exists()
    con.execute("ATTACH ':memory:' AS scratch")  # harmless, and gone with the connection


def test_sandboxed_connection_refuses_install_and_load(con: DuckDBConnection) -> None:
    assert refused(con, "INSTALL httpfs") == "permission"
    assert refused(con, "LOAD httpfs") == "permission"
    assert refused(con, f"LOAD '{extension_path('httpfs')}'") == "permission"


@pytest.mark.parametrize(
    "statement",
    [
        "SET threads = 8",
        "SET memory_limit = '64GB'",
        "SET max_temp_directory_size = '1TB'",
        "SET enable_external_access = true",
        "SET allowed_paths = ['/']",
        "SET allowed_directories = ['/']",
        "SET temp_directory = '/tmp'",
        "SET lock_configuration = false",
        "SET python_enable_replacements = true",
        "SET allow_unredacted_secrets = true",
        "SET autoinstall_known_extensions = true",
    ],
)
def test_sandboxed_connection_refuses_set_of_locked_setting(
    con: DuckDBConnection, statement: str
) -> None:
    with pytest.raises(DuckDBError, match="the configuration has been locked") as caught:
        con.execute(statement)
    assert error_kind(caught.value) == "engine"


def test_sandboxed_connection_settings_show_paths_but_no_secrets(
    lake: dict[str, Path], limits: SandboxLimits
) -> None:
    """duckdb_settings() is readable (the policy rewrite must never let it through): it shows
    the granted file list and the spill directory, not secret values."""
    paths = [str(lake["granted"]), "s3://gba-gz/lake/ds1/part-0.parquet"]
    with sandboxed_connection(allowed_paths=paths, s3=[FAKE_S3], limits=limits) as con:
        settings = dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
        secrets = con.execute("SELECT secret_string FROM duckdb_secrets()").fetchall()
    assert str(lake["granted"]) in settings["allowed_paths"]
    assert settings["temp_directory"] == str(limits.temp_dir)
    assert settings["lock_configuration"] == "true"
    assert not any(FAKE_S3.secret_key in str(value) for value in settings.values())
    assert len(secrets) == 1
    assert "secret=redacted" in secrets[0][0] and FAKE_S3.secret_key not in secrets[0][0]
    assert "scope=s3://gba-gz/" in secrets[0][0]


def test_sandboxed_connection_refuses_python_replacement_scan(con: DuckDBConnection) -> None:
    client_secrets = pa.table({"api_key": ["gateway-secret"]})
    assert client_secrets.num_rows == 1  # a local in the calling frame, as in finding 7
    assert refused(con, "SELECT * FROM client_secrets") == "engine"


def test_sandboxed_connection_refuses_globs_and_relative_paths(limits: SandboxLimits) -> None:
    for bad in ["/data/*.parquet", "relative.parquet", "http://127.0.0.1/x.parquet", "/a/[ab]"]:
        with pytest.raises(InvalidInput):
            sandboxed_connection(allowed_paths=[bad], s3=[], limits=limits)


def test_max_temp_directory_size_is_enforced(lake: dict[str, Path], tmp_path: Path) -> None:
    small = SandboxLimits(threads=1, memory_limit_mb=64, max_temp_mb=8, temp_dir=tmp_path / "t")
    with sandboxed_connection(allowed_paths=[], s3=[], limits=small) as con:
        setting = con.execute("SELECT current_setting('max_temp_directory_size')").fetchone()
        assert setting == ("8.0 MiB",)
        big_sort = "SELECT * FROM range(20000000) ORDER BY random()"
        assert refused(con, f"SELECT count(*) FROM ({big_sort})") == "temp_limit"


def test_create_secret_statement_quotes_every_value(limits: SandboxLimits) -> None:
    hostile = S3ReadCredentials(
        scope="s3://gba-gz/",
        endpoint="127.0.0.1:9",
        access_key="k'); DROP TABLE t; --",
        secret_key="x\\'y",
    )
    statement = create_secret_statement("gw_s3_0", hostile)
    assert "'k''); DROP TABLE t; --'" in statement
    with sandboxed_connection(allowed_paths=[], s3=[hostile], limits=limits) as con:
        row = con.execute("SELECT secret_string FROM duckdb_secrets()").fetchone()
    assert row is not None and f"key_id={hostile.access_key};" in row[0]
    with pytest.raises(InvalidInput):
        create_secret_statement("x; DROP TABLE t", FAKE_S3)
    with pytest.raises(InvalidInput):
        sql_string("a\x00b")


def test_s3_read_credentials_repr_redacts_secret() -> None:
    text = repr(FAKE_S3)
    assert FAKE_S3.secret_key not in text and "***" in text
    assert FAKE_S3.access_key in text


def test_s3_read_credentials_refuse_bad_scope_and_endpoint() -> None:
    with pytest.raises(InvalidInput):
        S3ReadCredentials(scope="gba-gz", endpoint="127.0.0.1:9", access_key="k", secret_key="s")
    with pytest.raises(InvalidInput):
        S3ReadCredentials(scope="s3://b/", endpoint="http://h:9", access_key="k", secret_key="s")


def test_extension_path_finds_httpfs_and_names_missing_package() -> None:
    assert extension_path("httpfs").name == "httpfs.duckdb_extension"
    with pytest.raises(CatalogError, match="pip install duckdb-extension-no-such-ext=="):
        extension_path("no_such_ext")


def test_ping_returns_duckdb_version() -> None:
    assert ping().startswith("v1.")
