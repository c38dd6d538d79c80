"""Bundled sample partner datasets for ``datashare demo``.

One synthetic provider per region (GZ, SZ, DG, HK, MO) uploads one realistic industrial dataset
(DOMAIN.md §7) in the encoding that region's systems really produce (DOMAIN.md §3): GBK and
GB18030 on the mainland, Big5-HKSCS in Hong Kong, Excel "CSV UTF-8" (with BOM) in Shenzhen, plain
UTF-8 in Macao.

Together the contracts use every kind of rule ingest knows: identifier validators (USCC, HKID,
phone, ISO 6346 container), number formats (``HK$1,234.50``, ``MOP 1.234,50``, Excel's
``1,234,567.89``), several date formats on one column and Chinese-numeral dates, a ``unique``
column besides the key, composite primary keys, ``max_invalid_ratio`` and columns left without a
``pi`` class for the ingest PII scan to classify.

Each file carries a handful of planted defects (about 2% of rows): every defect makes exactly one
row invalid for exactly one reason under the dataset's contract, so
``expected_valid_rows + expected_rejected_rows == rows`` holds exactly, and
:attr:`SampleDataset.planted_defects` names the quarantine rule each one must get. Planted
*variants* are the opposite: values written differently (full-width HKID, lower-case USCC, spaced
container number, Chinese-numeral date, phone without country code) that ingest must accept and
store in canonical form (:attr:`SampleDataset.accepted_variants`).

Everything is derived from ``random.Random`` seeded from ``seed`` (no clock, no global state):
the same arguments always give byte-identical files. All organisations, identifiers, names and
phone numbers are synthetic.
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

from ingest.contracts import ColumnContract, DataContract, PIClass
from ingest.validators import hkid, uscc
from ingest.validators.logistics import container_check_digit

Region = Literal["GZ", "SZ", "DG", "HK", "MO"]
OrgKind = Literal["provider", "consumer", "steward"]
Classification = Literal["public", "internal", "restricted", "personal", "important"]
Row = dict[str, str]
ValueFn = Callable[[random.Random, Row], str]
RowTest = Callable[[Row], bool]

DEFAULT_ROWS = 500
DEFAULT_SEED = 20251128
MIN_ROWS = 50
ROWS_PER_DEFECT = 250
"""Each kind of defect (and of accepted variant) is planted once per this many rows (at least
once per file)."""


@dataclass(frozen=True)
class SampleOrg:
    name: str
    slug: str
    region: Region
    kind: OrgKind
    registration_id: str


@dataclass(frozen=True)
class PlantedDefect:
    """One planted defect: the row ingest must quarantine, and the reason it must give."""

    row: int
    """1-based data row (the header is row 0), as in the quarantine report."""
    column: str
    """The contract column whose value was spoiled."""
    value: str
    """The value as written in the file."""
    rule: str
    """The quarantine reason's rule: ``type``, ``range``, ``pattern``, ``allowed``,
    ``not_null``, ``unique`` or an identifier validator's rule (``USCC_CHECK``, …)."""
    reason_column: str
    """The quarantine reason's column: the source header, or a composite key's headers
    joined by ``+``."""
    note: str


@dataclass(frozen=True)
class AcceptedVariant:
    """A value written in an unusual but acceptable way, and what ingest must store."""

    row: int
    column: str
    value: str
    """The value as written in the file."""
    stored: str
    """The canonical value as text: an identifier's canonical form, a date as ISO 8601."""
    note: str


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
    planted_defects: tuple[PlantedDefect, ...]
    """The same defects as data, in row order."""
    accepted_variants: tuple[AcceptedVariant, ...]
    """Planted values ingest must accept and normalise, in row order."""


# identifiers -------------------------------------------------------------------------------------


def make_uscc(region_code: str, org_body: str) -> str:
    """An enterprise USCC (``91``) registered at ``region_code`` with valid checks."""
    if len(region_code) != 6 or len(org_body) != 8 or set(org_body) - set(uscc.ALPHABET):
        raise ValueError(f"bad USCC parts {region_code!r}, {org_body!r}")
    first17 = "91" + region_code + org_body + uscc.org_code_check(org_body)
    return first17 + uscc.check_character(first17)


def make_hkid(prefix: str, digits: str) -> str:
    """An HKID in its printed (canonical) form ``A123456(3)`` with a valid check character."""
    return f"{prefix}{digits}({hkid.check_character(prefix, digits)})"


def wrong_uscc_check(code: str) -> str:
    """``code`` with its check character replaced by the next symbol (a typing slip)."""
    return code[:17] + uscc.ALPHABET[(uscc.ALPHABET.index(code[17]) + 1) % len(uscc.ALPHABET)]


def excel_scientific(digits: str) -> str:
    """How Excel's General format writes a long number into CSV: ``9.14419E+17``."""
    mantissa = f"{int(digits) / 10 ** (len(digits) - 1):.5f}".rstrip("0").rstrip(".")
    return f"{mantissa}E+{len(digits) - 1}"


_FULL_WIDTH = {
    ord(ch): ord(ch) + 0xFEE0
    for ch in "0123456789()ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
}


def full_width(text: str) -> str:
    """ASCII letters, digits and parentheses as typed with a Chinese input method."""
    return text.translate(_FULL_WIDTH)


_CN_DIGITS = "〇一二三四五六七八九"


def chinese_numeral_date(day: date) -> str:
    """``2025年7月11日`` as written out in Chinese numerals: ``二〇二五年七月十一日``."""

    def small(n: int) -> str:
        tens, units = divmod(n, 10)
        head = "" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens] + "十")
        return head + (_CN_DIGITS[units] if units or not tens else "")

    year = "".join(_CN_DIGITS[int(d)] for d in str(day.year))
    return f"{year}年{small(day.month)}月{small(day.day)}日"


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


def _any_row(_row: Row) -> bool:
    return True


@dataclass(frozen=True)
class _Defect:
    """A defect kind. ``value`` spoils the row's ``column``; a duplicate (``rule="unique"``)
    instead copies ``column`` from the nearest earlier untouched row for which
    ``duplicates(earlier, row)`` holds, so the row repeats that row's key."""

    column: str
    rule: str
    reason: str
    value: ValueFn | None = None
    where: RowTest = _any_row
    duplicates: Callable[[Row, Row], bool] | None = None


@dataclass(frozen=True)
class _Variant:
    """An accepted variant kind: ``value`` rewrites the row's ``column``; ``stored`` is the
    canonical text ingest must keep (computed from the untouched row)."""

    column: str
    note: str
    value: ValueFn
    stored: Callable[[Row], str]
    where: RowTest = _any_row


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
    variants: tuple[_Variant, ...] = ()


def _const(value: str) -> ValueFn:
    return lambda _rng, _row: value


def _render(contract: DataContract, table: list[Row], newline: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow([column.header for column in contract.columns])
    for row in table:
        writer.writerow([row[column.name] for column in contract.columns])
    return buffer.getvalue()


class _Planter:
    """Plants defects and variants into a generated table, each in a row of its own."""

    def __init__(self, spec: _Spec, table: list[Row], rng: random.Random) -> None:
        self.spec, self.table, self.rng = spec, table, rng
        self.used: set[int] = set()
        """Rows already spoiled or varied, and the rows duplicates copy from."""

    def _pick(self, where: Callable[[int], bool], what: str) -> int:
        candidates = [i for i in range(len(self.table)) if i not in self.used and where(i)]
        if not candidates:
            raise ValueError(f"{self.spec.name}: no row left to plant {what}")
        index = self.rng.choice(candidates)
        self.used.add(index)
        return index

    def _source(self, defect: _Defect, index: int) -> int | None:
        assert defect.duplicates is not None
        row = self.table[index]
        for earlier in range(index - 1, -1, -1):
            if earlier not in self.used and defect.duplicates(self.table[earlier], row):
                return earlier
        return None

    def defect(self, defect: _Defect) -> PlantedDefect:
        def fits(i: int) -> bool:
            return defect.where(self.table[i]) and (
                defect.duplicates is None or self._source(defect, i) is not None
            )

        index = self._pick(fits, defect.reason)
        row = self.table[index]
        if defect.duplicates is not None:
            source = self._source(defect, index)
            assert source is not None
            self.used.add(source)
            bad = self.table[source][defect.column]
        else:
            assert defect.value is not None
            bad = defect.value(self.rng, row)
        row[defect.column] = bad
        contract = self.spec.contract
        key = contract.primary_key if defect.column in contract.primary_key else [defect.column]
        columns = key if defect.rule == "unique" else [defect.column]
        header = contract.column(defect.column).header
        return PlantedDefect(
            row=index + 1,
            column=defect.column,
            value=bad,
            rule=defect.rule,
            reason_column="+".join(contract.column(c).header for c in columns),
            note=(
                f"data row {index + 1} (file line {index + 2}): {header} = {bad!r}: {defect.reason}"
            ),
        )

    def variant(self, variant: _Variant) -> AcceptedVariant:
        index = self._pick(lambda i: variant.where(self.table[i]), variant.note)
        row = self.table[index]
        stored = variant.stored(row)
        written = variant.value(self.rng, row)
        row[variant.column] = written
        return AcceptedVariant(index + 1, variant.column, written, stored, variant.note)


def _build(spec: _Spec, org: SampleOrg, rows: int, seed: int) -> SampleDataset:
    rng = random.Random(f"{seed}/{spec.region}/{spec.name}")
    table = spec.rows(rng, rows)
    times = max(1, rows // ROWS_PER_DEFECT)
    planter = _Planter(spec, table, rng)
    planted = sorted(
        (planter.defect(d) for d in spec.defects for _ in range(times)), key=lambda p: p.row
    )
    variants = sorted(
        (planter.variant(v) for v in spec.variants for _ in range(times)), key=lambda v: v.row
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
        defects=tuple(p.note for p in planted),
        planted_defects=tuple(planted),
        accepted_variants=tuple(variants),
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


def _col(
    name: str, source: str, type_: str = "string", *, pi: PIClass | None = "non_pi", **rules: object
) -> ColumnContract:
    """A sample column, ``non_pi`` unless told; ``pi=None`` leaves it unclassified, for the
    ingest PII scan to suggest a class."""
    return ColumnContract.model_validate(
        {"name": name, "source": source, "type": type_, "pi": pi, **rules}
    )


def _unchanged(column: str) -> Callable[[Row], str]:
    return lambda row: row[column]


# GZ: automotive spot-welding inspection (GB18030) ------------------------------------------------

_GZ_SUPPLIER_A = make_uscc("440112", "MA59J3KU")  # Huangpu stamping plant
_GZ_SUPPLIER_B = make_uscc("440606", "MA4UWN8B")  # Foshan (Shunde) pressings
_GZ_SUPPLIER_C = make_uscc("440113", "MA5CTQ7E")  # Panyu brackets
_GZ_PARTS = {
    "61100-TBA-A00": _GZ_SUPPLIER_A,
    "61210-TBA-A01": _GZ_SUPPLIER_A,
    "64300-T2A-A10": _GZ_SUPPLIER_B,
    "04611-TBA-A02": _GZ_SUPPLIER_C,
}
_GZ_INSPECTORS = ("QC0412", "QC0587", "QC1033", "QC1290")
_GZ_FAIL_NOTES = ("熔核直径偏小，已隔离", "虚焊，返修后复检", "飞溅严重，电极修磨后复检")
_GZ_DATE = "%Y年%m月%d日"


def _gz_rows(rng: random.Random, rows: int) -> list[Row]:
    out: list[Row] = []
    per_day: dict[int, int] = {}
    body = 1000
    for i in range(rows):
        day = 1 + i * 31 // rows
        seq = per_day[day] = per_day.get(day, 0) + 1
        body += rng.randint(1, 40)  # one sampled body in every few dozen
        nugget = min(7.8, max(3.5, rng.gauss(6.0, 0.5)))
        passed = nugget >= 5.0
        notes = []
        if seq == 1:  # first piece of the day; day 1, 8, 15 … follow an electrode-cap change
            notes.append("更换电极帽Ø16后首件检验" if day % 7 == 1 else "首件检验")
        if not passed:
            notes.append(rng.choice(_GZ_FAIL_NOTES))
        part = rng.choice(list(_GZ_PARTS))
        out.append(
            {
                "inspection_id": f"IPQC-202507{day:02d}-{seq:04d}",
                "inspection_date": f"2025年7月{day}日",
                "part_no": part,
                "supplier_uscc": _GZ_PARTS[part],
                "body_no": f"BIW2507-{body:05d}",
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


def _gz_iso_date(row: Row) -> str:
    return datetime.strptime(row["inspection_date"], _GZ_DATE).date().isoformat()


def _gz_spaced_uscc(_rng: random.Random, row: Row) -> str:
    code = row["supplier_uscc"]
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def _gz_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col("inspection_id", "检验单号", nullable=False, pattern=r"^IPQC-[0-9]{8}-[0-9]{4}$"),
            _col("inspection_date", "检验日期", "date", nullable=False, format=_GZ_DATE),
            _col(
                "part_no", "零件号", nullable=False, pattern=r"^[0-9]{5}-[A-Z0-9]{3}-[A-Z0-9]{3}$"
            ),
            _col("supplier_uscc", "供应商统一社会信用代码", nullable=False, validator="uscc"),
            _col(
                "body_no", "车身号", nullable=False, unique=True, pattern=r"^BIW[0-9]{4}-[0-9]{5}$"
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
            _col("remark", "备注", pi=None),
        ],
        primary_key=["inspection_id"],
        max_invalid_ratio=0.03,
    )
    return _Spec(
        region="GZ",
        name="gz_spot_weld_inspection",
        title="Body-in-white spot-weld inspection records (IPQC), July 2025",
        title_zh="白车身点焊过程检验记录（IPQC）2025年7月",
        description=(
            "Chisel/peel test results for resistance spot welds on a Guangzhou (Huangpu) "
            "body-in-white line, one sampled body per sheet: part and its supplier's USCC, body "
            "number (unique), current, weld time, electrode force, nugget diameter and the "
            "pass/fail verdict. GB18030 CSV from the plant QMS; dates written 2025年7月11日 "
            "(no zero padding; sheets typed in from paper sometimes say 二〇二五年七月十一日). "
            "The remark column holds free text, including the diameter sign Ø, which GBK cannot "
            "encode; it is left unclassified for the PII scan. An upload with more than 3% "
            "invalid rows is refused."
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
                "range",
                "decimal point lost (8.6 kA typed 86); above max 14",
                lambda _rng, row: row["weld_current_ka"].replace(".", ""),
            ),
            _Defect(
                "supplier_uscc",
                "USCC_CHECK",
                "supplier USCC with a mistyped check character",
                lambda _rng, row: wrong_uscc_check(row["supplier_uscc"]),
            ),
            _Defect(
                "inspection_date",
                "type",
                "date typed as 2025.7.11, does not match %Y年%m月%d日",
                lambda _rng, row: (
                    row["inspection_date"].replace("年", ".").replace("月", ".").replace("日", "")
                ),
            ),
            _Defect(
                "inspector_id",
                "pattern",
                "badge lost its leading zero (Excel numeric coercion); breaks ^QC[0-9]{4}$",
                lambda rng, _row: rng.choice(("QC412", "QC587")),
            ),
            _Defect(
                "body_no",
                "unique",
                "the previous sheet's body number written again; body numbers are unique",
                duplicates=lambda _earlier, _row: True,
            ),
        ),
        variants=(
            _Variant(
                "inspection_date",
                "date in Chinese numerals (typed in from a paper sheet)",
                lambda _rng, row: chinese_numeral_date(date.fromisoformat(_gz_iso_date(row))),
                _gz_iso_date,
            ),
            _Variant(
                "supplier_uscc",
                "USCC typed in lower case",
                lambda _rng, row: row["supplier_uscc"].lower(),
                _unchanged("supplier_uscc"),
            ),
            _Variant(
                "supplier_uscc",
                "USCC copied from a letterhead, in groups of four",
                _gz_spaced_uscc,
                _unchanged("supplier_uscc"),
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
            "(UTF-8 with BOM). Device clock is naive local time (Asia/Shanghai); one sample per "
            "oven and timestamp (composite primary key)."
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
                "range",
                "thermocouple open-circuit sentinel 999.9 °C; above max 260",
                _const("999.9"),
            ),
            _Defect(
                "tal_s",
                "type",
                "'N/A' is not a number (profiler missed the liquidus crossing)",
                _const("N/A"),
            ),
            _Defect(
                "ts_device",
                "type",
                "second field 60 (historian rounding bug); not a time of day",
                lambda _rng, row: row["ts_device"][:-2] + "60",
            ),
            _Defect(
                "operator_badge",
                "not_null",
                "badge not scanned at shift start; the column is required",
                _const(""),
            ),
            _Defect(
                "ts_device",
                "unique",
                "device clock stalled: same oven and timestamp as its previous sample "
                "(primary key oven_id + ts_device)",
                duplicates=lambda earlier, row: earlier["oven_id"] == row["oven_id"],
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
_DG_TENANTS = {
    "P1": make_uscc("441900", "MA51XK2D"),  # the provider's own building
    "P2": make_uscc("441900", "72314187"),  # sub-let; an all-digit code from an old org code
    "P3": make_uscc("441900", "MA4WD3RY"),  # sub-let
}
"""Who is billed for each building's meters (转供电: tenants pay through the park's meters)."""


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
                "tenant_uscc": _DG_TENANTS[meter.split("-")[1]],
                "kwh_interval": f"{kwh:.2f}",
                "kwh_import_total": f"{totals[meter]:,.2f}",  # Excel cell format #,##0.00
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
            _col("tenant_uscc", "用电单位信用代码", nullable=False, validator="uscc"),
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
                thousands=",",
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
            "Dongguan injection-moulding plant, with the USCC of the company billed for each "
            "building (two buildings are sub-let). Timestamps mark the interval end, naive "
            "Asia/Shanghai, written 2025/7/11 08:15; one reading per meter and interval "
            "(composite primary key). Line sub-meters do not record demand (blank). Tariff "
            "periods follow the Guangdong time-of-use scheme (simplified, unverified). GBK CSV "
            "saved by Excel: the register keeps Excel's #,##0.00 cell format (1,234,567.89)."
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
                "range",
                "negative interval energy (sign error after a meter swap); below min 0",
                lambda rng, _row: f"-{rng.uniform(1.0, 40.0):.2f}",
            ),
            _Defect(
                "meter_id",
                "pattern",
                "meter id written with underscores; breaks the pattern",
                lambda _rng, row: row["meter_id"].replace("-", "_"),
            ),
            _Defect(
                "ts_local",
                "not_null",
                "timestamp missing (logger gap); the column is required",
                _const(""),
            ),
            _Defect(
                "tariff_period",
                "allowed",
                "tariff period '高峰' is not one of 尖峰/峰/平/谷",
                _const("高峰"),
            ),
            _Defect(
                "tenant_uscc",
                "EXCEL_NUMERIC_COERCION",
                "all-digit USCC re-typed in an Excel cell in General format; saved as a number",
                lambda _rng, row: excel_scientific(row["tenant_uscc"]),
                where=lambda row: row["tenant_uscc"].isdigit(),
            ),
        ),
    )


# HK: cross-boundary road shipments (Big5-HKSCS) -------------------------------------------------

_HK_CROSSINGS = ("落馬洲", "深圳灣", "蓮塘/香園圍", "文錦渡", "港珠澳大橋")
_HK_OWNERS = ("GBAU", "KTCU", "PRDU", "HKTU", "SZXU")
_HK_PLATE_LETTERS = ("LV", "RX", "TW", "UK", "PK", "KX", "NP")
# name, HKID, mobile (8 digits; written with or without +852)
_HK_DRIVERS = (
    ("陳大文", make_hkid("K", "254176"), "9123 4567"),
    ("許志強", make_hkid("XA", "123456"), "6187 2340"),
    ("李家豪", make_hkid("D", "407215"), "5493 1186"),
    ("黃偉明", make_hkid("Y", "530842"), "9276 5031"),
    ("梁子健", make_hkid("G", "681903"), "6350 8842"),
    ("鄧志輝", make_hkid("R", "225617"), "9018 2657"),
    ("吳嘉雯", make_hkid("M", "914460"), "5162 7793"),
    ("麥浩然", make_hkid("P", "370158"), "9841 3320"),
)
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
_HK_TMS_FROM = date(2025, 8, 18)
"""The forwarder's new TMS writes dates the HK shipping way (18-Aug-2025) from this day on."""
_HK_DATE_FORMATS = ["%d/%m/%Y", "%d-%b-%Y"]
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _container_no(rng: random.Random) -> str:
    first10 = rng.choice(_HK_OWNERS) + f"{rng.randrange(10**6):06d}"
    return first10 + container_check_digit(first10)


def _hk_date(rng: random.Random, day: date) -> str:
    if day >= _HK_TMS_FROM:
        return f"{day.day:02d}-{_EN_MONTHS[day.month - 1]}-{day.year}"
    padded = rng.random() >= 0.15  # some clerks type 1/8/2025, equally valid day-first
    return f"{day:%d/%m/%Y}" if padded else f"{day.day}/{day.month}/{day.year}"


def _hk_rows(rng: random.Random, rows: int) -> list[Row]:
    out: list[Row] = []
    for i in range(rows):
        day = date(2025, 7, 1) + timedelta(days=i * 62 // rows)
        name, hkid_no, mobile = rng.choice(_HK_DRIVERS)
        out.append(
            {
                "shipment_id": f"HKX{2507001 + i:07d}",
                "ship_date": _hk_date(rng, day),
                "direction": rng.choices(("進口", "出口", "轉運"), weights=(45, 40, 15))[0],
                "crossing_point": rng.choice(_HK_CROSSINGS),
                "container_no": _container_no(rng),
                "truck_plate_hk": rng.choice(_HK_PLATE_LETTERS) + str(rng.randint(1, 9999)),
                "driver_name": name,
                "driver_hkid": hkid_no,
                "driver_phone": ("+852 " if rng.random() < 0.3 else "") + mobile,
                "gross_kg": f"{rng.uniform(3500.0, 28500.0):.1f}",
                "invoice_value_hkd": f"HK${rng.uniform(8000.0, 950000.0):,.2f}",
                "goods_desc_zh": _HK_GOODS[i % len(_HK_GOODS)]
                if i < len(_HK_GOODS)
                else rng.choice(_HK_GOODS),
            }
        )
    return out


def _hk_amount(row: Row) -> float:
    return float(row["invoice_value_hkd"].removeprefix("HK$").replace(",", ""))


def _lakh_grouping(_rng: random.Random, row: Row) -> str:
    """The amount grouped the Indian way (1,23,456.00), as an en-IN invoice template does."""
    whole, cents = f"{_hk_amount(row):.2f}".split(".")
    head, tail = whole[:-3], whole[-3:]
    pairs = [head[max(0, i - 2) : i] for i in range(len(head), 0, -2)][::-1]
    return "HK$" + ",".join([*pairs, tail]) + "." + cents


def _transposed_hkid(_rng: random.Random, row: Row) -> str:
    """Two adjacent, different digits swapped: the weighted check always catches it."""
    value = row["driver_hkid"]
    start = value.index("(") - 6
    at = next(i for i in range(start, start + 5) if value[i] != value[i + 1])
    return value[:at] + value[at + 1] + value[at] + value[at + 2 :]


def _hk_spec() -> _Spec:
    contract = DataContract(
        columns=[
            _col("shipment_id", "運單編號", nullable=False, pattern=r"^HKX[0-9]{7}$"),
            _col("ship_date", "出車日期", "date", nullable=False, format=_HK_DATE_FORMATS),
            _col("direction", "方向", nullable=False, allowed=["進口", "出口", "轉運"]),
            _col("crossing_point", "口岸", nullable=False, allowed=list(_HK_CROSSINGS)),
            _col("container_no", "貨櫃編號", nullable=False, validator="container_no"),
            _col(
                "truck_plate_hk",
                "香港車牌",
                nullable=False,
                pattern=r"^[A-Z]{2}[1-9][0-9]{0,3}$",
                pi="pi_quasi_id",
            ),
            _col("driver_name", "司機姓名", nullable=False, pi="pi_direct_id"),
            _col(
                "driver_hkid", "司機身份證號碼", nullable=False, validator="hkid", pi="pi_direct_id"
            ),
            _col("driver_phone", "司機電話", validator="phone", pi=None),
            _col("gross_kg", "毛重(公斤)", "double", unit="kg", nullable=False, min=0, max=32500),
            _col(
                "invoice_value_hkd",
                "發票金額(港元)",
                "double",
                unit="HKD",
                nullable=False,
                min=0,
                max=1e8,
                thousands=",",
                currency="HK$",
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
            "driver with HKID and mobile, gross weight and invoice value (HK$1,234,567.50). "
            "Big5-HKSCS export from a legacy HK forwarding system; dates are day-first "
            "(11/07/2025, sometimes 1/8/2025) until the TMS upgrade of 18 August 2025, "
            "18-Aug-2025 after it; goods descriptions contain Cantonese characters (嘅, 啲, 嘢) "
            "that plain Big5 lacks, commas (quoted fields) and names such as 許 whose Big5 "
            "trail byte is 0x5C. The driver phone column is left unclassified for the PII scan."
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
                "type",
                "month-first (US locale) date; the middle field is not a month",
                lambda rng, _row: f"{rng.randint(1, 12):02d}/{rng.randint(13, 28)}/2025",
            ),
            _Defect(
                "container_no",
                "CONTAINER_CHECK",
                "container number with a wrong check digit (last digit mistyped)",
                lambda _rng, row: (
                    row["container_no"][:10] + str((int(row["container_no"][10]) + 1) % 10)
                ),
            ),
            _Defect(
                "driver_hkid",
                "HKID_CHECK",
                "HKID with two digits transposed; the check character no longer fits",
                _transposed_hkid,
            ),
            _Defect(
                "invoice_value_hkd",
                "type",
                "amount grouped the Indian way (HK$1,23,456.00); thousands must group by three",
                _lakh_grouping,
                where=lambda row: _hk_amount(row) >= 100_000,
            ),
            _Defect(
                "gross_kg",
                "range",
                "decimal point lost (weight x10); above max 32,500 kg",
                lambda _rng, row: row["gross_kg"].replace(".", ""),
            ),
        ),
        variants=(
            _Variant(
                "driver_hkid",
                "HKID typed with a Chinese input method (full-width, lower case)",
                lambda _rng, row: full_width(row["driver_hkid"].lower()),
                _unchanged("driver_hkid"),
                where=lambda row: row["driver_hkid"] == "K254176(9)",
            ),
            _Variant(
                "container_no",
                "container number as printed on the box (CSQU 305438 3)",
                lambda _rng, row: (
                    f"{row['container_no'][:4]} {row['container_no'][4:10]} "
                    f"{row['container_no'][10]}"
                ),
                _unchanged("container_no"),
            ),
            _Variant(
                "container_no",
                "container number in lower case",
                lambda _rng, row: row["container_no"].lower(),
                _unchanged("container_no"),
            ),
        ),
    )


# MO: cold-chain warehouse maintenance log (UTF-8) -----------------------------------------------

_MO_ASSETS = ("MO-FL-003", "MO-FL-007", "MO-CR-001", "MO-CR-002", "MO-AC-011", "MO-DK-004")
_MO_TECHS = (
    ("黎志偉", "6625 1187"),
    ("陳嘉樂", "6238 4410"),
    ("José Fernandes", "6590 2273"),
    ("Ana Sousa", "6612 3456"),
    ("何健文", "6271 0954"),
    ("Carlos Lei", "6583 6628"),
)
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
        currency = rng.choices(("MOP", "HKD"), weights=(85, 15))[0]
        amount = _pt_number(rng.uniform(*_MO_COST[kind]))
        name, mobile = rng.choice(_MO_TECHS)
        out.append(
            {
                "wo_no": f"OT-2025-{i + 1:05d}",
                "asset_tag": rng.choice(_MO_ASSETS),
                "maint_type": kind,
                "reported_date": f"{reported:%d/%m/%Y}",
                "downtime_min": str(rng.randint(*_MO_MINUTES[kind])),
                "cost": f"MOP {amount}" if currency == "MOP" else amount,
                "currency": currency,
                "technician_name": name,
                "technician_phone": f"+853 {mobile}" if rng.random() < 0.8 else "",
                "notes": rng.choice(_MO_NOTES),
            }
        )
    return out


def _pt_number(amount: float) -> str:
    """``1234.5`` as Portuguese (and Macao government) documents write it: ``1.234,50``."""
    return f"{amount:,.2f}".translate(str.maketrans(",.", ".,"))


def _pt_date(row: Row) -> str:
    day = datetime.strptime(row["reported_date"], "%d/%m/%Y")
    return f"{day.day} de {_PT_MONTHS[day.month - 1]} de {day.year}"


def _english_amount(_rng: random.Random, row: Row) -> str:
    """The amount with the English separators (1,234.50), as the HK head office's ERP writes."""
    return row["cost"].translate(str.maketrans(",.", ".,"))


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
            _col(
                "cost",
                "費用",
                "double",
                nullable=False,
                min=0,
                max=500000,
                thousands=".",
                decimal=",",
                currency="MOP",
            ),
            _col("currency", "貨幣", nullable=False, allowed=["MOP", "HKD"]),
            _col("technician_name", "技術員", nullable=False, pi="pi_direct_id"),
            _col("technician_phone", "聯絡電話", validator="phone", pi="pi_direct_id"),
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
            "(day-first), downtime, cost in the Portuguese number format with the currency "
            "sign (MOP 1.234,50; amounts in HKD carry no sign, the currency column says so), "
            "technician and +853 mobile. UTF-8 without BOM, LF line ends; notes mix Portuguese "
            "and Traditional Chinese."
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
                "type",
                "Portuguese long-form date; does not match %d/%m/%Y",
                lambda _rng, row: _pt_date(row),
            ),
            _Defect(
                "cost",
                "type",
                "English separators (1,234.50) where the contract says 1.234,50",
                _english_amount,
            ),
            _Defect(
                "maint_type",
                "allowed",
                "'Preventiva' is not one of PM/CM/PdM",
                _const("Preventiva"),
            ),
            _Defect(
                "downtime_min",
                "range",
                "negative downtime (completion logged before the report); below min 0",
                lambda rng, _row: f"-{rng.randint(5, 90)}",
            ),
            _Defect(
                "technician_phone",
                "PHONE_INVALID",
                "mobile number missing its last digit; not a valid +853 number",
                lambda _rng, row: row["technician_phone"][:-1],
                where=lambda row: row["technician_phone"] != "",
            ),
        ),
        variants=(
            _Variant(
                "technician_phone",
                "local number written without +853 (the dataset's region supplies it)",
                lambda _rng, row: row["technician_phone"].removeprefix("+853 "),
                lambda row: row["technician_phone"].replace(" ", ""),
                where=lambda row: row["technician_phone"] != "",
            ),
        ),
    )


# catalog metadata ------------------------------------------------------------------------------

SAMPLE_METADATA: dict[str, dict[str, object]] = {
    "gz_spot_weld_inspection": {
        "title": {
            "en": "Body-in-white spot-weld inspection records (IPQC), July 2025",
            "zh-Hans": "白车身点焊过程检验记录（IPQC）2025年7月",
            "zh-Hant": "白車身點焊過程檢驗記錄（IPQC）2025年7月",
        },
        "description": {
            "zh-Hans": "广州黄埔白车身产线电阻点焊的凿检/剥离检验结果：零件、供应商信用代码、"
            "焊接电流、焊接时间、电极压力、熔核直径与判定结果。",
        },
        "keywords": {
            "en": ["spot welding", "quality inspection", "automotive"],
            "zh-Hans": ["点焊", "质检", "汽车"],
            "zh-Hant": ["點焊", "品質檢驗"],
        },
        "publisher": {"zh-Hans": "广州黄埔汇达汽车车身有限公司", "en": "Huangpu Huida Auto Body"},
        "tags": ["automotive", "quality", "manufacturing"],
        "update_frequency": "daily",
        "contact": {"name": "IPQC data desk", "email": "ipqc-data@example.com"},
        "columns": {
            "nugget_diameter_mm": {"en": "Weld nugget diameter", "zh-Hans": "熔核直径"},
            "result": {"en": "Pass / fail verdict", "zh-Hans": "合格 / 不合格判定"},
        },
    },
    "sz_smt_reflow_telemetry": {
        "title": {
            "en": "SMT reflow oven telemetry (SAC305), 30-second samples",
            "zh-Hans": "SMT回流焊炉过程遥测（SAC305，30秒采样）",
            "zh-Hant": "SMT回流焊爐過程遙測（SAC305，30秒採樣）",
        },
        "description": {
            "zh-Hans": "深圳宝安电子厂四台回流焊炉的峰值温度、液相线以上时间、链速与氧含量。",
        },
        "keywords": {
            "en": ["reflow", "SMT", "telemetry", "temperature"],
            "zh-Hans": ["回流焊", "遥测", "温度"],
        },
        "publisher": {"zh-Hans": "深圳市宝安智联电子制造有限公司", "en": "Bao'an Zhilian EMS"},
        "tags": ["electronics", "telemetry", "manufacturing"],
        "update_frequency": "continuous",
        "contact": {"name": "Process engineering", "email": "smt-data@example.com"},
        "columns": {"peak_temp_c": {"en": "Peak board temperature", "zh-Hans": "峰值温度"}},
    },
    "dg_energy_metering": {
        "title": {
            "en": "Factory electricity metering, 15-minute intervals",
            "zh-Hans": "工厂电能计量（15分钟间隔）· 用电量",
            "zh-Hant": "工廠電能計量（15分鐘間隔）· 用電量",
        },
        "description": {
            "en": "Interval energy, demand, power factor and voltage from the incomer, MCC and "
            "line sub-meters of a Dongguan injection-moulding plant.",
            "zh-Hans": "东莞注塑厂进线、MCC及产线分表的区间用电量、最大需量、功率因数与电压。",
        },
        "keywords": {
            "en": ["electricity", "energy", "kWh", "power factor"],
            "zh-Hans": ["用电量", "能耗", "电表"],
            "zh-Hant": ["用電量", "能耗"],
        },
        "publisher": {"zh-Hans": "东莞松湖精密注塑有限公司", "en": "Songhu Precision Moulding"},
        "tags": ["energy", "manufacturing", "utilities"],
        "update_frequency": "daily",
        "contact": {
            "name": "Energy desk",
            "email": "energy@example.com",
            "phone": "+86 769 2288 0000",
        },
        "columns": {
            "kwh_interval": {
                "en": "Energy used in the 15-minute interval",
                "zh-Hans": "区间用电量",
            },
            "power_factor": {"en": "Average power factor", "zh-Hans": "平均功率因数"},
        },
    },
    "hk_cross_boundary_shipments": {
        "title": {
            "en": "Cross-boundary road shipments HK ⇄ Shenzhen, Q3 2025",
            "zh-Hant": "跨境陸路貨運記錄（香港 ⇄ 深圳）2025年第三季",
            "zh-Hans": "跨境陆路货运记录（香港 ⇄ 深圳）2025年第三季",
        },
        "description": {
            "zh-Hant": "經深港陸路口岸及港珠澳大橋的貨櫃車運輸：方向、口岸、貨櫃編號、"
            "毛重與發票金額。",
        },
        "keywords": {
            "en": ["logistics", "shipments", "cross-boundary", "containers"],
            "zh-Hant": ["物流", "貨運", "跨境"],
        },
        "publisher": {"zh-Hant": "葵青跨境物流有限公司", "en": "Kwai Tsing Cross-Border Logistics"},
        "tags": ["logistics", "cross-boundary"],
        "update_frequency": "weekly",
        "contact": {"name": "Operations", "email": "ops@example.com", "phone": "+852 2123 4567"},
        "columns": {"gross_kg": {"en": "Gross weight", "zh-Hant": "毛重（公斤）"}},
    },
    "mo_coldchain_maintenance": {
        "title": {
            "en": "Cold-chain warehouse maintenance log (CMMS), 2025",
            "zh-Hant": "冷鏈倉庫設備維修記錄（CMMS）2025年",
            "zh-Hans": "冷链仓库设备维修记录（CMMS）2025年",
        },
        "description": {
            "zh-Hant": "路氹冷鏈倉庫叉車、冷庫、空調及卸貨平台的維修工單：類型、停機時間與費用。",
        },
        "keywords": {
            "en": ["maintenance", "cold chain", "warehouse"],
            "zh-Hant": ["維修", "冷鏈", "倉庫"],
        },
        "publisher": {"zh-Hant": "路氹冷鏈物流有限公司", "en": "Cadeia de Frio Cotai"},
        "tags": ["logistics", "maintenance", "cold chain"],
        "update_frequency": "monthly",
        "contact": {"name": "Facilities", "email": "facilities@example.com"},
        "columns": {"downtime_min": {"en": "Downtime in minutes", "zh-Hant": "停機時間（分鐘）"}},
    },
}
"""Trilingual catalog metadata of the sample datasets, by dataset name (``make demo`` applies
it with ``PATCH /v1/datasets/{id}/metadata`` so catalog search works in the demo)."""
