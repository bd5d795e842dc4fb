"""Field keys: rotation by prepending a key and re-encrypting, refusal to run without keys in production."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from accounts.models import SealedTOTPDevice
from notifications.actors import OperatorActor
from notifications.deliveries.webhooks import endpoint_signing_secrets, webhook_endpoint_create
from notifications.models import WebhookEndpoint
from trustguard import crypto
from trustguard.checks import field_keys_configured


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_field_keys", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.django_db
def test_a_key_prepended_then_rotated_leaves_nothing_under_the_old_key_which_can_then_be_dropped(make_tenant,
                                                                                                 make_person, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    tenant = make_tenant()
    person = make_person(tenant, "ceo", "boss")
    seed = SealedTOTPDevice.objects.get(user=person).key
    _, secret = webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url="http://127.0.0.1:9/")
    old, new = settings.FIELD_KEYS[0], Fernet.generate_key().decode()

    settings.FIELD_KEYS = [new, old]
    assert "accounts.SealedTOTPDevice.key_encrypted: 1 to re-encrypt" in rotate("--dry-run")
    report = rotate("--batch-size", "1")
    settings.FIELD_KEYS = [new]

    assert f"under key id {crypto.key_id(new)}" in report
    assert SealedTOTPDevice.objects.get(user=person).key == seed
    assert endpoint_signing_secrets(WebhookEndpoint.objects.get()) == [secret]
    assert "0 re-encrypted, 0 unreadable" in rotate()  # nothing left: resumable and idempotent


@pytest.mark.django_db
def test_a_value_under_a_key_no_longer_configured_is_named_by_its_key_id_and_left_alone(make_tenant, make_person,
                                                                                          settings):
    person = make_person(make_tenant(), "ceo", "boss")
    stored = SealedTOTPDevice.objects.get(user=person).key_encrypted
    settings.FIELD_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(crypto.SecretUnreadable, match=f"key id {stored.split(':')[0]}"):
        _ = SealedTOTPDevice.objects.get(user=person).key
    assert "1 unreadable" in rotate()
    assert SealedTOTPDevice.objects.get(user=person).key_encrypted == stored


def test_production_without_field_keys_fails_the_system_check_and_a_malformed_key_names_the_variable(settings):
    settings.FIELD_KEYS = []
    assert [m.id for m in field_keys_configured()] == ["trustguard.E020"]

    with pytest.raises(ImproperlyConfigured, match="TRUSTGUARD_FIELD_KEYS: key 2 is not a Fernet key"):
        crypto.parse_keys(Fernet.generate_key().decode() + ",not-a-key")
