"""The console's message catalogs and language choice (no server needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from gateway.console.charts import HEIGHT, histogram_bars, quality_trend
from gateway.console.i18n import LOCALES, TRANSLATIONS_DIR, Translator, choose_locale, negotiate

CONSOLE = Path(__file__).parents[2] / "gateway" / "console"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted_messages() -> set[str | tuple[str, str]]:
    """Every message the templates and modules pass through gettext."""
    found = extract_from_dir(
        str(CONSOLE),
        method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")],
        keywords={"_": None, "N_": None, "text": None, "gettext": None, "ngettext": (1, 2)},
    )
    return {message for _file, _line, message, _comments, _context in found}


def catalog(locale: str):  # type: ignore[no-untyped-def]
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.mark.parametrize("locale", ["zh_Hans", "zh_Hant"])
def test_catalog_translates_every_message_when_chinese(locale: str) -> None:
    messages = extracted_messages()
    assert len(messages) > 200
    po = catalog(locale)
    missing, broken = [], []
    for message in messages:
        entry = po.get(message[0] if isinstance(message, tuple) else message)
        if entry is None or not entry.string or not all(entry.string):
            missing.append(message)
            continue
        source = message[0] if isinstance(message, tuple) else message
        target = entry.string[0] if isinstance(entry.string, tuple) else entry.string
        if set(PLACEHOLDER.findall(source)) != set(PLACEHOLDER.findall(target)):
            broken.append(message)
    assert not missing, f"untranslated in {locale}: {missing[:10]}"
    assert not broken, f"placeholders differ in {locale}: {broken[:10]}"


def test_catalogs_compile_to_the_two_scripts() -> None:
    hans, hant = Translator("zh_Hans"), Translator("zh_Hant")
    assert hans.text("Catalog") == "数据目录"
    assert hant.text("Catalog") == "數據目錄"
    assert Translator("en").text("Catalog") == "Catalog"
    assert hant.text("Version %(n)s is committed.", n=3) == "第 3 版已提交。"
    assert str(hans.ngettext("%(num)d row", "%(num)d rows", 5)) == "5 行"


def test_gettext_escapes_values_but_not_the_translation() -> None:
    out = Translator("en").gettext("Distribution of %(column)s", column="<b>x</b>")
    assert str(out) == "Distribution of &lt;b&gt;x&lt;/b&gt;"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_Hans"),
        ("zh-HK,zh;q=0.9", "zh_Hant"),
        ("zh-MO", "zh_Hant"),
        ("zh-TW", "zh_Hant"),
        ("zh-Hant-HK", "zh_Hant"),
        ("zh-Hans-SG", "zh_Hans"),
        ("fr-FR,en;q=0.5,zh-HK;q=0.7", "zh_Hant"),
        ("de, fr", "en"),
        ("", "en"),
        ("zh;q=0, en", "en"),
        ("en;q=oops, zh-TW;q=0.1", "zh_Hant"),
    ],
)
def test_negotiate_picks_script_from_region(header: str, expected: str) -> None:
    assert negotiate(header) == expected


def test_language_cookie_wins_over_accept_language() -> None:
    assert choose_locale("zh_Hant", "en-GB") == "zh_Hant"
    assert choose_locale("klingon", "zh-CN") == "zh_Hans"
    assert set(LOCALES) == {"en", "zh_Hans", "zh_Hant"}


def test_localized_metadata_falls_back_by_script() -> None:
    title = {"en": "Energy meters", "zh-Hans": "电表读数"}
    assert Translator("en").localized(title) == "Energy meters"
    assert Translator("zh_Hans").localized(title) == "电表读数"
    assert Translator("zh_Hant").localized(title) == "电表读数"  # no Traditional text supplied
    assert Translator("zh_Hant").localized({"zh-HK": "電錶", "en": "Meters"}) == "電錶"
    assert Translator("zh_Hans").localized({"en": "Only English"}) == "Only English"
    assert Translator("en").localized("plain") == "plain"
    assert Translator("en").localized(None) == ""


def test_histogram_bars_scale_to_the_tallest_bin() -> None:
    bars = histogram_bars({"edges": [0, 1, 2, 3], "counts": [10, 0, 5]})
    assert [b.count for b in bars] == [10, 0, 5]
    assert bars[0].y == 0 and bars[0].height == HEIGHT - 18
    assert bars[1].height == 0
    assert bars[2].height == pytest.approx((HEIGHT - 18) / 2)
    assert histogram_bars({"edges": [0, 1], "counts": [1, 2]}) == []  # inconsistent: no chart
    assert histogram_bars(None) == []


def test_quality_trend_orders_versions() -> None:
    points = quality_trend(
        [
            {"version": 2, "row_count": 50, "rejected_count": 50},
            {"version": 1, "row_count": 100, "rejected_count": 0},
        ]
    )
    assert [p.version for p in points] == [1, 2]
    assert [p.share for p in points] == [1.0, 0.5]
