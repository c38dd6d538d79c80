"""Rule sets are data: ``policies/rules/*.yaml``, loaded and checked once.

A rule set names itself and carries a version; ``RuleSet.ref`` (``name@version``) is
recorded with every decision. Loading is strict: an unknown condition, class, route or
outcome, a missing cell or a mask kind that does not exist fails at load time (and in the
tests), never at decision time. See the YAML file's header for the semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args

import yaml

from policies.errors import PolicyError
from policies.model import MaskKind

RULES_DIR = Path(__file__).parent / "rules"
DEFAULT_RULE_SET = "cross_boundary"

CELL_CLASSES: tuple[str, ...] = ("non_pi_general", "non_pi_important", "pi", "spi")
ROUTES: tuple[str, ...] = (
    "same",
    "mainland_to_sar",
    "hk_to_mainland",
    "mo_to_mainland",
    "mo_to_hk",
    "hk_to_mo",
)
SIMPLE_CONDITIONS: frozenset[str] = frozenset(  # plus {instrument: [..]} and {purpose: [..]}
    {"purpose_compatible", "separate_consent", "spi_release", "gba_sc"}
)
OUTCOMES: tuple[str, ...] = ("mask", "deny")


class RuleSetInvalid(PolicyError):
    code = "rule_set_invalid"


@dataclass(frozen=True)
class Condition:
    name: str  # a SIMPLE_CONDITIONS member or "instrument"
    types: tuple[str, ...] = ()  # for "instrument"

    def describe(self) -> str:
        if self.name in ("instrument", "purpose"):
            return f"{self.name} in {list(self.types)}"
        return self.name


@dataclass(frozen=True)
class Cell:
    cls: str
    route: str
    alternatives: tuple[tuple[Condition, ...], ...]
    otherwise: str  # mask | deny


@dataclass(frozen=True)
class DatasetRule:
    dsl_level: str
    routes: frozenset[str]
    alternatives: tuple[tuple[Condition, ...], ...]
    otherwise: str


@dataclass(frozen=True)
class ColumnRule:
    """Applies to columns checked by an identifier validator, on top of their cell."""

    validator: str
    origins: frozenset[str]
    routes: frozenset[str]
    alternatives: tuple[tuple[Condition, ...], ...]
    otherwise: str
    note: str


@dataclass(frozen=True)
class RuleSet:
    name: str
    version: int
    source: str
    masks: dict[str, tuple[MaskKind, dict[str, Any]]]
    cells: dict[tuple[str, str], Cell]
    dataset_rules: tuple[DatasetRule, ...]
    document: dict[str, Any]
    column_rules: tuple[ColumnRule, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def cell(self, cls: str, route: str) -> Cell:
        return self.cells[(cls, route)]


def _fail(path: Path, message: str) -> RuleSetInvalid:
    return RuleSetInvalid(f"rule set {path.name}: {message}", file=str(path.name))


def _conditions(path: Path, raw: Any) -> tuple[tuple[Condition, ...], ...]:
    if not isinstance(raw, list) or not all(isinstance(a, list) for a in raw):
        raise _fail(path, "allow_if must be a list of lists of conditions")
    alternatives = []
    for alternative in raw:
        conditions = []
        for item in alternative:
            if isinstance(item, str) and item in SIMPLE_CONDITIONS:
                conditions.append(Condition(item))
            elif isinstance(item, dict) and set(item) == {"purpose"}:
                from policies.facts import PURPOSES

                purposes = item["purpose"]
                if not isinstance(purposes, list) or not set(purposes) <= set(PURPOSES):
                    raise _fail(path, f"purpose: needs a list of purposes from {PURPOSES}")
                conditions.append(Condition("purpose", tuple(purposes)))
            elif isinstance(item, dict) and set(item) == {"instrument"}:
                types = item["instrument"]
                if not isinstance(types, list) or not types:
                    raise _fail(path, "instrument: needs a non-empty list of instrument types")
                from policies.facts import INSTRUMENT_TYPES

                for kind in types:
                    if kind not in INSTRUMENT_TYPES and kind != "CN_EXEMPT":
                        raise _fail(path, f"unknown instrument type {kind!r}")
                conditions.append(Condition("instrument", tuple(types)))
            else:
                known = ", ".join(sorted(SIMPLE_CONDITIONS))
                raise _fail(path, f"unknown condition {item!r}; use {known} or instrument: [..]")
        alternatives.append(tuple(conditions))
    return tuple(alternatives)


def _otherwise(path: Path, entry: dict[str, Any]) -> str:
    otherwise = str(entry.get("otherwise", "deny"))
    if otherwise not in OUTCOMES:
        raise _fail(path, f"otherwise must be one of {OUTCOMES}, not {otherwise!r}")
    return otherwise


def parse_rule_set(path: Path) -> RuleSet:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise _fail(path, "expected a mapping at the top level")
    for key in ("name", "version", "cells", "masks"):
        if key not in document:
            raise _fail(path, f"missing {key!r}")
    masks: dict[str, tuple[MaskKind, dict[str, Any]]] = {}
    for cls, spec in document["masks"].items():
        kind = spec.get("kind")
        if kind not in get_args(MaskKind):
            raise _fail(path, f"mask kind {kind!r} for {cls} is not one of {get_args(MaskKind)}")
        masks[cls] = (kind, {k: v for k, v in spec.items() if k != "kind"})
    cells: dict[tuple[str, str], Cell] = {}
    for entry in document["cells"]:
        cls, route = entry.get("class"), entry.get("route")
        if cls not in CELL_CLASSES or route not in ROUTES:
            raise _fail(path, f"cell ({cls}, {route}): unknown class or route")
        if (cls, route) in cells:
            raise _fail(path, f"cell ({cls}, {route}) is defined twice")
        alternatives = _conditions(path, entry.get("allow_if", []))
        cell = Cell(cls, route, alternatives, _otherwise(path, entry))
        if cell.otherwise == "mask" and cls not in masks:
            raise _fail(path, f"cell ({cls}, {route}) masks but masks has no entry for {cls}")
        cells[(cls, route)] = cell
    dataset_rules = []
    for entry in document.get("dataset_rules", []):
        routes = frozenset(entry.get("route", []))
        if not routes <= set(ROUTES):
            raise _fail(path, f"dataset rule routes {sorted(routes)} include an unknown route")
        dataset_rules.append(
            DatasetRule(
                str(entry.get("dsl_level")),
                routes,
                _conditions(path, entry.get("allow_if", [])),
                _otherwise(path, entry),
            )
        )
    return RuleSet(
        name=str(document["name"]),
        version=int(document["version"]),
        source=str(document.get("source", "")),
        masks=masks,
        cells=cells,
        dataset_rules=tuple(dataset_rules),
        document=document,
        column_rules=_column_rules(path, document),
    )


def _column_rules(path: Path, document: dict[str, Any]) -> tuple[ColumnRule, ...]:
    column_rules = []
    for entry in document.get("column_rules", []):
        routes = frozenset(entry.get("route", []))
        if not routes <= set(ROUTES) or not entry.get("validator"):
            raise _fail(path, "a column rule needs a validator and known routes")
        rule = ColumnRule(
            str(entry["validator"]),
            frozenset(entry.get("origin", [])),
            routes,
            _conditions(path, entry.get("allow_if", [])),
            _otherwise(path, entry),
            str(entry.get("note", "")),
        )
        column_rules.append(rule)
    return tuple(column_rules)


@lru_cache(maxsize=8)
def load_rule_set(name: str = DEFAULT_RULE_SET) -> RuleSet:
    """The named rule set from ``policies/rules``; an incomplete table fails here."""
    path = RULES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise RuleSetInvalid(f"no rule set {name!r} in {RULES_DIR}", file=path.name)
    rules = parse_rule_set(path)
    missing = [(c, r) for c in CELL_CLASSES for r in ROUTES if (c, r) not in rules.cells]
    allowed_gaps = {("non_pi_important", r) for r in ROUTES if r not in ("same", "mainland_to_sar")}
    if set(missing) - allowed_gaps:
        raise _fail(path, f"cells missing: {sorted(set(missing) - allowed_gaps)}")
    return rules
