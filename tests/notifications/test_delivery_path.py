"""A delivery attempt: one winner per delivery, kept connections that never outlive the SSRF check."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications.actors import OperatorActor
from notifications.breakers import CacheCircuitStorage
from notifications.deliveries.attempts import breaker_target, delivery_attempt
from notifications.deliveries.webhooks import webhook_endpoint_create, webhook_endpoint_delete
from notifications.models import Delivery, DeliveryStatus
from notifications.outbox.catalogue import Event
from notifications.outbox.emit import event_emit

from .conftest import deliver, pending, relay

SYSTEM = OperatorActor.system("test")


def emit(tenant: Any, count: int) -> None:
    with transaction.atomic():
        for i in range(count):
            event_emit(Event(tenant_id=tenant.pk, type="order.flagged", aggregate_type="order", aggregate_id=f"o-{i}",
                       data={"n": i}))


@dataclass
class KeepAliveReceiver:
    url: str
    # (client port, webhook-id) per request that reached the handler, dropped ones included
    seen: list[tuple[int, str]] = field(default_factory=list)
    # "close" or "reset": how to hang up on the second request of a connection without answering it
    drop_second_request: str = ""


@pytest.fixture
def keepalive_receiver() -> Iterator[KeepAliveReceiver]:
    """An HTTP/1.1 receiver that keeps connections open (the pytest receiver closes each one)."""
    state: dict[str, KeepAliveReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        served = 0

        def do_POST(self) -> None:
            receiver = state["r"]
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.seen.append((self.client_address[1], self.headers.get("webhook-id") or ""))
            self.served += 1
            if receiver.drop_second_request and self.served == 2:
                if receiver.drop_second_request == "reset":  # RST instead of FIN: the client reads ECONNRESET
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                self.close_connection = True  # hang up without an answer, as a receiver's idle timeout would
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = KeepAliveReceiver(url=f"http://127.0.0.1:{server.server_port}/hooks")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state["r"]
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_webhooks_to_one_receiver_go_over_one_kept_connection(make_tenant, keepalive_receiver):
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=keepalive_receiver.url)
    emit(tenant, 3)
    relay()

    assert [deliver(d) for d in pending()] == ["delivered"] * 3

    assert len({port for port, _ in keepalive_receiver.seen}) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("hang_up", ["close", "reset"])
def test_a_kept_connection_the_receiver_dropped_is_retried_once_on_a_fresh_one(make_tenant, keepalive_receiver,
                                                                               hang_up):
    keepalive_receiver.drop_second_request = hang_up
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=keepalive_receiver.url)
    emit(tenant, 2)
    relay()
    first, second = pending()

    assert deliver(first) == "delivered"
    assert deliver(second) == "delivered"  # not a retry with backoff: the drop was the kept connection's

    ports = [port for port, _ in keepalive_receiver.seen]
    assert len(ports) == 3 and ports[0] == ports[1] != ports[2]
    assert Delivery.objects.get(pk=second.pk).attempts == 1


@pytest.mark.django_db
def test_a_kept_connection_does_not_outlive_the_ssrf_check(make_tenant, keepalive_receiver, settings):
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=keepalive_receiver.url)
    emit(tenant, 2)
    relay()
    first, second = pending()
    assert deliver(first) == "delivered"  # a connection to 127.0.0.1 is now kept

    settings.WEBHOOK_ALLOW_PRIVATE = False  # e.g. the host now resolves to a private address
    assert deliver(second) == "retry"

    assert len(keepalive_receiver.seen) == 1
    assert "target refused" in Delivery.objects.get(pk=second.pk).last_error


@pytest.mark.django_db
def test_a_delivery_to_a_deleted_endpoint_is_dead_lettered_without_a_request(make_tenant, http_receiver):
    tenant = make_tenant("acme")
    endpoint, _ = webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=http_receiver.url)
    emit(tenant, 1)
    relay()
    webhook_endpoint_delete(tenant_id=tenant.pk, actor=SYSTEM, endpoint_id=endpoint.pk)

    (delivery,) = pending()
    assert deliver(delivery) == "dead"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and "deleted" in delivery.last_error and delivery.attempts == 0
    assert http_receiver.requests == []


@pytest.mark.django_db
@pytest.mark.redis
def test_a_success_resets_the_breakers_count_of_failures(make_tenant, http_receiver, settings):
    settings.BREAKER_FAIL_MAX = 5
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=http_receiver.url)
    emit(tenant, 2)
    relay()
    failing, succeeding = pending()
    target = breaker_target(failing)
    http_receiver.statuses = [500]

    assert deliver(failing) == "retry"
    assert CacheCircuitStorage(target).counter == 1
    assert deliver(succeeding) == "delivered"

    assert CacheCircuitStorage(target).counter == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_attempting_one_delivery_at_once_send_it_once(make_tenant, http_receiver):
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=http_receiver.url)
    emit(tenant, 1)
    relay()
    (delivery,) = pending()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            start.wait(10)
            outcomes.append(delivery_attempt(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert outcomes.count("delivered") == 1, outcomes
    assert set(outcomes) - {"delivered"} <= {"busy-or-missing", "not-due", "already-delivered"}
    assert len(http_receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_webhook_success_makes_the_next_in_line_due_and_leaves_the_session_durable(make_tenant, http_receiver):
    tenant = make_tenant("acme")
    webhook_endpoint_create(tenant_id=tenant.pk, actor=SYSTEM, url=http_receiver.url)
    with transaction.atomic():  # two events of one aggregate: the second waits for the first
        event_emit([Event(tenant.pk, "order.flagged", "order", "o-1", {"n": n}) for n in (1, 2)])
    relay()
    first, second = pending()
    assert deliver(second) == "waiting-for-earlier-event"

    assert deliver(first) == "delivered"  # outside any transaction: committed without waiting for the WAL

    second.refresh_from_db()
    assert second.next_attempt_at <= timezone.now() and second.attempts == 0  # due again at once
    with connection.cursor() as cursor:  # the no-flush setting was its transaction's only
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert deliver(second) == "delivered"
