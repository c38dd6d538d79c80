"""Console languages: gettext catalogs compiled from the .po sources at first use.

The ``.po`` files under ``translations/<locale>/LC_MESSAGES/messages.po`` are the
source of truth (no ``.mo`` binaries are committed); Babel compiles them in memory
the first time a locale is needed. Locales are ``en``, ``zh_Hans`` (简体中文, the
mainland cities) and ``zh_Hant`` (繁體中文, Hong Kong and Macao).

The viewer's language comes from the ``console_lang`` cookie when set (the switcher in
the header writes it), else from ``Accept-Language``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from markupsafe import Markup

TRANSLATIONS_DIR: Final = Path(__file__).parent / "translations"
LOCALES: Final = ("en", "zh_Hans", "zh_Hant")
DEFAULT_LOCALE: Final = "en"
LANG_COOKIE: Final = "console_lang"
# What each locale is called in its own script (the switcher shows these, untranslated).
LOCALE_NAMES: Final = {"en": "English", "zh_Hans": "简体中文", "zh_Hant": "繁體中文"}
# BCP 47 tag for <html lang> and for metadata lookups.
LOCALE_TAGS: Final = {"en": "en", "zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant"}
# When the viewer's language is missing from a dataset's metadata, try these next.
FALLBACKS: Final = {
    "en": ("en", "zh_Hans", "zh_Hant"),
    "zh_Hans": ("zh_Hans", "zh_Hant", "en"),
    "zh_Hant": ("zh_Hant", "zh_Hans", "en"),
}
_TRADITIONAL_REGIONS: Final = frozenset({"tw", "hk", "mo"})


def N_(message: str) -> str:  # gettext's conventional marker name
    """Mark a message for extraction without translating it here."""
    return message


# Values the API returns that the pages translate with ``_(value)``.
VOCABULARY: Final = (
    # classifications
    N_("public"), N_("internal"), N_("restricted"), N_("personal"), N_("important"),
    # job statuses and phases
    N_("queued"), N_("running"), N_("succeeded"), N_("failed"), N_("duplicate"),
    N_("downloading"), N_("reading"), N_("uploading"), N_("committing"), N_("done"),
    # access request statuses
    N_("pending"), N_("approved"), N_("denied"), N_("narrowed"), N_("revoked"),
    N_("expired"), N_("withdrawn"),
    # masks
    N_("hmac"), N_("redact"), N_("partial"), N_("generalise"), N_("null"),
    # personal-information classes and column tags
    N_("non_pi"), N_("pi_direct_id"), N_("pi_quasi_id"), N_("pi_other"), N_("spi"),
    N_("required"),
    # purposes
    N_("analytics"), N_("model_training"), N_("model_evaluation"), N_("quality_improvement"),
    N_("regulatory_reporting"),
    # cross-boundary routes and outcomes
    N_("same"), N_("mainland_to_sar"), N_("hk_to_mainland"), N_("mo_to_mainland"),
    N_("hk_to_mo"), N_("mo_to_hk"),
    N_("raw"), N_("masked"), N_("aggregated"), N_("clear"), N_("mask"), N_("deny"),
    # catalog: quality buckets, the caller's access, update frequencies
    N_("quality_high"), N_("quality_medium"), N_("quality_low"), N_("quality_unknown"),
    N_("access_owner"), N_("access_granted"), N_("access_none"),
    N_("continuous"), N_("hourly"), N_("daily"), N_("weekly"), N_("monthly"), N_("quarterly"),
    N_("annual"), N_("irregular"), N_("never"),
)  # fmt: skip


@cache
def translations(locale: str) -> Translations:
    """The compiled catalog of ``locale`` (``en`` gives the message ids back)."""
    if locale not in LOCALES:
        raise ValueError(f"unknown console locale {locale!r}; use one of {', '.join(LOCALES)}")
    source = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def normalise(tag: str) -> str | None:
    """A console locale for one language tag (``zh-HK`` → ``zh_Hant``), or None."""
    parts = tag.strip().replace("_", "-").lower().split("-")
    if not parts or parts[0] == "":
        return None
    if parts[0] == "en":
        return "en"
    if parts[0] != "zh":
        return None
    rest = set(parts[1:])
    if "hant" in rest or rest & _TRADITIONAL_REGIONS:
        return "zh_Hant"
    return "zh_Hans"  # zh, zh-Hans, zh-CN, zh-SG


def negotiate(accept_language: str) -> str:
    """The best console locale for an ``Accept-Language`` header (RFC 9110 q-values)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:32]):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = normalise(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


def choose_locale(cookie: str | None, accept_language: str) -> str:
    if cookie in LOCALES:
        return cookie
    return negotiate(accept_language)


@dataclass(frozen=True)
class Translator:
    """The gettext functions of one locale, in the shape the templates call them:
    ``_("Hello %(name)s", name=...)`` with the arguments HTML-escaped."""

    locale: str

    @property
    def tag(self) -> str:
        return LOCALE_TAGS[self.locale]

    def gettext(self, message: str, **values: Any) -> Markup:
        text = Markup(translations(self.locale).gettext(message))
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> Markup:
        text = Markup(translations(self.locale).ngettext(singular, plural, n))
        return text % {"num": n, **values}

    def text(self, message: str, **values: Any) -> str:
        """Plain text (for headers, JSON and flash messages that are escaped later)."""
        translated = translations(self.locale).gettext(message)
        return translated % values if values else translated

    def localized(self, value: Any) -> str:
        """Metadata in the viewer's language when the provider supplied it: ``value`` is a
        plain string, or a mapping keyed by language tag (``en``, ``zh-Hans``, ``zh_Hant``,
        ``zh-CN``, ``zh-HK``…)."""
        if value is None:
            return ""
        if not isinstance(value, Mapping):
            return str(value)
        by_locale: dict[str, str] = {}
        for key, text in value.items():
            locale = normalise(str(key))
            if locale is not None and text and locale not in by_locale:
                by_locale[locale] = str(text)
        for locale in FALLBACKS[self.locale]:
            if locale in by_locale:
                return by_locale[locale]
        return next((str(v) for v in value.values() if v), "")
