"""Django forms of the case pages: the requester's (a new escalation, an amendment, a comment, cancel and execution)
and the approver's (acknowledge, a decision with its one-time code, sending a code).

They only shape input: every rule is the service's (escalations.intake / amendments / comments / services), whose
DomainError the views turn back into the form's errors (apply_domain_errors, DecisionForm.refuse).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.forms import formset_factory
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from escalations.amendments import AMENDABLE_FIELDS, MAX_JUSTIFICATION
from escalations.comments import MAX_COMMENT_LENGTH
from escalations.models import RiskLevel, Urgency
from trustguard.errors import DomainError

MAX_PAYLOAD_ROWS = 20
MAX_ATTACHMENTS = 10
# Minor units per major unit; the currencies people type here (others: 2 decimals).
MINOR_DIGITS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
# The levels' words on the forms (RiskLevel and Urgency carry no translatable labels of their own).
RISK_CHOICES = [(RiskLevel.LOW, _("Low")), (RiskLevel.MEDIUM, _("Medium")), (RiskLevel.HIGH, _("High"))]
URGENCY_CHOICES = [(Urgency.LOW, _("Low")), (Urgency.NORMAL, _("Normal")), (Urgency.HIGH, _("High")),
                   (Urgency.CRITICAL, _("Critical"))]


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
    amount = forms.CharField(required=False, label=_("Amount"), help_text=_("In the currency's units, e.g. 2500000.00"),
                             widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    currency = forms.RegexField(r"^[A-Za-z]{3}$", required=False, initial="NGN", max_length=3, label=_("Currency"),
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
            self.add_error(value_field, gettext("Enter a number, e.g. 2500000.00"))
            return None
        if not currency:
            self.add_error(currency_field, gettext("Which currency?"))
            return None
        minor = to_minor(value, currency) if value >= 0 else None
        if minor is None:
            self.add_error(value_field, gettext("A non-negative amount with at most the currency's decimals."))
            return None
        return {"value_minor": minor, "currency": currency}


class PayloadRowForm(forms.Form):
    key = forms.CharField(required=False, max_length=64, label=_("Field"))
    value = forms.CharField(required=False, max_length=2000, label=_("Value"))


PayloadFormSet = formset_factory(PayloadRowForm, extra=3, max_num=MAX_PAYLOAD_ROWS, validate_max=True)


def payload_from(formset: Any) -> dict[str, Any]:
    return {row["key"].strip(): row.get("value", "") for row in formset.cleaned_data
            if row and (row.get("key") or "").strip()}


class NewEscalationForm(MoneyFieldsMixin):
    """What a person asks for (POST /escalations' fields). Extend by adding fields and mapping them in
    service_kwargs(); the view passes service_kwargs() to escalations.services.escalation_create as it is."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    template = forms.ChoiceField(required=False, label=_("Template"),
                                 help_text=_("A standard change: its defaults apply; a pre-approved one within its limits "
                                             "is approved at once."))
    type = forms.ChoiceField(label=_("Type"))
    # Required unless a template gives it (clean).
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, required=False, label=_("Reason"),
                             help_text=_("Why a person must decide (approvers read this first)."))
    source_system = forms.CharField(max_length=100, initial="dashboard", label=_("Source system"))
    source_entity_type = forms.CharField(max_length=100, label=_("What it is about"), initial="case",
                                         help_text=_("e.g. customer, transaction, change"))
    source_entity_id = forms.CharField(max_length=200, label=_("Reference"), help_text=_("Its id, e.g. CUST-42"))
    source_url = forms.URLField(max_length=500, required=False, label=_("Link"), assume_scheme="https")
    risk_level = forms.ChoiceField(choices=[("", _("Policy default")), *RISK_CHOICES], required=False,
                                   label=_("Risk level"))
    urgency = forms.ChoiceField(choices=URGENCY_CHOICES, initial=Urgency.NORMAL, label=_("Urgency"))
    attachments = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label=_("Attachments"),
                                  help_text=_("Links to documents, one per line (https://...)"))
    estimated_cost = forms.CharField(required=False, label=_("Estimated cost"), help_text=_("What carrying it out costs"),
                                     widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    estimated_cost_currency = forms.RegexField(r"^[A-Za-z]{3}$", required=False, initial="NGN", max_length=3,
                                               label=_("Currency"), widget=forms.TextInput(attrs={"size": 4}))
    window_starts_at = forms.DateTimeField(required=False, label=_("Execute from"),
                                           widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    window_ends_at = forms.DateTimeField(required=False, label=_("Execute until"),
                                         widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args: Any, types: list[tuple[str, str]], templates: Sequence[tuple[str, str]] = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type_field = self.fields["type"]
        assert isinstance(type_field, forms.ChoiceField)
        type_field.choices = types
        template_field = self.fields["template"]
        assert isinstance(template_field, forms.ChoiceField)
        template_field.choices = [("", gettext("None")), *templates]
        if not templates:
            del self.fields["template"]
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)

    def clean_attachments(self) -> list[dict[str, str]]:
        links = [line.strip() for line in (self.cleaned_data.get("attachments") or "").splitlines() if line.strip()]
        if len(links) > MAX_ATTACHMENTS:
            raise forms.ValidationError(gettext("At most %(count)d links.") % {"count": MAX_ATTACHMENTS})
        url = forms.URLField(assume_scheme="https")
        out = []
        for link in links:
            checked = url.clean(link)
            if not checked.startswith("https://"):
                raise forms.ValidationError(gettext("Links must start with https://"))
            out.append({"name": checked.rstrip("/").rsplit("/", 1)[-1][:100] or "link", "url": checked})
        return out

    def clean_cost(self) -> dict[str, Any] | None:
        """The estimated cost as money: the amount's rules, its own currency."""
        return self.money_of("estimated_cost", "estimated_cost_currency")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("reason") or "").strip() and not data.get("template"):
            self.add_error("reason", gettext("This field is required."))
        starts, ends = data.get("window_starts_at"), data.get("window_ends_at")
        if bool(starts) != bool(ends):
            self.add_error("window_ends_at" if starts else "window_starts_at", gettext("A window needs a start and an end."))
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

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, required=False,
                             label=_("Reason"))
    risk_level = forms.ChoiceField(choices=RISK_CHOICES, required=False, label=_("Risk level"))
    payload = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}), required=False,
                              label=_("Payload"), help_text=_("The details as JSON (an object)."))
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=MAX_JUSTIFICATION,
                                    required=False, label=_("Justification"),
                                    help_text=_("Required: why the request changes."))

    def __init__(self, *args: Any, current: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current = current  # the case's amendable values now (amendments.amendable_values): bound forms only

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.current is not None and not self.errors:
            data["changes"] = self.changes(self.current)  # a payload that is not JSON is an error of the form
        return data

    def changes(self, current: dict[str, Any]) -> dict[str, Any]:
        """The fields whose value differs from `current` (amendments.amendable_values), as the service takes them."""
        data = self.cleaned_data
        proposed: dict[str, Any] = {"reason": (data.get("reason") or "").strip(), "amount": self.clean_money(),
                                    "risk_level": data.get("risk_level") or current["risk_level"]}
        raw = (data.get("payload") or "").strip()
        try:
            proposed["payload"] = json.loads(raw) if raw else {}
        except ValueError:
            self.add_error("payload", gettext("Not valid JSON."))
            proposed["payload"] = current["payload"]
        return {k: v for k, v in proposed.items() if k in AMENDABLE_FIELDS and v != current[k]}


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=MAX_COMMENT_LENGTH, label=_("Comment"),
                           help_text=_("@username tells that person."))
    question = forms.BooleanField(required=False, label=_("Ask the requester (a question they must answer)"))
    replaces = forms.UUIDField(required=False, widget=forms.HiddenInput)


class RequesterAnswerForm(forms.Form):
    """A requester known only by email answers a question on their status page (dashboard.requester_status)."""

    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=MAX_COMMENT_LENGTH,
                           label=_("Your answer"))


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(), label=_("Why cancel?"))


class ExecutionForm(forms.Form):
    result = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000, label=_("What was done"),
                             help_text=_("A short note, or JSON (an object)."))

    def result_dict(self) -> dict[str, Any]:
        text = self.cleaned_data["result"].strip()
        try:
            value = json.loads(text)
        except ValueError:
            return {"note": text}
        return value if isinstance(value, dict) else {"note": text}


CHOOSE_A_CONDITION_ACTION = _("Choose add evidence, met or waive.")


class ConditionActionForm(forms.Form):
    """A condition of an approval on the case page: add evidence (a note and/or a link), mark it met, or waive it
    (the note is the justification). The service checks the note, the link and who may resolve."""

    action = forms.ChoiceField(choices=[("evidence", _("Add evidence")), ("met", _("Mark met")), ("waive", _("Waive"))],
                               label=_("Action"), error_messages={"required": CHOOSE_A_CONDITION_ACTION,
                                                                 "invalid_choice": CHOOSE_A_CONDITION_ACTION})
    # Their length, and the link's, the service checks and names.
    text = forms.CharField(required=False, strip=False, label=_("Note or justification"))
    url = forms.CharField(required=False, strip=False, label=_("Link (http or https)"))


DECISION_CHOICES = [
    ("approve", _("Approve")),
    ("approve_conditions", _("Approve with conditions")),
    ("reject", _("Reject")),
    ("defer", _("Defer")),
]
# Step-up refusals belong next to the code field, not at the top of the form.
OTP_SLUGS = {"otp-invalid", "otp-replayed", "otp-locked", "person-required"}
CHOOSE_A_DECISION = _("Choose what you decide.")
DECIDED = {"approve": _("Approved"), "approve_conditions": _("Approved with conditions"), "reject": _("Rejected"),
           "defer": _("Deferred")}


def parse_defer_until(raw: str) -> datetime | None:
    """A datetime-local value (in the site's time zone) or an ISO datetime; None if unreadable."""
    try:
        value = parse_datetime(raw.strip()) if raw.strip() else None
    except ValueError:  # well-formed but impossible, e.g. 2026-02-30T10:00
        return None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


class AcknowledgeForm(forms.Form):
    """No fields: the (CSRF-checked) POST is the whole request; a form so that every case action has one shape."""


class DecisionForm(forms.Form):
    """Approve / approve with conditions / reject / defer, with a justification and the step-up code.

    The justification, the code and the deadlines are the service's rules (escalation_decide): they are passed
    as typed, unstripped, and its refusals come back next to their fields (refuse).
    """

    decision = forms.ChoiceField(choices=DECISION_CHOICES, initial="approve", label=_("Decision"),
                                 error_messages={"required": CHOOSE_A_DECISION, "invalid_choice": CHOOSE_A_DECISION})
    justification = forms.CharField(required=False, strip=False, label=_("Justification"))
    conditions = forms.CharField(required=False, strip=False, label=_("Conditions"), help_text=_("One per line."))
    defer_until = forms.CharField(required=False, label=_("Come back to it on"))
    otp = forms.CharField(required=False, strip=False, label=_("One-time code"))
    revision = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        choice = data.get("decision")
        conditions = [line.strip() for line in (data.get("conditions") or "").splitlines() if line.strip()]
        if choice == "approve_conditions" and not conditions:
            self.add_error("conditions", gettext("Write at least one condition, one per line."))
        data["condition_list"] = conditions if choice == "approve_conditions" else []
        data["defer_at"] = None
        if choice == "defer":
            data["defer_at"] = parse_defer_until(data.get("defer_until") or "")
            if data["defer_at"] is None:
                self.add_error("defer_until", gettext("Choose the date and time to come back to this."))
        return data

    def read_at(self, revision: int) -> bool:
        """Was the page this decision comes from showing `revision` of the case? (No revision sent: yes.)"""
        shown: object = self.data.get("revision", str(revision))
        return shown == str(revision)

    def service_kwargs(self) -> dict[str, Any]:
        """escalation_decide's arguments: "approve with conditions" is an approval with its conditions."""
        data = self.cleaned_data
        choice = data["decision"]
        return {"decision": "approve" if choice == "approve_conditions" else choice,
                "justification": data["justification"], "otp": data["otp"], "conditions": data["condition_list"],
                "defer_until": data["defer_at"]}

    def done(self) -> str:
        """What the page says once the decision is recorded."""
        return gettext("%(decision)s. Your decision is recorded.") % {"decision": DECIDED[self.cleaned_data["decision"]]}

    def refuse(self, exc: DomainError) -> str:
        """The service's refusal next to the field it names, step-up refusals next to the code, the rest at the top
        of the form; nothing at the top of the case."""
        if exc.errors:
            for name, messages in exc.errors.items():
                self.add_error(name if name in self.fields and name != "revision" else None, messages)
        elif exc.slug in OTP_SLUGS:
            self.add_error("otp", sentence(exc.detail))
        else:
            self.add_error(None, sentence(exc.detail))
        return ""


# How a one-time code can reach a person (the case page offers those they have).
CODE_CHANNELS = [("email", _("email")), ("sms", _("text message"))]


class SendCodeForm(forms.Form):
    """Send me a one-time code for this case by email or SMS (escalations.stepup.otp_challenge_send)."""

    channel = forms.ChoiceField(choices=CODE_CHANNELS, label=_("Send me a code by"))

    def refuse(self, exc: DomainError) -> str:
        """Why no code was sent, said where the code is typed (the case's otp_errors); nothing at the top."""
        self.add_error("channel", sentence(exc.detail))
        return ""


def sentence(text: str) -> str:
    """A service's message as a sentence on a page: capitalised, with a full stop."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else text


def apply_domain_errors(form: forms.Form, errors: dict[str, list[str]] | None, detail: str) -> None:
    """A service's refusal shown on the form: each named field's message next to it, the rest at the top."""
    for name, messages in (errors or {}).items():
        field = name.split(".")[0].replace("source", "source_entity_id") if name.startswith("source.") else name
        field = "amount" if field.startswith("amount") else field
        form.add_error(field if field in form.fields else None, messages)
    if not errors:
        form.add_error(None, detail)
