"""PII scan: suggest a personal-information class for contract columns that have none.

DOMAIN.md §6.2 rule 3: every column is tagged ``non_pi | pi_direct_id | pi_quasi_id |
pi_other | spi``; untagged columns are auto-tagged from their values and the provider
confirms or corrects the suggestion (``POST /v1/datasets/{id}/contract/pi``). A scan looks
at a sample (the first :data:`SAMPLE_LIMIT` non-null, non-blank values) and runs the
:data:`DETECTORS` over it, in order:

* the identifier validators (``ingest.validators``): person IDs (mainland resident ID,
  HKID, Macao BIR) and phone numbers are ``pi_direct_id``; company IDs (USCC, HK BRN and
  BR certificate number, Macao taxpayer number) and shipment IDs (container, AWB) are
  ``non_pi``: they identify companies and boxes, not people;
* e-mail addresses: ``pi_direct_id``;
* bank card numbers (13-19 digits, issuer digit 2-6, Luhn): ``spi``, because DOMAIN.md
  §6.2 rule 5 and PIPL Art. 28 count financial accounts as sensitive PI;
* vehicle plates (``粤B12345``; Hong Kong ``AB 1234`` and Macao ``MA-12-34`` only under a
  "plate" header, since equipment codes share that shape): ``pi_quasi_id``;
* staff IDs (badges, inspector and operator IDs; DOMAIN.md §6.2 rule 3): only a header
  such as ``operator_badge`` or ``工号`` can say so; ``pi_quasi_id``;
* Chinese personal names (2-4 CJK characters starting with a common surname, or
  romanised Hong Kong style ``CHAN Tai Man``; under a "name" header also ``Chan Tai Man``
  and Portuguese names): ``pi_direct_id``;
* free text (long, varied strings with spaces or punctuation; under a "notes" header any
  wording): ``pi_other``.

A detector wins when it matches at least :data:`MATCH_THRESHOLD` of the values (names
need :data:`NAME_THRESHOLD` unless the header says the column holds names; free text
needs only :data:`FREE_TEXT_HINTED_THRESHOLD` under a "notes"/"备注" header). When several
win, the order is: a detector the header points at (unless only the header speaks for it,
as for staff IDs); then stronger evidence (a check digit
beats a numbering-plan range, which beats a bare format: eight random digits are always a
valid HK BRN and often a valid HK phone number); then the more protective class (a wrong
"personal" costs the provider one click to correct, a wrong "not personal" leaks data);
then the higher match count; then a detector native to the dataset's region; then
:data:`DETECTORS` order. No single winner but a :data:`MATCH_THRESHOLD` share of values
that are personal data of several kinds (a "contact" column of phones and e-mails) gives
detector ``mixed``. Otherwise the column is ``non_pi`` with detector ``none``.

Integer, double, date and timestamp columns are only matched by detectors with a check
digit or an unmistakable shape, or by a detector their header points at: an 8-digit
meter reading in Hong Kong is not a phone number because it would pass as one.

The scan is deterministic (same values, same answer) and never puts a value into
``PiFinding.reason``: reasons carry counts, shares and the header only.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from stdnum import luhn

from ingest.contracts import DataContract, PIClass
from ingest.validators import get_validator, normalise_identifier
from ingest.validators.base import ORIGIN_COUNTRY, fold

SAMPLE_LIMIT = 10_000
"""At most this many non-null values of a column are scanned (the first ones)."""
MATCH_THRESHOLD = 0.6
NAME_THRESHOLD = 0.8
"""Short CJK words often start with a surname character (高温, 白点): names need more."""
FREE_TEXT_HINTED_THRESHOLD = 0.3
FREE_TEXT_MIN_DISTINCT = 0.2
"""Free text is varied: distinct values are at least this share of the matching values
(a category column with a few long labels is not free text)."""
MIXED_MIN_SHARE = 0.1
"""A detector shapes a ``mixed`` column's class only if it matches this share of values."""

PI_RANK: Mapping[PIClass, int] = {
    "non_pi": 0,
    "pi_other": 1,
    "pi_quasi_id": 2,
    "pi_direct_id": 3,
    "spi": 4,
}
"""How protective a class is: ties go to the higher rank."""
MAINLAND = frozenset({"GZ", "SZ", "DG", "CN"})
HONG_KONG = frozenset({"HK"})
MACAO = frozenset({"MO"})

HEADER, SHAPED, RANGED, CHECKED = 0, 1, 2, 3
"""Evidence levels: 8 random digits pass as a BRN (SHAPED) every time, as a Hong Kong phone
number (RANGED) most of the time, and as a check-digit identifier (CHECKED) about 1 in 10.
HEADER: only the header speaks (a badge number looks like any other code)."""

ColumnKind = Literal["text", "typed"]
"""``text``: a string contract column; ``typed``: integer, double, boolean, date, timestamp."""


@dataclass(frozen=True, slots=True)
class PiFinding:
    """The suggested class of one column and why; ``share`` is the matched share of the
    scanned non-null values (0.0 when nothing matched or there was nothing to scan)."""

    pi: PIClass
    detector: str
    share: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "pi": self.pi,
            "detector": self.detector,
            "share": round(self.share, 4),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of personal (or explicitly non-personal) value.

    ``matches(value, region)`` is called once per distinct value with the value stripped of
    surrounding whitespace. ``hints`` are header words (ASCII: whole words; CJK: substrings)
    that make this detector the preferred one (``a+b``: both words). ``header_only``
    detectors run only when their header hint is there. ``min_distinct`` (unhinted only)
    is the least share of distinct values among the matched ones. ``evidence`` says how
    unlikely a chance match is: :data:`CHECKED` (a check digit or an unmistakable shape;
    these also run on typed columns), :data:`RANGED` (numbering-plan ranges) or
    :data:`SHAPED` (format only, or a heuristic).
    """

    name: str
    pi: PIClass
    noun: str
    why: str
    matches: Callable[[str, str], bool]
    hints: tuple[str, ...] = ()
    regions: frozenset[str] | None = None
    evidence: int = SHAPED
    threshold: float = MATCH_THRESHOLD
    hinted_threshold: float = MATCH_THRESHOLD
    min_distinct: float = 0.0
    header_only: bool = False

    def needed(self, hinted: bool) -> float:
        return self.hinted_threshold if hinted else self.threshold


# --- identifier validators -------------------------------------------------------------


_ASCII_SEPARATORS = str.maketrans("", "", " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f-.")


def _normalised(value: str) -> str:
    """``normalise_identifier`` with a fast path for ASCII (no NFKC work to do). Not
    cached: a module-level cache would keep scanned personal data in memory."""
    if value.isascii():
        return value.translate(_ASCII_SEPARATORS).upper()
    return normalise_identifier(value)


def _validator(name: str, shape: str) -> Callable[[str, str], bool]:
    """Accepted by the validator, without a ``*_FORMAT`` warning (format-only validators
    such as ``hk_br_cert_no`` and ``mo_tin`` accept any text with that warning).

    ``shape`` is a cheap necessary condition on the normalised value (about 30 times faster
    than a validator call): only values of that shape reach the validator, which decides.
    """
    validator = get_validator(name)
    pattern = re.compile(shape)

    def matches(value: str, region: str) -> bool:
        if not pattern.fullmatch(_normalised(value)):
            return False
        checked = validator.check(value, region=region)
        return checked.ok and not any(f.rule.endswith("_FORMAT") for f in checked.findings)

    return matches


_PHONE_SHAPE = re.compile(r"\+?[0-9()\-.]{7,24}")
_CN_MOBILE = re.compile(r"(?:0{0,2}86)?1[3-9][0-9]{9}")


def _phone_shaped(value: str) -> str | None:
    text = fold(value)
    if not _PHONE_SHAPE.fullmatch(text) or not 7 <= sum(ch.isdigit() for ch in text) <= 15:
        return None
    return "".join(ch for ch in text if ch.isdigit())


def _is_phone(value: str, region: str) -> bool:
    """A valid number for the dataset's country; a mainland mobile number anywhere
    (cross-boundary drivers in Hong Kong data carry +86 mobiles written without +86)."""
    digits = _phone_shaped(value)
    if digits is None:
        return False
    phone = get_validator("phone")
    if phone.check(value, region=region).ok:
        return True
    return bool(_CN_MOBILE.fullmatch(digits)) and phone.check(digits[-11:], region="CN").ok


def _is_phone_anywhere(value: str, region: str) -> bool:
    """With a "phone" header: valid in any GBA numbering plan (a Shenzhen dataset listing
    Hong Kong numbers without +852)."""
    if _phone_shaped(value) is None:
        return False
    phone = get_validator("phone")
    return any(phone.check(value, region=r).ok for r in dict.fromkeys((region, "CN", "HK", "MO")))


# --- e-mail and bank cards -------------------------------------------------------------

_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}"
)


def _is_email(value: str, _region: str) -> bool:
    return bool(_EMAIL.fullmatch(unicodedata.normalize("NFKC", value)))


def _is_bank_card(value: str, _region: str) -> bool:
    """13-19 digits (spaces and hyphens allowed), issuer digit 2-6 (Mastercard 2/5, Amex
    and JCB 3, Visa 4, UnionPay and Discover 6), Luhn check digit."""
    text = fold(value).replace("-", "")
    return (
        text.isascii()
        and text.isdigit()
        and 13 <= len(text) <= 19
        and text[0] in "23456"
        and bool(luhn.is_valid(text))
    )


# --- Chinese personal names ------------------------------------------------------------

# About 100 of the most common surnames, simplified and traditional forms, plus surnames
# common in Hong Kong and Macao (區, 麥, 鄺, 岑, 冼 ...). Single characters.
SURNAMES = frozenset(
    "王李张張刘劉陈陳杨楊黄黃赵趙吴吳周徐孙孫马馬朱胡郭何高林罗羅郑鄭梁谢謝宋唐许許韩韓"
    "冯馮邓鄧曹彭曾肖萧蕭田董袁潘于余蒋蔣蔡杜叶葉程苏蘇魏吕呂丁任沈姚卢盧姜崔钟鍾鐘谭譚"
    "陆陸汪范範金石廖贾賈夏韦韋付傅方白邹鄒孟熊秦邱江尹薛闫閆阎閻段雷侯龙龍史陶黎贺賀"
    "顾顧毛郝龚龔邵万萬钱錢严嚴覃武戴莫孔向汤湯温溫易常康伍甘关關区區欧歐麦麥邝鄺岑"
    "霍冼洪翁容骆駱殷游饶饒车車施柯卓凌"
)
COMPOUND_SURNAMES = frozenset(
    {
        "欧阳", "歐陽", "司马", "司馬", "司徒", "上官", "诸葛", "諸葛", "东方", "東方",
        "皇甫", "尉迟", "尉遲", "公孙", "公孫", "慕容", "令狐", "夏侯", "长孙", "長孫",
        "宇文", "端木", "南宫", "南宮", "独孤", "獨孤", "轩辕", "軒轅", "澹台", "澹臺",
    }
)  # fmt: skip
# Characters that end industrial terms (黄色, 高温, 马达, 金属件) and practically never
# appear in a given name; one of them after a surname character means "not a name".
NOT_IN_NAMES = frozenset(
    "色度压壓温溫机機器件线線号號厂廠区區市省县縣路街站库庫箱车車阀閥泵轴軸铝鋁"
    "胶膠漆货貨品类類型级級部组組班批次院所局处處场場店楼樓层層室吨噸属屬料"
    "点點板管油漏磨损損裂断斷响響热熱冷速"
)
# Romanised surnames: Hong Kong / Macao (Cantonese) and mainland (Pinyin) spellings.
_ROMANISED = """
    au chan cheng cheung chiang chiu choi chow chu chung fan fong fung ho hui kam ko kong
    kwan kwok lai lam lau law lee leung li ling lo lui luk ma mak mok ng poon sin siu so
    tam tang to tong tsang tse tsui wan wong yeung yip yiu yu yuen
    bai cai cao chen cui dai deng ding dong du duan feng fu gao gong gu guo han hao he hou
    hu huang jia jiang jin kong liang liao lin liu long lu luo lv mao meng pan peng qian
    qin qiu ren shao shen shi song su sun tan tao tian wang wei wu xia xiang xiao xie xiong
    xu xue yan yang yao ye yin yuan zeng zhang zhao zheng zhong zhou zhu zou
"""
ROMANISED_SURNAMES = frozenset(_ROMANISED.split())

_CJK_NAME = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,4}")
_NAME_SEPARATORS = str.maketrans("", "", " \u3000·•・")
_ROMAN_TOKEN = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)?")


def _is_cjk_name(value: str) -> bool:
    text = unicodedata.normalize("NFKC", value).translate(_NAME_SEPARATORS)
    if not _CJK_NAME.fullmatch(text):
        return False
    if text[:2] in COMPOUND_SURNAMES and len(text) >= 3:
        given = text[2:]
    elif text[0] in SURNAMES:
        given = text[1:]
    else:
        return False
    return not any(ch in NOT_IN_NAMES for ch in given)


def _is_romanised_name(value: str, strict: bool) -> bool:
    """``CHAN Tai Man``, ``Peter CHAN Tai-man``; with ``strict`` off (the header says names)
    also ``Chan Tai Man`` and ``CHAN TAI MAN``."""
    tokens = value.split()
    if not 2 <= len(tokens) <= 5 or not all(_ROMAN_TOKEN.fullmatch(t) for t in tokens):
        return False
    for index, token in enumerate(tokens):
        if token.lower() not in ROMANISED_SURNAMES:
            continue
        others = tokens[:index] + tokens[index + 1 :]
        if not strict and all(t[:1].isupper() for t in tokens):
            return True
        if token.isupper() and len(token) >= 2 and all(not t.isupper() for t in others):
            return all(t[:1].isupper() for t in others)
    return False


def _is_name(value: str, _region: str) -> bool:
    return _is_cjk_name(value) or _is_romanised_name(value, strict=True)


_LATIN_NAME_TOKEN = re.compile(r"[^\W\d_][^\W\d_'’-]*(?:[-'’][^\W\d_]+)*")


def _is_capitalised_words(value: str) -> bool:
    """``José Fernandes``, ``Ana Sousa``: 2-4 capitalised words of letters."""
    tokens = value.split()
    return 2 <= len(tokens) <= 4 and all(
        _LATIN_NAME_TOKEN.fullmatch(t) and t[0].isupper() and not _is_cjk(t[0]) for t in tokens
    )


def _is_name_loose(value: str, _region: str) -> bool:
    """Under a "name" header: also title-case romanisation and Portuguese or English names
    (Macao data mixes 黎志偉 and José Fernandes in one column)."""
    return (
        _is_cjk_name(value)
        or _is_romanised_name(value, strict=False)
        or _is_capitalised_words(value)
    )


# --- vehicle plates and staff codes ----------------------------------------------------

_PROVINCES = (
    "京津沪滬渝冀豫云雲辽遼黑湘皖鲁魯新苏蘇浙赣贛鄂桂甘晋晉蒙陕陝吉闽閩贵貴粤粵青藏川宁寧琼瓊"
)
_MAINLAND_PLATE = re.compile(
    rf"[{_PROVINCES}][A-HJ-NP-Z][A-HJ-NP-Z0-9]{{4,6}}[港澳挂掛学學警领領]?"  # 粤B12345, 粤Z1234港
)
_SAR_PLATE = re.compile(
    r"[A-HJ-NPR-Z]{2}[1-9][0-9]{0,3}"  # Hong Kong: two letters, 1-4 digits, no leading 0
    r"|M[A-Z]?[0-9]{4}"  # Macao: M-12-34, MA-12-34
)
_PLATE_SEPARATORS = str.maketrans("", "", " \u3000·•・-.")


def _plate_text(value: str) -> str:
    return unicodedata.normalize("NFKC", value).translate(_PLATE_SEPARATORS).upper()


def _is_mainland_plate(value: str, _region: str) -> bool:
    """A province character makes a mainland plate unmistakable (粤B12345, 粤Z1234港)."""
    return bool(_MAINLAND_PLATE.fullmatch(_plate_text(value)))


def _is_plate(value: str, _region: str) -> bool:
    """Under a "plate" header: Hong Kong (two letters and 1-4 digits) and Macao plates as
    well, shapes that equipment codes such as ``RF-101`` share."""
    text = _plate_text(value)
    return bool(_MAINLAND_PLATE.fullmatch(text) or _SAR_PLATE.fullmatch(text))


_STAFF_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_/-]{1,19}")


def _is_staff_code(value: str, _region: str) -> bool:
    """A short code without spaces: only meaningful under a badge / staff-ID header."""
    return bool(_STAFF_CODE.fullmatch(value))


# --- free text -------------------------------------------------------------------------

FREE_TEXT_MIN_WEIGHT = 16
"""Length with CJK characters counted twice: 16 ≈ 8 Chinese characters or 16 letters."""
FREE_TEXT_MIN_WORDS = 3
FREE_TEXT_HINTED_MIN_WEIGHT = 8


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _is_free_text(value: str, _region: str) -> bool:
    """A sentence: long enough, mostly letters (a timestamp or a list of numbers has
    separators too, but few letters) and broken up: three or more words, or CJK text with
    punctuation or spaces (a bare run of CJK characters is more often a company name)."""
    weight = sum(2 if _is_cjk(ch) else 1 for ch in value)
    if weight < FREE_TEXT_MIN_WEIGHT:
        return False
    categories = [unicodedata.category(ch) for ch in value]
    letters = sum(c[0] == "L" for c in categories)
    if letters * 2 < sum(c[0] != "Z" for c in categories):
        return False
    if any(_is_cjk(ch) for ch in value):
        return any(c[0] in "PZ" for c in categories)
    return len(value.split()) >= FREE_TEXT_MIN_WORDS


def _is_free_text_loose(value: str, _region: str) -> bool:
    """Under a "notes" / "备注" header: any wording (首件检验), not codes or numbers."""
    if sum(2 if _is_cjk(ch) else 1 for ch in value) < FREE_TEXT_HINTED_MIN_WEIGHT:
        return False
    categories = [unicodedata.category(ch) for ch in value]
    return sum(c[0] == "L" for c in categories) * 2 >= sum(c[0] != "Z" for c in categories)


# --- the detectors, in priority order --------------------------------------------------

PERSON = "they identify a person"
COMPANY = "they identify companies, not people (a sole trader's number can still be personal)"
SHIPMENT = "they identify shipments and boxes, not people"

DETECTORS: tuple[Detector, ...] = (
    Detector(
        "cn_resident_id", "pi_direct_id", "are valid mainland resident ID numbers", PERSON,
        _validator("cn_resident_id", r"[0-9]{17}[0-9X]|[0-9]{15}"),
        hints=("ric", "idcard", "身份证", "身份證", "证件", "證件"),
        regions=MAINLAND, evidence=CHECKED,
    ),
    Detector(
        "hkid", "pi_direct_id", "are valid HKIDs",
        f"{PERSON}; the HKID Code of Practice restricts their use",
        _validator("hkid", r"[A-Z]{1,2}[0-9]{6}\(?[0-9A]\)?"),
        hints=("hkid", "身份證", "身份证", "證件"), regions=HONG_KONG, evidence=CHECKED,
    ),
    Detector(
        "uscc", "non_pi", "are valid USCCs (unified social credit codes)", COMPANY,
        _validator("uscc", r"[0-9A-Z]{18}"),
        hints=("uscc", "信用代码", "信用代碼"), regions=MAINLAND, evidence=CHECKED,
    ),
    Detector(
        "container_no", "non_pi", "are valid ISO 6346 container numbers", SHIPMENT,
        _validator("container_no", r"[A-Z]{4}[0-9]{7}"),
        hints=("container", "柜号", "櫃號", "箱号", "箱號"), evidence=CHECKED,
    ),
    Detector(
        "bank_card", "spi", "are bank card numbers (Luhn check digit)",
        "bank cards are financial accounts: sensitive PI (PIPL Art. 28, DOMAIN.md §6.2 rule 5)",
        _is_bank_card,
        hints=("card", "bank", "account", "卡号", "卡號", "银行", "銀行", "账号", "帳號"),
        evidence=CHECKED,
    ),
    Detector(
        "awb", "non_pi", "are valid air waybill numbers", SHIPMENT,
        _validator("awb", r"[0-9]{9,11}"),
        hints=("awb", "waybill", "运单", "運單", "提单", "提單"), evidence=CHECKED,
    ),
    Detector(
        "email", "pi_direct_id", "are e-mail addresses",
        "an address reaches a person (a role mailbox too, until the provider says otherwise)",
        _is_email,
        hints=("email", "mail", "邮箱", "郵箱", "电邮", "電郵", "邮件", "郵件"), evidence=CHECKED,
    ),
    Detector(
        "phone", "pi_direct_id", "are valid phone numbers", "a phone number reaches a person",
        _is_phone,
        hints=(
            "phone", "tel", "mobile", "cell", "电话", "電話", "手机", "手機", "联系方式", "聯絡",
        ),
        evidence=RANGED,
    ),
    Detector(
        "mo_bir", "pi_direct_id", "are Macao resident ID numbers (BIR format)", PERSON,
        _validator("mo_bir", r"[157][0-9]{6}\(?[0-9]\)?|[157]/[0-9]{6}/[0-9]"),
        hints=("bir", "澳門居民身份證", "身份證"), regions=MACAO,
    ),
    Detector(
        "hk_brn", "non_pi", "are HK business registration numbers (format)", COMPANY,
        _validator("hk_brn", r"[0-9]{7,8}|[0-9]{15}[0-9A-Z]"),
        hints=("brn", "ubi", "商業登記", "商业登记", "登記號碼"), regions=HONG_KONG,
    ),
    Detector(
        "hk_br_cert_no", "non_pi", "are HK business registration certificate numbers", COMPANY,
        _validator("hk_br_cert_no", r"[0-9]{15}[0-9A-Z]"),
        hints=("certificate", "證書", "证书"), regions=HONG_KONG,
    ),
    Detector(
        "mo_tin", "non_pi", "are Macao taxpayer numbers (format)", COMPANY,
        _validator("mo_tin", r"[0-9]{7,8}"),
        hints=("tin", "taxpayer", "納稅人", "纳税人"), regions=MACAO,
    ),
    Detector(
        "vehicle_plate", "pi_quasi_id", "look like vehicle licence plates",
        "a plate leads to the vehicle's owner or driver",
        _is_mainland_plate, hints=("plate", "车牌", "車牌", "牌照", "车号", "車號"),
    ),
    Detector(
        "staff_id", "pi_quasi_id", "are short codes under a staff-ID header",
        "operator, inspector and technician IDs identify employees (DOMAIN.md §6.2 rule 3)",
        _is_staff_code,
        hints=(
            "badge", "inspector+id", "operator+id", "technician+id", "employee+id", "staff+id",
            "worker+id", "driver+id", "employee+no", "staff+no", "工号", "工號", "员工编号",
            "員工編號", "工卡", "工牌",
        ),
        evidence=HEADER, header_only=True,
    ),
    Detector(
        "chinese_name", "pi_direct_id", "look like personal names", "a name identifies a person",
        _is_name,
        hints=(
            "name", "driver", "technician", "operator", "inspector", "contact", "employee",
            "staff", "worker", "consignee", "姓名", "名字", "人名", "司机", "司機", "技术员",
            "技術員", "联系人", "聯絡人", "负责人", "負責人", "操作员", "操作員", "检验员",
            "檢驗員", "员工", "員工", "工人", "收货人", "收貨人",
        ),
        threshold=NAME_THRESHOLD,
    ),
    Detector(
        "free_text", "pi_other", "are free text",
        "free text often carries names and phone numbers (DOMAIN.md §6.2 rule 3)",
        _is_free_text,
        hints=(
            "note", "notes", "remark", "remarks", "comment", "comments", "description", "desc",
            "memo", "text", "备注", "備註", "说明", "說明", "描述", "意见", "意見", "记录",
            "記錄", "内容", "內容",
        ),
        hinted_threshold=FREE_TEXT_HINTED_THRESHOLD, min_distinct=FREE_TEXT_MIN_DISTINCT,
    ),
)  # fmt: skip
"""Order breaks the last ties: check-digit identifiers first, heuristics last."""

_LOOSE: Mapping[str, Callable[[str, str], bool]] = {
    "chinese_name": _is_name_loose,
    "phone": _is_phone_anywhere,
    "vehicle_plate": _is_plate,
    "free_text": _is_free_text_loose,
}
"""Matchers that relax when the header points at their detector."""


# --- the scan --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sample:
    values: dict[str, int]  # distinct stripped value → occurrences, first seen first
    total: int


@dataclass(slots=True)
class _Score:
    detector: Detector
    hinted: bool
    matched: int = 0
    matched_values: set[str] = field(default_factory=set)


def _sample(values: pa.Array | pa.ChunkedArray) -> _Sample:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    counts: Counter[str] = Counter()
    for value in values.drop_null().slice(0, SAMPLE_LIMIT).to_pylist():
        text = str(value).strip()
        if text:
            counts[text] += 1
    return _Sample(dict(counts), sum(counts.values()))


def _header_words(header: str) -> tuple[frozenset[str], str]:
    text = unicodedata.normalize("NFKC", header)
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()
    return frozenset(re.findall(r"[a-z]+", text)), text


def _hint_matches(hint: str, words: frozenset[str], text: str) -> bool:
    return all((part in words) if part.isascii() else (part in text) for part in hint.split("+"))


def _is_hinted(detector: Detector, words: frozenset[str], text: str) -> bool:
    return any(_hint_matches(hint, words, text) for hint in detector.hints)


def _score(sample: _Sample, region: str, header: str, kind: ColumnKind) -> list[_Score]:
    words, text = _header_words(header)
    scores = []
    for detector in DETECTORS:
        hinted = _is_hinted(detector, words, text)
        if detector.header_only and not hinted:
            continue
        if kind == "typed" and not (detector.evidence >= CHECKED or hinted):
            continue
        matches = _LOOSE.get(detector.name, detector.matches) if hinted else detector.matches
        score = _Score(detector, hinted)
        for value, count in sample.values.items():
            if matches(value, region):
                score.matched += count
                score.matched_values.add(value)
        scores.append(score)
    return scores


def _varied(score: _Score) -> bool:
    if score.hinted:
        return True
    return len(score.matched_values) >= score.detector.min_distinct * score.matched


def _wins(score: _Score, total: int) -> bool:
    needed = math.ceil(score.detector.needed(score.hinted) * total)
    return score.matched > 0 and score.matched >= needed and _varied(score)


def _rank(score: _Score, region: str) -> tuple[bool, int, int, int, bool, int]:
    native = score.detector.regions is None or region in score.detector.regions
    return (
        not (score.hinted and not score.detector.header_only),
        -score.detector.evidence,
        -PI_RANK[score.detector.pi],
        -score.matched,
        not native,
        DETECTORS.index(score.detector),
    )


def _percent(share: float) -> str:
    return f"{math.floor(share * 100)}%"


def _winner_finding(score: _Score, total: int, header: str) -> PiFinding:
    share = score.matched / total
    reason = f"{_percent(share)} of {total:,} values {score.detector.noun}"
    if score.hinted:
        reason += f"; the header {header[:40]!r} points the same way"
    reason += f": {score.detector.pi}, {score.detector.why}"
    return PiFinding(score.detector.pi, score.detector.name, share, reason)


def scan_column(
    values: pa.Array | pa.ChunkedArray,
    *,
    region: str,
    header: str = "",
    kind: ColumnKind = "text",
) -> PiFinding:
    """Suggest the PI class of one column from a sample of its values (nulls and blank
    strings ignored). ``region`` is the dataset's origin (GZ, SZ, DG, HK, MO or CN);
    ``header`` the column's name and partner header, used as a hint; ``kind="typed"`` for
    integer, double, boolean, date and timestamp contract columns."""
    region = _checked_region(region)
    sample = _sample(values)
    if sample.total == 0:
        return PiFinding(
            "non_pi", "none", 0.0, "no values to scan; scan again once the column holds data"
        )
    scores = _score(sample, region, header, kind)
    winners = sorted((s for s in scores if _wins(s, sample.total)), key=lambda s: _rank(s, region))
    if winners:
        return _winner_finding(winners[0], sample.total, header)
    mixed = _mixed_column(scores, sample)
    if mixed is not None:
        return mixed
    what = "values" if kind == "text" else "values of a typed (number or date) column"
    return PiFinding(
        "non_pi",
        "none",
        0.0,
        f"no personal-data pattern matched {_percent(MATCH_THRESHOLD)} of {sample.total:,} {what}",
    )


def _mixed_column(scores: list[_Score], sample: _Sample) -> PiFinding | None:
    """Personal data of several kinds that together reach the threshold."""
    personal = [s for s in scores if s.detector.pi != "non_pi" and s.matched and _varied(s)]
    if len(personal) < 2:
        return None
    union: set[str] = set().union(*(s.matched_values for s in personal))
    matched = sum(sample.values[v] for v in union)
    if matched < math.ceil(MATCH_THRESHOLD * sample.total):
        return None
    shaping = [s for s in personal if s.matched >= MIXED_MIN_SHARE * sample.total] or personal
    pi = max((s.detector.pi for s in shaping), key=lambda c: PI_RANK[c])
    parts = ", ".join(
        f"{s.detector.name} {_percent(s.matched / sample.total)}"
        for s in sorted(personal, key=lambda s: (-s.matched, DETECTORS.index(s.detector)))
    )
    share = matched / sample.total
    reason = (
        f"{_percent(share)} of {sample.total:,} values are personal data of several kinds "
        f"({parts}): {pi}, the most protective class among them"
    )
    return PiFinding(pi, "mixed", share, reason)


def _checked_region(region: str) -> str:
    code = region.upper()
    if code not in ORIGIN_COUNTRY:
        known = ", ".join(sorted(ORIGIN_COUNTRY))
        raise ValueError(f"unknown dataset origin {region!r}; use one of: {known}")
    return code


def scan_table(table: pa.Table, contract: DataContract, *, region: str) -> dict[str, PiFinding]:
    """Scan exactly the contract columns whose ``pi`` is None (in contract order).

    ``table`` holds the raw values, one column per contract column name (string typed;
    other types are cast). Only the first :data:`SAMPLE_LIMIT` rows are read. A contract
    column missing from the table is scanned as empty.
    """
    region = _checked_region(region)
    sample = table.slice(0, SAMPLE_LIMIT)
    findings: dict[str, PiFinding] = {}
    for column in contract.columns:
        if column.pi is not None:
            continue
        if column.name in sample.column_names:
            values: pa.Array | pa.ChunkedArray = sample.column(column.name)
        else:
            values = pa.nulls(0, pa.string())
        header = column.name if column.header == column.name else f"{column.name} {column.header}"
        kind: ColumnKind = "text" if column.type == "string" else "typed"
        findings[column.name] = scan_column(values, region=region, header=header, kind=kind)
    return findings
