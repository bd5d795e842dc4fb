"""Routing conditions: when a stage of a route applies to a request. Data, validated, never `eval`ed.

A condition is JSON:

- a test of one fact: ``{"fact": "amount", "op": ">=", "value": 500000000, "currency": "NGN"}``;
- ``{"all": [condition, ...]}`` (every one holds) or ``{"any": [condition, ...]}`` (at least one holds).

Facts (``request_facts`` makes them from a request, once, at creation or amendment):

| fact | ops | value |
|---|---|---|
| ``amount``, ``estimated_cost`` | ``>=``, ``<=``, ``=`` | minor units, with ``currency`` (holds only in that currency) |
| ``risk_level`` | ``=``, ``in``, ``>=``, ``<=`` | low < medium < high |
| ``urgency`` | ``=``, ``in``, ``>=``, ``<=`` | low < normal < high < critical |
| ``source.system``, ``source.entity_type`` | ``=``, ``in`` | text |
| ``payload.<key>[.<key>...]`` | ``=``, ``in``; ``>=``, ``<=`` with a number | text, number or true/false |

Evaluation never raises: a missing fact, another currency, or a payload value of another type is "does not hold".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustguard.errors import ValidationFailed
from trustguard.money import format_money

from .models import RiskLevel, Urgency

OPS = ("=", "in", ">=", "<=")
MONEY_FACTS = ("amount", "estimated_cost")
ORDERED_FACTS: dict[str, tuple[str, ...]] = {"risk_level": tuple(RiskLevel.values), "urgency": tuple(Urgency.values)}
TEXT_FACTS = ("source.system", "source.entity_type")
PAYLOAD_PREFIX = "payload."
FACT_CHOICES = [("amount", "Amount"), ("estimated_cost", "Estimated cost"), ("risk_level", "Risk level"),
                ("urgency", "Urgency"), ("source.system", "Source system"), ("source.entity_type", "Entity type"),
                ("payload.", "Payload attribute (payload.<key>)")]
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3}")
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_DEPTH = 3
MAX_TESTS = 20
MAX_IN = 50
_SYMBOL = {"=": "=", "in": "in", ">=": "≥", "<=": "≤"}


@dataclass(frozen=True)
class Facts:
    """What a condition may look at, taken from one request (see `request_facts`)."""

    amount: tuple[int, str] | None = None
    estimated_cost: tuple[int, str] | None = None
    risk_level: str | None = None
    urgency: str | None = None
    source: Mapping[str, str] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


def _money_pair(money: Any) -> tuple[int, str] | None:
    """(value_minor, currency) of a Money, a {value_minor, currency} dict, or None."""
    if money is None:
        return None
    if isinstance(money, Mapping):
        value, currency = money.get("value_minor"), money.get("currency")
    else:
        value, currency = getattr(money, "value_minor", None), getattr(money, "currency", None)
    if isinstance(value, bool) or not isinstance(value, int) or not isinstance(currency, str):
        return None
    return value, currency


def request_facts(*, amount: Any = None, estimated_cost: Any = None, risk_level: str | None = None,
                  urgency: str | None = None, source_system: str = "", source_entity_type: str = "",
                  payload: Mapping[str, Any] | None = None) -> Facts:
    """The one mapping from a request (create, check, amendment, the editor's preview) to condition facts."""
    return Facts(amount=_money_pair(amount), estimated_cost=_money_pair(estimated_cost), risk_level=risk_level,
                 urgency=urgency, source={"system": source_system or "", "entity_type": source_entity_type or ""},
                 payload=dict(payload or {}))


def escalation_facts(escalation: Any) -> Facts:
    """Facts of a stored escalation (an amendment re-evaluates its route from these, changed)."""
    amount = ((escalation.amount_minor, escalation.currency) if escalation.amount_minor is not None else None)
    cost = ((escalation.estimated_cost_minor, escalation.estimated_cost_currency)
            if escalation.estimated_cost_minor is not None else None)
    return Facts(amount=amount, estimated_cost=cost, risk_level=escalation.risk_level, urgency=escalation.urgency,
                 source={"system": escalation.source_system, "entity_type": escalation.source_entity_type},
                 payload=dict(escalation.payload or {}))


# --- validation ------------------------------------------------------------------------------------


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors={field: [message]})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and value == value and abs(value) != float("inf"))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def validate_condition(condition: Any, field: str = "when", *, _depth: int = 0, _count: list[int] | None = None
                       ) -> dict[str, Any]:
    """Check a condition and return it normalised; raise ValidationFailed naming the bad part (`field.value`...)."""
    count = _count if _count is not None else [0]
    if not isinstance(condition, dict):
        raise _fail(field, 'A condition is an object: {"fact", "op", "value"} or {"all": [...]} or {"any": [...]}.')
    groups = [k for k in ("all", "any") if k in condition]
    if groups:
        key = groups[0]
        if len(condition) != 1:
            raise _fail(field, f'"{key}" stands alone in its object.')
        if _depth >= MAX_DEPTH:
            raise _fail(field, f"At most {MAX_DEPTH} levels of all/any.")
        parts = condition[key]
        if not isinstance(parts, list) or not parts:
            raise _fail(f"{field}.{key}", "A non-empty list of conditions.")
        return {key: [validate_condition(p, f"{field}.{key}[{i}]", _depth=_depth + 1, _count=count)
                      for i, p in enumerate(parts)]}
    count[0] += 1
    if count[0] > MAX_TESTS:
        raise _fail(field, f"At most {MAX_TESTS} tests in one condition.")
    unknown = set(condition) - {"fact", "op", "value", "currency"}
    if unknown:
        raise _fail(field, f"Unknown keys: {', '.join(sorted(unknown))}; use fact, op, value (and currency).")
    fact, op, value = condition.get("fact"), condition.get("op"), condition.get("value")
    if op not in OPS:
        raise _fail(f"{field}.op", f"Choose one of {', '.join(OPS)}.")
    if not isinstance(fact, str):
        raise _fail(f"{field}.fact", "Name a fact: amount, estimated_cost, risk_level, urgency, source.system, "
                                     "source.entity_type or payload.<key>.")
    out: dict[str, Any] = {"fact": fact, "op": op, "value": value}
    if fact in MONEY_FACTS:
        if op == "in":
            raise _fail(f"{field}.op", f"{fact} compares with >=, <= or =.")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _fail(f"{field}.value", f"{fact} is money: a whole, non-negative number of minor units.")
        currency = condition.get("currency")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            raise _fail(f"{field}.currency", f"A threshold on {fact} names its ISO 4217 currency, e.g. NGN.")
        out["currency"] = currency
    elif "currency" in condition:
        raise _fail(f"{field}.currency", f"Only amount and estimated_cost take a currency, not {fact}.")
    elif fact in ORDERED_FACTS:
        allowed = ORDERED_FACTS[fact]
        values = value if op == "in" else [value]
        if not isinstance(values, list) or not values or len(values) > MAX_IN or any(v not in allowed for v in values):
            raise _fail(f"{field}.value", f"{fact} is one of {', '.join(allowed)}"
                                          + (" (a list of them for in)." if op == "in" else "."))
    elif fact in TEXT_FACTS:
        values = value if op == "in" else [value]
        if op in (">=", "<="):
            raise _fail(f"{field}.op", f"{fact} is text: compare with = or in.")
        if not isinstance(values, list) or not values or len(values) > MAX_IN or any(
                not isinstance(v, str) or not v or len(v) > 200 for v in values):
            raise _fail(f"{field}.value", f"{fact} is text" + (": a list of texts for in." if op == "in" else "."))
    elif fact.startswith(PAYLOAD_PREFIX):
        if not _KEY.fullmatch(fact[len(PAYLOAD_PREFIX):]):
            raise _fail(f"{field}.fact", "payload.<key>: letters, digits and _, up to 4 keys joined by dots.")
        if op in (">=", "<="):
            if not _is_number(value):
                raise _fail(f"{field}.value", f"{op} compares numbers: the value must be a number.")
        elif op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_IN or not all(_is_scalar(v) for v in value):
                raise _fail(f"{field}.value", "in takes a list of texts, numbers or true/false.")
        elif not _is_scalar(value):
            raise _fail(f"{field}.value", "= takes a text, a number or true/false.")
    else:
        raise _fail(f"{field}.fact", f"Unknown fact {fact!r}.")
    return out


# --- evaluation --------------------------------------------------------------------------------------


_MISSING = object()


def _payload_value(payload: Mapping[str, Any], path: str) -> Any:
    value: Any = payload
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equality that never mixes types: true is not 1, "5" is not 5 (an int and a float may compare)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "=":
        return _same(actual, expected)
    if op == "in":
        return any(_same(actual, v) for v in expected)
    if not (_is_number(actual) and _is_number(expected)):
        return False
    return bool(actual >= expected) if op == ">=" else bool(actual <= expected)


def evaluate(condition: Mapping[str, Any] | None, facts: Facts) -> bool:
    """Whether a (validated) condition holds for these facts; no condition always holds."""
    if not condition:
        return True
    if "all" in condition:
        return all(evaluate(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, facts) for c in condition["any"])
    fact, op, value = condition["fact"], condition["op"], condition["value"]
    if fact in MONEY_FACTS:
        money = getattr(facts, fact)
        if money is None or money[1] != condition.get("currency"):
            return False
        return _compare(op, money[0], value)
    if fact in ORDERED_FACTS:
        order = ORDERED_FACTS[fact]
        actual = getattr(facts, fact)
        if actual not in order:
            return False
        if op in (">=", "<="):
            return _compare(op, order.index(actual), order.index(value))
        return _compare(op, actual, value)
    if fact in TEXT_FACTS:
        return _compare(op, facts.source.get(fact.split(".", 1)[1], ""), value)
    actual = _payload_value(facts.payload, fact[len(PAYLOAD_PREFIX):])
    return actual is not _MISSING and _compare(op, actual, value)


def describe(condition: Mapping[str, Any] | None, locale: str | None = None) -> str:
    """How people read a condition: "amount ≥ ₦5,000,000.00", "risk_level in high, medium"."""
    if not condition:
        return "always"
    for key, word in (("all", " and "), ("any", " or ")):
        if key in condition:
            parts = [describe(c, locale) for c in condition[key]]
            return "(" + word.join(parts) + ")" if len(parts) > 1 else parts[0]
    fact, op, value = condition["fact"], condition["op"], condition["value"]
    if fact in MONEY_FACTS:
        shown = format_money(value, condition.get("currency", ""), locale)
    elif isinstance(value, list):
        shown = ", ".join(str(v) for v in value)
    else:
        shown = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{fact.replace('_', ' ')} {_SYMBOL[op]} {shown}"
