"""What the policy engine decides over: plain, immutable facts (no database, no HTTP).

``policies.evaluate.decide`` is a pure function of these; ``policies.evaluate.QueryPolicy``
and ``policies.access`` build them from the catalog. The fixed vocabularies (purposes,
origin jurisdictions, DSL levels, instrument types) live here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from policies.model import Mask

PURPOSES: tuple[str, ...] = (
    "model_training",
    "model_evaluation",
    "analytics",
    "quality_improvement",
    "regulatory_reporting",
)
ORIGINS: tuple[str, ...] = ("CN-GBA9", "CN-other", "HK", "MO")
DSL_LEVELS: tuple[str, ...] = ("general", "important")  # `core` is refused (rule 1)
CIIO: tuple[str, ...] = ("yes", "no", "unknown")
INSTRUMENT_TYPES: tuple[str, ...] = (
    "GBA_SC_HK",
    "GBA_SC_MO",
    "CN_SC",
    "CN_SEC_ASSESS",
    "CN_CERT",
    "MO_ART20_NOTIF",
    "MO_AUTH",
    "HK_MODEL_CLAUSES",
)
CN_EXEMPT = re.compile(r"^CN_EXEMPT_[A-Z][A-Z0-9_]{1,40}$")  # e.g. CN_EXEMPT_UNDER_THRESHOLD
PI_CLASSES: tuple[str, ...] = ("non_pi", "pi_direct_id", "pi_quasi_id", "pi_other", "spi")
GBA9_CITIES: frozenset[str] = frozenset({"GZ", "SZ", "DG"})  # the platform's mainland regions

# Rule 6 thresholds (distinct subjects per mainland provider and calendar year).
THRESHOLD_PI = 100_000
THRESHOLD_SPI = 10_000
THRESHOLD_ASSESSMENT = 1_000_000
ALERT_SHARE = 0.8


def valid_instrument_type(kind: str) -> bool:
    return kind in INSTRUMENT_TYPES or bool(CN_EXEMPT.match(kind))


def jurisdiction_of_origin(origin: str) -> str:
    """``mainland`` for CN-GBA9 / CN-other, else the SAR code."""
    return "mainland" if origin.startswith("CN-") else origin


def origin_for_region(region: str) -> tuple[str, str | None]:
    """The default origin of a dataset stored in ``region`` (its provider's region)."""
    if region in GBA9_CITIES:
        return "CN-GBA9", region
    return region, None


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    pi: str  # one of PI_CLASSES
    validator: str | None = None  # the contract's identifier validator (e.g. hkid)


@dataclass(frozen=True)
class DatasetFacts:
    dataset_id: str
    org_id: str
    region: str
    origin: str  # one of ORIGINS
    origin_city: str | None
    dsl_level: str
    columns: tuple[ColumnFacts, ...]
    collection_purposes: frozenset[str] = frozenset()
    consented_purposes: frozenset[str] = frozenset()
    separate_consent: bool = False
    spi_release: bool = False
    pipia_ref: str | None = None

    @property
    def contains_pi(self) -> bool:
        return any(c.pi != "non_pi" for c in self.columns)

    @property
    def contains_spi(self) -> bool:
        return any(c.pi == "spi" for c in self.columns)


@dataclass(frozen=True)
class InstrumentFacts:
    id: str
    type: str
    reference: str
    effective_from: datetime
    expires_at: datetime | None
    columns: frozenset[str] | None  # None: every column
    purposes: frozenset[str]

    def in_force(self, now: datetime) -> bool:
        return self.effective_from <= now and (self.expires_at is None or now < self.expires_at)

    def covers(self, column: str, purpose: str) -> bool:
        return (self.columns is None or column in self.columns) and purpose in self.purposes


@dataclass(frozen=True)
class GrantTerms:
    """What a grant lets through before the cross-boundary rules apply."""

    id: str | None
    purpose: str
    columns: frozenset[str] | None = None  # None: every column
    masks: tuple[Mask, ...] = ()
    row_filter: str | None = None
    aggregate_only: bool = False
    min_group_size: int | None = None
    subject_column: str | None = None
    version_pin: int | None = None
    no_onward_transfer: bool = False


@dataclass(frozen=True)
class Consumer:
    org_id: str
    region: str
    jurisdiction: str  # mainland | HK | MO


@dataclass(frozen=True)
class Counters:
    """A mainland provider's distinct subjects delivered out of the mainland this year."""

    pi_subjects: int = 0
    spi_subjects: int = 0

    @property
    def under_threshold_exhausted(self) -> bool:
        return self.pi_subjects >= THRESHOLD_PI or self.spi_subjects >= THRESHOLD_SPI


@dataclass(frozen=True)
class DecisionInput:
    consumer: Consumer
    dataset: DatasetFacts
    grant: GrantTerms
    now: datetime
    instruments: tuple[InstrumentFacts, ...] = ()
    counters: Counters = field(default_factory=Counters)
    columns: tuple[str, ...] | None = None  # asked for; None: whatever the grant allows
