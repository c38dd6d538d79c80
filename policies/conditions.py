"""The fixed vocabulary of conditions a rule set may use (see policies/rules/*.yaml).

Each condition answers for one column of one decision and, when it holds, names its basis
(an instrument reference or the fact it rests on) so the decision can record why.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.facts import DecisionInput, InstrumentFacts, jurisdiction_of_origin
from policies.ruleset import Condition


@dataclass(frozen=True)
class Check:
    holds: bool
    basis: tuple[str, ...] = ()  # e.g. ("GBA_SC_HK:粤网信备〔2025〕12号",)


def _ref(instrument: InstrumentFacts) -> str:
    return f"{instrument.type}:{instrument.reference}"


def gba_sc_type(origin_jurisdiction: str, consumer_jurisdiction: str) -> str | None:
    """The GBA Standard Contract that covers a pair of places, if any (HK ↔ MO: none)."""
    pair = {origin_jurisdiction, consumer_jurisdiction}
    if pair == {"mainland", "HK"}:
        return "GBA_SC_HK"
    if pair == {"mainland", "MO"}:
        return "GBA_SC_MO"
    return None


def _instruments(
    facts: DecisionInput, column: str, types: tuple[str, ...], *, spi: bool
) -> list[InstrumentFacts]:
    found = []
    for instrument in facts.instruments:
        wanted = instrument.type in types or (
            "CN_EXEMPT" in types and instrument.type.startswith("CN_EXEMPT_")
        )
        if not wanted or not instrument.in_force(facts.now):
            continue
        if not instrument.covers(column, facts.grant.purpose):
            continue
        if instrument.type == "CN_EXEMPT_UNDER_THRESHOLD" and (
            spi or facts.counters.under_threshold_exhausted
        ):
            continue  # rule 6: path (c) "under threshold" ends once a threshold is crossed
        found.append(instrument)
    return found


def _gba_sc(facts: DecisionInput, column: str) -> Check:
    origin = jurisdiction_of_origin(facts.dataset.origin)
    kind = gba_sc_type(origin, facts.consumer.jurisdiction)
    if kind is None or facts.dataset.dsl_level == "important":
        return Check(False)
    if origin == "mainland" and facts.dataset.origin != "CN-GBA9":
        return Check(False)  # the provider must be registered in a GBA-9 city
    if not facts.grant.no_onward_transfer:
        return Check(False)  # the consumer has not accepted "no onward transfer outside the GBA"
    found = _instruments(facts, column, (kind,), spi=False)
    return Check(bool(found), tuple(_ref(i) for i in found[:1]))


def evaluate_condition(
    condition: Condition, facts: DecisionInput, column: str, *, spi: bool
) -> Check:
    dataset = facts.dataset
    if condition.name == "purpose_compatible":
        purpose = facts.grant.purpose
        if purpose in dataset.collection_purposes:
            return Check(True, (f"collection purpose {purpose}",))
        if purpose in dataset.consented_purposes:
            return Check(True, (f"consent for {purpose}",))
        return Check(False)
    if condition.name == "separate_consent":
        return Check(dataset.separate_consent, ("separate consent attested",))
    if condition.name == "spi_release":
        held = dataset.spi_release and bool(dataset.pipia_ref)
        return Check(held, (f"spi release, PIPIA {dataset.pipia_ref}",))
    if condition.name == "gba_sc":
        return _gba_sc(facts, column)
    if condition.name == "purpose":
        held = facts.grant.purpose in condition.types
        return Check(held, (f"purpose {facts.grant.purpose}",))
    if condition.name == "instrument":
        found = _instruments(facts, column, condition.types, spi=spi)
        return Check(bool(found), tuple(_ref(i) for i in found[:1]))
    raise AssertionError(f"condition {condition.name!r} passed rule-set validation")


def first_alternative(
    alternatives: tuple[tuple[Condition, ...], ...],
    facts: DecisionInput,
    column: str,
    *,
    spi: bool,
) -> Check:
    """The first alternative whose conditions all hold (with their bases), else not held."""
    for alternative in alternatives:
        basis: list[str] = []
        for condition in alternative:
            check = evaluate_condition(condition, facts, column, spi=spi)
            if not check.holds:
                break
            basis.extend(check.basis)
        else:
            return Check(True, tuple(basis))
    return Check(False)
