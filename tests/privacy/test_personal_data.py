"""Personal data at rest: sealed under per-subject keys, found by blind index, masked, erasable, key loss visible."""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from escalations.models import Escalation
from notifications.models import Message, OutboxEvent
from privacy.models import PrivacySettings, Subject
from tests.api.conftest import ORDER, assert_problem
from tests.audit.commands import verify_audit

EMAIL, PHONE, NAME = "Ada.Customer@Example.com", "0803 123 4567", "Ada Obi-Lovelace"
E164 = "+2348031234567"
PAYLOAD = {"customer_name": "Ada Obi-Lovelace", "items": 3}


def create_case(api: Any, entity_id: str = "ORD-1001", **contact: str) -> dict:
    body = {**ORDER, "source": {**ORDER["source"], "entity_id": entity_id}, "payload": PAYLOAD,
            "contact": contact or {"email": EMAIL, "phone": PHONE, "name": NAME}}
    response = api("vendor").post("/escalations", body, key=str(uuid.uuid4()))
    assert response.status_code == 201, response.content[:300]
    return response.json()


def raw_database_text() -> str:
    """Every row of every table as the database stores it: pg_dump on PostgreSQL, the SQLite dump otherwise."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        env = {**os.environ, "PGPASSWORD": s.get("PASSWORD") or ""}
        return subprocess.run(["pg_dump", "--data-only", "-h", s.get("HOST") or "127.0.0.1", "-p", str(s.get("PORT") or 5432),
                               "-U", s.get("USER") or "postgres", s["NAME"]], env=env, check=True, capture_output=True,
                              text=True).stdout
    return "\n".join(connection.connection.iterdump())


def case_page(client_of: Any, username: str, case_id: str) -> Any:
    return client_of(username).get(f"/e/{case_id}/")


@pytest.fixture
def client_of(demo: dict) -> Any:
    from accounts.models import User

    def _client(username: str) -> Client:
        client = Client()
        client.force_login(User.objects.get(username=username))
        return client

    return _client


@pytest.mark.django_db(transaction=True)
def test_raw_database_rows_hold_no_plaintext_customer_phone_email_or_name_and_search_by_phone_still_finds_the_case(api):
    case = create_case(api)

    dump = raw_database_text()
    for plaintext in (EMAIL, EMAIL.lower(), E164, "8031234567", NAME, "Obi-Lovelace"):
        assert plaintext not in dump, plaintext
    assert "ORD-1001" in dump  # the dump is real: the case is in it

    for phone in ("+234 803 123 4567", "08031234567"):
        found = api("co").get("/escalations", {"contact_phone": phone, "status": "pending"}).json()["results"]
        assert [e["id"] for e in found] == [case["id"]]
    found = api("co").get("/escalations", {"contact_email": "ada.customer@example.com"}).json()["results"]
    assert [e["id"] for e in found] == [case["id"]]
    assert api("co").get("/escalations", {"contact_phone": "+2348030000000"}).json()["results"] == []
    # The API shows the personal payload field masked; the other fields as sent.
    assert case["payload"] == {"customer_name": "A*** O***", "items": 3}


@pytest.mark.django_db
def test_the_dashboard_masks_contact_data_and_finds_the_case_by_phone_in_the_search_box(api, client_of):
    case = create_case(api)
    page = case_page(client_of, "co", case["id"]).content.decode()
    assert "a***@example.com" in page.lower() and "***4567" in page
    assert NAME not in page and E164 not in page
    queue = client_of("ceo").get("/", {"q": "0803 123 4567"}).content.decode()
    assert case["id"] in queue


@pytest.mark.django_db
def test_revealing_needs_privacy_manage_and_is_audited_without_the_values(api, client_of):
    case = create_case(api)
    refused = client_of("ceo").post(f"/privacy/e/{case['id']}/reveal/")
    assert refused.status_code == 403
    shown = client_of("co").post(f"/privacy/e/{case['id']}/reveal/", headers={"HX-Request": "true"})
    assert shown.status_code == 200
    html = shown.content.decode()
    assert EMAIL in html and E164 in html and NAME in html
    event = AuditEvent.objects.get(action="privacy.values_revealed")
    assert event.details["fields"] == ["contact.email", "contact.phone", "contact.name", "payload.customer_name"]
    assert EMAIL not in str(event.details) and NAME not in str(event.details)


@pytest.mark.django_db
def test_field_key_rotation_with_two_keys_then_one_keeps_every_contact_readable(api, settings):
    case = create_case(api)
    old, new = settings.FIELD_KEYS[0], Fernet.generate_key().decode()
    settings.FIELD_KEYS = [new, old]
    out = __import__("io").StringIO()
    call_command("rotate_field_keys", "--batch-size", "1", stdout=out, stderr=out)
    # Two subjects: the customer, and the requester the source named (outside the tenant).
    assert "privacy.Subject.wrapped_key: 2 re-encrypted, 0 unreadable" in out.getvalue()
    settings.FIELD_KEYS = [new]

    export = api("co").get("/subjects/export", {"phone": PHONE}).json()
    assert export["escalations"][0]["contact"] == {"email": EMAIL, "phone": E164, "name": NAME}
    assert export["escalations"][0]["payload"]["customer_name"] == NAME
    assert export["escalations"][0]["id"] == case["id"]


@pytest.mark.django_db
def test_a_dropped_key_is_reported_unreadable_by_field_name_and_no_page_fails(api, client_of, settings):
    case = create_case(api)
    settings.FIELD_KEYS = [Fernet.generate_key().decode()]  # the key the subject's data key was wrapped under is lost

    page = case_page(client_of, "co", case["id"])
    assert page.status_code == 200
    assert "contact cannot be read: its data key cannot be unwrapped" in page.content.decode()
    listing = api("co").get("/escalations")
    assert listing.status_code == 200
    payload = next(e for e in listing.json()["results"] if e["id"] == case["id"])["payload"]
    assert payload["customer_name"].startswith("[unreadable: payload.customer_name cannot be read")
    assert client_of("co").get("/").status_code == 200


@pytest.mark.django_db
def test_a_tampered_ciphertext_gives_an_error_naming_the_field_not_a_500(api, client_of):
    case = create_case(api)
    row = Escalation.objects.get(pk=case["id"])
    sealed = row.contact["$sealed"]
    Escalation.objects.filter(pk=row.pk).update(contact={"$sealed": sealed[:-8] + "AAAAAAAA"})

    page = case_page(client_of, "co", case["id"])
    assert page.status_code == 200
    assert "contact cannot be read: the stored value was altered" in page.content.decode()
    export = api("co").get("/subjects/export", {"email": EMAIL})
    assert export.status_code == 200
    assert export.json()["escalations"][0]["contact"] == {
        "unreadable": "contact cannot be read: the stored value was altered (authentication failed)"}


@pytest.mark.django_db
def test_erasure_makes_every_copy_unreadable_and_the_audit_chain_still_verifies(api, client_of, demo):
    PrivacySettings.objects.create(tenant=demo["tenant_obj"], aml_types=[])  # no legal hold in this tenant
    case = create_case(api)
    other_customer = create_case(api, entity_id="ORD-2002", email="someone.else@example.com")
    event = OutboxEvent.objects.filter(aggregate_id=case["id"]).first()
    Message.objects.create(tenant=demo["tenant_obj"], channel="email", purpose="escalation.created",
                           audience="customer", event=event, to_address=EMAIL, subject="Your order", body="Hi Ada")

    response = api("co").post("/subjects/erase", {"phone": "+234 803 123 4567"})
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["status"] == "erased" and result["escalations"] == [case["id"]]
    assert result["messages_redacted"] == 1

    assert Subject.objects.get(pk=result["subjects"][0]).wrapped_key == ""
    page = case_page(client_of, "co", case["id"]).content.decode()
    assert "contact cannot be read: the data subject was erased" in page
    payload = api("co").get(f"/escalations/{case['id']}").json()["payload"]
    assert payload["customer_name"] == "[unreadable: payload.customer_name cannot be read: the data subject was erased]"
    assert Message.objects.get().to_address == "[erased]"
    assert api("co").get("/escalations", {"contact_email": EMAIL}).json()["results"] == []
    assert api("co").get("/subjects/export", {"email": EMAIL}).json()["escalations"] == []
    # Other customers are untouched.
    assert api("co").get("/subjects/export", {"entity_id": "ORD-2002"}).json()["escalations"][0]["contact"] == {
        "email": "someone.else@example.com"}
    assert other_customer["id"]
    # The audit chain holds commitments, never the plaintext, and verifies.
    trail = " ".join(str([e.before, e.after, e.details, e.target_id]) for e in AuditEvent.objects.all())
    for plaintext in (EMAIL, E164, NAME, "8031234567"):
        assert plaintext not in trail
    assert AuditEvent.objects.filter(action="privacy.subject_erase_erased").count() == 1
    code, out = verify_audit()
    assert code == 0 and out.startswith("OK"), out


@pytest.mark.django_db
def test_a_case_under_aml_retention_refuses_the_erasure_with_the_reason_and_changes_nothing(api):
    case = create_case(api)  # HIGH_VALUE: an AML record in the default privacy settings
    problem = assert_problem(api("co").post("/subjects/erase", {"email": EMAIL}), 409)
    assert problem["legal_holds"][0]["escalation"] == case["id"]
    assert "AML/CTF record" in problem["detail"]
    assert api("co").get("/subjects/export", {"email": EMAIL}).json()["escalations"][0]["contact"]["name"] == NAME
    assert AuditEvent.objects.filter(action="privacy.subject_erase_refused").count() == 1


@pytest.mark.django_db
def test_under_the_pseudonymise_policy_a_held_case_keeps_its_record_but_no_longer_links_to_the_subject(api, demo):
    PrivacySettings.objects.create(tenant=demo["tenant_obj"], legal_hold_mode="pseudonymise")
    case = create_case(api)
    result = api("co").post("/subjects/erase", {"email": EMAIL}).json()
    assert result["status"] == "erased" and result["pseudonymised"] == [case["id"]]
    assert api("co").get("/subjects/export", {"email": EMAIL}).json()["escalations"] == []
    keeper = Subject.objects.get(held_until__isnull=False)
    assert keeper.identifiers.count() == 0
    from privacy import vault
    assert vault.open_contact(Escalation.objects.get(pk=case["id"]).contact)["name"] == NAME


@pytest.mark.django_db
def test_the_nightly_job_shreds_a_held_subject_only_once_its_hold_has_ended(api, demo):
    from datetime import timedelta

    from django.utils import timezone

    from privacy import vault
    from trustguard.periodic import job_run

    PrivacySettings.objects.create(tenant=demo["tenant_obj"], legal_hold_mode="pseudonymise")
    case = create_case(api)
    api("co").post("/subjects/erase", {"email": EMAIL})
    keeper = Subject.objects.get(held_until__isnull=False)

    job_run("subjects.sweep_holds")  # the case is open: its hold stands
    assert vault.open_contact(Escalation.objects.get(pk=case["id"]).contact)["name"] == NAME

    # Eight years on: the case closed long ago and the hold it carried has ended.
    long_ago = timezone.now() - timedelta(days=8 * 365)
    Escalation.objects.filter(pk=case["id"]).update(status="expired", closed_at=long_ago)
    Subject.objects.filter(pk=keeper.pk).update(held_until=timezone.now() - timedelta(days=1))
    job_run("subjects.sweep_holds")

    with pytest.raises(vault.FieldUnreadable):
        vault.open_contact(Escalation.objects.get(pk=case["id"]).contact)
    assert AuditEvent.objects.filter(action="privacy.hold_ended_erased").count() == 1


@pytest.mark.django_db
def test_an_outsider_tenant_cannot_export_or_erase_another_tenants_subject(api, other):
    from tests.api.conftest import Api

    create_case(api)
    outsider = Api(other["by_name"]["co"]["api_token"])
    export = outsider.get("/subjects/export", {"email": EMAIL})
    assert export.status_code == 200
    assert export.json()["escalations"] == [] and export.json()["subjects"] == []
    erase = outsider.post("/subjects/erase", {"email": EMAIL})
    assert erase.status_code == 200 and erase.json()["status"] == "nothing"
    assert api("co").get("/subjects/export", {"email": EMAIL}).json()["escalations"][0]["contact"]["email"] == EMAIL


@pytest.mark.django_db
def test_export_and_erase_need_privacy_manage_and_exactly_one_identifier(api):
    assert_problem(api("ceo").get("/subjects/export", {"email": EMAIL}), 403)
    assert_problem(api("ceo").post("/subjects/erase", {"email": EMAIL}), 403)
    assert_problem(api("vendor").post("/subjects/erase", {"email": EMAIL}), 403)
    assert_problem(api("co").get("/subjects/export", {"email": EMAIL, "phone": PHONE}), 400)
    assert_problem(api("co").post("/subjects/erase", {}), 400)
    assert_problem(api("co").get("/subjects/export?phone=0803&phone=0804"), 400)
    assert api(None).get("/subjects/export", {"email": EMAIL}).status_code == 401


@pytest.mark.django_db
def test_the_subject_export_pdf_lists_the_cases_and_is_audited(api):
    create_case(api)
    response = api("ops").get("/subjects/export.pdf", {"entity_id": "ORD-1001"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="privacy.subject_exported").count() == 1
