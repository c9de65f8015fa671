"""Unit tests for insights.scoring: rules, details, tiers, disqualifier caps, and properties."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insights.config import Criterion, Disqualifier, ICPDefinition
from insights.scoring import evaluate_rule, score_account, tier_for

TIERS = {"A": 80, "B": 60, "C": 40, "D": 0}

# The contract's example ICP (weights add up to 100, so scores read as the sum of matched weights).
ICP = ICPDefinition.model_validate(
    {
        "version": "2026-Q4",
        "criteria": [
            {
                "name": "Industry",
                "field": "industry",
                "any_of": ["Software", "Financial Services", "Healthcare"],
                "weight": 30,
            },
            {"name": "Company size", "field": "employees", "between": [200, 5000], "weight": 30},
            {
                "name": "Region",
                "field": "country",
                "any_of": ["United States", "Canada", "United Kingdom", "Finland", "Sweden"],
                "weight": 20,
            },
            {"name": "Revenue", "field": "annual_revenue", "at_least": 20_000_000, "weight": 20},
        ],
        "disqualifiers": [
            {"name": "Too small", "field": "employees", "below": 50},
            {"name": "Public sector", "field": "industry", "any_of": ["Government"], "cap": "C"},
        ],
        "tiers": TIERS,
    }
)
IDEAL = {"industry": "Software", "employees": 850, "country": "Finland", "annual_revenue": 25_000_000}


_ABSENT = object()  # a field the account does not have at all


def rule(**spec: Any) -> Criterion:
    return Criterion.model_validate({"name": "Rule", **spec})


def check(spec: dict[str, Any], value: Any) -> tuple[bool | None, str]:
    criterion = rule(**spec)
    fields = {} if value is _ABSENT else {criterion.field: value}
    return evaluate_rule(criterion, fields)


# --- each operator: matched, not matched, unknown ----------------------------------------------

OPERATOR_CASES: list[tuple[dict[str, Any], Any, Any]] = [
    # spec, matching value, non-matching value
    ({"field": "industry", "any_of": ["Software", "Healthcare"]}, "software", "Retail"),
    ({"field": "industry", "none_of": ["Government", "Education"]}, "Retail", "GOVERNMENT"),
    ({"field": "type", "equals": "Customer"}, "customer", "Prospect"),
    ({"field": "employees", "between": [200, 5000]}, 850, 5001),
    ({"field": "annual_revenue", "at_least": 20_000_000}, 20_000_000, 19_999_999),
    ({"field": "employees", "at_most": 100}, 100, 101),
    ({"field": "employees", "below": 50}, 49, 50),
    ({"field": "employees", "above": 10}, 11, 10),
    ({"field": "tech_stack", "contains": "Salesforce"}, "Salesforce; Slack", "HubSpot; Slack"),
]
OPERATOR_IDS = [next(k for k in spec if k != "field") for spec, _, _ in OPERATOR_CASES]


@pytest.mark.parametrize(("spec", "good", "bad"), OPERATOR_CASES, ids=OPERATOR_IDS)
def test_operator_matches(spec: dict[str, Any], good: Any, bad: Any) -> None:
    assert check(spec, good)[0] is True


@pytest.mark.parametrize(("spec", "good", "bad"), OPERATOR_CASES, ids=OPERATOR_IDS)
def test_operator_does_not_match(spec: dict[str, Any], good: Any, bad: Any) -> None:
    assert check(spec, bad)[0] is False


@pytest.mark.parametrize(
    "missing",
    [_ABSENT, None, math.nan, "", "   ", "\t\n"],
    ids=["absent", "None", "NaN", "empty", "spaces", "whitespace"],
)
@pytest.mark.parametrize(("spec", "good", "bad"), OPERATOR_CASES, ids=OPERATOR_IDS)
def test_missing_value_is_unknown_never_a_miss(
    spec: dict[str, Any], good: Any, bad: Any, missing: Any
) -> None:
    matched, detail = check(spec, missing)
    assert matched is None
    assert detail.startswith("no ") and detail.endswith(" on record")


@pytest.mark.parametrize(
    ("field", "detail"),
    [
        ("employees", "no employees on record"),
        ("annual_revenue", "no annual revenue on record"),
        ("arr", "no ARR on record"),
        ("tech_stack", "no tech stack on record"),
    ],
)
def test_unknown_detail_names_the_field(field: str, detail: str) -> None:
    assert evaluate_rule(rule(field=field, at_least=1), {}) == (None, detail)


@pytest.mark.parametrize("op", ["between", "at_least", "at_most", "below", "above"])
@pytest.mark.parametrize("value", ["lots", "n/a", "about 500", True, ["850"]])
def test_numeric_operator_on_non_numeric_value_is_unknown(op: str, value: Any) -> None:
    operand: Any = [200, 5000] if op == "between" else 100
    matched, detail = evaluate_rule(rule(field="employees", **{op: operand}), {"employees": value})
    assert matched is None
    assert detail.endswith("is not a number")


def test_non_numeric_detail_quotes_the_value() -> None:
    assert evaluate_rule(rule(field="employees", below=50), {"employees": "lots"}) == (
        None,
        "employees 'lots' is not a number",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("850", True), ("1,200", True), ("1.2k", True), ("5,001", False), (850.0, True), (199.99, False)],
)
def test_numeric_operators_read_numbers_written_as_text(value: Any, expected: bool) -> None:
    assert check({"field": "employees", "between": [200, 5000]}, value)[0] is expected


# --- human details -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "detail"),
    [
        ({"field": "employees", "between": [200, 5000]}, 850, "850 employees, within 200–5,000"),
        ({"field": "employees", "between": [200, 5000]}, "1,200", "1,200 employees, within 200–5,000"),
        ({"field": "employees", "between": [200, 5000]}, 50, "50 employees, outside 200–5,000"),
        ({"field": "annual_revenue", "at_least": 20_000_000}, 25_000_000, "annual revenue 25M, at least 20M"),
        ({"field": "annual_revenue", "at_least": 20_000_000}, 1_500_000, "annual revenue 1.5M, below 20M"),
        ({"field": "arr", "at_most": 1_000_000}, 420_000, "ARR 420,000, at most 1M"),
        ({"field": "arr", "at_most": 1_000_000}, 2_000_000_000, "ARR 2B, above 1M"),
        ({"field": "employees", "below": 50}, 49, "49 employees, below 50"),
        ({"field": "employees", "below": 50}, 50, "50 employees, not below 50"),
        ({"field": "employees", "above": 10}, 11, "11 employees, above 10"),
        ({"field": "employees", "above": 10}, 10, "10 employees, not above 10"),
        ({"field": "seat_count", "above": 10}, 12, "seat count 12, above 10"),
        (
            {"field": "industry", "any_of": ["Software", "Healthcare"]},
            "software",
            "industry software, one of Software, Healthcare",
        ),
        (
            {"field": "industry", "any_of": ["Software", "Healthcare"]},
            "Retail",
            "industry Retail, not one of Software, Healthcare",
        ),
        (
            {"field": "industry", "none_of": ["Government"]},
            "Retail",
            "industry Retail, not excluded (Government)",
        ),
        (
            {"field": "industry", "none_of": ["Government"]},
            "government",
            "industry government, excluded (Government)",
        ),
        ({"field": "type", "equals": "Customer"}, "customer", "type customer, is Customer"),
        ({"field": "type", "equals": "Customer"}, "Prospect", "type Prospect, is not Customer"),
        (
            {"field": "tech_stack", "contains": "Salesforce"},
            "Salesforce; Slack",
            "tech stack includes Salesforce",
        ),
        (
            {"field": "tech_stack", "contains": ["Salesforce", "AWS"]},
            "Salesforce; Slack",
            "tech stack lacks AWS",
        ),
    ],
)
def test_details_read_as_a_sentence(spec: dict[str, Any], value: Any, detail: str) -> None:
    assert check(spec, value)[1] == detail


def test_long_option_lists_are_shortened_in_details() -> None:
    options = [f"Industry {i}" for i in range(9)]
    _, detail = check({"field": "industry", "any_of": options}, "Retail")
    assert detail.endswith("Industry 5 and 3 more")


# --- text comparison ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["Software", "SOFTWARE", "software", "  Software  ", "Sóftware"])
def test_text_comparison_ignores_case_accents_and_padding(value: str) -> None:
    assert check({"field": "industry", "any_of": ["Software"]}, value)[0] is True
    assert check({"field": "industry", "equals": "software"}, value)[0] is True
    assert check({"field": "industry", "none_of": ["SOFTWARE"]}, value)[0] is False


@pytest.mark.parametrize(("value", "expected"), [("5", True), ("5.0", True), (5.0, True), ("five", False)])
def test_equals_compares_numbers_as_numbers(value: Any, expected: bool) -> None:
    assert check({"field": "seats", "equals": 5}, value)[0] is expected


def test_any_of_on_a_list_valued_field_matches_any_item() -> None:
    assert check({"field": "industry", "any_of": ["Software"]}, ["Retail", "software"])[0] is True
    assert check({"field": "industry", "none_of": ["Software"]}, ["Retail", "software"])[0] is False
    assert check({"field": "industry", "any_of": ["Software"]}, ["Retail", "Media"])[0] is False


# --- contains ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "value", "expected"),
    [
        ("Salesforce", "Salesforce; Slack", True),
        ("salesforce", "Salesforce; Slack", True),
        ("Slack", "Salesforce;Slack", True),
        ("Okta", "Salesforce, Slack, AWS | Okta", True),
        ("Sales", "Salesforce; Slack", False),  # whole items, not substrings
        (["Salesforce", "Slack"], "Salesforce; Slack; AWS", True),
        (["Salesforce", "AWS"], "Salesforce; Slack", False),  # every wanted item must be there
        ("Salesforce", ["SALESFORCE", "Slack"], True),
        (["salesforce", "aws"], ["Salesforce", "AWS", "Okta"], True),
        ("AWS", ["Salesforce", "Slack"], False),
    ],
)
def test_contains_on_delimited_strings_and_lists(wanted: Any, value: Any, expected: bool) -> None:
    assert check({"field": "tech_stack", "contains": wanted}, value)[0] is expected


# --- tiers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "tier"),
    [(100, "A"), (80, "A"), (79, "B"), (60, "B"), (59, "C"), (40, "C"), (39, "D"), (1, "D"), (0, "D")],
)
def test_tier_for_takes_the_best_tier_whose_minimum_is_reached(score: int, tier: str) -> None:
    assert tier_for(score, TIERS) == tier


def test_tier_for_with_custom_tiers() -> None:
    tiers = {"Gold": 70, "Silver": 30, "Bronze": 0}
    assert [tier_for(s, tiers) for s in (70, 69, 30, 29)] == ["Gold", "Silver", "Silver", "Bronze"]


# --- score_account -----------------------------------------------------------------------------


def test_ideal_account_scores_100_in_tier_a() -> None:
    fit = score_account(IDEAL, ICP)
    assert (fit.score, fit.tier, fit.uncapped_tier, fit.max_score) == (100, "A", "A", 100)
    assert [c.matched for c in fit.criteria] == [True, True, True, True]
    assert [c.weight for c in fit.criteria] == [30, 30, 20, 20]
    assert fit.criteria[1].detail == "850 employees, within 200–5,000"
    assert fit.disqualified_by == []
    assert fit.unknown == []


def test_score_is_the_weighted_share_of_matched_criteria() -> None:
    fields = {**IDEAL, "industry": "Retail", "country": "Germany"}  # misses 30 + 20
    fit = score_account(fields, ICP)
    assert (fit.score, fit.tier, fit.max_score) == (50, "C", 50)


def test_score_is_scaled_when_weights_do_not_add_up_to_100() -> None:
    icp = ICPDefinition.model_validate(
        {
            "version": "v",
            "criteria": [
                {"name": "One", "field": "a", "equals": "x", "weight": 1},
                {"name": "Two", "field": "b", "equals": "x", "weight": 2},
            ],
        }
    )
    assert score_account({"a": "x", "b": "y"}, icp).score == 33
    assert score_account({"a": "y", "b": "x"}, icp).score == 67
    assert score_account({"a": "x", "b": "x"}, icp).score == 100
    assert score_account({}, icp).score == 0


def test_unknown_criteria_add_nothing_but_count_towards_max_score() -> None:
    fit = score_account({"industry": "Software", "country": "Germany"}, ICP)
    assert fit.score == 30
    assert fit.max_score == 80  # 30 matched + 30 + 20 unknown; the 20 of Region is a miss
    assert fit.unknown == ["Company size", "Revenue"]
    assert [c.matched for c in fit.criteria] == [True, None, False, None]
    assert fit.tier == "D"


def test_account_with_no_data_scores_0_with_max_100() -> None:
    fit = score_account({}, ICP)
    assert (fit.score, fit.max_score, fit.tier) == (0, 100, "D")
    assert fit.unknown == ["Industry", "Company size", "Region", "Revenue"]
    assert [d.matched for d in fit.disqualifiers] == [None, None]
    assert fit.disqualified_by == []


def test_missing_values_of_every_kind_are_unknown_in_the_score() -> None:
    fit = score_account({"industry": None, "employees": math.nan, "country": "", "annual_revenue": "  "}, ICP)
    assert fit.unknown == ["Industry", "Company size", "Region", "Revenue"]
    assert fit.max_score == 100


def test_default_disqualifier_caps_at_the_lowest_tier() -> None:
    # 10 employees misses the size criterion: 70 points, a B, capped to D by "Too small".
    fit = score_account({**IDEAL, "employees": 10}, ICP)
    assert (fit.score, fit.uncapped_tier, fit.tier) == (70, "B", "D")
    assert fit.disqualified_by == ["Too small"]
    assert fit.disqualifiers[0].detail == "10 employees, below 50"
    assert fit.disqualifiers[0].weight == 0


def test_disqualifier_caps_at_its_named_tier() -> None:
    fit = score_account({**IDEAL, "industry": "Government"}, ICP)
    assert (fit.score, fit.uncapped_tier, fit.tier) == (70, "B", "C")
    assert fit.disqualified_by == ["Public sector"]


def test_cap_never_raises_a_tier() -> None:
    fit = score_account({"industry": "government"}, ICP)
    assert (fit.score, fit.uncapped_tier, fit.tier) == (0, "D", "D")
    assert fit.disqualified_by == ["Public sector"]


def test_the_worst_cap_wins_when_several_disqualifiers_match() -> None:
    fit = score_account({**IDEAL, "industry": "Government", "employees": 10}, ICP)
    assert fit.tier == "D"
    assert fit.disqualified_by == ["Too small", "Public sector"]


def test_unknown_disqualifier_does_not_cap() -> None:
    fields = {"industry": "Software", "country": "Finland", "annual_revenue": 25_000_000}
    fit = score_account(fields, ICP)  # employees unknown: "Too small" cannot match
    assert (fit.score, fit.tier) == (70, "B")
    assert fit.disqualifiers[0].matched is None
    assert fit.disqualified_by == []


def test_criteria_can_name_extra_fields() -> None:
    icp = ICPDefinition.model_validate(
        {
            "version": "v",
            "criteria": [
                {"name": "Runs Salesforce", "field": "tech_stack", "contains": "Salesforce", "weight": 10},
                {"name": "Private", "field": "ownership", "equals": "Private", "weight": 10},
            ],
        }
    )
    fit = score_account({"tech_stack": "Salesforce; Slack; AWS", "ownership": "private"}, icp)
    assert fit.score == 100
    assert [c.field for c in fit.criteria] == ["tech_stack", "ownership"]


# --- properties --------------------------------------------------------------------------------

FIELDS = ("industry", "employees", "country", "annual_revenue", "tech_stack")
PROBE_FIELD = "probe_field_not_in_fields"

texts = st.text(max_size=20)
scalars = st.one_of(
    texts,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
)
field_values = st.one_of(
    st.none(),
    st.just(math.nan),
    st.sampled_from(
        ["", "  ", "Software", "software", "Government", "1,200", "850", "lots", "Salesforce; Slack"]
    ),
    texts,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(texts, max_size=4),
)
account_fields = st.dictionaries(st.sampled_from(FIELDS), field_values)
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)


@st.composite
def operators(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(
        st.sampled_from(
            ["any_of", "none_of", "equals", "between", "at_least", "at_most", "below", "above", "contains"]
        )
    )
    if op in ("any_of", "none_of"):
        return {op: draw(st.lists(scalars, min_size=1, max_size=4))}
    if op == "equals":
        return {op: draw(scalars)}
    if op == "between":
        lo, hi = sorted((draw(finite), draw(finite)))
        return {op: [lo, hi]}
    if op == "contains":
        return {op: draw(st.one_of(texts, st.lists(texts, min_size=1, max_size=3)))}
    return {op: draw(finite)}


@st.composite
def tier_tables(draw: st.DrawFn) -> dict[str, int]:
    count = draw(st.integers(min_value=2, max_value=5))
    minimums = sorted(
        draw(st.sets(st.integers(min_value=1, max_value=100), min_size=count - 1, max_size=count - 1)),
        reverse=True,
    )
    return {f"T{i}": m for i, m in enumerate([*minimums, 0])}


@st.composite
def icp_definitions(draw: st.DrawFn) -> ICPDefinition:
    tiers = draw(tier_tables())
    criteria = [
        {
            "name": f"c{i}",
            "field": draw(st.sampled_from(FIELDS)),
            "weight": draw(st.integers(min_value=1, max_value=1000)),
            **draw(operators()),
        }
        for i in range(draw(st.integers(min_value=1, max_value=6)))
    ]
    disqualifiers = [
        {
            "name": f"d{i}",
            "field": draw(st.sampled_from(FIELDS)),
            "cap": draw(st.none() | st.sampled_from(list(tiers))),
            **draw(operators()),
        }
        for i in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    return ICPDefinition.model_validate(
        {"version": "prop", "criteria": criteria, "disqualifiers": disqualifiers, "tiers": tiers}
    )


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(icp=icp_definitions(), fields=account_fields)
def test_score_is_always_within_0_and_100(icp: ICPDefinition, fields: dict[str, Any]) -> None:
    fit = score_account(fields, icp)
    assert isinstance(fit.score, int)
    assert 0 <= fit.score <= fit.max_score <= 100
    assert fit.tier in icp.tiers
    assert fit.uncapped_tier == tier_for(fit.score, icp.tiers)
    assert len(fit.criteria) == len(icp.criteria)
    assert all(c.matched in (True, False, None) and c.detail for c in fit.criteria)


@PROPERTY_SETTINGS
@given(icp=icp_definitions(), fields=account_fields, weight=st.integers(min_value=1, max_value=1000))
def test_adding_a_matching_criterion_never_lowers_the_score(
    icp: ICPDefinition, fields: dict[str, Any], weight: int
) -> None:
    before = score_account(fields, icp)
    extra = Criterion(name="probe", field=PROBE_FIELD, equals="yes", weight=weight)
    wider = icp.model_copy(update={"criteria": [*icp.criteria, extra]})
    after = score_account({**fields, PROBE_FIELD: "YES"}, wider)
    assert after.criteria[-1].matched is True
    assert after.criteria[:-1] == before.criteria
    assert after.score >= before.score
    assert after.max_score >= before.max_score


@PROPERTY_SETTINGS
@given(icp=icp_definitions(), fields=account_fields)
def test_a_matching_disqualifier_always_caps_the_tier(icp: ICPDefinition, fields: dict[str, Any]) -> None:
    fit = score_account(fields, icp)
    names = list(icp.tiers)
    caps = [
        d.cap or names[-1] for d, r in zip(icp.disqualifiers, fit.disqualifiers, strict=True) if r.matched
    ]
    for cap in caps:
        assert names.index(fit.tier) >= names.index(cap)
    # The tier is exactly the worse of the score's tier and the worst matching cap.
    assert names.index(fit.tier) == max([names.index(fit.uncapped_tier), *(names.index(c) for c in caps)])
    assert fit.disqualified_by == [
        d.name for d, r in zip(icp.disqualifiers, fit.disqualifiers, strict=True) if r.matched
    ]


@PROPERTY_SETTINGS
@given(spec=operators(), missing=st.sampled_from([None, math.nan, "", "   ", "\n\t"]), present=st.booleans())
def test_missing_value_is_unknown_for_any_rule(spec: dict[str, Any], missing: Any, present: bool) -> None:
    disqualifier = Disqualifier.model_validate({"name": "d", "field": "f", **spec})
    fields = {"f": missing} if present else {}
    assert evaluate_rule(disqualifier, fields)[0] is None
