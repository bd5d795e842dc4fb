"""What is lost when a database comes back without its keys (docs/BACKUP.md, "What a lost key costs").

The database is the same whether it was restored or not; what differs is the environment. So: a database
written under one set of keys, then the application started with others, as after a restore on a host
whose secret store was lost. Credentials stop authenticating (401, never a 500), webhook secrets cannot
be decrypted (an error naming the key, never a 500 or a silent failure), and the restore checks say
which key and what it costs. Putting the keys back heals everything.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.test import Client
from standardwebhooks import Webhook

from notifications.actors import OperatorActor
from notifications.deliveries.webhooks import webhook_endpoint_create, webhook_endpoint_rotate_secret
from notifications.models import Delivery, WebhookEndpoint
from tests.notifications.conftest import deliver, http_receiver, pending, relay  # noqa: F401 (a fixture)
from trustguard.backup.checks import restore_checks_run
from trustguard.backup.keys import KEYS, key_fingerprints

pytestmark = pytest.mark.django_db

ESCALATION = {"type": "SANCTIONS_MATCH", "reason": "Screening hit", "requested_by": "kyc@bank.example",
              "source": {"system": "screening", "entity_type": "customer", "entity_id": "C-1"}}


def api(secret: str, method: str = "get", path: str = "/escalations", body: dict | None = None, key: str = "k1") -> Any:
    return getattr(Client(), method)("/api/v1" + path, data=body, content_type="application/json",
                                     headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": key})


@pytest.fixture
def written_under_the_old_keys(demo, settings, http_receiver):  # noqa: F811 (the fixture imported above)
    """The demo tenant with a webhook endpoint, and the fingerprints a backup manifest would hold."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    webhook_endpoint_create(tenant_id=demo["tenant_obj"].pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    vendor = demo["api_keys"]["vendor"]
    assert api(vendor).status_code == 200
    return {"manifest": {"rows": {}, "keys": key_fingerprints()}, "vendor": vendor, "ceo": demo["by_name"]["ceo"]["api_token"],
            "old": (settings.SECRET_KEY, settings.CREDENTIAL_PEPPER), "field_keys": list(settings.FIELD_KEYS),
            "old_audit": (settings.AUDIT_KEYS, settings.AUDIT_SIGNING_KEYS), "old_blind_index": settings.BLIND_INDEX_KEY}


def lose_the_keys(settings) -> None:
    """Another SECRET_KEY, no pepper, new field keys and new audit keys: what a host without the secret store
    starts with."""
    settings.SECRET_KEY = "a-new-secret-key-on-the-rebuilt-host-" + "s" * 20
    settings.CREDENTIAL_PEPPER, settings.FIELD_KEYS = settings.SECRET_KEY, [Fernet.generate_key().decode()]
    settings.BLIND_INDEX_KEY = settings.SECRET_KEY  # unset, derived from the new SECRET_KEY
    settings.AUDIT_KEYS = [("rebuilt", "a-new-audit-key-on-the-rebuilt-host-" + "a" * 20)]
    settings.AUDIT_SIGNING_KEYS = [("rebuilt", "YS1uZXctc2lnbmluZy1rZXktb24tdGhlLWhvc3QhISE=")]


def test_without_the_pepper_every_api_key_and_token_answers_401_not_500(written_under_the_old_keys, settings):
    lose_the_keys(settings)

    for secret in (written_under_the_old_keys["vendor"], written_under_the_old_keys["ceo"]):
        response = api(secret)
        assert response.status_code == 401, response.content
        assert response["Content-Type"].startswith("application/problem+json")


def test_without_the_webhook_key_a_delivery_fails_with_an_error_naming_the_key_and_sends_nothing(
        written_under_the_old_keys, settings, http_receiver, caplog):  # noqa: F811
    assert api(written_under_the_old_keys["vendor"], "post", body=ESCALATION).status_code == 201
    relay()
    lose_the_keys(settings)

    outcome = deliver(pending()[0])

    delivery = Delivery.objects.get(kind=Delivery.Kind.WEBHOOK)
    assert outcome == "retry" and http_receiver.requests == []
    assert "cannot be decrypted with the configured TRUSTGUARD_FIELD_KEYS" in delivery.last_error
    assert any("TRUSTGUARD_FIELD_KEYS" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_the_restore_checks_name_each_lost_key_and_what_it_costs(written_under_the_old_keys, settings):
    lose_the_keys(settings)

    results = {r.name: r for r in restore_checks_run(manifest=written_under_the_old_keys["manifest"])}

    assert not results["keys"].ok and not results["webhook secrets"].ok
    for key in KEYS:  # all differ
        assert f"{key.variable} differs from the one this backup was taken with: lost without it: {key.lost}" \
            in results["keys"].detail
    assert "TRUSTGUARD_FIELD_KEYS" in results["webhook secrets"].detail
    assert not results["authenticator seeds"].ok and "Reset authenticator" in results["authenticator seeds"].detail
    assert results["migrations"].ok  # the data itself is whole, but its proof is gone with the audit key:
    assert not results["audit"].ok and "which TRUSTGUARD_AUDIT_KEY does not hold" in results["audit"].detail


def test_with_the_keys_put_back_credentials_webhooks_and_the_checks_work_again(written_under_the_old_keys, settings,
                                                                                  http_receiver):  # noqa: F811
    lose_the_keys(settings)
    settings.SECRET_KEY, settings.CREDENTIAL_PEPPER = written_under_the_old_keys["old"]
    settings.AUDIT_KEYS, settings.AUDIT_SIGNING_KEYS = written_under_the_old_keys["old_audit"]
    settings.FIELD_KEYS = written_under_the_old_keys["field_keys"]
    settings.BLIND_INDEX_KEY = written_under_the_old_keys["old_blind_index"]

    created = api(written_under_the_old_keys["vendor"], "post", body=ESCALATION)
    relay()

    assert created.status_code == 201
    assert deliver(pending()[0]) == "delivered" and len(http_receiver.requests) == 1
    assert [r.name for r in restore_checks_run(manifest=written_under_the_old_keys["manifest"]) if not r.ok] == []


def test_after_losing_the_webhook_key_rotating_an_endpoint_secret_gets_its_deliveries_signed_again(
        written_under_the_old_keys, settings, http_receiver):  # noqa: F811
    assert api(written_under_the_old_keys["vendor"], "post", body=ESCALATION).status_code == 201
    relay()
    lose_the_keys(settings)
    settings.AUDIT_KEYS, settings.AUDIT_SIGNING_KEYS = written_under_the_old_keys["old_audit"]  # not at issue here
    endpoint = WebhookEndpoint.objects.get()

    _, new_secret = webhook_endpoint_rotate_secret(tenant_id=endpoint.tenant_id, actor=OperatorActor.system("test"),
                                                   endpoint_id=endpoint.pk)

    assert deliver(pending()[0]) == "delivered"
    got = http_receiver.requests[0]
    Webhook(new_secret).verify(got.body, got.headers)  # the old secret, unreadable now, no longer signs
    # The webhooks are healed; the authenticators still need resetting (their seeds were under the lost key), and the
    # personal data of the requester the source named (outside the tenant) is lost with the key it was wrapped under.
    assert sorted(r.name for r in restore_checks_run() if not r.ok) == ["authenticator seeds", "data subjects' keys"]


def test_a_secret_key_rotated_with_the_old_one_kept_as_a_fallback_still_matches_the_backup(written_under_the_old_keys,
                                                                                          settings):
    old_secret_key, pepper = written_under_the_old_keys["old"]
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-rotated-secret-key-" + "r" * 30, [old_secret_key]
    # What was derived from the old key is set explicitly now (docs/BACKUP.md: set every key in production).
    settings.CREDENTIAL_PEPPER = pepper

    results = {r.name: r for r in restore_checks_run(manifest=written_under_the_old_keys["manifest"])}

    assert results["keys"].ok and results["webhook secrets"].ok, results
