"""The policy engine: one pure function from (consumer, dataset, grant, columns, purpose,
instruments, counters, time) to obligations.

``decide`` combines the grant with the cross-boundary rule set. Precedence, in order:

1. The dataset's own organisation reads everything in clear (route ``own``: not a delivery).
2. Columns outside the grant (or not asked for) are not visible at all.
3. Each visible column gets its §6.3 cell (column class × route); a dataset rule (rule 2,
   important data) applies on top. **Deny overrides mask overrides clear**: a denied column
   is dropped, a masked one is replaced by its mask.
4. A steward's mask on the grant applies to a column the rules let through in clear; where
   both mask, the stricter mask wins (null > redact > hmac > partial, generalise).
5. Row filter, aggregate-only, minimum group size and the version pin come from the grant
   unchanged (the rules add none today).
6. No visible column left → not allowed (the reason names each column's refusal).

Every decision records the rule set's ``name@version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policies.conditions import first_alternative
from policies.facts import DecisionInput, jurisdiction_of_origin
from policies.model import Mask
from policies.ruleset import RuleSet

MASK_STRENGTH = {"null": 4, "redact": 3, "hmac": 2, "partial": 1, "generalise": 1}


@dataclass(frozen=True)
class ColumnDecision:
    column: str
    pi: str
    cell: str  # the rule-set class: non_pi_general | non_pi_important | pi | spi
    outcome: str  # clear | mask | deny
    mask: Mask | None = None
    basis: tuple[str, ...] = ()  # what let it through (instrument refs, consent, purpose)
    reason: str = ""  # why it was masked or denied

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "pi": self.pi, "outcome": self.outcome}
        if self.mask is not None:
            out["mask"] = {"kind": self.mask.kind, **dict(self.mask.params)}
        if self.basis:
            out["basis"] = list(self.basis)
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class Decision:
    dataset_id: str
    route: str
    rule_set: str
    purpose: str
    grant_id: str | None
    column_decisions: tuple[ColumnDecision, ...]
    row_filter: str | None = None
    aggregate_only: bool = False
    min_group_size: int | None = None
    subject_column: str | None = None
    version_pin: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.column for c in self.column_decisions if c.outcome != "deny")

    @property
    def masks(self) -> tuple[Mask, ...]:
        return tuple(c.mask for c in self.column_decisions if c.mask is not None)

    @property
    def denied(self) -> tuple[ColumnDecision, ...]:
        return tuple(c for c in self.column_decisions if c.outcome == "deny")

    @property
    def allowed(self) -> bool:
        return bool(self.columns)

    @property
    def instruments(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for c in self.column_decisions:
            for basis in c.basis:
                if ":" in basis:
                    seen.setdefault(basis, None)
        return tuple(seen)

    def outcome(self, column: str) -> str:
        for c in self.column_decisions:
            if c.column == column:
                return c.outcome
        return "deny"

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_id,
            "route": self.route,
            "rule_set": self.rule_set,
            "purpose": self.purpose,
            "grant": self.grant_id,
            "allowed": self.allowed,
            "columns": [c.as_dict() for c in self.column_decisions],
            "row_filter": self.row_filter,
            "aggregate_only": self.aggregate_only,
            "min_group_size": self.min_group_size,
            "subject_column": self.subject_column,
            "version_pin": self.version_pin,
            "instruments": list(self.instruments),
            "notes": list(self.notes),
        }


def route_of(origin: str, consumer_jurisdiction: str) -> str:
    source = jurisdiction_of_origin(origin)
    if source == consumer_jurisdiction:
        return "same"
    if source == "mainland":
        return "mainland_to_sar"
    return f"{source.lower()}_to_{consumer_jurisdiction.lower()}"


def cell_class(pi: str, dsl_level: str) -> str:
    if pi == "non_pi":
        return "non_pi_important" if dsl_level == "important" else "non_pi_general"
    return "spi" if pi == "spi" else "pi"


def _stricter(first: Mask | None, second: Mask | None) -> Mask | None:
    if first is None or second is None:
        return first or second
    return first if MASK_STRENGTH[first.kind] >= MASK_STRENGTH[second.kind] else second


def decide(facts: DecisionInput, rules: RuleSet) -> Decision:
    """Obligations for one dataset reference (see the module docstring for precedence)."""
    dataset, grant = facts.dataset, facts.grant
    own = facts.consumer.org_id == dataset.org_id
    route = "own" if own else route_of(dataset.origin, facts.consumer.jurisdiction)
    asked = None if facts.columns is None else set(facts.columns)
    grant_masks = {m.column: m for m in grant.masks}
    decisions = []
    for column in dataset.columns:
        if asked is not None and column.name not in asked:
            continue
        if not own and grant.columns is not None and column.name not in grant.columns:
            continue
        cls = cell_class(column.pi, dataset.dsl_level)
        if own:
            decisions.append(ColumnDecision(column.name, column.pi, cls, "clear"))
            continue
        decisions.append(_column(facts, rules, route, column.name, column.pi, cls, grant_masks))
    if own:
        return Decision(dataset.dataset_id, route, rules.ref, grant.purpose, None, tuple(decisions))
    return Decision(
        dataset_id=dataset.dataset_id,
        route=route,
        rule_set=rules.ref,
        purpose=grant.purpose,
        grant_id=grant.id,
        column_decisions=tuple(decisions),
        row_filter=grant.row_filter,
        aggregate_only=grant.aggregate_only,
        min_group_size=grant.min_group_size,
        subject_column=grant.subject_column,
        version_pin=grant.version_pin,
    )


Verdict = tuple[str, tuple[str, ...], str]  # outcome, basis, reason


def _overrides(
    facts: DecisionInput, rules: RuleSet, route: str, name: str, spi: bool, verdict: Verdict
) -> Verdict:
    """Dataset rules (rule 2: important data) and column rules (rule 8: HKID) on top of the
    cell; each can only make the outcome stricter."""
    outcome, basis, reason = verdict
    for rule in rules.dataset_rules:
        if rule.dsl_level != facts.dataset.dsl_level or route not in rule.routes:
            continue
        held = first_alternative(rule.alternatives, facts, name, spi=spi)
        if not held.holds and rule.otherwise == "deny":
            outcome, basis = "deny", ()
            reason = f"{rule.dsl_level} data leaves the mainland only under CN_SEC_ASSESS (rule 2)"
    validator = next((c.validator for c in facts.dataset.columns if c.name == name), None)
    for column_rule in rules.column_rules:
        if column_rule.validator != validator or route not in column_rule.routes:
            continue
        if column_rule.origins and facts.dataset.origin not in column_rule.origins:
            continue
        held = first_alternative(column_rule.alternatives, facts, name, spi=spi)
        if not held.holds and outcome != "deny":
            outcome, basis = column_rule.otherwise, ()
            reason = column_rule.note or f"{validator} column rule of {rules.ref}"
    return outcome, basis, reason


def _column(
    facts: DecisionInput,
    rules: RuleSet,
    route: str,
    name: str,
    pi: str,
    cls: str,
    grant_masks: dict[str, Mask],
) -> ColumnDecision:
    spi = cls == "spi"
    if (cls, route) not in rules.cells:
        return ColumnDecision(
            name, pi, cls, "deny", reason=f"{cls} data has no route {route} ({rules.ref}: n/a)"
        )
    cell = rules.cell(cls, route)
    check = first_alternative(cell.alternatives, facts, name, spi=spi)
    outcome, basis, reason = "clear", check.basis, ""
    if not check.holds:
        outcome = cell.otherwise
        wanted = " or ".join(
            " and ".join(c.describe() for c in alternative) or "nothing"
            for alternative in cell.alternatives
        )
        reason = f"{cls} on route {route} needs {wanted}"
    outcome, basis, reason = _overrides(facts, rules, route, name, spi, (outcome, basis, reason))
    if outcome == "deny":
        return ColumnDecision(name, pi, cls, "deny", reason=reason)
    mask = grant_masks.get(name)
    if outcome == "mask":
        kind, params = rules.masks[cls]
        mask = _stricter(Mask(name, kind, params), mask)
    if mask is not None:
        if outcome == "clear":
            reason = "masked by the grant"
        kept = basis if outcome == "clear" else ()
        return ColumnDecision(name, pi, cls, "mask", mask, kept, reason)
    return ColumnDecision(name, pi, cls, "clear", basis=basis)
