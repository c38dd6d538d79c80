"""The delivery ledger (DOMAIN.md §6.2 rule 13) and the yearly counters of rule 6.

``record_delivery`` is called by the query path once a result has been streamed (and by
exports once written) with the number of rows that left. It writes one ledger row per
dataset the query read under a grant (a provider reading its own data is not a delivery):
columns, masks, purpose, instruments relied on, consumer entity and jurisdiction, rows
and a distinct-subject estimate for PI and sensitive-PI columns.

Subject estimate: min(rows delivered, the largest distinct-value estimate among the
delivered PI columns of that version's statistics); keyed tokens and partial values count
(pseudonymised data remains PI, rule 10), nulled or redacted columns do not. Yearly
counters sum these estimates per provider: an upper bound, so alerts come early, not late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from catalog.audit import AuditLog
from catalog.errors import NotFound
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
    estimates: dict[str, int], source: GovernedSource, rows: int, pi_classes: dict[str, str]
) -> tuple[int, int]:
    removed = {m.column for m in source.masks if m.kind in ("null", "redact")}
    pi = spi = 0
    for column in source.columns:
        if column in removed:
            continue  # nothing of the value left; tokens and partial values still count (rule 10)
        estimate = estimates.get(column) or rows
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
    audit: AuditLog | None = None,
) -> list[Delivery]:
    """Ledger rows for a result of ``rows`` rows built from ``sources`` (nothing if empty).

    With ``audit``, a delivery that takes a mainland provider's yearly counter past 80% or
    100% of a rule-6 threshold writes a ``ledger.threshold`` alert to the audit log.
    """
    if rows <= 0 or all(source.grant_id is None for source in sources):
        return []  # nothing left, or only the caller's own data: not a delivery
    now = policy.now()
    # the rows the query was decided on, kept by the policy's cache while the catalog is
    # unchanged (``catalog.generation``); read here otherwise
    snapshot = policy.cache.snapshot()
    consumer = _found(snapshot.get("org", principal.org_id, policy.registry.orgs_by_id), principal)
    entries = []
    for source in sources:
        if source.grant_id is None:
            continue  # the provider's own data
        key = (source.dataset_id, source.version)
        dataset = snapshot.get("dataset_id", source.dataset_id, policy.registry.datasets_by_id)
        version = snapshot.get("version", key, policy.versions)
        estimates = snapshot.get("distinct_estimates", key, policy.distinct_estimates)
        if dataset is None or version is None or estimates is None:
            raise NotFound("dataset version", f"{source.dataset_id}@{source.version}")
        governance = snapshot.get("governance", dataset.id, policy.governance.get_many)
        facts = policy.dataset_facts(dataset, version, governance)
        classes = {c.name: c.pi for c in facts.columns}
        pi, spi = _subjects(estimates, source, rows, classes)
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
    if audit is not None:
        _threshold_alerts(policy, audit, entries, now)
    return entries


def _found(org: Organisation | None, principal: Principal) -> Organisation:
    if org is None:
        raise NotFound("organisation", principal.org_id)
    return org


def _threshold_alerts(
    policy: QueryPolicy, audit: AuditLog, entries: Sequence[Delivery], now: datetime
) -> None:
    added: dict[str, tuple[int, int]] = {}
    for e in entries:
        if e.cross_boundary and e.origin_jurisdiction.startswith("CN-"):
            pi, spi = added.get(e.provider_org_id, (0, 0))
            added[e.provider_org_id] = (pi + e.pi_subjects, spi + e.spi_subjects)
    if not added:
        return
    totals = policy.ledger.yearly_out_of_mainland(now.year)
    for org_id, (pi_added, spi_added) in added.items():
        pi, spi = totals.get(org_id, (0, 0))
        before = {level[:2] for level in _levels(pi - pi_added, spi - spi_added)}
        for label, reached, value, limit in _levels(pi, spi):
            if (label, reached) in before:
                continue  # already alerted when an earlier delivery reached this level
            audit.append(
                actor="ledger",
                action="ledger.threshold",
                resource=f"org:{org_id}",
                outcome="alert",
                detail={
                    "year": now.year,
                    "alert": _message(label, reached, value, limit),
                    "pi_subjects": pi,
                    "spi_subjects": spi,
                },
            )


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


THRESHOLDS: tuple[tuple[str, str, int], ...] = (
    ("non-sensitive PI", "pi", THRESHOLD_PI),
    ("non-sensitive PI (security assessment)", "pi", THRESHOLD_ASSESSMENT),
    ("sensitive PI", "spi", THRESHOLD_SPI),
)


def _levels(pi: int, spi: int) -> list[tuple[str, str, int, int]]:
    """(threshold label, "100%" | "80%", value, limit) for each threshold reached."""
    out = []
    for label, kind, limit in THRESHOLDS:
        value = pi if kind == "pi" else spi
        if value >= limit:
            out.append((label, "100%", value, limit))
        elif value >= ALERT_SHARE * limit:
            out.append((label, "80%", value, limit))
    return out


def _message(label: str, reached: str, value: int, limit: int) -> str:
    share = "" if reached == "100%" else "80% of "
    return f"{label}: {value} subjects ≥ {share}threshold {limit}"


def _alerts(pi: int, spi: int) -> tuple[str, ...]:
    return tuple(_message(*level) for level in _levels(pi, spi))


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
