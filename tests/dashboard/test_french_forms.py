"""The dashboard's and accounts' forms speak the person's language: every word on them is marked for translation,
and a French-speaking person reads their labels and their errors in French."""

from __future__ import annotations

import inspect
import re
from types import ModuleType

import pytest
from django import forms
from django.utils.functional import Promise

import accounts.admin.credentials
import accounts.admin.people
import accounts.admin.tenants
import accounts.admin_roles
import dashboard.forms
import escalations.admin
import escalations.admin_terminology
import escalations.policy_editor
from accounts.actors import Actor
from escalations.models import Escalation
from escalations.services import SourceRef, escalation_create

from ..factories import PersonFactory, PolicyFactory, TenantFactory

FORM_MODULES: list[ModuleType] = [dashboard.forms, accounts.admin.credentials, accounts.admin.people,
                                  accounts.admin.tenants, accounts.admin_roles, escalations.policy_editor,
                                  escalations.admin, escalations.admin_terminology]


def form_classes() -> list[type[forms.BaseForm]]:
    """The form classes the modules define (not those they import)."""
    return [cls for module in FORM_MODULES for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__]


def unmarked_words(cls: type[forms.BaseForm]) -> list[str]:
    """Each label, help text and error message of the fields the class declares that is a plain string.

    A ModelForm's model fields are left out (their words are the model's verbose names); a field with no label
    shows its name made pretty, in English, so a visible field needs one; a hidden field shows none.
    """
    found = []
    for name, field in cls.declared_fields.items():  # type: ignore[attr-defined]  # set by the forms metaclass
        if not field.widget.is_hidden and not isinstance(field.label, Promise):
            found.append(f"{cls.__name__}.{name}.label = {field.label!r}")
        if field.help_text and not isinstance(field.help_text, Promise):
            found.append(f"{cls.__name__}.{name}.help_text = {field.help_text!r}")
        found += [f"{cls.__name__}.{name}.error_messages[{key!r}] = {text!r}"
                  for key, text in field.error_messages.items() if text and not isinstance(text, Promise)]
    return found


def test_the_guard_sees_the_forms_of_the_dashboard_and_of_accounts():
    names = {cls.__name__ for cls in form_classes()}
    assert {"NewEscalationForm", "CancelForm", "DecisionForm", "MembershipForm", "PersonalTokenForm",
            "CustomRoleForm", "PolicyEditorForm", "PreviewInputForm"} <= names


def test_the_guard_catches_a_label_that_is_not_marked_for_translation():
    class Unmarked(forms.Form):
        amount = forms.CharField(label="Amount", help_text="In naira", error_messages={"required": "Say how much."})

    assert len(unmarked_words(Unmarked)) == 3


def test_every_label_help_text_and_error_message_of_the_forms_is_marked_for_translation():
    unmarked = [word for cls in form_classes() for word in unmarked_words(cls)]
    assert unmarked == [], "mark them with gettext_lazy: " + "; ".join(unmarked)


# --- a French-speaking person on the dashboard -----------------------------------------------------------------



@pytest.fixture
def french_officer(db: None):
    """A compliance officer who chose French (User.language: accounts.selectors.language_and_zone)."""
    tenant = TenantFactory.create()
    PolicyFactory.create(tenant=tenant)
    return PersonFactory.create(tenant=tenant, language="fr")


def field_errors(page: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]*)<', page)


@pytest.mark.django_db
def test_a_french_speaking_person_who_sends_a_link_without_https_reads_why_in_french(sign_in, french_officer):
    client = sign_in(french_officer)
    page = client.get("/new/").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page)
    assert key is not None and "Pourquoi une personne doit décider" in page and "Nouvelle escalade" in page

    response = client.post("/new/", {
        "idempotency_key": key.group(1), "type": "SMR", "reason": "Structured cash deposits",
        "amount": "2,500,000.00", "currency": "NGN", "urgency": "normal", "source_system": "dashboard",
        "source_entity_type": "customer", "source_entity_id": "CUST-42",
        "attachments": "http://docs.example/screening/CUST-42.pdf",
        "payload-TOTAL_FORMS": "0", "payload-INITIAL_FORMS": "0", "payload-MIN_NUM_FORMS": "0",
        "payload-MAX_NUM_FORMS": "20"})

    assert response.status_code == 400 and not Escalation.objects.exists()
    assert field_errors(response.content.decode()) == ["Les liens doivent commencer par https://"]


@pytest.mark.django_db
def test_a_french_speaking_requester_reads_the_cancel_form_of_their_case_in_french(sign_in, french_officer):
    tenant = french_officer.memberships.get().tenant
    case = escalation_create(actor=Actor(tenant=tenant, user=french_officer), type="SMR", amount=None,
                             reason="Structured cash deposits", source=SourceRef("dashboard", "customer", "CUST-42"))
    client = sign_in(french_officer)

    page = client.get(f"/e/{case.pk}/").content.decode()
    refused = client.post(f"/e/{case.pk}/cancel/", {"reason": ""})

    assert "Pourquoi annuler ?" in page and "Annuler cette demande" in page and "Why cancel?" not in page
    assert refused.status_code == 400
    assert "Dites pourquoi vous annulez." in refused.content.decode()
    assert field_errors(refused.content.decode()) == ["Ce champ est obligatoire."]
