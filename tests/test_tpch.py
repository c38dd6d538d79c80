"""TPC-H SF 0.1 loaded through the platform (Parquet uploads with contracts, the ingest
path) and queried through the gateway over real HTTP with the Python client: each of the
22 queries returns what raw DuckDB returns on the same curated Parquet files. The client's
streaming, pandas/polars conversion and export are checked on the same data."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import tpch
from catalog.storage.seaweed import free_ports
from gateway.client import Client, GatewayError
from tests.conftest import make_settings
from tests.factories import REGISTRATION, suffix

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SCALE_FACTOR = 0.1


@dataclass
class Loaded:
    url: str
    provider: Client
    consumer: Client
    org: str
    raw: Any  # duckdb connection over the curated files
    platform: Any


def _client(platform: Any, url: str, org: Any, role: str) -> Client:
    from catalog.clients import create_client
    from gateway.admin import ROLE_SCOPES

    with platform.sessions.begin() as session:
        record, secret = create_client(
            session, org_id=org.id, name=role, roles=[role], scope=" ".join(ROLE_SCOPES[role])
        )
        client_id = record.client_id
    return Client(url, client_id, secret, timeout=300)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    from gateway.server import BackgroundServer
    from gateway.services import build_platform
    from policies.grants import record_grant

    root = tmp_path_factory.mktemp("tpch")
    files = tpch.generate(root / "generated", SCALE_FACTOR)
    settings = make_settings(root / "data", backend="local", seaweed=None, port=free_ports(1)[0])
    platform = build_platform(settings)
    server = BackgroundServer(settings, platform)
    server.start()
    try:
        tag = suffix()
        provider_org = platform.registry.create_org(
            name=f"TPC-H {tag}",
            slug=f"tpch_{tag}",
            kind="provider",
            region="DG",
            registration_id=REGISTRATION["DG"],
        )
        consumer_org = platform.registry.create_org(
            name=f"Buyer {tag}",
            slug=f"buyer_{tag}",
            kind="consumer",
            region="HK",
            registration_id=REGISTRATION["HK"],
        )
        provider = _client(platform, settings.public_url, provider_org, "provider")
        consumer = _client(platform, settings.public_url, consumer_org, "consumer")
        ids = tpch.load(provider, files)
        curated: dict[str, list[str]] = {}
        for table, dataset_id in ids.items():
            version = platform.registry.version(dataset_id)
            curated[table] = [platform.lake.location(f["bucket"], f["key"]) for f in version.files]
            record_grant(
                platform.grants,
                platform.audit,
                actor="test",
                dataset=platform.registry.get_dataset(dataset_id),
                consumer=consumer_org,
                columns=None,
                purpose="analytics",
            )
        raw = tpch.raw_connection(curated, threads=settings.query.threads)
        yield Loaded(settings.public_url, provider, consumer, provider_org.slug, raw, platform)
        raw.close()
        provider.close()
        consumer.close()
    finally:
        server.stop()
        platform.close()


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows in a canonical order: sorted with floats reduced to 6 significant digits, so
    two sums that differ in their last bits still sort alike."""

    def key(v: Any) -> Any:
        return f"{v:.6g}" if isinstance(v, float) else repr(v)

    return sorted(
        (tuple(row.values()) for row in table.to_pylist()), key=lambda r: [key(v) for v in r]
    )


def _assert_same_rows(got: pa.Table, expected: pa.Table) -> None:
    """Equal rows, floats within 1e-9 relative: parallel sums add in a different order, and
    rounding them to fixed digits still splits values that sit on a rounding boundary."""
    for index, (mine, theirs) in enumerate(zip(_rows(got), _rows(expected), strict=True)):
        same = all(
            math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
            if isinstance(a, float) and isinstance(b, float)
            else a == b
            for a, b in zip(mine, theirs, strict=True)
        )
        assert same, f"row {index}: {mine} != {theirs}"


@pytest.mark.parametrize("number", range(1, 23))
def test_tpch_query_through_gateway_equals_raw_duckdb(loaded: Loaded, number: int) -> None:
    sql = tpch.qualified(tpch.queries()[number - 1], loaded.org)
    expected = loaded.raw.execute(
        tpch.qualified(tpch.queries()[number - 1], "main")
    ).to_arrow_table()
    try:
        got = loaded.consumer.query(sql).to_arrow()
    except GatewayError as exc:
        if exc.code == "query_refused":  # the allowlist (issue 4 items 1-3) does not allow it yet
            pytest.xfail(f"Q{number} refused by the allowlist: {exc.message}")
        raise
    assert got.column_names == expected.column_names
    assert got.num_rows == expected.num_rows
    _assert_same_rows(got, expected)


def test_client_streams_record_batches_without_collecting(loaded: Loaded) -> None:
    sql = f"SELECT l_orderkey, l_comment FROM {loaded.org}.lineitem"
    with loaded.consumer.query(sql) as result:
        assert result.schema.names == ["l_orderkey", "l_comment"]
        sizes = [batch.num_rows for batch in result]
        assert result.datasets == [f"{loaded.org}.lineitem@1"]
        assert set(result.timings) == {"govern", "audit", "worker", "setup", "execute"}
        assert result.timings["worker"] >= result.timings["execute"] > 0
    batch_rows = loaded.platform.settings.query.batch_rows
    assert len(sizes) > 1 and max(sizes) <= batch_rows
    assert sum(sizes) == loaded.raw.execute("SELECT count(*) FROM lineitem").fetchone()[0]


def test_client_stops_the_worker_when_a_stream_is_closed_early(loaded: Loaded) -> None:
    result = loaded.consumer.query(f"SELECT * FROM {loaded.org}.lineitem")
    first = next(iter(result))
    assert first.num_rows > 0
    result.close()
    runner = loaded.platform.runner
    deadline = time.monotonic() + 10
    while len(runner.worker_pids()) > runner.spare_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(runner.worker_pids()) == runner.spare_count()  # only idle spares are left


def test_client_to_pandas_and_to_polars(loaded: Loaded) -> None:
    sql = f"SELECT n_nationkey, n_name FROM {loaded.org}.nation ORDER BY n_nationkey"
    frame = loaded.consumer.query(sql).to_pandas()
    assert list(frame.columns) == ["n_nationkey", "n_name"] and len(frame) == 25
    polars_frame = loaded.consumer.query(sql).to_polars()
    assert polars_frame.shape == (25, 2) and polars_frame["n_name"][0] == frame["n_name"][0]


def test_client_errors_carry_the_gateway_code(loaded: Loaded) -> None:
    with pytest.raises(GatewayError) as refused:
        loaded.consumer.query("SELECT * FROM read_csv('/etc/passwd')").to_arrow()
    assert refused.value.status == 400 and refused.value.code == "query_refused"


def test_client_export_returns_presigned_parquet(loaded: Loaded) -> None:
    sql = f"SELECT r_regionkey, r_name FROM {loaded.org}.region ORDER BY r_regionkey"
    export = loaded.consumer.export(sql)
    assert export["status"] == "succeeded" and export["region"] == "HK"
    assert [s["version"] for s in export["sources"]] == [1]
    url = export["files"][0]["url"]
    assert "/lake/" not in url  # an export object, never a dataset file
    table = pq.read_table(io.BytesIO(httpx.get(url, timeout=10).content))
    assert table.column("r_name").to_pylist() == [
        "AFRICA",
        "AMERICA",
        "ASIA",
        "EUROPE",
        "MIDDLE EAST",
    ]
