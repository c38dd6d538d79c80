"""Catalog search at catalog scale: index build and query latency on SQLite (and PostgreSQL
with ``--postgres URL``).

    python -m benchmarks.catalog_search --datasets 2000

Builds N synthetic datasets with trilingual metadata (titles mixing Simplified, Traditional
and English words from a small industrial vocabulary), times the first search (which builds
every index entry), then times a mix of queries (p50/p95 over repeated runs).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from catalog.database import make_engine, session_factory, upgrade_to_head
from catalog.metadata import MetadataStore
from catalog.registry import Registry
from catalog.search import CatalogSearch

WORDS_HANS = ["用电量", "能耗", "货运", "冷链", "维修", "点焊", "回流焊", "温度", "电表", "仓库"]
WORDS_HANT = ["用電量", "貨運", "冷鏈", "維修", "點焊", "溫度", "電錶", "倉庫", "檢驗", "遙測"]
WORDS_EN = ["energy", "shipments", "maintenance", "telemetry", "inspection", "meters", "oven"]
QUERIES = [
    "用電量",
    "能耗",
    "cold chain",
    "shipm",
    "東莞 energy",
    "温度 telemetry",
    "维修记录",
    "reflow",
]
REGIONS = ["GZ", "SZ", "DG", "HK", "MO"]
REGISTRATION = {
    "GZ": "91440101MA9Y1T6H6L",
    "SZ": "91440300MA5G7K3P7P",
    "DG": "91441900MA4W2R8N7U",
    "HK": "71234567",
    "MO": "12345(SO)",
}


def build(url: str, count: int, seed: int = 7) -> tuple[CatalogSearch, set[str]]:
    engine = make_engine(url)
    upgrade_to_head(engine)
    sessions = session_factory(engine)
    registry, store, rng = Registry(sessions), MetadataStore(sessions), random.Random(seed)
    orgs = [
        registry.create_org(
            name=f"Provider {region} {i}",
            slug=f"bench_{region.lower()}_{i}",
            kind="provider",
            region=region,
            registration_id=REGISTRATION[region],
        )
        for i, region in enumerate(REGIONS * 4)
    ]
    ids = set()
    for n in range(count):
        org = orgs[n % len(orgs)]
        words = rng.sample(WORDS_HANS, 2) + rng.sample(WORDS_HANT, 1) + rng.sample(WORDS_EN, 2)
        dataset = registry.create_dataset(
            org=org,
            name=f"ds_{n}",
            title=" ".join(words[3:]),
            description="",
            classification="internal",
            licence="",
            contract={"columns": [{"name": f"c{i}", "type": "string"} for i in range(8)]},
        )
        store.update(
            dataset.id,
            {
                "title": {"zh-Hans": words[0] + words[1], "zh-Hant": words[2], "en": words[3]},
                "description": {"en": " ".join(rng.sample(WORDS_EN, 4))},
                "keywords": {"zh-Hans": rng.sample(WORDS_HANS, 3)},
                "tags": rng.sample(["energy", "logistics", "quality", "manufacturing"], 2),
            },
            actor="bench",
        )
        ids.add(dataset.id)
    return CatalogSearch(sessions), ids


def run(url: str, count: int, repeats: int) -> None:
    started = time.perf_counter()
    search, ids = build(url, count)
    print(
        f"{url.split(':')[0]}: registered {count} datasets in {time.perf_counter() - started:.1f} s"
    )
    started = time.perf_counter()
    search.search("", visible=ids, limit=1)
    print(f"  first search (builds every index entry): {time.perf_counter() - started:.2f} s")
    for query in QUERIES:
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = search.search(query, visible=ids, limit=20)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(
            f"  {query!r:>18}: {result.total:5d} hits, p50 {statistics.median(timings):6.1f} ms,"
            f" p95 {p95:6.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database) to run on too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.datasets, args.repeats)
    if args.postgres:
        run(args.postgres, args.datasets, args.repeats)


if __name__ == "__main__":
    main()
