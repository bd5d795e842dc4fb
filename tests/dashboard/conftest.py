"""Fixtures for the dashboard: escalations as the demo vendor would raise them, signed-in clients."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.actors import Actor
from accounts.models import User
from escalations.models import Escalation
from escalations.services import Money, SourceRef, escalation_create

from ..factories import PASSWORD

RECEIPT = b"%PDF-1.4\n% a receipt for order ORD-1001\n"


@pytest.fixture
def raise_escalation(vendor: Actor) -> Callable[..., Escalation]:
    """escalation_create as the demo vendor; defaults to the ₦2,500,000 order of CONTRACT.md."""

    def _raise(naira: int | None = 2_500_000, entity_id: str = "ORD-1001", **kwargs: Any) -> Escalation:
        kwargs.setdefault("reason", "Large order from a new customer")
        kwargs.setdefault("requested_by", "buyer@shop.example")
        return escalation_create(actor=vendor, source=SourceRef("shop", "order", entity_id),
                                 amount=Money(naira * 100, "NGN") if naira is not None else None, **kwargs)

    return _raise


@pytest.fixture
def order_with_receipt(raise_escalation: Callable[..., Escalation]) -> Escalation:
    return raise_escalation(payload={
        "customer": {"name": "Adaeze Nwosu", "since": "2024-03-02"},
        "items": [{"sku": "GEN-5KVA", "qty": 50}],
        "attachments": [{"name": "receipt.pdf", "content_type": "application/pdf",
                         "content_base64": base64.b64encode(RECEIPT).decode()}],
    }, contact={"email": "adaeze.nwosu@example.com", "phone": "+2348031234567"})


@pytest.fixture
def signed_in(demo: dict) -> Callable[[str], Client]:
    """A test client signed in as a demo person (through the login form, so axes sees it)."""

    def _client(username: str) -> Client:
        client = Client()
        password = demo["by_name"][username]["password"] if username in demo["by_name"] else "correct horse battery"
        response = client.post("/accounts/login/", {"username": username, "password": password})
        assert response.status_code == 302, "login failed"
        return client

    return _client


@pytest.fixture
def sign_in(db: None) -> Callable[[User], Client]:
    """A test client signed in as a person the factories made (through the login form, so axes sees it)."""

    def _client(person: User) -> Client:
        client = Client()
        response = client.post("/accounts/login/", {"username": person.username, "password": PASSWORD})
        assert response.status_code == 302, "login failed"
        return client

    return _client


def user(username: str) -> User:
    return User.objects.get(username=username)
