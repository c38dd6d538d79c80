"""Benchmarks: the platform's paths against the raw baseline, same machine, same run.

    make bench            # or: python -m benchmarks.run --rows 2000000 --repeat 5

Prints medians and the ratio platform / raw. Never run as timed tests in CI.
- query: governed SQL (parse, allowlist, rewrite, sandboxed worker, Arrow stream)
  vs raw DuckDB on the same Parquet file, for a wide scan and an aggregate;
- ingest: ``ingest.pipeline.process_file`` (strict decode, typing, GX validation,
  quarantine, Parquet) vs raw ``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gateway.query_runner import QueryRunner
from ingest.contracts import DataContract
from ingest.pipeline import process_file
from policies.model import GovernedSource
from policies.rewrite import govern

QUERIES = {
    "scan 3 columns": "SELECT meter_id, ts, kwh FROM bench.meters",
    "aggregate": (
        "SELECT meter_id, count(*) AS n, avg(kwh) AS kwh FROM bench.meters GROUP BY meter_id"
    ),
}
CONTRACT = DataContract.model_validate(
    {
        "columns": [
            {"name": "meter_id", "type": "string", "nullable": False, "pattern": "^DG-[0-9]+$"},
            {"name": "ts", "type": "timestamp", "nullable": False, "format": "%Y-%m-%d %H:%M:%S"},
            {"name": "kwh", "type": "double", "nullable": False, "min": 0, "max": 5000},
            {"name": "tariff", "type": "string", "allowed": ["peak", "flat", "valley"]},
        ]
    }
)


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def make_table(rows: int) -> pa.Table:
    import pyarrow.compute as pc

    index = pa.array(range(rows), pa.int64())
    meters = pc.binary_join_element_wise(
        "DG-", pc.cast(pc.bit_wise_and(index, 1023), pa.string()), ""
    )
    seconds = pc.multiply(index, 15)
    ts = pc.cast(pc.add(pc.cast(seconds, pa.int64()), 1_751_328_000), pa.timestamp("s"))
    kwh = pc.divide(pc.cast(pc.bit_wise_and(index, 4095), pa.float64()), 1.5)
    tariff = pc.choose(pc.bit_wise_and(index, 1), pa.scalar("peak"), pa.scalar("valley"))
    return pa.table({"meter_id": meters, "ts": ts, "kwh": kwh, "tariff": tariff})


def bench_query(workdir: Path, rows: int, repeat: int) -> None:
    path = workdir / "meters.parquet"
    pq.write_table(make_table(rows), path, compression="zstd")
    source = GovernedSource(
        "bench", "bench", "meters", 1, (str(path),), ("meter_id", "ts", "kwh", "tariff")
    )
    runner = QueryRunner(
        scratch_root=workdir / "scratch",
        pool_size=2,
        timeout_seconds=600,
        memory_mb=4096,
        max_temp_mb=4096,
        batch_rows=65_536,
    )
    try:
        for label, sql in QUERIES.items():
            raw_sql = sql.replace("bench.meters", f"read_parquet('{path}')")

            def raw(raw_sql: str = raw_sql) -> int:
                with duckdb.connect() as con:
                    return int(con.execute(raw_sql).to_arrow_table().num_rows)

            def governed(sql: str = sql) -> int:
                query = govern(sql, lambda _org, _name: source, max_rows=100_000_000)
                with runner.run(query, []) as stream:
                    return sum(batch.num_rows for batch in stream)

            assert raw() == governed()
            report(
                f"query: {label} ({rows:,} rows)",
                median_seconds(raw, repeat),
                median_seconds(governed, repeat),
            )
    finally:
        runner.close()


def bench_ingest(workdir: Path, rows: int, repeat: int) -> None:
    table = make_table(rows)
    csv_path = workdir / "meters.csv"
    pacsv.write_csv(table.set_column(1, "ts", table["ts"].cast(pa.string())), csv_path)

    def raw() -> None:
        pq.write_table(pacsv.read_csv(csv_path), workdir / "raw.parquet", compression="zstd")

    def platform() -> None:
        staging = Path(tempfile.mkdtemp(dir=workdir))
        process_file(
            csv_path, CONTRACT, encoding="utf-8", staging_dir=staging, max_error_ratio=0.01
        )

    report(
        f"ingest: CSV → validated Parquet ({rows:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB)",
        median_seconds(raw, repeat),
        median_seconds(platform, repeat),
    )


def report(label: str, raw: float, platform: float) -> None:
    print(
        f"{label:<55} raw {raw:8.3f} s   platform {platform:8.3f} s   ratio {platform / raw:5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_query(Path(tmp), args.rows, args.repeat)
        bench_ingest(Path(tmp), args.ingest_rows, max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
