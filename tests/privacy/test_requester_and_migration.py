"""A requester outside the tenant is sealed like a customer; the data migration seals rows written before."""

from __future__ import annotations

import importlib
import uuid

import pytest
from django.apps import apps

from approvals.services import is_requester
from escalations.models import Escalation
from privacy import vault
from tests.api.conftest import ORDER

OUTSIDER = "kyc.officer@vendor.example"


@pytest.mark.django_db
def test_a_requester_outside_the_tenant_is_sealed_read_back_by_the_api_and_still_bound_by_four_eyes(api, make_person,
                                                                                                     demo):
    body = {**ORDER, "requested_by": OUTSIDER}
    case = api("vendor").post("/escalations", body, key=str(uuid.uuid4())).json()
    row = Escalation.objects.select_related("approval").get(pk=case["id"])

    assert row.requested_by_email == vault.SEALED_REQUESTER
    assert OUTSIDER not in row.approval.requester_email and row.approval.requester_email.startswith("bidx:")
    assert case["requested_by"] == OUTSIDER
    # Should that person join the tenant later, they still cannot approve what they asked for.
    joined = make_person(demo["tenant_obj"], "ceo", "kyc-joined", email=OUTSIDER.upper())
    assert is_requester(row.approval, joined)


@pytest.mark.django_db
def test_a_requester_of_the_tenants_own_staff_stays_plain_for_the_four_eyes_rule(api, demo):
    staff = demo["by_name"]["co"]["email"]
    case = api("vendor").post("/escalations", {**ORDER, "requested_by": staff}, key=str(uuid.uuid4())).json()
    assert Escalation.objects.get(pk=case["id"]).requested_by_email == staff


@pytest.mark.django_db
def test_erasing_the_outside_requester_makes_their_email_unreadable(api, demo):
    from privacy.models import PrivacySettings

    PrivacySettings.objects.create(tenant=demo["tenant_obj"], aml_types=[])
    case = api("vendor").post("/escalations", {**ORDER, "requested_by": OUTSIDER}, key=str(uuid.uuid4())).json()
    export = api("co").get("/subjects/export", {"email": OUTSIDER}).json()
    assert export["escalations"][0]["requested_by"] == OUTSIDER

    assert api("co").post("/subjects/erase", {"email": OUTSIDER}).json()["status"] == "erased"
    assert api("co").get(f"/escalations/{case['id']}").json()["requested_by"] is None


@pytest.mark.django_db
def test_the_data_migration_seals_contacts_payloads_and_outside_requesters_written_in_plaintext(api):
    case = api("vendor").post("/escalations", {**ORDER, "requested_by": OUTSIDER}, key=str(uuid.uuid4())).json()
    row = Escalation.objects.get(pk=case["id"])
    # As a row written before this version: plaintext everywhere.
    Escalation.objects.filter(pk=row.pk).update(contact={"email": "old@example.com", "phone": "+2348031112222"},
                                                payload={"customer_name": "Old Customer", "items": 1},
                                                requested_by_email=OUTSIDER)
    row.approval.__class__.objects.filter(pk=row.approval_id).update(requester_email=OUTSIDER)

    migration = importlib.import_module("privacy.migrations.0002_seal_existing_personal_data")
    migration.seal_existing(apps, None)

    row = Escalation.objects.select_related("approval").get(pk=row.pk)
    assert vault.is_sealed(row.contact) and vault.is_sealed(row.payload["customer_name"]) and row.payload["items"] == 1
    assert row.requested_by_email == vault.SEALED_REQUESTER and row.approval.requester_email.startswith("bidx:")
    assert vault.open_contact(row.contact)["email"] == "old@example.com"
    found = api("co").get("/escalations", {"contact_phone": "0803 111 2222"}).json()["results"]
    assert [e["id"] for e in found] == [case["id"]]
    migration.seal_existing(apps, None)  # twice: nothing sealed twice
    assert vault.open_contact(Escalation.objects.get(pk=row.pk).contact)["email"] == "old@example.com"
