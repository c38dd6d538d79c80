"""The CSV/TSV source: strict decoding, pinned dialect, all-string batches, caps."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import (
    EmptyFileError,
    EncodingError,
    FileTooLargeError,
    HeaderMismatchError,
    MalformedFileError,
    UnsupportedEncodingError,
)
from ingest.sources import CsvSource, SourceOptions, normalise_header
from ingest.sources.csv import Utf8Transcoder


def read(path: Path, **options: object) -> tuple[list[str], list[dict[str, str]]]:
    with CsvSource().open(path, SourceOptions(**options)) as source:  # type: ignore[arg-type]
        rows = [row for batch in source for row in batch.to_pylist()]
        assert source.bytes_read == source.total_bytes == path.stat().st_size
        return source.headers, rows


def write(tmp_path: Path, data: bytes, name: str = "upload.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_csv_source_decodes_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "设备编号,城市\nA1,广州市\nA2,東莞\n".encode())
    headers, rows = read(path)
    assert headers == ["设备编号", "城市"]
    assert rows == [{"设备编号": "A1", "城市": "广州市"}, {"设备编号": "A2", "城市": "東莞"}]


@pytest.mark.parametrize("declared", ["utf-8", "utf-8-sig"])
def test_csv_source_strips_utf8_bom(tmp_path: Path, declared: str) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + "设备编号,城市\r\nA1,广州市\r\n".encode())
    headers, rows = read(path, encoding=declared)
    assert headers == ["设备编号", "城市"]
    assert rows == [{"设备编号": "A1", "城市": "广州市"}]


def test_csv_source_decodes_gbk(tmp_path: Path) -> None:
    data = "设备编号,城市\nA1,广州市\nA2,誠\n".encode("gbk")
    assert "广州市".encode("gbk") == bytes.fromhex("B9E3D6DDCAD0")
    assert "誠".encode("gbk") == b"\xd5\x5c"  # trail byte is a backslash
    headers, rows = read(write(tmp_path, data), encoding="gbk")
    assert headers == ["设备编号", "城市"]
    assert [r["城市"] for r in rows] == ["广州市", "誠"]


def test_csv_source_decodes_big5hkscs_with_backslash_trail_bytes(tmp_path: Path) -> None:
    # 許 = B3 5C and 功 = A5 5C: their trail byte is ASCII "\", here right before a quote
    # and a delimiter, which breaks any parser that works on bytes.
    text = '編號,名稱,備註\nA1,"許",功\nA2,嘅,"功,許"\n'
    data = text.encode("big5hkscs")
    assert "許".encode("big5hkscs") == b"\xb3\x5c"
    assert "嘅".encode("big5hkscs") == b"\x9d\xef"
    headers, rows = read(write(tmp_path, data), encoding="big5hkscs")
    assert headers == ["編號", "名稱", "備註"]
    assert rows == [
        {"編號": "A1", "名稱": "許", "備註": "功"},
        {"編號": "A2", "名稱": "嘅", "備註": "功,許"},
    ]


def test_csv_source_decodes_gb18030_four_byte_characters(tmp_path: Path) -> None:
    data = "名,值\n𠮷野家,1\n".encode("gb18030")
    _, rows = read(write(tmp_path, data), encoding="gb18030")
    assert rows == [{"名": "𠮷野家", "值": "1"}]


def test_csv_source_wrong_declared_encoding_raises_encoding_error_with_offset(
    tmp_path: Path,
) -> None:
    data = "id,city\n1,广州市\n".encode("gbk")
    with pytest.raises(EncodingError) as caught:
        read(write(tmp_path, data), encoding="utf-8")
    error = caught.value
    assert error.offset == data.index(b"\xb9")
    assert error.line == 2
    assert error.encoding == "utf-8"
    assert "encoding=gbk" in error.attrs()["hint"]


def test_csv_source_latin1_byte_in_utf8_file_raises_encoding_error(tmp_path: Path) -> None:
    data = b"id,name\n1,ok\n2,caf\xe9\n"
    with pytest.raises(EncodingError) as caught:
        read(write(tmp_path, data))
    assert (caught.value.offset, caught.value.line) == (data.index(b"\xe9"), 3)
    assert caught.value.attrs()["bad_bytes"].startswith("e9")


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7])
def test_csv_source_offsets_and_text_survive_small_chunks(tmp_path: Path, chunk_bytes: int) -> None:
    good = "名,值\r\n广州,1\r深圳,2\n".encode()
    _, rows = read(write(tmp_path, good), chunk_bytes=chunk_bytes)
    assert rows == [{"名": "广州", "值": "1"}, {"名": "深圳", "值": "2"}]
    bad = good + "东莞,".encode() + b"\xe4\xb8" + b",3\n"  # truncated 3-byte sequence
    with pytest.raises(EncodingError) as caught:
        read(write(tmp_path, bad, "bad.csv"), chunk_bytes=chunk_bytes)
    assert caught.value.offset == len(good) + len("东莞,".encode())


def test_csv_source_ragged_row_raises_malformed_file_naming_the_line(tmp_path: Path) -> None:
    data = b'id,note\n1,"two\nlines"\n\n2,ok\n3,too,many\n4,ok\n'
    with pytest.raises(MalformedFileError) as caught:
        read(write(tmp_path, data))
    error = caught.value
    assert error.reason == "ragged_row"
    assert error.line == 6  # physical line; the quoted newline and the blank line count
    assert error.row == 3  # third data row
    assert "line 6" in str(error)


def test_csv_source_unbalanced_quote_raises_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(MalformedFileError) as caught:
        read(write(tmp_path, b'id,name\n1,ok\n2,"Alice\n3,Bob\n'))
    assert (caught.value.reason, caught.value.line) == ("unbalanced_quote", 3)


def test_csv_source_keeps_every_value_as_text(tmp_path: Path) -> None:
    data = b"code,amount,flag,when\n007,1e3,TRUE,2024-01-01\n,NULL,N/A, 12 \n"
    with CsvSource().open(write(tmp_path, data), SourceOptions()) as source:
        batches = list(source)
    assert all(field.type == pa.string() for field in batches[0].schema)
    rows = [r for b in batches for r in b.to_pylist()]
    assert rows[0] == {"code": "007", "amount": "1e3", "flag": "TRUE", "when": "2024-01-01"}
    assert rows[1] == {"code": "", "amount": "NULL", "flag": "N/A", "when": " 12 "}


def test_csv_source_reads_tsv_and_keeps_nul_bytes_for_the_validator(tmp_path: Path) -> None:
    data = "名\t值\n广州\tA\\B\n深圳\tx\x00y\n".encode()
    _, rows = read(write(tmp_path, data, "upload.tsv"), delimiter="\t")
    assert rows == [{"名": "广州", "值": "A\\B"}, {"名": "深圳", "值": "x\x00y"}]


def test_csv_source_rejects_cells_over_the_cap(tmp_path: Path) -> None:
    data = b"id,blob\n1,short\n2," + b"x" * 5000 + b"\n"
    with pytest.raises(MalformedFileError) as caught:
        read(write(tmp_path, data), max_cell_bytes=4096)
    assert (caught.value.reason, caught.value.row) == ("cell_too_large", 2)


def test_csv_source_rejects_records_over_the_block_size(tmp_path: Path) -> None:
    data = b"id,blob\n1," + b"x" * 5000 + b"\n"
    with pytest.raises(MalformedFileError) as caught:
        read(write(tmp_path, data), max_record_bytes=1024)
    assert caught.value.reason == "record_too_large"


def test_csv_source_rejects_too_many_columns(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(1001))
    with pytest.raises(MalformedFileError) as caught:
        read(write(tmp_path, f"{header}\n{','.join(['1'] * 1001)}\n".encode()))
    assert caught.value.reason == "too_many_columns"


def test_csv_source_rejects_headers_equal_after_normalisation(tmp_path: Path) -> None:
    # Full-width "ＩＤ" is "ID" after NFKC.
    with pytest.raises(HeaderMismatchError) as caught:
        read(write(tmp_path, "ID, ＩＤ \n1,2\n".encode()))
    assert caught.value.duplicated == [" ＩＤ "]
    assert normalise_header(" ＩＤ ") == "ID"


def test_csv_source_empty_file_raises_empty_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyFileError):
        read(write(tmp_path, b""))


def test_csv_source_header_only_yields_no_rows(tmp_path: Path) -> None:
    assert read(write(tmp_path, b"\xef\xbb\xbfid,name\r\n")) == (["id", "name"], [])


def test_csv_source_refuses_undeclarable_encodings(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedEncodingError):
        read(write(tmp_path, b"a\n1\n"), encoding="latin-1")


def test_csv_source_refuses_files_over_the_size_cap(tmp_path: Path) -> None:
    with pytest.raises(FileTooLargeError) as caught:
        read(write(tmp_path, b"a\n" + b"1\n" * 100), max_file_bytes=100)
    assert caught.value.attrs()["limit"] == 100


def test_csv_source_encoding_error_deep_in_the_file_keeps_its_offset(tmp_path: Path) -> None:
    good = "".join(f"{i},广州市第{i}号\n" for i in range(100_000)).encode()
    data = b"id,name\n" + good + b"x,\xff\n"
    with pytest.raises(EncodingError) as caught:
        read(write(tmp_path, data), max_record_bytes=64 << 10, max_cell_bytes=1024)
    assert caught.value.offset == data.index(b"\xff")
    assert caught.value.line == 100_002


_TEXT = st.text(
    alphabet=st.sampled_from(["a", "1", ",", '"', "\n", "\r", "\ufeff", "广", "東", "😀", "é"]),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(text=_TEXT, chunk_bytes=st.integers(1, 9), bom=st.booleans())
def test_utf8_transcoder_output_is_the_normalised_text(
    tmp_path_factory: pytest.TempPathFactory, text: str, chunk_bytes: int, bom: bool
) -> None:
    """UTF-8 bytes pass through untouched where they can (no CR); the stream must still be
    exactly the decoded text with its leading BOM dropped and CR/CRLF made LF, and the
    newline and quote counts must match, however the chunks split the characters."""
    path = tmp_path_factory.mktemp("transcode") / "upload.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    expected = text if bom else text.removeprefix("\ufeff")
    expected = expected.replace("\r\n", "\n").replace("\r", "\n")
    stream = Utf8Transcoder(path, "utf-8", chunk_bytes=chunk_bytes, quote_char='"')
    try:
        assert stream.read(-1) == expected.encode()
        assert stream.newlines == expected.count("\n")
        assert stream.quotes == expected.count('"')
        assert stream.bytes_read == path.stat().st_size
    finally:
        stream.close()


def test_utf8_transcoder_reports_the_offset_of_a_bad_byte_in_a_passed_through_chunk(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "id,名\n".encode() + b"1,ok\n" * 1000 + b"2,\xff\n")
    with pytest.raises(EncodingError) as caught:
        read(path, chunk_bytes=64)
    assert caught.value.attrs()["offset"] == len("id,名\n".encode()) + 5 * 1000 + 2
    assert caught.value.attrs()["line"] == 1002
