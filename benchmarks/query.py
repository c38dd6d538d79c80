"""Governed query benchmark (issue #4): everything in one run, on the same files.

``python -m benchmarks.query [--sf 1] [--workdir DIR]`` starts ``datashare serve`` in a
process of its own (local object store, so raw DuckDB can read the very same curated
Parquet files the gateway reads), loads TPC-H through the platform's ingest path
(Parquet uploads with contracts, ``benchmarks.tpch``) and measures:

1. TPC-H: each of the 22 queries through HTTP (Arrow IPC, read to the end by the Python
   client) vs raw DuckDB (same threads as a query worker) on the same files; median of
   ``--repeat`` runs each; ratio per query and geometric mean (target <= 1.15). For
   reference, raw DuckDB on a new database per run too (made before the clock starts):
   the gateway gives each query a fresh database (SECURITY.md §1.4), so this ratio
   shows what the gateway adds beyond that isolation; the target is the first ratio.
2. A 10M-row governed result streamed as Arrow IPC vs a minimal ungoverned FastAPI
   endpoint (uvicorn with uvloop + httptools, a process of its own) streaming the same
   DuckDB result as Arrow IPC (target >= 0.8x); and the same result as JSON and NDJSON
   through the gateway (target >= 100 MB/s).
3. A small governed query's latency, p50/p99, at 1 and at 32 concurrent clients (each
   its own OAuth client; tokens fetched before timing).

Results are printed and written to ``<workdir>/query-results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from benchmarks import tpch
from benchmarks.ingest import Gateway, Sampler, _free_port
from gateway.client import Client

STREAM_ROWS = 10_000_000
STREAM_COLUMNS = "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice"
PARTS = ("tpch", "stream", "latency")
SMALL_QUERY = "SELECT n_name, n_regionkey FROM {org}.nation WHERE n_nationkey = 7"
REPO = Path(__file__).resolve().parents[1]


def stream_sql(prefix: str) -> str:
    """10M rows: lineitem twice (SF 1 has ~6M rows), capped by LIMIT."""
    table = f"{prefix}lineitem"
    return (
        f"SELECT {STREAM_COLUMNS} FROM {table} UNION ALL "
        f"SELECT {STREAM_COLUMNS} FROM {table} LIMIT {STREAM_ROWS}"
    )


def curated_files(data_dir: Path, ids: dict[str, str]) -> dict[str, list[str]]:
    """The curated Parquet files of each dataset in the local object store."""
    found: dict[str, list[str]] = {}
    for table, dataset_id in ids.items():
        paths = sorted(
            str(p) for p in (data_dir / "objects").rglob("*.parquet") if f"/{dataset_id}/" in str(p)
        )
        if not paths:
            raise RuntimeError(f"no curated Parquet found for {table} ({dataset_id})")
        found[table] = paths
    return found


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        elapsed, result = timed(fn)
        times.append(elapsed)
    return statistics.median(times), result


def bench_tpch(
    client: Client, raw: Any, fresh: Callable[[], Any], org: str, repeat: int
) -> list[dict[str, Any]]:
    """``raw``: one warm connection (the baseline); ``fresh()``: a new raw database."""
    rows = []
    for number, text in enumerate(tpch.queries(), start=1):
        governed = tpch.qualified(text, org)

        def on_raw(sql: str = text) -> pa.Table:
            return raw.execute(sql).to_arrow_table()

        raw_s, expected = median_time(on_raw, repeat)
        fresh_s = statistics.median(on_fresh_database(fresh, text) for _ in range(repeat))
        timings: list[dict[str, float]] = []

        def through_gateway(
            sql: str = governed, into: list[dict[str, float]] = timings
        ) -> pa.Table:
            result = client.query(sql)
            table = result.to_arrow()
            into.append(result.timings)
            return table

        gw_s, got = median_time(through_gateway, repeat)
        # the gateway's Server-Timing: where the time before the first byte went
        phases = {
            name: statistics.median(t.get(name, 0.0) for t in timings)
            for name in ("govern", "audit", "worker", "setup", "execute")
        }
        same = got.num_rows == expected.num_rows
        rows.append(
            {"query": number, "raw_s": raw_s, "gateway_s": gw_s, "ratio": gw_s / raw_s,
             "raw_fresh_s": fresh_s, "ratio_fresh": gw_s / fresh_s,
             "rows": got.num_rows, "same_row_count": same, "server_timing_ms": phases}
        )  # fmt: skip
        print(f"  Q{number:02d} raw {raw_s * 1000:8.1f} ms  gateway {gw_s * 1000:8.1f} ms  "
              f"ratio {gw_s / raw_s:5.2f}  (fresh db {fresh_s * 1000:7.1f} ms: "
              f"{gw_s / fresh_s:5.2f})  rows {got.num_rows:6d}  "
              f"(govern {phases['govern']:5.1f}, setup {phases['setup']:4.1f}, "
              f"execute {phases['execute']:6.1f} ms)",
              flush=True)  # fmt: skip
    return rows


def on_fresh_database(fresh: Callable[[], Any], sql: str) -> float:
    """Seconds for ``sql`` on a new database (made and closed outside the clock)."""
    con = fresh()
    try:
        elapsed, _ = timed(lambda: con.execute(sql).to_arrow_table())
    finally:
        con.close()
    return elapsed


def geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def tpch_summary(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The last pass's per-query rows, and the median over passes of each pass's geometric
    mean (against the warm raw connection and against a fresh raw database)."""
    warm = [geomean([r["ratio"] for r in rows]) for rows in rounds]
    fresh = [geomean([r["ratio_fresh"] for r in rows]) for rows in rounds]
    return {
        "tpch": rounds[-1],
        "tpch_geomean_ratio": statistics.median(warm),
        "tpch_geomean_ratio_fresh": statistics.median(fresh),
        "tpch_geomean_passes": warm,
        "tpch_geomean_passes_fresh": fresh,
    }


def read_stream(url: str, headers: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
    """POST (or GET) and read the body to the end; bytes, seconds, MB/s."""
    start = time.perf_counter()
    size = 0
    with httpx.Client(timeout=600) as http:
        request = http.build_request("POST" if body else "GET", url, json=body, headers=headers)
        response = http.send(request, stream=True)
        try:
            if response.status_code != 200:
                response.read()
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:500]}")
            for chunk in response.iter_raw(1 << 20):
                size += len(chunk)
        finally:
            response.close()
    seconds = time.perf_counter() - start
    return {"bytes": size, "seconds": seconds, "mb_per_s": size / seconds / 1e6}


def count_arrow_rows(url: str, headers: dict[str, str], body: dict[str, Any] | None) -> int:
    with httpx.Client(timeout=600) as http:
        response = http.post(url, json=body, headers=headers) if body else http.get(url)
        return int(pa.ipc.open_stream(response.content).read_all().num_rows)


@contextlib.contextmanager
def ungoverned_endpoint(files: list[str], threads: int, log: Path) -> Iterator[str]:
    """The minimal ungoverned FastAPI endpoint, in a uvicorn process of its own."""
    port = _free_port()
    env = {
        **os.environ,
        "BENCH_FILES": json.dumps(files),
        "BENCH_THREADS": str(threads),
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.ungoverned_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--log-level", "warning",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def bench_stream(gw: Gateway, client: Client, files: list[str], org: str, workdir: Path,
                 threads: int) -> dict[str, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {client.token()}"}
    sql = stream_sql(f"{org}.")
    results: dict[str, Any] = {}
    body = {"sql": sql, "format": "arrow"}
    assert count_arrow_rows(f"{gw.url}/v1/query", headers, body) == STREAM_ROWS
    results["gateway_arrow"] = max(
        (read_stream(f"{gw.url}/v1/query", headers, body) for _ in range(3)),
        key=lambda r: r["mb_per_s"],
    )
    with ungoverned_endpoint(files, threads, workdir / "ungoverned.log") as url:
        assert count_arrow_rows(f"{url}/arrow", {}, None) == STREAM_ROWS
        results["ungoverned_arrow"] = max(
            (read_stream(f"{url}/arrow", {}, None) for _ in range(3)),
            key=lambda r: r["mb_per_s"],
        )
    results["arrow_ratio"] = (
        results["gateway_arrow"]["mb_per_s"] / results["ungoverned_arrow"]["mb_per_s"]
    )
    for fmt in ("ndjson", "json"):
        results[f"gateway_{fmt}"] = read_stream(
            f"{gw.url}/v1/query", headers, {"sql": sql, "format": fmt}
        )
    for name, value in results.items():
        print(f"  {name}: {value}", flush=True)
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def bench_latency(url: str, clients: list[Client], org: str, per_client: int) -> dict[str, Any]:
    sql = SMALL_QUERY.format(org=org)
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def run(client: Client) -> None:
        headers = {"Authorization": f"Bearer {client.token()}"}
        body = {"sql": sql, "format": "json"}
        with httpx.Client(base_url=url, timeout=60) as http:
            http.post("/v1/query", json=body, headers=headers)  # connection warm-up
            mine = []
            for _ in range(per_client):
                start = time.perf_counter()
                response = http.post("/v1/query", json=body, headers=headers)
                mine.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    result = {
        "clients": len(clients),
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "qps": len(latencies) / wall,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
    print(f"  {result}", flush=True)
    return result


def make_client(gw: Gateway, slug: str, role: str) -> Client:
    created = json.loads(gw.admin("create-client", slug, f"bench {role}", "--role", role))
    return Client(gw.url, created["client_id"], created["client_secret"], timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/datashare-query-bench"))
    parser.add_argument("--repeat", type=int, default=3, help="runs per TPC-H query (median)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="TPC-H passes over all 22 queries; the geometric means' median is reported "
        "(one pass's mean moves by about 0.05 on a shared VM)",
    )
    parser.add_argument("--latency-requests", type=int, default=300)
    parser.add_argument("--load-only", action="store_true", help="load TPC-H, then stop")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default all: {','.join(PARTS)})",
    )
    args = parser.parse_args()
    parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if not parts or not parts <= set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    files = tpch.generate(workdir / f"tpch-sf{args.sf:g}", args.sf)
    state_path = workdir / f"loaded-sf{args.sf:g}.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    data_dir = Path(state["data_dir"]) if state else workdir / f"data-sf{args.sf:g}"
    gw = Gateway(data_dir, workdir / "gateway.log", max_upload_mb=4096)
    threads = 2
    gw.env.update(
        DATASHARE_STORAGE__BACKEND="local",
        DATASHARE_QUERY__MAX_ROWS=str(STREAM_ROWS),
        DATASHARE_QUERY__THREADS=str(threads),
        DATASHARE_QUERY__TIMEOUT_SECONDS="600",
        DATASHARE_QUERY__MEMORY_MB="4096",
        DATASHARE_QUERY__MAX_CONCURRENT="8",
        DATASHARE_QUERY__POOL_SIZE="4",
        DATASHARE_QUERY__PER_CLIENT_PER_MINUTE="100000",
        DATASHARE_INGEST__EMBEDDED_WORKERS="1",
    )
    gw.start()
    results: dict[str, Any] = {"scale_factor": args.sf, "query_threads": threads}
    try:
        # measure a settled platform: the embedded ingest worker imports Great Expectations
        # (seconds of CPU) and the query pool warms up after the gateway answers /readyz
        assert gw.process is not None
        with Sampler(gw.process.pid, "gateway (datashare serve)") as sampler:
            waited = sampler.wait_settled()
        print(f"gateway ready after {gw.ready_seconds:.1f} s, idle {waited:.1f} s later")
        if state is None:  # load once; later runs of the same workdir reuse the data dir
            gw.admin("create-org", "TPC-H Provider", "tpch", "provider", "GZ", "91440101MA9Y1T6H6L")
            provider = make_client(gw, "tpch", "provider")
            load_s, ids = timed(lambda: tpch.load(provider, files, timeout=7200))
            state = {"data_dir": str(data_dir), "ids": ids, "load_seconds": load_s}
            state_path.write_text(json.dumps(state))
        else:
            provider = make_client(gw, "tpch", "provider")
        ids = state["ids"]
        results["load_seconds"] = state["load_seconds"]
        print(f"TPC-H SF {args.sf:g} loaded through the platform in {state['load_seconds']:.0f} s")
        if args.load_only:
            return
        curated = curated_files(data_dir, ids)
        if "tpch" in parts:
            raw = tpch.raw_connection(curated, threads=threads)
            rounds: list[list[dict[str, Any]]] = []
            for number in range(1, max(args.rounds, 1) + 1):
                print(f"TPC-H: gateway (HTTP, Arrow) vs raw DuckDB, pass {number}", flush=True)
                rows = bench_tpch(
                    provider,
                    raw,
                    lambda: tpch.raw_connection(curated, threads=threads),
                    "tpch",
                    args.repeat,
                )
                rounds.append(rows)
                warm = geomean([r["ratio"] for r in rows])
                fresh = geomean([r["ratio_fresh"] for r in rows])
                print(
                    f"  geometric mean ratio {warm:.3f} (target <= 1.15); against a fresh "
                    f"raw database per query {fresh:.3f}",
                    flush=True,
                )
            results.update(tpch_summary(rounds))
            if len(rounds) > 1:
                print(
                    f"  median of {len(rounds)} passes: {results['tpch_geomean_ratio']:.3f} "
                    f"(passes {', '.join(f'{g:.3f}' for g in results['tpch_geomean_passes'])}); "
                    f"fresh database {results['tpch_geomean_ratio_fresh']:.3f}",
                    flush=True,
                )
        if "stream" in parts:
            print("10M-row stream", flush=True)
            results["stream"] = bench_stream(
                gw, provider, curated["lineitem"], "tpch", workdir, threads
            )
        if "latency" in parts:
            print("small query latency", flush=True)
            solo = bench_latency(gw.url, [provider], "tpch", args.latency_requests)
            many = [make_client(gw, "tpch", "provider") for _ in range(32)]
            crowd = bench_latency(gw.url, many, "tpch", max(args.latency_requests // 32, 10))
            results["latency"] = {"1": solo, "32": crowd}
    finally:
        gw.stop()
    suffix = "" if parts == set(PARTS) else "-" + "-".join(sorted(parts))
    out = workdir / f"query-results{suffix}.json"  # a partial run keeps the full run's file
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
