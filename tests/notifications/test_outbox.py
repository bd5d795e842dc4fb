"""The outbox: events exist iff their transaction commits; the relay never skips a late commit."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from notifications.actors import OperatorActor
from notifications.deliveries.webhooks import webhook_endpoint_create
from notifications.models import Delivery, OutboxEvent
from notifications.outbox.catalogue import Event
from notifications.outbox.emit import event_emit

from .conftest import relay


def emit(tenant, type="escalation.created", aggregate_id="A-1"):
    (event_id,) = event_emit(Event(tenant_id=tenant.pk, type=type, aggregate_type="test", aggregate_id=aggregate_id,
                                   data={"id": aggregate_id}))
    return OutboxEvent.objects.get(event_id=event_id)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_is_written_when_its_transaction_commits_and_not_when_it_rolls_back(make_tenant):
    tenant = make_tenant("acme")

    with transaction.atomic():
        kept = emit(tenant, aggregate_id="kept")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        emit(tenant, aggregate_id="lost")
        1 / 0  # noqa: B018  (the business change fails after the event was written)

    assert list(OutboxEvent.objects.values_list("aggregate_id", flat=True)) == ["kept"]
    assert kept.envelope()["tenant"] == "acme"


@pytest.mark.django_db
def test_emitting_an_event_outside_a_transaction_is_a_programming_error(make_tenant):
    tenant = make_tenant("acme")
    with pytest.raises(RuntimeError):
        # Run with the test's wrapping transaction stripped away.
        atomic_flag, connection.in_atomic_block = connection.in_atomic_block, False
        try:
            emit(tenant)
        finally:
            connection.in_atomic_block = atomic_flag


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_late_is_not_skipped_by_the_relay(make_tenant, http_receiver):
    """Event 1 gets the lower id but commits after event 2 was already relayed."""
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    written, release, done = threading.Event(), threading.Event(), threading.Event()
    early_ids: list[int] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                early_ids.append(emit(tenant, aggregate_id="slow").pk)
                written.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert written.wait(10)
    with transaction.atomic():
        late = emit(tenant, aggregate_id="fast")
    assert early_ids[0] < late.pk

    assert relay() == 1  # only the committed one is visible
    release.set()
    thread.join(10)
    assert done.is_set()
    assert relay() == 1  # the lower id, committed late, is relayed now

    relayed = set(Delivery.objects.values_list("event__aggregate_id", flat=True))
    assert relayed == {"slow", "fast"}
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_fan_each_event_out_exactly_once(make_tenant, http_receiver):
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    with transaction.atomic():
        for i in range(60):
            emit(tenant, aggregate_id=f"agg-{i}")
    counts: list[int] = []

    def run() -> None:
        try:
            from notifications.relay import outbox_relay

            counts.append(outbox_relay(batch=7))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sum(counts) == 60
    assert Delivery.objects.count() == 60
    assert Delivery.objects.values("event").distinct().count() == 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_does_not_break_the_business_transaction(make_tenant, settings, caplog):
    """The on-commit kick fails to publish; the change stands and the beat sweep relays it."""
    from trustguard.broker import broker_breaker_reset

    tenant = make_tenant("acme")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there (trustguard.broker publishes to it)
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    try:
        with transaction.atomic():
            emit(tenant)
    finally:
        broker_breaker_reset()

    assert OutboxEvent.objects.filter(relayed_at__isnull=True).count() == 1
    assert "could not publish notifications.relay" in caplog.text
    call_command("run_sweeps", "--only", "notifications.relay_outbox")
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_later_event_waits_while_another_relay_still_holds_an_earlier_one_of_the_same_escalation(
        make_tenant, http_receiver):
    from notifications.deliveries.attempts import delivery_attempt

    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    with transaction.atomic():
        first = emit(tenant, type="escalation.created", aggregate_id="esc-1")
        emit(tenant, type="escalation.approved", aggregate_id="esc-1")
    held, release = threading.Event(), threading.Event()

    def other_relay_holding_the_first() -> None:
        try:
            with transaction.atomic():
                OutboxEvent.objects.select_for_update().get(pk=first.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_relay_holding_the_first)
    thread.start()
    assert held.wait(10)
    assert relay() == 1  # SKIP LOCKED: only the second event
    (second,) = Delivery.objects.all()

    assert delivery_attempt(delivery_id=second.pk) == "waiting-for-earlier-event"
    assert http_receiver.requests == []

    release.set()
    thread.join(10)
    assert relay() == 1
    from notifications.deliveries.attempts import deliveries_deliver_due

    Delivery.objects.update(next_attempt_at=first.occurred_at)  # both due now
    assert deliveries_deliver_due() == {"delivered": 2}
    assert [r.json()["type"] for r in http_receiver.requests] == ["escalation.created", "escalation.approved"]
