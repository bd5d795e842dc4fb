"""Circuit breakers: a failing target is skipped until it recovers; other targets carry on."""

from __future__ import annotations

from datetime import timedelta

import pybreaker
import pytest
import time_machine
from django.utils import timezone

from accounts.models import Tenant
from notifications.actors import OperatorActor
from notifications.breakers import breaker_state
from notifications.deliveries.attempts import breaker_target, deliveries_deliver_due
from notifications.deliveries.webhooks import webhook_endpoint_create
from notifications.models import Delivery, DeliveryStatus

from .conftest import deliver, relay

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


def make_events(tenant: Tenant, count: int) -> None:
    from django.db import transaction

    from notifications.outbox.catalogue import Event
    from notifications.outbox.emit import event_emit

    with transaction.atomic():
        for i in range(count):
            event_emit(Event(tenant_id=tenant.pk, type="order.flagged", aggregate_type="order", aggregate_id=f"o-{i}",
                       data={"n": i}))


def test_the_breaker_opens_after_repeated_failures_and_closes_after_recovery(make_tenant, http_receiver, settings):
    settings.BREAKER_FAIL_MAX = 3
    settings.BREAKER_RESET_SECONDS = 60
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("t"), url=http_receiver.url)
    make_events(tenant, 5)
    relay()
    deliveries = list(Delivery.objects.order_by("id"))
    target = breaker_target(deliveries[0])
    http_receiver.default_status = 500

    outcomes = [deliver(d) for d in deliveries]

    # Three real failures open the breaker; the rest are skipped without a request and without an attempt.
    assert outcomes == ["retry", "retry", "retry", "circuit-open", "circuit-open"]
    assert len(http_receiver.requests) == 3
    assert breaker_state(target) == pybreaker.STATE_OPEN
    skipped = Delivery.objects.get(pk=deliveries[3].pk)
    assert skipped.attempts == 0 and skipped.next_attempt_at > timezone.now() + timedelta(seconds=50)

    http_receiver.default_status = 200
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        swept = deliveries_deliver_due()

    assert swept == {"delivered": 5}
    assert breaker_state(target) == pybreaker.STATE_CLOSED
    assert not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()


def test_an_open_breaker_on_one_endpoint_does_not_hold_up_another(make_tenant, http_receiver, settings):
    settings.BREAKER_FAIL_MAX = 2
    tenant = make_tenant("acme")
    other_tenant = make_tenant("beta")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("t"), url=http_receiver.url)
    # The healthy endpoint is the same server on another path, answered 200 by path below.
    webhook_endpoint_create(tenant_id=other_tenant.pk, actor=OperatorActor.system("t"),
                            url=http_receiver.url.replace("/hooks", "/healthy"))
    make_events(tenant, 4)
    make_events(other_tenant, 4)
    relay()
    http_receiver.status_by_path = {"/hooks": 500, "/healthy": 200}

    outcomes = deliveries_deliver_due()

    assert outcomes == {"retry": 2, "circuit-open": 2, "delivered": 4}
    delivered_paths = {r.path for r in http_receiver.requests}
    assert delivered_paths == {"/hooks", "/healthy"}
    assert Delivery.objects.filter(tenant=other_tenant, status=DeliveryStatus.DELIVERED).count() == 4
