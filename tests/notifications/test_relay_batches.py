"""The set-based relay: a batch fans out like events one by one would, and a broken part loses only itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from accounts.roles import Role
from escalations.notify import escalation_recipients, escalation_recipients_many
from escalations.services import Money, SourceRef, escalation_acknowledge, escalation_create, escalation_decide
from notifications import registry, tasks
from notifications import relay as relays
from notifications.actors import OperatorActor
from notifications.deliveries import attempts, queue
from notifications.deliveries.webhooks import webhook_endpoint_create
from notifications.messages import render_message
from notifications.models import Channel, Delivery, Message, OutboxEvent
from notifications.outbox.catalogue import Event
from notifications.outbox.emit import event_emit
from notifications.registry import Recipient, register_recipient_resolver
from tests.conftest import totp_code

from .conftest import relay

pytestmark = pytest.mark.django_db


@pytest.fixture
def test_resolvers() -> Iterator[None]:
    """Resolvers registered by a test for the aggregate type "thing" are gone afterwards."""
    yield
    registry._RESOLVERS.pop("thing", None)
    registry._MANY_RESOLVERS.pop("thing", None)


def emit_things(tenant: Any, count: int, type: str = "thing.happened") -> list[OutboxEvent]:
    with transaction.atomic():
        ids = event_emit([Event(tenant_id=tenant.pk, type=type, aggregate_type="thing", aggregate_id=f"t-{i}",
                                data={"n": i}) for i in range(count)])
        return sorted(OutboxEvent.objects.filter(event_id__in=ids), key=lambda e: ids.index(e.event_id))


def test_the_batch_resolver_names_the_same_recipients_as_the_single_one_for_every_lifecycle_event(
        demo, vendor, demo_actor):
    ceo = demo_actor("ceo")
    approved = escalation_create(actor=vendor, reason="Large order", amount=Money(250_000_000, "NGN"),
                                 source=SourceRef("shop", "order", "ORD-1"), requested_by="buyer@shop.example",
                                 contact={"email": "ada@customer.example"})
    escalation_acknowledge(actor=ceo, escalation=approved)
    escalation_decide(actor=ceo, escalation=approved, decision="approve", justification="Known customer",
                      otp=totp_code(ceo.user))
    escalation_create(actor=demo_actor("co"), type="SMR", reason="Odd transfers", source=SourceRef("bank", "customer", "C-1"))
    events = list(OutboxEvent.objects.filter(aggregate_type="escalation").order_by("id"))
    assert {e.type for e in events} >= {"escalation.created", "escalation.acknowledged", "escalation.approved"}

    many = escalation_recipients_many(events)

    for event in events:
        assert many.get(event.pk, []) == escalation_recipients(event), event.type
    assert any(many.get(e.pk) for e in events)  # somebody is told something


def test_a_batch_resolver_that_fails_costs_only_the_broken_events_messages_never_the_webhooks(
        make_tenant, make_person, http_receiver, test_resolvers, caplog):
    tenant = make_tenant("acme")
    person = make_person(tenant, Role.COMPLIANCE_OFFICER, "pat")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    events = emit_things(tenant, 3)
    broken = events[1]

    def one(event: OutboxEvent) -> list[Recipient]:
        if event.pk == broken.pk:
            OutboxEvent.objects.raw("SELECT no_such_column FROM notifications_outboxevent")[0]  # a failing query
        return [Recipient(audience="approver", channels=(Channel.IN_APP,), user_id=person.pk)]

    def many(batch: Any) -> dict[int, list[Recipient]]:
        raise RuntimeError("the batch resolver is broken")

    register_recipient_resolver("thing", one, many=many)

    assert relay() == 3

    assert Delivery.objects.filter(kind="webhook").count() == 3  # every event's webhook
    told = set(Message.objects.values_list("event_id", flat=True))
    assert told == {events[0].pk, events[2].pk}  # only the broken event lost its message
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()  # and nothing is stuck
    assert "retrying event by event" in caplog.text and f"event {broken.event_id}" in caplog.text


def test_a_person_reached_by_two_routes_gets_one_message_per_channel(make_tenant, make_person, test_resolvers):
    tenant = make_tenant("acme")
    person = make_person(tenant, Role.COMPLIANCE_OFFICER, "pat")
    both = (Channel.EMAIL, Channel.IN_APP)
    register_recipient_resolver("thing", lambda event: [
        Recipient(audience="approver", channels=both, user_id=person.pk),
        Recipient(audience="requester", channels=both, user_id=person.pk),
        Recipient(audience="customer", channels=(Channel.EMAIL,), email=person.email.upper()),
    ])
    emit_things(tenant, 2)

    relay()

    per_event: dict[int, list[str]] = {}
    for event_id, channel in Message.objects.values_list("event_id", "channel"):
        per_event.setdefault(event_id, []).append(channel)
    assert [sorted(channels) for channels in per_event.values()] == [["email", "in_app"], ["email", "in_app"]]
    assert Delivery.objects.filter(kind="email").count() == 2


def test_a_relay_batch_kicks_its_deliveries_as_at_most_the_configured_number_of_tasks(
        make_tenant, http_receiver, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.DELIVERY_KICK_TASKS = 3
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    sent: list[tuple[str, list[Any]]] = []
    from trustguard.celery import app

    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kwargs: sent.append((name, args)))
    emit_things(tenant, 10)
    sent.clear()

    with django_capture_on_commit_callbacks(execute=True):  # the kick runs on commit
        relays.outbox_relay()
    ids = sorted(Delivery.objects.values_list("id", flat=True))

    assert [name for name, _ in sent] == ["notifications.deliver_many"] * 3
    kicked = [i for _, (chunk,) in sent for i in chunk]
    assert sorted(kicked) == ids and len(kicked) == 10  # each once
    sent.clear()
    queue.kick_deliveries(ids[:2])  # few: one task each, as before
    assert sent == [("notifications.deliver", [ids[0]]), ("notifications.deliver", [ids[1]])]


def test_a_backlog_longer_than_one_relay_task_goes_on_in_a_new_task(make_tenant, monkeypatch):
    tenant = make_tenant("acme")
    emit_things(tenant, 12)
    kicks: list[str] = []
    step = relays.outbox_relay_step
    monkeypatch.setattr(tasks, "outbox_relay_step", lambda: step(batch=4, max_batches=2))  # batches of 1, 2
    monkeypatch.setattr(tasks, "kick_relay", lambda: kicks.append("relay"))

    assert tasks.relay() == 3 and kicks == ["relay"]  # 9 left: on in a new task
    assert step(batch=4, max_batches=10) == (9, False)  # 1, 2, 4, then 2 of 4: drained
    assert tasks.relay() == 0 and kicks == ["relay"]  # nothing left: no new task


def test_deliver_many_attempts_each_and_hands_on_what_its_time_budget_leaves(make_tenant, http_receiver, monkeypatch):
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=OperatorActor.system("test"), url=http_receiver.url)
    emit_things(tenant, 3)
    relay()
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    handed_on: list[list[int]] = []
    monkeypatch.setattr(attempts, "kick_deliveries", lambda rest: handed_on.append(list(rest)))

    assert attempts.deliveries_attempt(delivery_ids=ids[:2]) == {"delivered": 2}
    assert handed_on == []
    # Over budget after the first: the rest is handed on.
    assert attempts.deliveries_attempt(delivery_ids=ids[2:] + ids[:2], time_budget_seconds=-1) == {"delivered": 1}
    assert handed_on == [ids[:2]] and len(http_receiver.requests) == 3


def test_plain_text_messages_are_not_html_escaped():
    rendered = render_message(channel="email", audience="approver", event_type="escalation.created", context={
        "type": "SMR", "reason": "O'Brien & Sons <wire>", "role_label": "Compliance officer",
        "event": {"type": "escalation.created"}})

    assert "O'Brien & Sons <wire>" in rendered.body and "&#x27;" not in rendered.body
    # ...while the HTML part of the same email escapes it.
    assert "O&#x27;Brien &amp; Sons &lt;wire&gt;" in rendered.html and "<wire>" not in rendered.html
