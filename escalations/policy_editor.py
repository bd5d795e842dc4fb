"""The operators' policy editor (admin): durations in minutes/hours/days, a route builder, choices not JSON,
and a preview of the route a request would take.

The form only translates between fields people fill in and the policy document; every rule is the policy's
own (policies.validate_policy_fields, models.stage_approvals, conditions.validate_condition), and the preview
evaluates the route with routing.route_for_request, the function /escalations/check and creation call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import UnknownCurrencyError, get_currency_precision
from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Tenant, User
from accounts.roles import Role, role_label
from accounts.selectors import named_members, role_members, tenant_people, tenant_roles
from trustguard.errors import ValidationFailed
from trustguard.money import format_money

from .conditions import FACT_CHOICES, MONEY_FACTS, OPS, PAYLOAD_PREFIX, describe, request_facts
from .models import APPROVALS_PRECEDENCE, Policy, RiskLevel, Urgency, stage_approvals
from .policies import CHANNELS, match_trigger, validate_policy_fields
from .routing import RouteDecision, route_for_request

MAX_STAGES = 4
LADDER_LEVELS = 3
UNITS = (("minutes", _("minutes")), ("hours", _("hours")), ("days", _("days")))
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
DURATIONS = {"ack_sla_seconds": _("Acknowledge within"), "expiry_seconds": _("Decide within (then it expires)"),
             "max_deferral_seconds": _("A deferral reaches at most"),
             "approval_ttl_seconds": _("An approval stays valid for"),
             "max_window_seconds": _("An execution window lasts at most"),
             "condition_due_seconds": _("A condition falls due after")}
# Durations that may be left empty (none): an approval without a TTL stays valid until executed or the window ends.
OPTIONAL_DURATIONS = ("approval_ttl_seconds",)
MODE_FIXED, MODE_BY_RISK = "fixed", "by_risk"
PLAIN_FIELDS = ("name", "default_risk_level", "max_escalation_level", "single_employee_mode", "expiry_outcome",
                "high_risk_expiry_outcome", "deferral_may_extend_expiry", "is_active")


def _precision(currency: str) -> int:
    try:
        return int(get_currency_precision(currency))
    except (UnknownCurrencyError, ValueError):
        return 2


def split_duration(seconds: int) -> tuple[int, str]:
    """4 hours, not 14400 seconds: the largest unit that divides it."""
    for unit in ("days", "hours"):
        if seconds and seconds % UNIT_SECONDS[unit] == 0:
            return seconds // UNIT_SECONDS[unit], unit
    return max(1, seconds // 60), "minutes"


def _parse_scalar(text: str) -> Any:
    """An attribute value typed into a box: a whole number, a decimal, true/false, or text."""
    value = text.strip()
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
        return number if number == number and abs(number) != float("inf") else value
    except ValueError:
        return value


class PolicyEditorForm(forms.ModelForm[Policy]):
    """A policy as operators think of it. Stage i's fields are stage_<i>_*; see `route_document`."""

    class Meta:
        model = Policy
        fields = ["tenant", "type", *PLAIN_FIELDS]
        widgets = {"max_escalation_level": forms.Select(choices=[(n, str(n)) for n in range(4)])}

    notify_channels = forms.MultipleChoiceField(choices=[(c, c.replace("_", "-")) for c in CHANNELS],
                                                widget=forms.CheckboxSelectMultiple, required=False,
                                                label=_("Notify by"))
    # The version the page showed: saving over someone else's newer save is refused (policy_upsert, 409).
    based_on_version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    approvals_low = forms.IntegerField(min_value=0, max_value=50, required=False, label=_("low"))
    approvals_medium = forms.IntegerField(min_value=0, max_value=50, required=False, label=_("medium"))
    approvals_high = forms.IntegerField(min_value=0, max_value=50, required=False, label=_("high"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tenant = self._tenant()
        # The tenant's roles, built-in and custom (accounts.selectors.tenant_roles); the built-ins for a new policy.
        roles = list(tenant_roles(tenant=tenant).items()) if tenant is not None else [(v, str(lbl)) for v, lbl in Role.choices]
        self.role_choices = roles
        # Who a stage may name: the tenant's active people, and anyone the policy names now (so that one who has
        # since left shows, and the policy's own rule says why they cannot stay: policies._check_people).
        people = dict(tenant_people(tenant=tenant)) if tenant is not None else {}
        for stage in (self.instance.route or []) if self.instance.pk else []:
            people.update({name: gettext("%(name)s (not an active member)") % {"name": name} for name in stage.get("people", ())
                           if name not in people})
        for name, label in DURATIONS.items():
            self.fields[f"{name}_amount"] = forms.IntegerField(min_value=1, max_value=10**6, label=label,
                                                               required=name not in OPTIONAL_DURATIONS)
            self.fields[f"{name}_unit"] = forms.ChoiceField(choices=UNITS, label=_("unit"))
        for level in range(1, LADDER_LEVELS + 1):
            self.fields[f"ladder_{level}"] = forms.ChoiceField(choices=[("", "—"), *roles], required=False,
                                                               label=gettext("Level %(level)d") % {"level": level})
        for i in range(MAX_STAGES):
            self.fields[f"stage_{i}_roles"] = forms.MultipleChoiceField(
                choices=roles, widget=forms.CheckboxSelectMultiple, required=False, label=_("Who approves"))
            self.fields[f"stage_{i}_people"] = forms.MultipleChoiceField(
                choices=sorted(people.items()), required=False, label=_("Named people"),
                widget=forms.SelectMultiple(attrs={"size": min(6, max(2, len(people))), "class": "tg-people"}))
            self.fields[f"stage_{i}_mode"] = forms.ChoiceField(
                choices=[(MODE_FIXED, _("a fixed number")), (MODE_BY_RISK, _("by risk (the numbers below)"))],
                initial=MODE_BY_RISK, label=_("Approvals"))
            self.fields[f"stage_{i}_approvals"] = forms.IntegerField(min_value=0, max_value=50, required=False,
                                                                     label=_("number"))
            self.fields[f"stage_{i}_when_fact"] = forms.ChoiceField(choices=[("", _("always")), *FACT_CHOICES],
                                                                    required=False, label=_("Applies when"))
            self.fields[f"stage_{i}_when_key"] = forms.CharField(max_length=200, required=False, label=_("attribute"))
            self.fields[f"stage_{i}_when_op"] = forms.ChoiceField(choices=[(o, o) for o in OPS], required=False,
                                                                  label=_("is"))
            self.fields[f"stage_{i}_when_value"] = forms.CharField(max_length=500, required=False, label=_("value"))
            self.fields[f"stage_{i}_when_currency"] = forms.CharField(max_length=3, required=False, label=_("currency"))
            self.fields[f"stage_{i}_when_json"] = forms.CharField(required=False, widget=forms.HiddenInput)
        if not self.is_bound:
            self._initial_from(self.instance if self.instance.pk else None)

    def _tenant(self) -> Tenant | None:
        if self.instance.pk:
            return self.instance.tenant
        tenant_id = self.data.get("tenant") if self.is_bound else None
        return Tenant.objects.filter(pk=tenant_id).first() if tenant_id and str(tenant_id).isdigit() else None

    # --- policy -> fields --------------------------------------------------------------------------

    def _initial_from(self, policy: Policy | None) -> None:
        initial = self.initial
        for name in DURATIONS:
            seconds = getattr(policy if policy is not None else Policy(), name)  # a new policy: the model's default
            if seconds is None:  # an optional duration left empty
                initial[f"{name}_unit"] = "hours"
                continue
            initial[f"{name}_amount"], initial[f"{name}_unit"] = split_duration(int(seconds))
        if policy is None:
            initial["notify_channels"] = ["email", "in_app"]
            return
        initial["notify_channels"] = list(policy.notify_channels or [])
        initial["based_on_version"] = policy.version
        for level in RiskLevel.values:
            initial[f"approvals_{level}"] = (policy.approvals_by_risk or {}).get(level)
        for number, role in enumerate(policy.ladder or [], start=1):
            initial[f"ladder_{number}"] = role
        for i, stage in enumerate((policy.route or [])[:MAX_STAGES]):
            fixed = stage.get("approvals_required")
            initial[f"stage_{i}_roles"] = list(stage["roles"])
            initial[f"stage_{i}_people"] = list(stage.get("people", ()))
            initial[f"stage_{i}_mode"] = MODE_BY_RISK if fixed is None else MODE_FIXED
            initial[f"stage_{i}_approvals"] = fixed
            when = stage.get("when")
            if not when:
                continue
            if "fact" not in when:  # all/any: kept as it is (edit it through the API), shown as a sentence
                initial[f"stage_{i}_when_json"] = json.dumps(when)
                continue
            fact, value = when["fact"], when["value"]
            if fact.startswith(PAYLOAD_PREFIX):
                initial[f"stage_{i}_when_fact"], initial[f"stage_{i}_when_key"] = PAYLOAD_PREFIX, fact[len(PAYLOAD_PREFIX):]
            else:
                initial[f"stage_{i}_when_fact"] = fact
            initial[f"stage_{i}_when_op"] = when["op"]
            if fact in MONEY_FACTS:
                value = Decimal(value).scaleb(-_precision(when["currency"]))
                initial[f"stage_{i}_when_currency"] = when["currency"]
            elif isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            initial[f"stage_{i}_when_value"] = str(value)

    # --- fields -> policy --------------------------------------------------------------------------

    def _condition(self, i: int, data: dict[str, Any]) -> Any:
        if data.get(f"stage_{i}_when_json"):
            try:
                return json.loads(data[f"stage_{i}_when_json"])
            except ValueError:
                return "invalid"
        fact = data.get(f"stage_{i}_when_fact")
        if not fact:
            return None
        if fact == PAYLOAD_PREFIX:
            fact = PAYLOAD_PREFIX + (data.get(f"stage_{i}_when_key") or "").strip()
        op, text = data.get(f"stage_{i}_when_op") or "=", (data.get(f"stage_{i}_when_value") or "").strip()
        condition: dict[str, Any] = {"fact": fact, "op": op}
        if fact in MONEY_FACTS:
            currency = (data.get(f"stage_{i}_when_currency") or "").strip().upper()
            condition["currency"] = currency
            try:  # people type money as money (5000000 or 5,000,000.00); the policy keeps minor units
                condition["value"] = int(Decimal(text.replace(",", "")).scaleb(_precision(currency or "NGN")))
            except (InvalidOperation, ValueError):
                condition["value"] = text
        elif op == "in":
            condition["value"] = [_parse_scalar(v) if fact.startswith(PAYLOAD_PREFIX) else v.strip()
                                  for v in text.split(",") if v.strip()]
        else:
            condition["value"] = _parse_scalar(text) if fact.startswith(PAYLOAD_PREFIX) else text
        return condition

    def route_document(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The stages the form fills in (roles, named people, or both), as the policy document writes them."""
        stages = []
        for i in range(MAX_STAGES):
            roles, people = data.get(f"stage_{i}_roles") or [], data.get(f"stage_{i}_people") or []
            if not roles and not people:
                continue
            fixed = data.get(f"stage_{i}_mode") == MODE_FIXED
            stage: dict[str, Any] = {"roles": list(roles),
                                     "approvals_required": (data.get(f"stage_{i}_approvals") if fixed else None)}
            if people:
                stage["people"] = list(people)
            if fixed and stage["approvals_required"] is None:
                stage["approvals_required"] = "missing"  # a fixed number left empty: the rules name the field
            condition = self._condition(i, data)
            if condition is not None:
                stage["when"] = condition
            stages.append(stage)
        self._stage_rows = [i for i in range(MAX_STAGES)
                            if data.get(f"stage_{i}_roles") or data.get(f"stage_{i}_people")]
        return stages

    def policy_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        """The policy document of the form (what policy_upsert takes)."""
        fields = {name: data[name] for name in PLAIN_FIELDS if name in data}
        if "max_escalation_level" in fields:
            fields["max_escalation_level"] = int(fields["max_escalation_level"])
        for name in DURATIONS:
            amount, unit = data.get(f"{name}_amount"), data.get(f"{name}_unit")
            if amount is not None and unit in UNIT_SECONDS:
                fields[name] = int(amount) * UNIT_SECONDS[unit]
            elif amount is None and name in OPTIONAL_DURATIONS:
                fields[name] = None
        fields["approvals_by_risk"] = {level: data[f"approvals_{level}"] for level in RiskLevel.values
                                       if data.get(f"approvals_{level}") is not None}
        fields["ladder"] = [data[f"ladder_{n}"] for n in range(1, LADDER_LEVELS + 1) if data.get(f"ladder_{n}")]
        fields["notify_channels"] = list(data.get("notify_channels") or [])
        fields["route"] = self.route_document(data)
        return fields

    def _form_field(self, key: str) -> str | None:
        """The form field behind a policy error key (route[2].when.value -> stage_<row>_when_value)."""
        if key.startswith("route["):
            index = int(key[len("route["):key.index("]")])
            row = self._stage_rows[index] if index < len(self._stage_rows) else 0
            rest = key[key.index("]") + 1:].lstrip(".")
            target = {"roles": "roles", "people": "people", "approvals_required": "approvals", "": "roles"}.get(rest)
            if target is None and rest.startswith("when"):
                part = rest.split(".")[-1]
                target = {"value": "when_value", "currency": "when_currency", "op": "when_op",
                          "fact": "when_fact"}.get(part, "when_fact")
            return f"stage_{row}_{target or 'roles'}"
        if key == "approvals_by_risk":
            return "approvals_high"
        base = key.split(".")[0]
        if base == "ladder":
            return "ladder_1"
        if base in DURATIONS:
            return f"{base}_amount"
        return base if base in self.fields else None

    def clean(self) -> dict[str, Any]:
        """The policy's own rules (policies.validate_policy_fields), each shown next to its field."""
        data = super().clean() or {}
        if self.errors:
            return data
        tenant = data.get("tenant") or (self.instance.tenant if self.instance.pk else None)
        fields = self.policy_fields(data)
        try:
            self.cleaned_policy = validate_policy_fields(fields, tenant=tenant,
                                                         current=self.instance if self.instance.pk else None)
        except ValidationFailed as exc:
            for key, problems in (exc.errors or {"__all__": [exc.detail]}).items():
                target = self._form_field(key)
                self.add_error(target, [f"{p}" if target else f"{key}: {p}" for p in problems])
        return data

    # --- what the page shows -------------------------------------------------------------------------

    precedence = APPROVALS_PRECEDENCE

    def stage_rows(self) -> list[dict[str, Any]]:
        rows = []
        for i in range(MAX_STAGES):
            when_json = self[f"stage_{i}_when_json"].value()
            rows.append({"index": i, "number": i + 1, **{name: self[f"stage_{i}_{name}"] for name in (
                "roles", "people", "mode", "approvals", "when_fact", "when_key", "when_op", "when_value", "when_currency",
                "when_json")},
                "compound": describe(json.loads(when_json)) if when_json and when_json.startswith("{") else ""})
        return rows


def who_label(stage: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """A stage's deciders in words: its roles, then the people it names (by name, when `names` has them)."""
    return ", ".join([*(role_label(r) for r in stage["roles"]), *((names or {}).get(u, u) for u in stage.get("people", ()))])


def effective_table(route: list[dict[str, Any]], approvals_by_risk: dict[str, int]) -> list[dict[str, Any]]:
    """Per stage, who and how many at each risk level (models.stage_approvals), for the page."""
    return [{"number": i + 1, "roles": who_label(stage),
             "mode": gettext("fixed") if stage.get("approvals_required") is not None else gettext("by risk"),
             "condition": describe(stage.get("when")) if stage.get("when") else gettext("always"),
             "counts": [stage_approvals(stage, approvals_by_risk, risk) for risk in RiskLevel.values]}
            for i, stage in enumerate(route)]


# --- the preview -----------------------------------------------------------------------------------


class PreviewInputForm(forms.Form):
    """Example request of the preview: the facts a source would send."""

    preview_amount = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=4, label=_("Amount"))
    preview_currency = forms.RegexField(r"^[A-Za-z]{3}$", required=False, initial="NGN", label=_("Currency"))
    preview_estimated_cost = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=4,
                                                label=_("Estimated cost"))
    preview_risk = forms.ChoiceField(choices=[("", _("policy default")), *list(RiskLevel.choices)], required=False,
                                     label=_("Risk"))
    preview_urgency = forms.ChoiceField(choices=Urgency.choices, initial=Urgency.NORMAL, required=False,
                                        label=_("Urgency"))
    preview_flags = forms.CharField(required=False, max_length=500, label=_("Flags"),
                                    help_text=_("comma-separated, e.g. vendor_flagged"))
    preview_source_system = forms.CharField(required=False, max_length=100, label=_("Source system"))
    preview_entity_type = forms.CharField(required=False, max_length=100, label=_("Entity type"))
    preview_attributes = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}),
                                         label=_("Payload attributes"), help_text=_("one key=value a line"))

    def clean_preview_attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for line in (self.cleaned_data.get("preview_attributes") or "").splitlines():
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(gettext("%(line)r: write key=value.") % {"line": line.strip()})
            key, value = line.split("=", 1)
            target = attributes
            parts = key.strip().split(".")
            for part in parts[:-1]:
                target = target.setdefault(part, {}) if isinstance(target.get(part, {}), dict) else target
            target[parts[-1]] = _parse_scalar(value)
        return attributes


@dataclass
class Preview:
    risk_level: str
    plan: RouteDecision
    trigger: str
    approvals_required: int
    ack_due_at: datetime
    expires_at: datetime
    channels: list[str]
    notified: list[str] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)


def _money(amount: Decimal | None, currency: str) -> dict[str, Any] | None:
    if amount is None or not currency:
        return None
    return {"value_minor": int(amount.scaleb(_precision(currency))), "currency": currency}


def policy_preview(*, tenant: Tenant, fields: dict[str, Any], example: dict[str, Any]) -> Preview:
    """What a request like `example` would meet under the (unsaved) policy `fields`: the route check uses."""
    currency = (example.get("preview_currency") or "NGN").upper()
    amount = _money(example.get("preview_amount"), currency)
    risk = example.get("preview_risk") or fields.get("default_risk_level") or RiskLevel.MEDIUM
    flags = [f.strip() for f in (example.get("preview_flags") or "").split(",") if f.strip()]
    facts = request_facts(amount=amount, estimated_cost=_money(example.get("preview_estimated_cost"), currency),
                          risk_level=risk, urgency=example.get("preview_urgency") or Urgency.NORMAL,
                          source_system=example.get("preview_source_system") or "",
                          source_entity_type=example.get("preview_entity_type") or "",
                          payload=example.get("preview_attributes") or {})
    plan = route_for_request(snapshot=fields, risk_level=risk, facts=facts)
    match = match_trigger(tenant=tenant, amount_minor=amount["value_minor"] if amount else None,
                          currency=currency if amount else "", flags=flags)
    trigger = (gettext("trigger rules pick %(type)s (%(reason)s)") % {"type": match.type, "reason": match.reason} if match
               else gettext("no trigger rule matches: the source must name the type"))
    now = timezone.now()
    first = next((s for s in plan.applied if s.approvals_required > 0), None)
    # Who the first stage asks: its roles' members and the people it names (as standins.who_must_act counts them).
    notified = sorted({(u.get_full_name() or u.username) + f" ({role_label(role)})"
                       for role in (first.roles if first else []) for u in role_members(tenant=tenant, role=role)})
    named = named_members(tenant=tenant, usernames=first.people if first else ())
    notified += sorted(gettext("%(name)s (named)") % {"name": u.get_full_name() or u.username}
                       for u in User.objects.filter(pk__in=named))
    names = dict(tenant_people(tenant=tenant)) if any(s.people for s in plan.stages) else {}
    stages = [{**s.as_dict(tenant.locale), "roles_label": who_label({"roles": s.roles, "people": s.people}, names)}
              for s in plan.stages]
    return Preview(risk_level=risk, plan=plan, trigger=trigger,
                   approvals_required=sum(s.approvals_required for s in plan.applied),
                   ack_due_at=now + timedelta(seconds=fields.get("ack_sla_seconds") or 0),
                   expires_at=now + timedelta(seconds=fields.get("expiry_seconds") or 0),
                   channels=list(fields.get("notify_channels") or []), notified=notified, stages=stages)


def example_amount_text(example: dict[str, Any]) -> str:
    currency = (example.get("preview_currency") or "NGN").upper()
    money = _money(example.get("preview_amount"), currency)
    return format_money(money["value_minor"], currency) if money else gettext("no amount")
