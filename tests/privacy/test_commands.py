"""Operators' commands: subject_export prints the JSON (and writes the PDF), subject_erase shreds or refuses."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from privacy.models import PrivacySettings
from tests.api.conftest import ORDER
from tests.factories import EscalationFactory, TenantFactory


@pytest.mark.django_db
def test_an_operator_exports_then_erases_a_subject_from_the_console(tmp_path):
    shop = TenantFactory.create(slug="shop")
    EscalationFactory.create(tenant=shop, type="HIGH_VALUE", amount_minor=250_000_000,
                             contact={"email": "console@example.com", "name": "Chidi Console"})
    out = StringIO()
    call_command("subject_export", "--tenant", "shop", "--email", "CONSOLE@example.com", "--pdf",
                 str(tmp_path / "s.pdf"), stdout=out)
    assert json.loads(out.getvalue())["escalations"][0]["contact"]["name"] == "Chidi Console"
    assert (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")

    with pytest.raises(CommandError, match="legal hold"):
        call_command("subject_erase", "--tenant", "shop", "--email", "console@example.com", stdout=StringIO())
    PrivacySettings.objects.create(tenant=shop, aml_types=[])
    out = StringIO()
    call_command("subject_erase", "--tenant", "shop", "--email", "console@example.com", stdout=out)
    assert json.loads(out.getvalue())["status"] == "erased"
    assert AuditEvent.objects.filter(action="privacy.subject_erase_erased", actor_label="system:privacy-operator").exists()


@pytest.mark.django_db
def test_after_the_blind_index_key_changes_privacy_reindex_makes_search_by_phone_work_again(api, settings):
    body = {**ORDER, "contact": {"phone": "0803 555 0101"}}
    case = api("vendor").post("/escalations", body, key=str(uuid.uuid4())).json()
    settings.BLIND_INDEX_KEY = "a-new-blind-index-key-" + "k" * 30
    assert api("co").get("/escalations", {"contact_phone": "08035550101"}).json()["results"] == []

    call_command("privacy_reindex", stdout=StringIO())

    found = api("co").get("/escalations", {"contact_phone": "08035550101"}).json()["results"]
    assert [e["id"] for e in found] == [case["id"]]


@pytest.mark.django_db
def test_the_restore_checks_name_the_customers_data_lost_with_a_field_key(api, settings):
    from trustguard.backup.checks import restore_checks_run

    api("vendor").post("/escalations", {**ORDER, "contact": {"email": "r@example.com"}}, key=str(uuid.uuid4()))
    assert {r.name: r for r in restore_checks_run()}["data subjects' keys"].ok
    settings.FIELD_KEYS = [__import__("cryptography.fernet").fernet.Fernet.generate_key().decode()]
    result = {r.name: r for r in restore_checks_run()}["data subjects' keys"]
    # The customer and the requester the source named (outside the tenant).
    assert not result.ok and "2 of 2 data subjects' personal data cannot be read" in result.detail
