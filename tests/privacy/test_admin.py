"""The admin shows a case's personal data masked and finds the case by its customer's phone."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from accounts.models import User
from tests.api.conftest import ORDER


@pytest.mark.django_db
def test_the_admin_masks_personal_data_and_finds_the_case_by_the_customers_phone(api):
    body = {**ORDER, "contact": {"email": "admin.seen@example.com", "phone": "0803 123 9876", "name": "Bola Admin"},
            "payload": {"customer_name": "Bola Admin"}}
    case = api("vendor").post("/escalations", body, key=str(uuid.uuid4())).json()
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "x"))

    page = client.get(f"/admin/escalations/escalation/{case['id']}/change/").content.decode()
    assert "a***@example.com" in page and "***9876" in page and "B*** A***" in page
    assert "admin.seen@example.com" not in page and "Bola Admin" not in page and "$sealed" not in page

    found = client.get("/admin/escalations/escalation/", {"q": "+234 803 123 9876"}).content.decode()
    assert "ORD-1001" in found
    missed = client.get("/admin/escalations/escalation/", {"q": "+234 803 000 0000"}).content.decode()
    assert "ORD-1001" not in missed
