"""Estimated and actual cost of a change, and their variance (minor units; never floats)."""

from __future__ import annotations

from typing import Any

from .intake import Money as Money  # costs.Money: the type of what this module returns
from .intake import estimated_cost_of
from .models import Escalation


def estimated(escalation: Escalation) -> Money | None:
    return estimated_cost_of(escalation)


def actual(escalation: Escalation) -> Money | None:
    if escalation.actual_cost_minor is None:
        return None
    return Money(value_minor=escalation.actual_cost_minor, currency=escalation.actual_cost_currency)


def variance(escalation: Escalation) -> Money | None:
    """actual - estimated, when both are known in the same currency (positive: over the estimate)."""
    est, act = estimated(escalation), actual(escalation)
    if est is None or act is None or est.currency != act.currency:
        return None
    return Money(value_minor=act.value_minor - est.value_minor, currency=act.currency)


def money_dict(money: Money | None) -> dict[str, Any] | None:
    return {"value_minor": money.value_minor, "currency": money.currency} if money is not None else None
