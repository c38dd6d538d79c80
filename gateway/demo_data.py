"""Bundled sample partner datasets for ``datashare demo``.

One synthetic provider per region (GZ, SZ, DG, HK, MO) uploads one realistic industrial dataset
(DOMAIN.md §7) in the encoding that region's systems really produce (DOMAIN.md §3): GBK and
GB18030 on the mainland, Big5-HKSCS in Hong Kong, Excel "CSV UTF-8" (with BOM) in Shenzhen, plain
UTF-8 in Macao. Each file carries a handful of planted defects (about 1-3% of rows); every defect
makes exactly one row invalid for exactly one reason under the dataset's contract, so
``expected_valid_rows + expected_rejected_rows == rows`` holds exactly.

Everything is derived from ``random.Random`` seeded from ``seed`` (no clock, no global state):
the same arguments always give byte-identical files. All organisations, identifiers, names and
phone numbers are synthetic.

Date formats were chosen for ``pyarrow.compute.strptime(values, format=..., unit="s")`` as
used by ingest: it accepts ``%m``/``%d`` without zero padding (``2025/7/11``, ``2025年7月11日``,
``1/8/2025``), but silently rolls impossible days over (``31/02/2025`` becomes 2025-03-03), so no
defect relies on an impossible day; the planted date defects fail on their format or on a month
field above 12.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

from ingest.contracts import ColumnContract, DataContract
from ingest.validators import uscc
from ingest.validators.logistics import container_check_digit

Region = Literal["GZ", "SZ", "DG", "HK", "MO"]
OrgKind = Literal["provider", "consumer", "steward"]
Classification = Literal["public", "internal", "restricted", "personal", "important"]
Row = dict[str, str]
ValueFn = Callable[[random.Random, Row], str]

DEFAULT_ROWS = 500
DEFAULT_SEED = 20251128
MIN_ROWS = 50
ROWS_PER_DEFECT = 250
"""Each kind of defect is planted once per this many rows (at least once per file)."""


@dataclass(frozen=True)
class SampleOrg:
    name: str
    slug: str
    region: Region
    kind: OrgKind
    registration_id: str


@dataclass(frozen=True)
class SampleDataset:
    org: SampleOrg
    name: str
    title: str
    title_zh: str
    description: str
    classification: Classification
    contract: DataContract
    encoding: str
    filename: str
    content: bytes
    expected_valid_rows: int
    expected_rejected_rows: int
    defects: tuple[str, ...]
    """Human-readable list of the planted defects, one per rejected row, in row order."""


# identifiers -------------------------------------------------------------------------------------


def make_uscc(region_code: str, org_body: str) -> str:
    """An enterprise USCC (``91``) registered at ``region_code`` with valid checks."""
    if len(region_code) != 6 or len(org_body) != 8 or set(org_body) - set(uscc.ALPHABET):
        raise ValueError(f"bad USCC parts {region_code!r}, {org_body!r}")
    first17 = "91" + region_code + org_body + uscc.org_code_check(org_body)
    return first17 + uscc.check_character(first17)


# organisations -----------------------------------------------------------------------------------


def sample_orgs() -> list[SampleOrg]:
    """One provider per region, an HK AI lab (consumer) and a mainland steward organisation."""
    return [
        SampleOrg(
            "广州黄埔汇达汽车车身有限公司",
            "gz_huangpu_autobody",
            "GZ",
            "provider",
            make_uscc("440112", "MA9W4L7C"),
        ),
        SampleOrg(
            "深圳市宝安智联电子制造有限公司",
            "sz_baoan_smt",
            "SZ",
            "provider",
            make_uscc("440306", "MA5H3T8R"),
        ),
        SampleOrg(
            "东莞松湖精密注塑有限公司",
            "dg_songhu_precision",
            "DG",
            "provider",
            make_uscc("441900", "MA51XK2D"),
        ),
        SampleOrg(
            "Kwai Tsing Cross-Border Logistics Limited 葵青跨境物流有限公司",
            "hk_kwaitsing_logistics",
            "HK",
            "provider",
            "72905518",
        ),
        SampleOrg(
            "Cadeia de Frio Cotai, Limitada 路氹冷鏈物流有限公司",
            "mo_cotai_coldchain",
            "MO",
            "provider",
            "48213(SO)",
        ),
        SampleOrg(
            "Pearl Delta Applied AI Lab Limited 珠三角應用人工智能實驗室有限公司",
            "hk_prd_ai_lab",
            "HK",
            "consumer",
            "78120346",
        ),
        SampleOrg(
            "广州南沙湾区工业数据交换运营有限公司",
            "gz_nansha_steward",
            "GZ",
            "steward",
            make_uscc("440115", "MA9Y2U6N"),
        ),
    ]


# generic machinery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Defect:
    column: str
    reason: str
    value: ValueFn


@dataclass(frozen=True)
class _Spec:
    region: Region
    name: str
    title: str
    title_zh: str
    description: str
    classification: Classification
    encoding: str
    filename: str
    newline: str
    contract: DataContract
    rows: Callable[[random.Random, int], list[Row]]
    defects: tuple[_Defect, ...]


def _const(value: str) -> ValueFn:
    return lambda _rng, _row: value


def _render(contract: DataContract, table: list[Row], newline: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow([column.header for column in contract.columns])
    for row in table:
        writer.writerow([row[column.name] for column in contract.columns])
    return buffer.getvalue()


def _build(spec: _Spec, org: SampleOrg, rows: int, seed: int) -> SampleDataset:
    rng = random.Random(f"{seed}/{spec.region}/{spec.name}")
    table = spec.rows(rng, rows)
    planted = [d for d in spec.defects for _ in range(max(1, rows // ROWS_PER_DEFECT))]
    notes: list[tuple[int, str]] = []
    for index, defect in zip(rng.sample(range(rows), len(planted)), planted, strict=True):
        bad = defect.value(rng, table[index])
        table[index][defect.column] = bad
        header = spec.contract.column(defect.column).header
        notes.append(
            (
                index,
                f"data row {index + 1} (file line {index + 2}): "
                f"{header} = {bad!r}: {defect.reason}",
            )
        )
    return SampleDataset(
        org=org,
        name=spec.name,
        title=spec.title,
        title_zh=spec.title_zh,
        description=spec.description,
        classification=spec.classification,
        contract=spec.contract,
        encoding=spec.encoding,
        filename=spec.filename,
        content=_render(spec.contract, table, spec.newline).encode(spec.encoding),
        expected_valid_rows=rows - len(planted),
        expected_rejected_rows=len(planted),
        defects=tuple(note for _, note in sorted(notes)),
    )


def sample_datasets(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> list[SampleDataset]:
    """One dataset per provider region, in region order GZ, SZ, DG, HK, MO."""
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be at least {MIN_ROWS} to keep the defect share realistic")
    providers = {org.region: org for org in sample_orgs() if org.kind == "provider"}
    return [_build(spec, providers[spec.region], rows, seed) for spec in _specs()]


def write_samples(
    target_dir: Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED
) -> list[Path]:
    """Write every sample file into ``target_dir`` (created if needed); returns the paths."""
    target_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for dataset in sample_datasets(rows, seed):
        path = target_dir / dataset.filename
        path.write_bytes(dataset.content)
        paths.append(path)
    return paths


def _specs() -> tuple[_Spec, ...]:
    return (_gz_spec(), _sz_spec(), _dg_spec(), _hk_spec(), _mo_spec())


def _col(name: str, source: str, type_: str = "string", **rules: object) -> ColumnContract:
    """A sample column; the samples classify every column (``non_pi`` unless told)."""
    rules.setdefault("pi", "non_pi")
    return ColumnContract.model_validate({"name": name, "source": source, "type": type_, **rules})


# GZ: automotive spot-welding inspection (GB18030) ------------------------------------------------

_GZ_PARTS = ("61100-TBA-A00", "61210-TBA-A01", "64300-T2A-A10", "04611-TBA-A02")
_GZ_INSPECTORS = ("QC0412", "QC0587", "QC1033", "QC1290")
_GZ_FAIL_NOTES = ("熔核直径偏小，已隔离", "虚焊，返修后复检", "飞溅严重，电极修磨后复检")


def _gz_rows(rng: random.Random, rows: int) -> list[Row]:
    out: list[Row] = []
    per_day: dict[int, int] = {}
    for i in range(rows):
        day = 1 + i * 31 // rows
        seq = per_day[day] = per_day.get(day, 0) + 1
        nugget = min(7.8, max(3.5, rng.gauss(6.0, 0.5)))
        passed = nugget >= 5.0
        notes = []
        if seq == 1:  # first piece of the day; day 1, 8, 15 … follow an electrode-cap change
            notes.append("更换电极帽Ø16后首件检验" if day % 7 == 1 else "首件检验")
        if not passed:
            notes.append(rng.choice(_GZ_FAIL_NOTES))
        out.append(
            {
                "inspection_id": f"IPQC-202507{day:02d}-{seq:04d}",
                "inspection_date": f"2025年7月{day}日",
                "part_no": rng.choice(_GZ_PARTS),
                "weld_current_ka": f"{rng.uniform(8.2, 11.4):.1f}",
                "weld_time_ms": str(20 * rng.randint(8, 20)),
                "electrode_force_kn": f"{rng.uniform(2.8, 4.6):.2f}",
                "nugget_diameter_mm": f"{nugget:.2f}",
                "result": "合格" if passed else "不合格",
                "inspector_id": rng.choice(_GZ_INSPECTORS),
                "remark": "；".join(notes),
            }
        )
    return out


def _gz_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col("inspection_id", "检验单号", nullable=False, pattern=r"^IPQC-[0-9]{8}-[0-9]{4}$"),
            _col("inspection_date", "检验日期", "date", nullable=False, format="%Y年%m月%d日"),
            _col(
                "part_no", "零件号", nullable=False, pattern=r"^[0-9]{5}-[A-Z0-9]{3}-[A-Z0-9]{3}$"
            ),
            _col(
                "weld_current_ka",
                "焊接电流(kA)",
                "double",
                unit="kA",
                nullable=False,
                min=6,
                max=14,
            ),
            _col(
                "weld_time_ms",
                "焊接时间(ms)",
                "integer",
                unit="ms",
                nullable=False,
                min=100,
                max=500,
            ),
            _col(
                "electrode_force_kn",
                "电极压力(kN)",
                "double",
                unit="kN",
                nullable=False,
                min=2,
                max=6,
            ),
            _col(
                "nugget_diameter_mm",
                "熔核直径(mm)",
                "double",
                unit="mm",
                nullable=False,
                min=0,
                max=12,
            ),
            _col("result", "判定结果", nullable=False, allowed=["合格", "不合格"]),
            _col(
                "inspector_id",
                "检验员工号",
                nullable=False,
                pattern=r"^QC[0-9]{4}$",
                pi="pi_quasi_id",
            ),
            _col("remark", "备注", pi="pi_other"),
        ],
        primary_key=["inspection_id"],
    )
    return _Spec(
        region="GZ",
        name="gz_spot_weld_inspection",
        title="Body-in-white spot-weld inspection records (IPQC), July 2025",
        title_zh="白车身点焊过程检验记录（IPQC）2025年7月",
        description=(
            "Chisel/peel test results for resistance spot welds on a Guangzhou (Huangpu) "
            "body-in-white line: current, weld time, electrode force, nugget diameter and the "
            "pass/fail verdict. GB18030 CSV from the plant QMS; dates written 2025年7月11日 "
            "(no zero padding). The remark column holds free text, including the diameter sign "
            "Ø, which GBK cannot encode."
        ),
        classification="restricted",
        encoding="gb18030",
        filename="gz_spot_weld_inspection_202507.csv",
        newline="\r\n",
        contract=contract,
        rows=_gz_rows,
        defects=(
            _Defect(
                "weld_current_ka",
                "decimal point lost (8.6 kA typed 86); above max 14",
                lambda _rng, row: row["weld_current_ka"].replace(".", ""),
            ),
            _Defect("result", "verdict '合格?' is not one of 合格/不合格", _const("合格?")),
            _Defect(
                "inspection_date",
                "date typed as 2025.7.11, does not match %Y年%m月%d日",
                lambda _rng, row: (
                    row["inspection_date"].replace("年", ".").replace("月", ".").replace("日", "")
                ),
            ),
            _Defect(
                "inspector_id",
                "badge lost its leading zero (Excel numeric coercion); breaks ^QC[0-9]{4}$",
                lambda rng, _row: rng.choice(("QC412", "QC587")),
            ),
            _Defect(
                "nugget_diameter_mm",
                "nugget diameter not entered; the column is required",
                _const(""),
            ),
        ),
    )


# SZ: SMT reflow oven telemetry (Excel "CSV UTF-8", with BOM) -----------------------------------

# line, oven, nitrogen atmosphere, operator badge, work order, conveyor set-point (m/min)
_SZ_OVENS = (
    ("SMT-01", "RF-101", True, "E203117", "WO2507110301", 0.95),
    ("SMT-02", "RF-102", False, "E203452", "WO2507110302", 1.10),
    ("SMT-03", "RF-103", True, "E198806", "WO2507110305", 0.90),
    ("SMT-05", "RF-105", False, "E210034", "WO2507110309", 1.20),
)


def _sz_rows(rng: random.Random, rows: int) -> list[Row]:
    start = datetime(2025, 7, 11, 8, 0, 0)
    out: list[Row] = []
    for i in range(rows):
        index = i % len(_SZ_OVENS)
        line, oven, nitrogen, badge, work_order, speed = _SZ_OVENS[index]
        ts = start + timedelta(seconds=30 * (i // len(_SZ_OVENS)) + 3 * index + 2)
        out.append(
            {
                "line_id": line,
                "oven_id": oven,
                "ts_device": f"{ts:%Y-%m-%d %H:%M:%S}",
                "peak_temp_c": f"{rng.uniform(236.0, 249.0):.1f}",
                "tal_s": f"{rng.uniform(48.0, 88.0):.1f}",
                "conveyor_m_min": f"{speed + rng.uniform(-0.02, 0.02):.2f}",
                "o2_ppm": str(rng.randint(250, 850)) if nitrogen else "",
                "quality": rng.choices(("Good", "Uncertain", "Bad"), weights=(970, 25, 5))[0],
                "operator_badge": badge,
                "work_order": work_order,
            }
        )
    return out


def _sz_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col("line_id", "线体", nullable=False, pattern=r"^SMT-[0-9]{2}$"),
            _col("oven_id", "设备编号", nullable=False, pattern=r"^RF-[0-9]{3}$"),
            _col("ts_device", "采集时间", "timestamp", nullable=False, format="%Y-%m-%d %H:%M:%S"),
            _col(
                "peak_temp_c", "峰值温度(℃)", "double", unit="°C", nullable=False, min=25, max=260
            ),
            _col("tal_s", "液相线以上时间(s)", "double", unit="s", nullable=False, min=0, max=180),
            _col(
                "conveyor_m_min",
                "链速(m/min)",
                "double",
                unit="m/min",
                nullable=False,
                min=0.3,
                max=2.0,
            ),
            _col("o2_ppm", "氧含量(ppm)", "integer", unit="ppm", min=0, max=5000),
            _col("quality", "数据质量", nullable=False, allowed=["Good", "Uncertain", "Bad"]),
            _col(
                "operator_badge",
                "操作员工号",
                nullable=False,
                pattern=r"^E[0-9]{6}$",
                pi="pi_quasi_id",
            ),
            _col("work_order", "工单号", nullable=False, pattern=r"^WO[0-9]{10}$"),
        ],
        primary_key=["oven_id", "ts_device"],
    )
    return _Spec(
        region="SZ",
        name="sz_smt_reflow_telemetry",
        title="SMT reflow oven telemetry (SAC305), 30-second samples",
        title_zh="SMT回流焊炉过程遥测（SAC305，30秒采样）",
        description=(
            "Peak temperature, time above liquidus, conveyor speed and O2 (nitrogen ovens only; "
            "air ovens leave it blank) from four reflow ovens at a Shenzhen (Bao'an) EMS plant, "
            "with the OPC UA quality code and the operator badge. Excel 'CSV UTF-8' export "
            "(UTF-8 with BOM). Device clock is naive local time (Asia/Shanghai)."
        ),
        classification="restricted",
        encoding="utf-8-sig",
        filename="sz_smt_reflow_telemetry_20250711.csv",
        newline="\r\n",
        contract=contract,
        rows=_sz_rows,
        defects=(
            _Defect(
                "peak_temp_c",
                "thermocouple open-circuit sentinel 999.9 °C; above max 260",
                _const("999.9"),
            ),
            _Defect(
                "tal_s",
                "'N/A' is not a number (profiler missed the liquidus crossing)",
                _const("N/A"),
            ),
            _Defect(
                "ts_device",
                "historian added milliseconds; does not match %H:%M:%S",
                lambda rng, row: f"{row['ts_device']}.{rng.randrange(1, 1000):03d}",
            ),
            _Defect(
                "operator_badge",
                "badge not scanned at shift start; the column is required",
                _const(""),
            ),
            _Defect(
                "quality",
                "quality 'Unknown' is not an OPC UA status (Good/Uncertain/Bad)",
                _const("Unknown"),
            ),
        ),
    )


# DG: factory 15-minute energy metering (GBK) -----------------------------------------------------

_DG_METERS = (
    ("DG-P1-INC-01", "INC"),
    ("DG-P1-MCC-03", "MCC"),
    ("DG-P1-MCC-07", "MCC"),
    ("DG-P2-INC-01", "INC"),
    ("DG-P2-MCC-02", "MCC"),
    ("DG-P2-LN-11", "LN"),
    ("DG-P2-LN-12", "LN"),
    ("DG-P3-MCC-05", "MCC"),
)
_DG_KWH = {"INC": (600.0, 2400.0), "MCC": (15.0, 95.0), "LN": (3.0, 40.0)}


def _gd_tariff(start: datetime) -> str:
    """Guangdong time-of-use period of an interval starting at ``start`` (simplified)."""
    if start.hour < 8:
        return "谷"
    if start.month in (7, 8, 9) and (start.hour == 11 or 15 <= start.hour < 17):
        return "尖峰"
    if 10 <= start.hour < 12 or 14 <= start.hour < 19:
        return "峰"
    return "平"


def _dg_rows(rng: random.Random, rows: int) -> list[Row]:
    totals = {
        m: rng.uniform(1e5, 9e6) if k == "INC" else rng.uniform(1e4, 9e5) for m, k in _DG_METERS
    }
    first_end = datetime(2025, 7, 11, 0, 15)  # interval-end convention
    out: list[Row] = []
    for i in range(rows):
        meter, kind = _DG_METERS[i % len(_DG_METERS)]
        end = first_end + timedelta(minutes=15 * (i // len(_DG_METERS)))
        start = end - timedelta(minutes=15)
        low, high = _DG_KWH[kind]
        kwh = round(rng.uniform(low, high) * (0.6 if start.hour < 8 else 1.0), 2)
        totals[meter] = round(totals[meter] + kwh, 2)
        out.append(
            {
                "meter_id": meter,
                "ts_local": f"{end.year}/{end.month}/{end.day} {end:%H:%M}",
                "tariff_period": _gd_tariff(start),
                "kwh_interval": f"{kwh:.2f}",
                "kwh_import_total": f"{totals[meter]:.2f}",
                "kw_max_demand": "" if kind == "LN" else f"{kwh * 4 * rng.uniform(1.05, 1.3):.1f}",
                "power_factor": f"{rng.uniform(0.82, 0.99):.3f}",
                "v_ll_avg": f"{rng.uniform(372.0, 398.0):.1f}",
                "freq_hz": f"{rng.uniform(49.92, 50.08):.2f}",
            }
        )
    return out


def _dg_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col(
                "meter_id", "设备编号", nullable=False, pattern=r"^DG-P[1-3]-(INC|MCC|LN)-[0-9]{2}$"
            ),
            _col("ts_local", "时间", "timestamp", nullable=False, format="%Y/%m/%d %H:%M"),
            _col("tariff_period", "电价时段", nullable=False, allowed=["尖峰", "峰", "平", "谷"]),
            _col(
                "kwh_interval", "用电量(度)", "double", unit="kWh", nullable=False, min=0, max=5000
            ),
            _col(
                "kwh_import_total",
                "正向有功总电能(度)",
                "double",
                unit="kWh",
                nullable=False,
                min=0,
                max=1e9,
            ),
            _col("kw_max_demand", "最大需量(kW)", "double", unit="kW", min=0, max=20000),
            _col("power_factor", "功率因数", "double", nullable=False, min=0, max=1),
            _col("v_ll_avg", "线电压(V)", "double", unit="V", nullable=False, min=300, max=450),
            _col("freq_hz", "频率(Hz)", "double", unit="Hz", nullable=False, min=49.5, max=50.5),
        ],
        primary_key=["meter_id", "ts_local"],
    )
    return _Spec(
        region="DG",
        name="dg_energy_metering",
        title="Factory electricity metering, 15-minute intervals",
        title_zh="工厂电能计量（15分钟间隔）",
        description=(
            "Interval energy (度 = kWh), cumulative import register, maximum demand, power "
            "factor, line voltage and frequency for incomer, MCC and line sub-meters at a "
            "Dongguan injection-moulding plant. Timestamps mark the interval end, naive "
            "Asia/Shanghai, written 2025/7/11 08:15. Line sub-meters do not record demand "
            "(blank). Tariff periods follow the Guangdong time-of-use scheme (simplified, "
            "unverified). GBK CSV saved by Excel."
        ),
        classification="internal",
        encoding="gbk",
        filename="dg_energy_metering_15min_20250711.csv",
        newline="\r\n",
        contract=contract,
        rows=_dg_rows,
        defects=(
            _Defect(
                "kwh_interval",
                "negative interval energy (sign error after a meter swap); below min 0",
                lambda rng, _row: f"-{rng.uniform(1.0, 40.0):.2f}",
            ),
            _Defect(
                "meter_id",
                "meter id written with underscores; breaks the pattern",
                lambda _rng, row: row["meter_id"].replace("-", "_"),
            ),
            _Defect(
                "ts_local", "timestamp missing (logger gap); the column is required", _const("")
            ),
            _Defect(
                "tariff_period", "tariff period '高峰' is not one of 尖峰/峰/平/谷", _const("高峰")
            ),
            _Defect("power_factor", "'N/A' is not a number (meter did not report)", _const("N/A")),
        ),
    )


# HK: cross-boundary road shipments (Big5-HKSCS) -------------------------------------------------

_HK_CROSSINGS = ("落馬洲", "深圳灣", "蓮塘/香園圍", "文錦渡", "港珠澳大橋")
_HK_OWNERS = ("GBAU", "KTCU", "PRDU", "HKTU", "SZXU")
_HK_PLATE_LETTERS = ("LV", "RX", "TW", "UK", "PK", "KX", "NP")
_HK_DRIVERS = ("陳大文", "許志強", "李家豪", "黃偉明", "梁子健", "鄧志輝", "吳嘉雯", "麥浩然")
_HK_GOODS = (
    "電子零件（手機主板）",
    "LED燈帶，紙箱裝",
    "客戶嘅樣板，小心輕放",
    "啲紙箱要防潮，唔好疊太高",
    "注塑外殼 200箱",
    "鋰電池（UN3481），按危險品處理",
    "成衣 45箱",
    "",
)


def _container_no(rng: random.Random) -> str:
    first10 = rng.choice(_HK_OWNERS) + f"{rng.randrange(10**6):06d}"
    return first10 + container_check_digit(first10)


def _hk_rows(rng: random.Random, rows: int) -> list[Row]:
    out: list[Row] = []
    for i in range(rows):
        day = date(2025, 7, 1) + timedelta(days=i * 62 // rows)
        padded = rng.random() >= 0.15  # some clerks type 1/8/2025, equally valid day-first
        out.append(
            {
                "shipment_id": f"HKX{2507001 + i:07d}",
                "ship_date": f"{day:%d/%m/%Y}" if padded else f"{day.day}/{day.month}/{day.year}",
                "direction": rng.choices(("進口", "出口", "轉運"), weights=(45, 40, 15))[0],
                "crossing_point": rng.choice(_HK_CROSSINGS),
                "container_no": _container_no(rng),
                "truck_plate_hk": rng.choice(_HK_PLATE_LETTERS) + str(rng.randint(1, 9999)),
                "driver_name": rng.choice(_HK_DRIVERS),
                "gross_kg": f"{rng.uniform(3500.0, 28500.0):.1f}",
                "invoice_value_hkd": f"{rng.uniform(8000.0, 950000.0):.2f}",
                "goods_desc_zh": _HK_GOODS[i % len(_HK_GOODS)]
                if i < len(_HK_GOODS)
                else rng.choice(_HK_GOODS),
            }
        )
    return out


def _hk_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col("shipment_id", "運單編號", nullable=False, pattern=r"^HKX[0-9]{7}$"),
            _col("ship_date", "出車日期", "date", nullable=False, format="%d/%m/%Y"),
            _col("direction", "方向", nullable=False, allowed=["進口", "出口", "轉運"]),
            _col("crossing_point", "口岸", nullable=False, allowed=list(_HK_CROSSINGS)),
            _col("container_no", "貨櫃編號", nullable=False, pattern=r"^[A-Z]{3}[UJZ][0-9]{7}$"),
            _col(
                "truck_plate_hk",
                "香港車牌",
                nullable=False,
                pattern=r"^[A-Z]{2}[1-9][0-9]{0,3}$",
                pi="pi_quasi_id",
            ),
            _col("driver_name", "司機姓名", nullable=False, pi="pi_direct_id"),
            _col("gross_kg", "毛重(公斤)", "double", unit="kg", nullable=False, min=0, max=32500),
            _col(
                "invoice_value_hkd",
                "發票金額(港元)",
                "double",
                unit="HKD",
                nullable=False,
                min=0,
                max=1e8,
            ),
            _col("goods_desc_zh", "貨物描述", pi="pi_other"),
        ],
        primary_key=["shipment_id"],
    )
    return _Spec(
        region="HK",
        name="hk_cross_boundary_shipments",
        title="Cross-boundary road shipments HK ⇄ Shenzhen, Q3 2025",
        title_zh="跨境陸路貨運記錄（香港 ⇄ 深圳）2025年第三季",
        description=(
            "Container truck movements through the Shenzhen-Hong Kong land crossings and the "
            "HK-Zhuhai-Macao Bridge: direction, crossing, ISO 6346 container number, HK plate, "
            "driver, gross weight and invoice value in HKD. Big5-HKSCS export from a legacy HK "
            "forwarding system; dates are day-first (11/07/2025, sometimes 1/8/2025); goods "
            "descriptions contain Cantonese characters (嘅, 啲, 嘢) that plain Big5 lacks, "
            "commas (quoted fields) and names such as 許 whose Big5 trail byte is 0x5C."
        ),
        classification="personal",
        encoding="big5hkscs",
        filename="hk_cross_boundary_shipments_2025q3.csv",
        newline="\r\n",
        contract=contract,
        rows=_hk_rows,
        defects=(
            _Defect(
                "ship_date",
                "month-first (US locale) date; the middle field is not a month",
                lambda rng, _row: f"{rng.randint(1, 12):02d}/{rng.randint(13, 28)}/2025",
            ),
            _Defect(
                "container_no",
                "container number with a space; breaks the pattern",
                lambda _rng, row: row["container_no"][:4] + " " + row["container_no"][4:],
            ),
            _Defect(
                "direction", "English label 'IMPORT' is not one of 進口/出口/轉運", _const("IMPORT")
            ),
            _Defect("driver_name", "driver name missing; the column is required", _const("")),
            _Defect(
                "gross_kg",
                "decimal point lost (weight x10); above max 32,500 kg",
                lambda _rng, row: row["gross_kg"].replace(".", ""),
            ),
        ),
    )


# MO: cold-chain warehouse maintenance log (UTF-8) -----------------------------------------------

_MO_ASSETS = ("MO-FL-003", "MO-FL-007", "MO-CR-001", "MO-CR-002", "MO-AC-011", "MO-DK-004")
_MO_TECHS = ("黎志偉", "陳嘉樂", "José Fernandes", "Ana Sousa", "何健文", "Carlos Lei")
_MO_NOTES = (
    "Substituição do compressor da câmara frigorífica",
    "更換叉車液壓油管",
    "",
    "Inspeção preventiva trimestral",
    "冷房門封條老化，已更換",
    "Limpeza dos condensadores",
    "",
)
_MO_MINUTES = {"PM": (30, 240), "CM": (20, 2880), "PdM": (15, 120)}
_MO_COST = {"PM": (150.0, 2500.0), "CM": (300.0, 38000.0), "PdM": (200.0, 1500.0)}
_PT_MONTHS = (
    "Janeiro",
    "Fevereiro",
    "Março",
    "Abril",
    "Maio",
    "Junho",
    "Julho",
    "Agosto",
    "Setembro",
    "Outubro",
    "Novembro",
    "Dezembro",
)


def _mo_rows(rng: random.Random, rows: int) -> list[Row]:
    out: list[Row] = []
    for i in range(rows):
        kind = rng.choices(("PM", "CM", "PdM"), weights=(55, 40, 5))[0]
        reported = date(2025, 1, 2) + timedelta(days=i * 210 // rows)
        phone = f"+853 6{rng.choice('235')}{rng.randrange(100):02d} {rng.randrange(10**4):04d}"
        out.append(
            {
                "wo_no": f"OT-2025-{i + 1:05d}",
                "asset_tag": rng.choice(_MO_ASSETS),
                "maint_type": kind,
                "reported_date": f"{reported:%d/%m/%Y}",
                "downtime_min": str(rng.randint(*_MO_MINUTES[kind])),
                "cost": f"{rng.uniform(*_MO_COST[kind]):.2f}",
                "currency": rng.choices(("MOP", "HKD"), weights=(85, 15))[0],
                "technician_name": rng.choice(_MO_TECHS),
                "technician_phone": phone if rng.random() < 0.8 else "",
                "notes": rng.choice(_MO_NOTES),
            }
        )
    return out


def _pt_date(row: Row) -> str:
    day = datetime.strptime(row["reported_date"], "%d/%m/%Y")
    return f"{day.day} de {_PT_MONTHS[day.month - 1]} de {day.year}"


def _pt_amount(row: Row) -> str:
    return f"{float(row['cost']):,.2f}".translate(str.maketrans(",.", ".,"))


def _mo_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col("wo_no", "工單編號", nullable=False, pattern=r"^OT-2025-[0-9]{5}$"),
            _col("asset_tag", "設備編號", nullable=False, pattern=r"^MO-(FL|CR|AC|DK)-[0-9]{3}$"),
            _col("maint_type", "維修類型", nullable=False, allowed=["PM", "CM", "PdM"]),
            _col("reported_date", "報修日期", "date", nullable=False, format="%d/%m/%Y"),
            _col(
                "downtime_min",
                "停機時間(分鐘)",
                "integer",
                unit="min",
                nullable=False,
                min=0,
                max=10080,
            ),
            _col("cost", "費用", "double", nullable=False, min=0, max=500000),
            _col("currency", "貨幣", nullable=False, allowed=["MOP", "HKD"]),
            _col("technician_name", "技術員", nullable=False, pi="pi_direct_id"),
            _col(
                "technician_phone",
                "聯絡電話",
                pattern=r"^\+853 6[0-9]{3} [0-9]{4}$",
                pi="pi_direct_id",
            ),
            _col("notes", "備註", pi="pi_other"),
        ],
        primary_key=["wo_no"],
    )
    return _Spec(
        region="MO",
        name="mo_coldchain_maintenance",
        title="Cold-chain warehouse maintenance log (CMMS), 2025",
        title_zh="冷鏈倉庫設備維修記錄（CMMS）2025年",
        description=(
            "Work orders for forklifts, cold rooms, air conditioning and dock levellers at a "
            "Cotai cold-chain warehouse: maintenance type (PM/CM/PdM), reported date "
            "(day-first), downtime, cost as a plain decimal with an explicit currency (MOP, "
            "sometimes HKD), technician and +853 mobile. UTF-8 without BOM, LF line ends; "
            "notes mix Portuguese and Traditional Chinese."
        ),
        classification="personal",
        encoding="utf-8",
        filename="mo_coldchain_maintenance_2025.csv",
        newline="\n",
        contract=contract,
        rows=_mo_rows,
        defects=(
            _Defect(
                "reported_date",
                "Portuguese long-form date; does not match %d/%m/%Y",
                lambda _rng, row: _pt_date(row),
            ),
            _Defect(
                "cost",
                "Portuguese number format (1.234,50) is not a plain decimal",
                lambda _rng, row: _pt_amount(row),
            ),
            _Defect("maint_type", "'Preventiva' is not one of PM/CM/PdM", _const("Preventiva")),
            _Defect(
                "downtime_min",
                "negative downtime (completion logged before the report); below min 0",
                lambda rng, _row: f"-{rng.randint(5, 90)}",
            ),
            _Defect("asset_tag", "asset tag missing; the column is required", _const("")),
        ),
    )
