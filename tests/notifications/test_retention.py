"""Finished outbox work is deleted after the retention; dead letters, pending work and recent rows stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Tenant, User
from audit.models import AuditEvent
from escalations.services import Money, SourceRef, escalation_create
from notifications.actors import OperatorActor
from notifications.deliveries.webhooks import webhook_endpoint_create
from notifications.messages import message_send
from notifications.models import Channel, Delivery, DeliveryStatus, Message, OutboxEvent
from trustguard.periodic import job_run

from ..factories import ApiKeyFactory, shop_whose_large_orders_reach_its_ceo
from .conftest import deliver, relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant() -> Tenant:
    """A shop whose large orders (HIGH_VALUE) reach its CEO by email and in the inbox."""
    return shop_whose_large_orders_reach_its_ceo()


@pytest.fixture
def vendor(tenant: Tenant) -> Actor:
    return Actor(tenant=tenant, api_key=ApiKeyFactory.create(tenant=tenant, name="vendor"))


def order(vendor, entity_id):
    return escalation_create(actor=vendor, type="HIGH_VALUE", reason="Large order", amount=Money(250_000_000, "NGN"),
                             source=SourceRef("shop", "order", entity_id), requested_by="buyer@shop.example")


def age(days: int, *querysets) -> None:
    """Move rows `days` into the past, as if they had been written and finished then."""
    then = timezone.now() - timedelta(days=days)
    for queryset in querysets:
        fields = {f: then for f in ("created_at", "occurred_at", "delivered_at", "relayed_at", "sent_at")
                  if f in {field.name for field in queryset.model._meta.fields}}
        queryset.update(**fields)


def test_the_nightly_purge_deletes_only_finished_work_older_than_the_retention(tenant, vendor, settings, http_receiver,
                                                                               smtp_receiver):
    settings.NOTIFICATION_RETENTION_DAYS = 90
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    old, recent = order(vendor, "ORD-OLD"), order(vendor, "ORD-NEW")
    relay()
    for delivery in Delivery.objects.filter(status=DeliveryStatus.PENDING):
        assert deliver(delivery) == "delivered"
    http_receiver.statuses = [500] * 20
    dead = order(vendor, "ORD-DEAD")
    relay()
    dead_letter = Delivery.objects.get(kind=Delivery.Kind.WEBHOOK, event__aggregate_id=str(dead.pk))
    Delivery.objects.filter(pk=dead_letter.pk).update(status=DeliveryStatus.DEAD, dead_at=timezone.now())
    with transaction.atomic():
        unsent = message_send(tenant_id=tenant.pk, channel="email", subject="Still to go", body="x",
                              purpose="test", to_user_id=User.objects.get(username="ceo").pk)
    age(91, Message.objects.exclude(pk=unsent.pk), Delivery.objects.filter(status=DeliveryStatus.DELIVERED),
        OutboxEvent.objects.all())
    age(10, OutboxEvent.objects.filter(aggregate_id=str(recent.pk)), Delivery.objects.filter(event__aggregate_id=str(recent.pk)),
        Message.objects.filter(event__aggregate_id=str(recent.pk)))
    old_events = set(OutboxEvent.objects.filter(aggregate_id=str(old.pk)).values_list("pk", flat=True))
    assert old_events and Message.objects.filter(event_id__in=old_events, channel=Channel.IN_APP).exists()

    summary = job_run("notifications.purge")

    assert not OutboxEvent.objects.filter(pk__in=old_events).exists()
    assert not Message.objects.filter(event_id__in=old_events).exists()
    assert not Message.objects.filter(subject__contains="ORD-OLD").exists()
    assert not Delivery.objects.filter(kind=Delivery.Kind.WEBHOOK, status=DeliveryStatus.DELIVERED,
                                       delivered_at__lt=timezone.now() - timedelta(days=90)).exists()
    # What stays: the recent order's rows, the dead letter and its event, the message still to be sent.
    assert OutboxEvent.objects.filter(aggregate_id=str(recent.pk)).exists()
    assert Message.objects.filter(subject__contains="ORD-NEW").exists()
    assert Delivery.objects.filter(pk=dead_letter.pk, status=DeliveryStatus.DEAD).exists()
    assert OutboxEvent.objects.filter(deliveries=dead_letter).exists()
    assert Message.objects.filter(pk=unsent.pk).exists() and Delivery.objects.filter(message_id=unsent.pk).exists()
    recorded = AuditEvent.objects.get(action="notifications.purged")
    assert recorded.tenant_id is None and recorded.details["events"] > 0 and recorded.details["messages"] > 0
    assert summary.startswith("purged ") and str(recorded.details["deliveries"]) in summary

    assert job_run("notifications.purge") == "purged 0 deliveries, 0 messages, 0 events"
    assert AuditEvent.objects.filter(action="notifications.purged").count() == 1  # nothing deleted, nothing recorded


def test_purging_in_small_batches_deletes_the_same_rows(vendor, settings):
    from notifications.retention import notifications_purge

    for n in range(5):
        order(vendor, f"ORD-{n}")
    relay()
    Delivery.objects.update(status=DeliveryStatus.DELIVERED)  # the emails went out
    age(100, Message.objects.all(), Delivery.objects.all(), OutboxEvent.objects.all())
    events, messages = OutboxEvent.objects.count(), Message.objects.count()
    assert messages > 2 and Delivery.objects.exists()

    purged = notifications_purge(batch=2)

    assert (purged.events, purged.messages) == (events, messages)
    assert not OutboxEvent.objects.exists() and not Message.objects.exists() and not Delivery.objects.exists()
