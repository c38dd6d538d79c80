"""The xlsx source: zip bombs and active content refused before parsing, cells read as text."""

from __future__ import annotations

import datetime as dt
import struct
import zipfile
from pathlib import Path
from typing import Any, NoReturn

import openpyxl
import pyarrow.parquet as pq
import pytest

from ingest.contracts import DataContract
from ingest.errors import EmptyFileError, HeaderMismatchError, MalformedFileError
from ingest.pipeline import process_file
from ingest.sources import SourceOptions
from ingest.sources.xlsx import SheetNotFoundError, XlsxSource

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
MAIN_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def read(
    path: Path, source: XlsxSource | None = None, **options: Any
) -> tuple[list[str], list[dict[str, str | None]]]:
    with (source or XlsxSource()).open(path, SourceOptions(**options)) as opened:
        rows = [row for batch in opened for row in batch.to_pylist()]
        assert opened.bytes_read == opened.total_bytes == path.stat().st_size
        return opened.headers, rows


def malformed(path: Path, source: XlsxSource | None = None, **options: Any) -> Any:
    with pytest.raises(MalformedFileError) as caught:
        read(path, source, **options)
    assert "malformed xlsx" in str(caught.value)
    return caught.value


def workbook(tmp_path: Path, *sheets: tuple[str, list[list[Any]]], name: str = "up.xlsx") -> Path:
    """An .xlsx written by openpyxl (inline strings, real number formats for dates)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / name
    book.save(path)
    return path


def cell(ref: str, value: Any) -> str:
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'
    return f'<c r="{ref}"><v>{value}</v></c>'


def sheet_xml(*rows: str, before: str = "") -> bytes:
    body = "".join(f'<row r="{i}">{row}</row>' for i, row in enumerate(rows, start=1))
    return (
        f'<worksheet xmlns="{MAIN_NS}">{before}<sheetData>{body}</sheetData></worksheet>'.encode()
    )


def raw_xlsx(
    tmp_path: Path,
    sheet: bytes,
    *,
    extra: dict[str, bytes] | None = None,
    overrides: str = "",
    main_type: str = MAIN_TYPE,
    workbook_prefix: str = "",
) -> Path:
    """A minimal workbook written by hand, to plant exactly one problem."""
    entries = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{main_type}"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SHEET_TYPE}"/>'
            f"{overrides}</Types>"
        ).encode(),
        "_rels/.rels": (
            f'<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ).encode(),
        "xl/workbook.xml": (
            f'{workbook_prefix}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>'
            '<sheet name="数据" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet,
        **(extra or {}),
    }
    path = tmp_path / "raw.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def boom(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise AssertionError("the workbook was parsed or decompressed")


def refuse_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to parse the workbook or decompress an entry fail the test."""
    monkeypatch.setattr(openpyxl, "load_workbook", boom)
    monkeypatch.setattr(zipfile.ZipFile, "open", boom)


# -- reading -------------------------------------------------------------------------------

TITLED: list[list[Any]] = [
    ["2024年1月 东莞工厂设备台账"],
    [],
    ["设备编号", "城市", "数量", "温度", "日期", "时间", "合格"],
    ["A-1", "东莞", 3.0, 12.5, dt.date(2024, 1, 31), dt.datetime(2024, 1, 31, 10, 0), True],
    ["A-2", "深圳市", 12, 0.1 + 0.2, dt.date(2024, 2, 1), dt.datetime(2024, 2, 1), False],
    [],
    ["A-3", None, 1e20, 12.500000000000002, None, dt.datetime(2024, 2, 1, 8, 30, 15, 250000)],
]


def test_xlsx_source_skips_a_title_row_and_reads_cells_as_text(tmp_path: Path) -> None:
    headers, rows = read(workbook(tmp_path, ("台账", TITLED)))
    assert headers == ["设备编号", "城市", "数量", "温度", "日期", "时间", "合格"]
    assert rows == [
        {"设备编号": "A-1", "城市": "东莞", "数量": "3", "温度": "12.5", "日期": "2024-01-31",
         "时间": "2024-01-31 10:00:00", "合格": "true"},
        {"设备编号": "A-2", "城市": "深圳市", "数量": "12", "温度": "0.3", "日期": "2024-02-01",
         "时间": "2024-02-01 00:00:00", "合格": "false"},
        {"设备编号": "A-3", "城市": None, "数量": "1e+20", "温度": "12.5", "日期": None,
         "时间": "2024-02-01 08:30:15.250", "合格": None},
    ]  # fmt: skip


def test_xlsx_source_reads_the_header_row_asked_for(tmp_path: Path) -> None:
    path = workbook(tmp_path, ("s", [["报表"], ["说明", "见附件"], ["a", "b"], [1, 2]]))
    headers, rows = read(path, XlsxSource(header_row=3))
    assert headers == ["a", "b"]
    assert rows == [{"a": "1", "b": "2"}]


def test_xlsx_source_reads_the_first_visible_sheet_or_the_one_named(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "代码表"
    book.active.append(["code"])
    book.active.sheet_state = "hidden"
    book.create_sheet("一月").append(["月份"])
    book.create_sheet("二月").append(["month"])
    book["二月"].append(["2"])
    path = tmp_path / "sheets.xlsx"
    book.save(path)
    assert read(path)[0] == ["月份"]
    assert read(path, XlsxSource(sheet="二月")) == (["month"], [{"month": "2"}])
    with pytest.raises(SheetNotFoundError) as caught:
        read(path, XlsxSource(sheet="三月"))
    assert caught.value.attrs()["available"] == ["代码表", "一月", "二月"]


def test_xlsx_source_reads_cached_formula_values_and_error_codes(tmp_path: Path) -> None:
    sheet = sheet_xml(
        cell("A1", "总数") + cell("B1", "比例") + cell("C1", "备注"),
        '<c r="A2"><f>1+1</f><v>2</v></c><c r="B2"><f>1/0</f></c>'
        '<c r="C2" t="e"><v>#DIV/0!</v></c>',
    )
    _, rows = read(raw_xlsx(tmp_path, sheet))
    assert rows == [{"总数": "2", "比例": None, "备注": "#DIV/0!"}]


def test_xlsx_source_ignores_a_forged_dimension(tmp_path: Path) -> None:
    sheet = sheet_xml(
        cell("A1", "编号") + cell("B1", "值"),
        cell("A2", "A-1") + cell("B2", 7),
        before='<dimension ref="A1:XFD1048576"/>',
    )
    assert read(raw_xlsx(tmp_path, sheet)) == (["编号", "值"], [{"编号": "A-1", "值": "7"}])


def test_xlsx_source_value_right_of_the_header_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path, ("s", [["a", "b"], [1, 2], [3, 4, None, "note"]]))
    error = malformed(path)
    assert error.reason == "ragged_row"
    assert error.attrs()["sheet_row"] == 3
    assert "cell D3 has a value but the header ends at column B" in str(error)


def test_xlsx_source_duplicate_headers_raise_header_mismatch(tmp_path: Path) -> None:
    path = workbook(tmp_path, ("s", [["编号", "编号 "], [1, 2]]))
    with pytest.raises(HeaderMismatchError) as caught:
        read(path)
    assert caught.value.duplicated == ["编号 "]


def test_xlsx_source_too_many_columns_raises(tmp_path: Path) -> None:
    path = workbook(tmp_path, ("s", [[f"c{i}" for i in range(12)], list(range(12))]))
    error = malformed(path, max_columns=10)
    assert error.reason == "too_many_columns"


def test_xlsx_source_without_a_header_row_raises(tmp_path: Path) -> None:
    error = malformed(workbook(tmp_path, ("s", [[1, 2], [3, 4]])))
    assert error.reason == "header_not_found"


def test_xlsx_source_empty_sheet_raises_empty_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyFileError):
        read(workbook(tmp_path, ("s", [])))


def test_xlsx_source_streams_batches(tmp_path: Path) -> None:
    path = workbook(tmp_path, ("s", [["n"], *([i] for i in range(2500))]))
    with XlsxSource(batch_rows=1000).open(path, SourceOptions()) as opened:
        assert [batch.num_rows for batch in opened] == [1000, 1000, 500]


# -- hostile files -------------------------------------------------------------------------


def bomb_sheet(rows: int) -> bytes:
    """A header row, then ``rows`` identical rows (no row numbers: they compress ~1000:1)."""
    head = f'<worksheet xmlns="{MAIN_NS}"><sheetData><row>{cell("A1", "n")}</row>'
    return head.encode() + b"<row><c><v>1</v></c></row>" * rows + b"</sheetData></worksheet>"


def test_xlsx_source_bomb_is_refused_on_declared_ratio_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = raw_xlsx(tmp_path, bomb_sheet(1_000_000))  # 26 MB of XML in a ~50 KB file
    declared = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml").file_size
    assert declared > 20_000_000 and path.stat().st_size < 200_000
    refuse_parsing(monkeypatch)
    error = malformed(path)
    assert error.reason == "too_compressed"
    assert "zip entry 'xl/worksheets/sheet1.xml' expands" in str(error)


def test_xlsx_source_declared_size_over_the_cap_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = raw_xlsx(tmp_path, bomb_sheet(20_000))
    refuse_parsing(monkeypatch)
    error = malformed(path, XlsxSource(max_uncompressed_bytes=100_000))
    assert error.reason == "too_large_uncompressed"


def forge_uncompressed_size(path: Path, name: str, size: int) -> None:
    """Make the zip headers of ``name`` declare ``size`` bytes, whatever the data holds."""
    data = bytearray(path.read_bytes())
    offset = zipfile.ZipFile(path).getinfo(name).header_offset
    struct.pack_into("<L", data, offset + 22, size)
    position = data.find(b"PK\x01\x02")
    while position != -1:
        length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46 : position + 46 + length] == name.encode():
            struct.pack_into("<L", data, position + 24, size)
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))


def test_xlsx_source_actual_bytes_beyond_the_declared_size_are_refused(tmp_path: Path) -> None:
    path = raw_xlsx(tmp_path, bomb_sheet(50_000))
    forge_uncompressed_size(path, "xl/worksheets/sheet1.xml", 1000)
    error = malformed(path)
    assert error.reason == "bad_zip"
    assert "CRC" in str(error)


def test_xlsx_source_oversized_row_element_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = "".join(f"<c><v>{i}</v></c>" for i in range(400))
    path = raw_xlsx(tmp_path, sheet_xml(cell("A1", "n"), wide))
    monkeypatch.setattr(openpyxl, "load_workbook", boom)
    error = malformed(path, max_record_bytes=1024)
    assert error.reason == "bad_sheet_xml"
    assert "the XML of row element 2 is over 2048 bytes" in str(error)


def test_xlsx_source_rows_hidden_in_cdata_are_refused(tmp_path: Path) -> None:
    sheet = sheet_xml(cell("A1", "n"), '<c r="A2"><v><![CDATA[<row r="9">]]></v></c>')
    error = malformed(raw_xlsx(tmp_path, sheet))
    assert error.reason == "bad_sheet_xml"
    assert "DOCTYPE, comment, CDATA section or processing instruction" in str(error)


@pytest.mark.parametrize(("defusedxml", "lxml"), [(False, False), (True, True)])
def test_xlsx_uploads_are_refused_unless_openpyxl_parses_with_defusedxml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defusedxml: bool, lxml: bool
) -> None:
    from ingest.sources.xlsx import XlsxParserUnsafeError

    assert openpyxl.DEFUSEDXML and not openpyxl.LXML  # how the adapter imported it
    monkeypatch.setattr(openpyxl, "DEFUSEDXML", defusedxml)
    monkeypatch.setattr(openpyxl, "LXML", lxml)
    path = raw_xlsx(tmp_path, sheet_xml(cell("A1", "n"), cell("A1", "1")))
    with pytest.raises(XlsxParserUnsafeError, match="OPENPYXL_LXML=True"):
        read(path)


def test_xlsx_source_parses_with_defusedxml(tmp_path: Path) -> None:
    laughs = '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">]>'
    path = raw_xlsx(tmp_path, sheet_xml(cell("A1", "n")), workbook_prefix=laughs)
    error = malformed(path)
    assert error.reason == "parse_error"
    assert "EntitiesForbidden" in str(error)


@pytest.mark.parametrize(
    ("extra", "overrides", "main_type", "fragment"),
    [
        ({"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0"}, "", MAIN_TYPE, "macros (VBA project)"),
        ({}, "", "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
         "macros (macro-enabled workbook)"),
        ({"xl/externalLinks/externalLink1.xml": b"<externalLink/>"}, "", MAIN_TYPE,
         "links to other workbooks or DDE"),
        ({"xl/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0"}, "", MAIN_TYPE,
         "embedded objects"),
        ({}, '<Override PartName="/xl/x.bin" '
             'ContentType="application/vnd.openxmlformats-officedocument.oleObject"/>',
         MAIN_TYPE, "embedded objects"),
    ],
)  # fmt: skip
def test_xlsx_source_active_content_is_refused_before_parsing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, bytes],
    overrides: str,
    main_type: str,
    fragment: str,
) -> None:
    sheet = sheet_xml(cell("A1", "n"), cell("A2", 1))
    path = raw_xlsx(tmp_path, sheet, extra=extra, overrides=overrides, main_type=main_type)
    monkeypatch.setattr(openpyxl, "load_workbook", boom)
    error = malformed(path)
    assert error.reason == "forbidden_content"
    assert f"the workbook contains {fragment}" in str(error)


@pytest.mark.parametrize(
    "data",
    [b"id,name\n1,Alice\n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600],
    ids=["csv", "xls-or-encrypted"],
)
def test_xlsx_source_file_that_is_not_a_zip_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "upload.xlsx"
    path.write_bytes(data)
    error = malformed(path)
    assert error.reason == "not_xlsx"
    assert "old .xls files and password-protected workbooks are not accepted" in str(error)


def test_xlsx_source_too_many_zip_entries_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path, ("s", [["a"], [1]]))
    error = malformed(path, XlsxSource(max_entries=5))
    assert error.reason == "too_many_entries"


def test_xlsx_source_shared_string_amplification_is_stopped(tmp_path: Path) -> None:
    strings = f'<sst xmlns="{MAIN_NS}"><si><t>n</t></si><si><t>{"长" * 20_000}</t></si></sst>'
    rows = [cell("A1", "n")] + ['<c r="A2" t="s"><v>1</v></c>'] * 500
    path = raw_xlsx(
        tmp_path,
        sheet_xml(*rows),
        extra={"xl/sharedStrings.xml": strings.encode()},
        overrides=f'<Override PartName="/xl/sharedStrings.xml" ContentType="{STRINGS_TYPE}"/>',
    )
    source = XlsxSource(batch_rows=50, text_floor_bytes=1 << 20, max_text_ratio=100)
    error = malformed(path, source)
    assert error.reason == "too_compressed"


# -- end to end ----------------------------------------------------------------------------

CONTRACT = DataContract.model_validate(
    {
        "columns": [
            {"name": "device_id", "source": "设备编号", "pattern": "[A-Z]-[0-9]+"},
            {"name": "city", "source": "城市", "allowed": ["东莞", "深圳市"]},
            {"name": "count", "source": "数量", "type": "integer"},
            {"name": "temp", "source": "温度", "type": "double", "max": 100},
            {"name": "day", "source": "日期", "type": "date"},
            {"name": "ts", "source": "时间", "type": "timestamp"},
            {"name": "ok", "source": "合格", "type": "boolean"},
        ],
        "primary_key": ["device_id"],
    }
)


def test_process_file_reads_xlsx_through_the_contract(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        *TITLED[:5],
        ["A-3", "广州市", 4, 20, dt.date(2024, 2, 2), dt.datetime(2024, 2, 2, 9), True],
        ["A-4", "东莞", 2.5, 20, dt.date(2024, 2, 3), dt.datetime(2024, 2, 3, 9), True],
        ["A-5", "东莞", 5, 101, dt.date(2024, 2, 4), dt.datetime(2024, 2, 4, 9), False],
    ]
    outcome = process_file(
        workbook(tmp_path, ("台账", rows)),
        CONTRACT,
        encoding="utf-8",
        staging_dir=tmp_path / "staging",
        max_error_ratio=0.6,
        source=XlsxSource(),
    )
    assert (outcome.rows_read, outcome.rows_valid, outcome.rows_rejected) == (5, 2, 3)
    table = pq.read_table([p.path for p in outcome.parts])
    assert table.column("device_id").to_pylist() == ["A-1", "A-2"]
    assert table.column("count").to_pylist() == [3, 12]
    assert table.column("day").to_pylist() == [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]
    assert table.column("ts").to_pylist() == [dt.datetime(2024, 1, 31, 10), dt.datetime(2024, 2, 1)]
