"""Routing conditions: a small expression model of data (no eval), validated and evaluated safely."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalations.conditions import (
    ORDERED_FACTS,
    Facts,
    describe,
    evaluate,
    request_facts,
    validate_condition,
)
from escalations.intake import Money
from escalations.routing import route_for_request
from trustguard.errors import ValidationFailed

AMOUNT = st.integers(min_value=0, max_value=2**62)
CURRENCY = st.sampled_from(["NGN", "USD", "EUR"])
JSON_SCALAR = st.one_of(st.text(max_size=10), st.integers(-10**6, 10**6), st.booleans(),
                        st.floats(allow_nan=False, allow_infinity=False), st.none())
JSON_ANY = st.recursive(JSON_SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=5), inner, max_size=3), max_leaves=8)


def facts(amount=None, **kwargs) -> Facts:
    return request_facts(amount=amount, **kwargs)


# --- given a threshold per currency ---------------------------------------------------------------


@given(threshold=AMOUNT, value=AMOUNT, currency=CURRENCY)
def test_an_amount_threshold_holds_exactly_when_the_amount_reaches_it_in_its_currency(threshold, value, currency):
    condition = validate_condition({"fact": "amount", "op": ">=", "value": threshold, "currency": "NGN"})

    assert evaluate(condition, facts(Money(value, currency))) == (currency == "NGN" and value >= threshold)


@given(threshold=AMOUNT, value=AMOUNT)
def test_at_least_and_at_most_cover_every_amount(threshold, value):
    at_least = {"fact": "amount", "op": ">=", "value": threshold, "currency": "NGN"}
    at_most = {"fact": "amount", "op": "<=", "value": threshold, "currency": "NGN"}

    held = [evaluate(c, facts(Money(value, "NGN"))) for c in (at_least, at_most)]

    assert any(held) and (all(held) == (value == threshold))


@given(value=AMOUNT)
def test_a_condition_on_estimated_cost_never_holds_without_one(value):
    condition = {"fact": "estimated_cost", "op": "<=", "value": value, "currency": "NGN"}

    assert not evaluate(condition, facts(Money(value, "NGN")))
    assert evaluate(condition, facts(estimated_cost={"value_minor": value, "currency": "NGN"}))


@given(fact=st.sampled_from(sorted(ORDERED_FACTS)), data=st.data())
def test_ordered_facts_compare_by_their_order_not_their_spelling(fact, data):
    order = ORDERED_FACTS[fact]
    threshold, actual = data.draw(st.sampled_from(order)), data.draw(st.sampled_from(order))
    condition = validate_condition({"fact": fact, "op": ">=", "value": threshold})

    assert evaluate(condition, request_facts(**{fact: actual})) == (order.index(actual) >= order.index(threshold))


@given(a=st.booleans(), b=st.booleans())
def test_all_and_any_are_and_and_or(a, b):
    yes = {"fact": "risk_level", "op": "=", "value": "high"}
    no = {"fact": "risk_level", "op": "=", "value": "low"}
    pick = {True: yes, False: no}
    f = facts(risk_level="high")

    assert evaluate({"all": [pick[a], pick[b]]}, f) == (a and b)
    assert evaluate({"any": [pick[a], pick[b]]}, f) == (a or b)


# --- payload attributes ------------------------------------------------------------------------------


@given(payload=st.dictionaries(st.sampled_from(["tier", "region", "size"]), JSON_ANY, max_size=3),
       op=st.sampled_from(["=", "in", ">=", "<="]), value=JSON_SCALAR)
def test_evaluating_any_payload_never_raises(payload, op, value):
    raw = {"fact": "payload.tier", "op": op, "value": [value] if op == "in" else value}
    try:
        condition = validate_condition(raw)
    except ValidationFailed:
        return  # refused at the door: never evaluated
    assert evaluate(condition, facts(payload=payload)) in (True, False)


@given(number=st.integers(-1000, 1000))
def test_a_number_never_equals_its_text_nor_a_boolean(number):
    assert not evaluate({"fact": "payload.size", "op": "=", "value": number}, facts(payload={"size": str(number)}))
    assert not evaluate({"fact": "payload.flag", "op": "=", "value": True}, facts(payload={"flag": 1}))
    assert evaluate({"fact": "payload.size", "op": ">=", "value": number}, facts(payload={"size": number}))


def test_a_nested_payload_attribute_is_read_by_its_dotted_path():
    condition = validate_condition({"fact": "payload.vendor.country", "op": "in", "value": ["IR", "KP"]})

    assert evaluate(condition, facts(payload={"vendor": {"country": "KP"}}))
    assert not evaluate(condition, facts(payload={"vendor": "KP"}))


# --- bad conditions name the field -------------------------------------------------------------------


@pytest.mark.parametrize("condition, field", [
    ({"fact": "amount", "op": ">=", "value": "5000", "currency": "NGN"}, "when.value"),
    ({"fact": "amount", "op": ">=", "value": 5000}, "when.currency"),
    ({"fact": "amount", "op": "in", "value": [1], "currency": "NGN"}, "when.op"),
    ({"fact": "risk_level", "op": "=", "value": "extreme"}, "when.value"),
    ({"fact": "urgency", "op": "in", "value": "high"}, "when.value"),
    ({"fact": "source.system", "op": ">=", "value": "shop"}, "when.op"),
    ({"fact": "payload.size", "op": ">=", "value": "big"}, "when.value"),
    ({"fact": "payload.", "op": "=", "value": "x"}, "when.fact"),
    ({"fact": "__class__", "op": "=", "value": "x"}, "when.fact"),
    ({"fact": "risk_level", "op": "~", "value": "x"}, "when.op"),
    ({"fact": "risk_level", "op": "=", "value": "low", "currency": "NGN"}, "when.currency"),
    ({"any": []}, "when.any"),
    ({"all": [{"fact": "urgency", "op": "=", "value": 1}]}, "when.all[0].value"),
    ("amount > 5", "when"),
])
def test_a_bad_condition_is_refused_naming_the_field(condition, field):
    with pytest.raises(ValidationFailed) as caught:
        validate_condition(condition)

    assert field in (caught.value.errors or {})


def test_a_condition_is_no_deeper_than_three_levels():
    leaf = {"fact": "risk_level", "op": "=", "value": "low"}
    deep = {"all": [{"any": [{"all": [{"any": [leaf]}]}]}]}

    with pytest.raises(ValidationFailed):
        validate_condition(deep)


@given(st.recursive(JSON_SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["fact", "op", "value", "currency", "all", "any", "x"]), inner, max_size=4), max_leaves=12))
@settings(max_examples=300)
def test_any_json_is_either_a_valid_condition_or_a_validation_error(document):
    try:
        condition = validate_condition(document)
    except ValidationFailed as exc:
        assert exc.errors and all(k.startswith("when") for k in exc.errors)
        return
    assert evaluate(condition, Facts()) in (True, False)
    assert describe(condition)


# --- the route of a request ----------------------------------------------------------------------------


def test_a_route_keeps_its_unconditional_stages_and_adds_a_conditional_one_when_it_holds():
    snapshot = {"approvals_by_risk": {"high": 2}, "route": [
        {"roles": ["ceo"], "approvals_required": 1},
        {"roles": ["governing_body"], "approvals_required": None,
         "when": {"fact": "risk_level", "op": "=", "value": "high"}}]}

    low = route_for_request(snapshot=snapshot, risk_level="low", facts=facts(risk_level="low"))
    high = route_for_request(snapshot=snapshot, risk_level="high", facts=facts(risk_level="high"))

    assert [(s.roles, s.approvals_required) for s in low.specs()] == [(["ceo"], 1)]
    assert [(s.roles, s.approvals_required) for s in high.specs()] == [(["ceo"], 1), (["governing_body"], 2)]
    assert high.pinned()[1]["condition"] == "risk level = high"


def test_a_condition_is_described_as_people_read_it():
    text = describe({"all": [{"fact": "amount", "op": ">=", "value": 500_000_000, "currency": "NGN"},
                             {"fact": "urgency", "op": "in", "value": ["high", "critical"]}]})

    assert text == "(amount ≥ ₦5,000,000.00 and urgency in high, critical)"
