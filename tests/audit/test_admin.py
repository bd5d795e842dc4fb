"""The admin shows the audit log read-only, and the field-level history of mutable configuration."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from escalations.models import Policy
from escalations.policies import policy_upsert

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(demo) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@trustguard.example", "x" * 12))
    return client


def test_the_audit_log_can_be_read_but_not_added_changed_or_deleted_in_the_admin(operator_client, demo):
    event = AuditEvent.objects.filter(tenant=demo["tenant_obj"]).earliest("seq")

    assert operator_client.get("/admin/audit/auditevent/").status_code == 200
    page = operator_client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert operator_client.get("/admin/audit/auditevent/add/").status_code == 403
    assert operator_client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_a_policy_change_shows_in_its_admin_history(operator_client, demo, demo_actor):
    policy_upsert(tenant=demo["tenant_obj"], type="SMR", fields={"expiry_seconds": 7200}, actor=demo_actor("ops"))
    policy = Policy.objects.get(tenant=demo["tenant_obj"], type="SMR")

    page = operator_client.get(f"/admin/escalations/policy/{policy.pk}/history/")

    assert page.status_code == 200
    assert policy.history.count() == 2
    assert b"Expiry seconds" in page.content  # the changed field, listed by SimpleHistoryAdmin


def test_a_webhook_endpoint_keeps_a_history_without_its_secrets(operator_client, demo, demo_actor, settings):
    from notifications.deliveries.webhooks import webhook_endpoint_create, webhook_endpoint_delete

    settings.WEBHOOK_ALLOW_PRIVATE = True
    endpoint, secret = webhook_endpoint_create(tenant_id=demo["tenant_obj"].pk, actor=demo_actor("ops"),
                                               url="https://127.0.0.1:9/hook")
    webhook_endpoint_delete(tenant_id=demo["tenant_obj"].pk, actor=demo_actor("ops"), endpoint_id=endpoint.pk)

    assert [h.is_active for h in endpoint.history.order_by("history_id")] == [True, False]
    assert not hasattr(endpoint.history.first(), "secret_encrypted")
    page = operator_client.get(f"/admin/notifications/webhookendpoint/{endpoint.pk}/history/")
    assert page.status_code == 200
    assert secret.encode() not in page.content
