"""PII masking in log lines (trustguard.logging), through the handler the settings configure."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from django.db import transaction

from notifications.messages import message_send
from trustguard.logging import MaskPiiFilter, mask_pii

from ..factories import TenantFactory
from .conftest import deliver


@pytest.mark.parametrize(("line", "masked"), [
    ("call +234 803 123 4567 now", "call ***4567 now"),
    ("sms to 08031234567 failed", "sms to ***4567 failed"),
    ("To=%2B2348031234567&Body=x", "To=***4567&Body=x"),
    ("bare 2348031234567.", "bare ***4567."),
    ("mail ada.obi@customer.example now", "mail a***@customer.example now"),
    ("To=ada%40customer.example", "To=a***@customer.example"),
])
def test_emails_and_phone_numbers_are_masked(line, masked):
    assert mask_pii(line) == masked


@pytest.mark.parametrize("line", [
    "at 2026-11-23 19:40:01", "delivery 12345678 failed", "id 3f2a1c9e-1234-4567-89ab-0123456789ab",
    "from 192.168.100.200", "amount 250000000 kobo",
])
def test_dates_ids_addresses_and_amounts_are_not_mistaken_for_phone_numbers(line):
    assert mask_pii(line) == line


@pytest.fixture
def configured_log() -> Iterator[io.StringIO]:
    """The stream of the console handler that settings.LOGGING installs (with its mask filter)."""
    handler = next(h for h in logging.getLogger().handlers
                   if isinstance(h, logging.StreamHandler) and any(isinstance(f, MaskPiiFilter) for f in h.filters))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield buffer
    handler.setStream(old)


def test_log_lines_carry_no_email_or_phone(configured_log):
    logging.getLogger("notifications.test").warning("sending to %s and %s", "ada@customer.example", "+2348031234567")

    line = configured_log.getvalue()
    assert "ada@customer.example" not in line and "2348031234567" not in line
    assert "a***@customer.example" in line and "***4567" in line


@pytest.mark.django_db
def test_a_failed_delivery_logs_and_stores_its_error_without_the_address(settings, configured_log):
    tenant = TenantFactory.create()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1
    with transaction.atomic():
        message = message_send(tenant_id=tenant.pk, channel="email", subject="x", body="y",
                               purpose="t", to_address="ada@customer.example")

    assert deliver(message.delivery) == "retry"

    assert "attempt 1 failed" in configured_log.getvalue()  # the line exists...
    assert "ada@customer.example" not in configured_log.getvalue()  # ...without the address
    message.delivery.refresh_from_db()
    assert "ada@customer.example" not in message.delivery.last_error
