"""The policy engine against DOMAIN.md §6.3, cell by cell (pure: no database).

``TABLE`` restates the quick decision table independently of policies/rules/*.yaml: each
row is (column class, route, what is on record) → clear | mask | deny. Every cell is
walked with its condition met and, where the table makes it conditional, not met.
"""

# ruff: noqa: E501 - the decision table below is kept one case per line, as a table reads
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from policies.engine import decide, route_of
from policies.facts import (
    ColumnFacts,
    Consumer,
    Counters,
    DatasetFacts,
    DecisionInput,
    GrantTerms,
    InstrumentFacts,
)
from policies.model import Mask
from policies.ruleset import RuleSetInvalid, load_rule_set, parse_rule_set

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RULES = load_rule_set()
COLUMN = {"non_pi": "reading", "pi": "operator_id", "spi": "face_template"}
REGION = {"mainland": "DG", "HK": "HK", "MO": "MO"}
ORIGIN = {"mainland": "CN-GBA9", "HK": "HK", "MO": "MO"}


def instrument(kind: str, **overrides: object) -> InstrumentFacts:
    base = InstrumentFacts(
        id=kind.lower(),
        type=kind,
        reference=f"{kind}-REF-1",
        effective_from=NOW - timedelta(days=30),
        expires_at=NOW + timedelta(days=300),
        columns=None,
        purposes=frozenset({"model_training"}),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def case(
    origin: str,
    consumer: str,
    *,
    dsl: str = "general",
    instruments: tuple[InstrumentFacts, ...] = (),
    purpose_ok: bool = False,
    consent: bool = False,
    spi_flag: bool = False,
    no_onward: bool = True,
    counters: Counters | None = None,
    masks: tuple[Mask, ...] = (),
) -> DecisionInput:
    dataset = DatasetFacts(
        dataset_id="ds1",
        org_id="provider",
        region=REGION[origin],
        origin=ORIGIN[origin],
        origin_city=REGION[origin] if origin == "mainland" else None,
        dsl_level=dsl,
        columns=(
            ColumnFacts("reading", "non_pi"),
            ColumnFacts("operator_id", "pi_direct_id"),
            ColumnFacts("face_template", "spi"),
        ),
        collection_purposes=frozenset({"model_training"} if purpose_ok else set()),
        separate_consent=consent,
        spi_release=spi_flag,
        pipia_ref="PIPIA-2026-07" if spi_flag else None,
    )
    return DecisionInput(
        consumer=Consumer("consumer", REGION[consumer], consumer),
        dataset=dataset,
        grant=GrantTerms("g1", "model_training", masks=masks, no_onward_transfer=no_onward),
        now=NOW,
        instruments=instruments,
        counters=counters or Counters(),
    )


GBA_SC = {"HK": instrument("GBA_SC_HK"), "MO": instrument("GBA_SC_MO")}
ALL_CONSENTS = {"purpose_ok": True, "consent": True, "spi_flag": True}

# (label, column class, dsl level, input, expected outcome)
TABLE: list[tuple[str, str, str, DecisionInput, str]] = []
for sar in ("HK", "MO"):
    TABLE += [
        # row 1: non-PI, general data: ✔ everywhere
        (f"nonpi-general same {sar}", "non_pi", "general", case(sar, sar), "clear"),
        (
            f"nonpi-general CN→{sar} gba",
            "non_pi",
            "general",
            case("mainland", sar, instruments=(GBA_SC[sar],)),
            "clear",
        ),
        (
            f"nonpi-general CN→{sar} national",
            "non_pi",
            "general",
            case("mainland", sar, instruments=(instrument("CN_SC"),)),
            "clear",
        ),
        (f"nonpi-general CN→{sar} none", "non_pi", "general", case("mainland", sar), "clear"),
        # row 2: non-PI, important data: only CN_SEC_ASSESS leaves the mainland
        (
            f"nonpi-important CN→{sar} gba",
            "non_pi",
            "important",
            case("mainland", sar, dsl="important", instruments=(GBA_SC[sar],)),
            "deny",
        ),
        (
            f"nonpi-important CN→{sar} sec-assess",
            "non_pi",
            "important",
            case("mainland", sar, dsl="important", instruments=(instrument("CN_SEC_ASSESS"),)),
            "clear",
        ),
        (
            f"nonpi-important CN→{sar} cn-sc",
            "non_pi",
            "important",
            case("mainland", sar, dsl="important", instruments=(instrument("CN_SC"),)),
            "deny",
        ),
        (
            f"nonpi-important CN→{sar} none",
            "non_pi",
            "important",
            case("mainland", sar, dsl="important"),
            "deny",
        ),
        # row 3: PI
        (
            f"pi CN→{sar} gba",
            "pi",
            "general",
            case("mainland", sar, instruments=(GBA_SC[sar],)),
            "clear",
        ),
        (
            f"pi CN→{sar} gba, onward transfer not accepted",
            "pi",
            "general",
            case("mainland", sar, instruments=(GBA_SC[sar],), no_onward=False),
            "mask",
        ),
        (
            f"pi CN→{sar} gba, column outside the filing",
            "pi",
            "general",
            case(
                "mainland", sar, instruments=(replace(GBA_SC[sar], columns=frozenset({"reading"})),)
            ),
            "mask",
        ),
        (
            f"pi CN→{sar} gba, purpose outside the filing",
            "pi",
            "general",
            case(
                "mainland",
                sar,
                instruments=(replace(GBA_SC[sar], purposes=frozenset({"analytics"})),),
            ),
            "mask",
        ),
        (
            f"pi CN→{sar} gba expired",
            "pi",
            "general",
            case(
                "mainland",
                sar,
                instruments=(replace(GBA_SC[sar], expires_at=NOW - timedelta(days=1)),),
            ),
            "mask",
        ),
        (
            f"pi CN→{sar} cn-sc",
            "pi",
            "general",
            case("mainland", sar, instruments=(instrument("CN_SC"),)),
            "clear",
        ),
        (
            f"pi CN→{sar} cn-cert",
            "pi",
            "general",
            case("mainland", sar, instruments=(instrument("CN_CERT"),)),
            "clear",
        ),
        (
            f"pi CN→{sar} exemption",
            "pi",
            "general",
            case("mainland", sar, instruments=(instrument("CN_EXEMPT_CONTRACT"),)),
            "clear",
        ),
        (f"pi CN→{sar} none", "pi", "general", case("mainland", sar), "mask"),
        # row 4: sensitive PI
        (
            f"spi CN→{sar} gba + flag + consent + PIPIA",
            "spi",
            "general",
            case("mainland", sar, instruments=(GBA_SC[sar],), **ALL_CONSENTS),
            "clear",
        ),
        (
            f"spi CN→{sar} gba without flag",
            "spi",
            "general",
            case("mainland", sar, instruments=(GBA_SC[sar],), consent=True),
            "mask",
        ),
        (
            f"spi CN→{sar} gba without consent",
            "spi",
            "general",
            case("mainland", sar, instruments=(GBA_SC[sar],), spi_flag=True),
            "mask",
        ),
        (
            f"spi CN→{sar} national + flag + consent",
            "spi",
            "general",
            case("mainland", sar, instruments=(instrument("CN_SC"),), **ALL_CONSENTS),
            "clear",
        ),
        (
            f"spi CN→{sar} national without flag",
            "spi",
            "general",
            case("mainland", sar, instruments=(instrument("CN_SC"),), consent=True),
            "mask",
        ),
        (f"spi CN→{sar} none", "spi", "general", case("mainland", sar, **ALL_CONSENTS), "mask"),
    ]
TABLE += [
    # GBA_SC_HK does not cover a Macao consumer (and vice versa)
    ("pi CN→MO with GBA_SC_HK", "pi", "general", case("mainland", "MO", instruments=(GBA_SC["HK"],)), "mask"),
    ("pi CN→HK with GBA_SC_MO", "pi", "general", case("mainland", "HK", instruments=(GBA_SC["MO"],)), "mask"),
    # same jurisdiction
    ("nonpi-important same mainland", "non_pi", "important", case("mainland", "mainland", dsl="important"), "clear"),
    ("pi same mainland purpose ok", "pi", "general", case("mainland", "mainland", purpose_ok=True), "clear"),
    ("pi same mainland purpose not ok", "pi", "general", case("mainland", "mainland"), "mask"),
    ("pi same HK purpose ok", "pi", "general", case("HK", "HK", purpose_ok=True), "clear"),
    ("spi same mainland purpose + consent", "spi", "general", case("mainland", "mainland", purpose_ok=True, consent=True), "clear"),
    ("spi same mainland without consent", "spi", "general", case("mainland", "mainland", purpose_ok=True), "mask"),
    ("spi same MO purpose + consent", "spi", "general", case("MO", "MO", purpose_ok=True, consent=True), "clear"),
    # HK → mainland GBA-9: DPP3 purpose check
    ("nonpi HK→CN", "non_pi", "general", case("HK", "mainland"), "clear"),
    ("pi HK→CN purpose ok", "pi", "general", case("HK", "mainland", purpose_ok=True), "clear"),
    ("pi HK→CN purpose not ok", "pi", "general", case("HK", "mainland"), "mask"),
    ("spi HK→CN purpose + consent", "spi", "general", case("HK", "mainland", purpose_ok=True, consent=True), "clear"),
    ("spi HK→CN purpose without consent", "spi", "general", case("HK", "mainland", purpose_ok=True), "mask"),
    # HK → MO: not in §6.3; decided like HK → mainland (DPP3 purpose check; s.33 not in force)
    ("nonpi HK→MO", "non_pi", "general", case("HK", "MO"), "clear"),
    ("pi HK→MO purpose ok", "pi", "general", case("HK", "MO", purpose_ok=True), "clear"),
    ("pi HK→MO purpose not ok", "pi", "general", case("HK", "MO"), "mask"),
    ("spi HK→MO purpose + consent", "spi", "general", case("HK", "MO", purpose_ok=True, consent=True), "clear"),
    ("spi HK→MO without consent", "spi", "general", case("HK", "MO", purpose_ok=True), "mask"),
    # MO → mainland GBA-9: GBA_SC_MO or Art. 20 notification; Art. 7 gate for SPI
    ("nonpi MO→CN", "non_pi", "general", case("MO", "mainland"), "clear"),
    ("pi MO→CN gba-mo", "pi", "general", case("MO", "mainland", instruments=(GBA_SC["MO"],)), "clear"),
    ("pi MO→CN art20", "pi", "general", case("MO", "mainland", instruments=(instrument("MO_ART20_NOTIF"),)), "clear"),
    ("pi MO→CN auth", "pi", "general", case("MO", "mainland", instruments=(instrument("MO_AUTH"),)), "clear"),
    ("pi MO→CN none", "pi", "general", case("MO", "mainland"), "mask"),
    ("spi MO→CN art7 gate met", "spi", "general", case("MO", "mainland", instruments=(instrument("MO_AUTH"),), **ALL_CONSENTS), "clear"),
    ("spi MO→CN art7 gate not met", "spi", "general", case("MO", "mainland", instruments=(instrument("MO_AUTH"),)), "deny"),
    ("spi MO→CN none", "spi", "general", case("MO", "mainland", **ALL_CONSENTS), "deny"),
    # MO → HK: only Art. 20 notification or authorisation (no GBA instrument)
    ("nonpi MO→HK", "non_pi", "general", case("MO", "HK"), "clear"),
    ("pi MO→HK art20", "pi", "general", case("MO", "HK", instruments=(instrument("MO_ART20_NOTIF"),)), "clear"),
    ("pi MO→HK auth", "pi", "general", case("MO", "HK", instruments=(instrument("MO_AUTH"),)), "clear"),
    ("pi MO→HK gba-mo does not cover HK", "pi", "general", case("MO", "HK", instruments=(GBA_SC["MO"],)), "mask"),
    ("pi MO→HK none", "pi", "general", case("MO", "HK"), "mask"),
    ("spi MO→HK art7 gate met", "spi", "general", case("MO", "HK", instruments=(instrument("MO_ART20_NOTIF"),), **ALL_CONSENTS), "clear"),
    ("spi MO→HK art7 gate not met", "spi", "general", case("MO", "HK", instruments=(instrument("MO_ART20_NOTIF"),)), "deny"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cls", "dsl", "facts", "expected"),
    [pytest.param(c, d, f, e, id=label) for label, c, d, f, e in TABLE],
)
def test_decision_table_cell(cls: str, dsl: str, facts: DecisionInput, expected: str) -> None:
    decision = decide(facts, RULES)
    assert decision.rule_set == "gba-cross-boundary@2"
    column = COLUMN[cls]
    assert decision.outcome(column) == expected, decision.as_dict()
    if expected == "mask":
        kind = {m.column: m.kind for m in decision.masks}[column]
        assert kind == ("hmac" if cls == "pi" else "null")
    if expected == "deny":
        assert column not in decision.columns
        assert next(c.reason for c in decision.denied if c.column == column)


def test_every_cell_of_the_rule_set_is_walked() -> None:
    walked = {
        (
            "non_pi_important" if (c == "non_pi" and d == "important") else
            "non_pi_general" if c == "non_pi" else c,
            route_of(f.dataset.origin, f.consumer.jurisdiction),
        )
        for _l, c, d, f, _e in TABLE
    }  # fmt: skip
    assert set(RULES.cells) <= walked


def test_important_data_denies_pi_columns_too_without_a_security_assessment() -> None:
    facts = case("mainland", "HK", dsl="important", instruments=(GBA_SC["HK"],))
    decision = decide(facts, RULES)
    assert decision.columns == ()
    assert not decision.allowed
    with_assessment = replace(facts, instruments=(instrument("CN_SEC_ASSESS"),))
    assert decide(with_assessment, RULES).outcome("operator_id") == "clear"


def test_owner_reads_everything_in_clear() -> None:
    facts = case("mainland", "HK")
    own = replace(facts, consumer=Consumer("provider", "DG", "mainland"))
    decision = decide(own, RULES)
    assert decision.route == "own"
    assert decision.masks == ()
    assert decision.columns == ("reading", "operator_id", "face_template")


def test_grant_columns_limit_what_is_visible_and_grant_masks_combine_strictly() -> None:
    facts = case("mainland", "HK", masks=(Mask("reading", "generalise", {"bucket": 10}),))
    facts = replace(
        facts, grant=replace(facts.grant, columns=frozenset({"reading", "operator_id"}))
    )
    decision = decide(facts, RULES)
    assert decision.columns == ("reading", "operator_id")
    masks = {m.column: m for m in decision.masks}
    assert masks["reading"].kind == "generalise"  # the steward's mask on a clear column
    assert masks["operator_id"].kind == "hmac"  # the rule's mask
    stricter = replace(
        facts, grant=replace(facts.grant, masks=(Mask("operator_id", "redact", {}),))
    )
    assert {m.column: m.kind for m in decide(stricter, RULES).masks}["operator_id"] == "redact"


def test_under_threshold_exemption_ends_once_the_yearly_counter_crosses_100k() -> None:
    exempt = (instrument("CN_EXEMPT_UNDER_THRESHOLD"),)
    below = case("mainland", "HK", instruments=exempt, counters=Counters(99_999, 0))
    above = case("mainland", "HK", instruments=exempt, counters=Counters(100_000, 0))
    assert decide(below, RULES).outcome("operator_id") == "clear"
    assert decide(above, RULES).outcome("operator_id") == "mask"


def test_instrument_not_yet_effective_does_not_count() -> None:
    future = replace(GBA_SC["HK"], effective_from=NOW + timedelta(days=1))
    assert decide(case("mainland", "HK", instruments=(future,)), RULES).outcome("operator_id") == (
        "mask"
    )


def test_decision_records_basis_and_obligations() -> None:
    facts = case("mainland", "HK", instruments=(GBA_SC["HK"],))
    document = decide(facts, RULES).as_dict()
    assert document["instruments"] == ["GBA_SC_HK:GBA_SC_HK-REF-1"]
    assert document["rule_set"] == "gba-cross-boundary@2"
    assert document["route"] == "mainland_to_sar"


def test_a_rule_set_with_an_unknown_condition_is_refused_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nversion: 1\nmasks: {pi: {kind: hmac}}\n"
        "cells:\n  - {class: pi, route: same, allow_if: [[trust_me]], otherwise: mask}\n"
    )
    with pytest.raises(RuleSetInvalid, match="unknown condition 'trust_me'"):
        parse_rule_set(bad)
    bad.write_text("name: x\nversion: 1\nmasks: {pi: {kind: sha1}}\ncells: []\n")
    with pytest.raises(RuleSetInvalid, match="mask kind 'sha1'"):
        parse_rule_set(bad)


def test_hkid_numbers_are_tokenised_unless_the_purpose_is_permitted() -> None:
    facts = case("HK", "mainland", purpose_ok=True)
    columns = (*facts.dataset.columns, ColumnFacts("hkid", "pi_direct_id", "hkid"))
    facts = replace(facts, dataset=replace(facts.dataset, columns=columns))
    decision = decide(facts, RULES)
    assert decision.outcome("operator_id") == "clear"  # DPP3 purpose check passes
    assert decision.outcome("hkid") == "mask"  # rule 8: the HKID Code of Practice
    assert "HKID Code of Practice" in next(
        c.reason for c in decision.column_decisions if c.column == "hkid"
    )
    permitted = replace(
        facts,
        grant=replace(facts.grant, purpose="regulatory_reporting"),
        dataset=replace(facts.dataset, collection_purposes=frozenset({"regulatory_reporting"})),
    )
    assert decide(permitted, RULES).outcome("hkid") == "clear"
    mainland = replace(facts, dataset=replace(facts.dataset, origin="CN-GBA9", region="DG"))
    same = replace(mainland, consumer=Consumer("consumer", "SZ", "mainland"))
    assert decide(same, RULES).outcome("hkid") == "clear"  # the rule is for HK-origin data
