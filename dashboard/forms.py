"""Django forms of the requester's pages: a new escalation, an amendment, a comment, cancel and execution.

They only shape input: every rule is the service's (escalations.intake / amendments / comments), whose
DomainError the views turn back into the form's errors (apply_domain_errors).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.forms import formset_factory

from escalations.amendments import AMENDABLE_FIELDS, MAX_JUSTIFICATION
from escalations.comments import MAX_COMMENT_LENGTH
from escalations.models import RiskLevel, Urgency

MAX_PAYLOAD_ROWS = 20
MAX_ATTACHMENTS = 10
# Minor units per major unit; the currencies people type here (others: 2 decimals).
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}


def to_minor(value: Decimal, currency: str) -> int | None:
    """A typed amount (₦2,500,000.00 as 2500000.00) in whole minor units; None when it has too many decimals."""
    digits = MINOR_DIGITS.get(currency, 2)
    minor = value * (10 ** digits)
    return int(minor) if minor == minor.to_integral_value() else None


def from_minor(value_minor: int | None, currency: str) -> str:
    if value_minor is None:
        return ""
    digits = MINOR_DIGITS.get(currency, 2)
    return f"{Decimal(value_minor) / (10 ** digits):.{digits}f}"


class MoneyFieldsMixin(forms.Form):
    amount = forms.CharField(required=False, label="Amount", help_text="In the currency's units, e.g. 2500000.00",
                             widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    currency = forms.RegexField(r"^[A-Za-z]{3}$", required=False, initial="NGN", max_length=3,
                                widget=forms.TextInput(attrs={"size": 4}))

    def clean_money(self) -> dict[str, Any] | None:
        return self.money_of("amount", "currency")

    def money_of(self, value_field: str, currency_field: str) -> dict[str, Any] | None:
        """Two form fields read as money in minor units (the amount, or e.g. an estimated cost); errors go to them."""
        raw = (self.cleaned_data.get(value_field) or "").replace(",", "").strip()
        currency = (self.cleaned_data.get(currency_field) or "").upper()
        if not raw:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.add_error(value_field, "Enter a number, e.g. 2500000.00")
            return None
        if not currency:
            self.add_error(currency_field, "Which currency?")
            return None
        minor = to_minor(value, currency) if value >= 0 else None
        if minor is None:
            self.add_error(value_field, "A non-negative amount with at most the currency's decimals.")
            return None
        return {"value_minor": minor, "currency": currency}


class PayloadRowForm(forms.Form):
    key = forms.CharField(required=False, max_length=64, label="Field")
    value = forms.CharField(required=False, max_length=2000, label="Value")


PayloadFormSet = formset_factory(PayloadRowForm, extra=3, max_num=MAX_PAYLOAD_ROWS, validate_max=True)


def payload_from(formset: Any) -> dict[str, Any]:
    return {row["key"].strip(): row.get("value", "") for row in formset.cleaned_data
            if row and (row.get("key") or "").strip()}


class NewEscalationForm(MoneyFieldsMixin):
    """What a person asks for (POST /escalations' fields). Extend by adding fields and mapping them in
    service_kwargs(); the view passes service_kwargs() to escalations.services.escalation_create as it is."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    template = forms.ChoiceField(required=False, label="Template",
                                 help_text="A standard change: its defaults apply; a pre-approved one within its limits "
                                           "is approved at once.")
    type = forms.ChoiceField(label="Type")
    # Required unless a template gives it (clean).
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, required=False,
                             help_text="Why a person must decide (approvers read this first).")
    source_system = forms.CharField(max_length=100, initial="dashboard", label="Source system")
    source_entity_type = forms.CharField(max_length=100, label="What it is about", initial="case",
                                         help_text="e.g. customer, transaction, change")
    source_entity_id = forms.CharField(max_length=200, label="Reference", help_text="Its id, e.g. CUST-42")
    source_url = forms.URLField(max_length=500, required=False, label="Link", assume_scheme="https")
    risk_level = forms.ChoiceField(choices=[("", "Policy default"), *RiskLevel.choices], required=False)
    urgency = forms.ChoiceField(choices=Urgency.choices, initial=Urgency.NORMAL)
    attachments = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                  help_text="Links to documents, one per line (https://...)")
    estimated_cost = forms.CharField(required=False, label="Estimated cost", help_text="What carrying it out costs",
                                     widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    estimated_cost_currency = forms.RegexField(r"^[A-Za-z]{3}$", required=False, initial="NGN", max_length=3,
                                               label="Currency", widget=forms.TextInput(attrs={"size": 4}))
    window_starts_at = forms.DateTimeField(required=False, label="Execute from",
                                           widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    window_ends_at = forms.DateTimeField(required=False, label="Execute until",
                                         widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args: Any, types: list[tuple[str, str]], templates: Sequence[tuple[str, str]] = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type_field = self.fields["type"]
        assert isinstance(type_field, forms.ChoiceField)
        type_field.choices = types
        template_field = self.fields["template"]
        assert isinstance(template_field, forms.ChoiceField)
        template_field.choices = [("", "None"), *templates]
        if not templates:
            del self.fields["template"]
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)

    def clean_attachments(self) -> list[dict[str, str]]:
        links = [line.strip() for line in (self.cleaned_data.get("attachments") or "").splitlines() if line.strip()]
        if len(links) > MAX_ATTACHMENTS:
            raise forms.ValidationError(f"At most {MAX_ATTACHMENTS} links.")
        url = forms.URLField(assume_scheme="https")
        out = []
        for link in links:
            checked = url.clean(link)
            if not checked.startswith("https://"):
                raise forms.ValidationError("Links must start with https://")
            out.append({"name": checked.rstrip("/").rsplit("/", 1)[-1][:100] or "link", "url": checked})
        return out

    def clean_cost(self) -> dict[str, Any] | None:
        """The estimated cost as money: the amount's rules, its own currency."""
        return self.money_of("estimated_cost", "estimated_cost_currency")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("reason") or "").strip() and not data.get("template"):
            self.add_error("reason", "This field is required.")
        starts, ends = data.get("window_starts_at"), data.get("window_ends_at")
        if bool(starts) != bool(ends):
            self.add_error("window_ends_at" if starts else "window_starts_at", "A window needs a start and an end.")
        return data

    def service_kwargs(self, payload: dict[str, Any]) -> dict[str, Any]:
        from escalations.intake import ExecutionWindow, Money, SourceRef

        data = self.cleaned_data
        money = self.clean_money()
        cost = self.clean_cost()
        starts, ends = data.get("window_starts_at"), data.get("window_ends_at")
        if data.get("attachments"):
            payload = {**payload, "attachments": data["attachments"]}
        return {
            "type": data["type"], "reason": data["reason"],
            "source": SourceRef(system=data["source_system"], entity_type=data["source_entity_type"],
                                entity_id=data["source_entity_id"], url=data.get("source_url") or ""),
            "amount": Money(money["value_minor"], money["currency"]) if money else None,
            "risk_level": data.get("risk_level") or None, "urgency": data.get("urgency") or Urgency.NORMAL,
            "payload": payload or None,
            "template": data.get("template") or None,
            "estimated_cost": Money(cost["value_minor"], cost["currency"]) if cost else None,
            "execution_window": ExecutionWindow(starts, ends) if starts and ends else None,
        }


class AmendForm(MoneyFieldsMixin):
    """The amendable fields (escalations.amendments.AMENDABLE_FIELDS) with a justification."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, required=False)
    risk_level = forms.ChoiceField(choices=RiskLevel.choices, required=False)
    payload = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}), required=False,
                              help_text="The details as JSON (an object).")
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=MAX_JUSTIFICATION,
                                    required=False, help_text="Required: why the request changes.")

    def changes(self, current: dict[str, Any]) -> dict[str, Any]:
        """The fields whose value differs from `current` (amendments.amendable_values), as the service takes them."""
        data = self.cleaned_data
        proposed: dict[str, Any] = {"reason": (data.get("reason") or "").strip(), "amount": self.clean_money(),
                                    "risk_level": data.get("risk_level") or current["risk_level"]}
        raw = (data.get("payload") or "").strip()
        try:
            proposed["payload"] = json.loads(raw) if raw else {}
        except ValueError:
            self.add_error("payload", "Not valid JSON.")
            proposed["payload"] = current["payload"]
        return {k: v for k, v in proposed.items() if k in AMENDABLE_FIELDS and v != current[k]}


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=MAX_COMMENT_LENGTH,
                           help_text="@username tells that person.")
    question = forms.BooleanField(required=False, label="Ask the requester (a question they must answer)")
    replaces = forms.UUIDField(required=False, widget=forms.HiddenInput)


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(), label="Why cancel?")


class ExecutionForm(forms.Form):
    result = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, label="What was done",
                             help_text="A short note, or JSON (an object).")

    def result_dict(self) -> dict[str, Any]:
        text = self.cleaned_data["result"].strip()
        try:
            value = json.loads(text)
        except ValueError:
            return {"note": text}
        return value if isinstance(value, dict) else {"note": text}


def apply_domain_errors(form: forms.Form, errors: dict[str, list[str]] | None, detail: str) -> None:
    """A service's refusal shown on the form: each named field's message next to it, the rest at the top."""
    for name, messages in (errors or {}).items():
        field = name.split(".")[0].replace("source", "source_entity_id") if name.startswith("source.") else name
        field = "amount" if field.startswith("amount") else field
        form.add_error(field if field in form.fields else None, messages)
    if not errors:
        form.add_error(None, detail)
