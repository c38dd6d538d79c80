"""The delivery ledger (DOMAIN.md §6.2 rule 13) and the yearly counters of rule 6.

``record_delivery`` is called by the query path once a result has been streamed (and by
exports once written) with the number of rows that left. It writes one ledger row per
dataset the query read under a grant (a provider reading its own data is not a delivery):
columns, masks, purpose, instruments relied on, consumer entity and jurisdiction, rows
and a distinct-subject estimate for PI and sensitive-PI columns.

Subject estimate: min(rows delivered, the largest distinct-value estimate among the
delivered unmasked PI columns of that version's statistics). Yearly counters sum these
estimates per provider: an upper bound, so alerts come early rather than late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.governance_models import Delivery
from catalog.models import Organisation
from policies.evaluate import QueryPolicy
from policies.facts import (
    ALERT_SHARE,
    THRESHOLD_ASSESSMENT,
    THRESHOLD_PI,
    THRESHOLD_SPI,
    jurisdiction_of_origin,
)
from policies.model import GovernedSource, Principal


def _subjects(
    policy: QueryPolicy, source: GovernedSource, rows: int, pi_classes: dict[str, str]
) -> tuple[int, int]:
    version = policy.registry.version(source.dataset_id, source.version)
    masked = {m.column for m in source.masks}
    pi = spi = 0
    for column in source.columns:
        if column in masked:
            continue  # tokens and redactions are still PI (rule 10) but counted by the clear ones
        estimate = int((version.stats.get(column) or {}).get("distinct_estimate") or rows)
        if pi_classes.get(column) == "spi":
            spi = max(spi, min(rows, estimate))
        elif pi_classes.get(column, "pi_other") != "non_pi":
            pi = max(pi, min(rows, estimate))
    return pi, spi


def record_delivery(
    policy: QueryPolicy,
    principal: Principal,
    sources: Sequence[GovernedSource],
    *,
    rows: int,
    action: str,
) -> list[Delivery]:
    """Ledger rows for a result of ``rows`` rows built from ``sources`` (nothing if empty)."""
    if rows <= 0:
        return []
    now = policy.now()
    consumer = policy.registry.get_org(principal.org_id)
    entries = []
    for source in sources:
        if source.grant_id is None:
            continue  # the provider's own data
        dataset = policy.registry.get_dataset(source.dataset_id)
        version = policy.registry.version(dataset.id, source.version)
        facts = policy.dataset_facts(dataset, version)
        classes = {c.name: c.pi for c in facts.columns}
        pi, spi = _subjects(policy, source, rows, classes)
        origin = jurisdiction_of_origin(facts.origin)
        entries.append(
            Delivery(
                ts=now,
                year=now.year,
                action=action,
                dataset_id=dataset.id,
                dataset_version=source.version,
                provider_org_id=dataset.org_id,
                consumer_org_id=consumer.id,
                consumer_entity=consumer.registration_id,
                consumer_jurisdiction=principal.jurisdiction,
                origin_jurisdiction=facts.origin,
                cross_boundary=origin != principal.jurisdiction,
                purpose=source.purpose or "",
                grant_id=source.grant_id,
                columns=list(source.columns),
                masks=[{"column": m.column, "kind": m.kind} for m in source.masks],
                instruments=list(source.instruments),
                rule_set=source.rule_set or policy.rules.ref,
                row_count=rows,
                pi_subjects=pi,
                spi_subjects=spi,
            )
        )
    policy.ledger.add(entries)
    return entries


@dataclass(frozen=True)
class CounterReport:
    provider_org_id: str
    provider: str
    year: int
    pi_subjects: int
    spi_subjects: int
    alerts: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider_org_id": self.provider_org_id,
            "provider": self.provider,
            "year": self.year,
            "pi_subjects": self.pi_subjects,
            "spi_subjects": self.spi_subjects,
            "thresholds": {
                "pi": THRESHOLD_PI,
                "spi": THRESHOLD_SPI,
                "security_assessment": THRESHOLD_ASSESSMENT,
            },
            "alerts": list(self.alerts),
        }


def _alerts(pi: int, spi: int) -> tuple[str, ...]:
    alerts = []
    for label, value, limit in (
        ("non-sensitive PI", pi, THRESHOLD_PI),
        ("non-sensitive PI (security assessment)", pi, THRESHOLD_ASSESSMENT),
        ("sensitive PI", spi, THRESHOLD_SPI),
    ):
        if value >= limit:
            alerts.append(f"{label}: {value} subjects ≥ threshold {limit}")
        elif value >= ALERT_SHARE * limit:
            alerts.append(f"{label}: {value} subjects ≥ 80% of threshold {limit}")
    return tuple(alerts)


def yearly_counters(
    policy: QueryPolicy, orgs: Sequence[Organisation], now: datetime | None = None
) -> list[CounterReport]:
    """Rule 6 counters of every mainland provider with deliveries out of the mainland."""
    year = (now or policy.now()).year
    names = {o.id: o.slug for o in orgs}
    return [
        CounterReport(org_id, names.get(org_id, org_id), year, pi, spi, _alerts(pi, spi))
        for org_id, (pi, spi) in sorted(policy.ledger.yearly_out_of_mainland(year).items())
    ]
