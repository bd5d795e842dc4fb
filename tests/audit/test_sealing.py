"""Sealing: requests write audit events unsealed, without a tenant-wide lock; the sealer chains them afterwards."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from accounts.actors import Actor
from audit.actions import AuditAction
from audit.models import AuditChainHead, AuditEvent
from audit.sealing import audit_seal_pending, own_seal_problem
from audit.services import audit_record, chain_key_for
from audit.verification import verify_chain
from tests.audit.commands import verify_audit
from trustguard.health import beat_heartbeat_write
from trustguard.metrics import ScrapeTimeCollector
from trustguard.periodic import job_run


def tenant_sealed(make_tenant, slug: str):
    """A tenant whose own creation is already sealed: its chain holds nothing pending."""
    tenant = make_tenant(slug)
    audit_seal_pending()
    return tenant


def record(tenant, n: int = 1, action: AuditAction = AuditAction.DECISION_RECORDED) -> list[int]:
    with transaction.atomic():
        return [audit_record(tenant_id=tenant.pk, action=action, actor=Actor.for_system(tenant, "test"),
                             target_type="escalation", target_id=str(i), details={"i": i}).pk for i in range(n)]


def head_of(tenant) -> tuple[int, str] | None:
    head = AuditChainHead.objects.filter(chain_key=chain_key_for(tenant.pk)).first()
    return (head.last_seq, head.last_hash) if head else None


@pytest.mark.django_db
def test_a_request_writes_its_event_unsealed_with_a_seal_of_its_own_and_leaves_the_chain_head_alone(make_tenant):
    acme = tenant_sealed(make_tenant, "acme")

    before = head_of(acme)

    [pk] = record(acme)

    event = AuditEvent.objects.get(pk=pk)
    assert (event.seq, event.prev_hash) == (None, "")
    assert head_of(acme) == before
    assert event.key_id and len(event.hash) == 64 and own_seal_problem(event) == ""
    report = verify_chain(chain_key_for(acme.pk))
    assert report.ok and (report.events, report.pending) == (1, 1)  # make_tenant's event, and this one
    assert report.describe() == f"OK {chain_key_for(acme.pk)}: 1 events, 1 pending sealing"


@pytest.mark.django_db
def test_the_sealer_chains_each_tenant_s_pending_events_in_id_order_and_moves_its_head(make_tenant):
    acme, globex = tenant_sealed(make_tenant, "acme"), tenant_sealed(make_tenant, "globex")
    acme_ids = record(acme, 3)
    globex_ids = record(globex)

    result = audit_seal_pending()

    assert (result.sealed, result.chains, result.refused) == (4, 2, [])
    events = list(AuditEvent.objects.filter(pk__in=acme_ids).order_by("seq"))
    assert [e.pk for e in events] == acme_ids and [e.seq for e in events] == [2, 3, 4]  # after make_tenant's
    assert [e.prev_hash for e in events[1:]] == [events[0].hash, events[1].hash]
    assert head_of(acme) == (4, events[-1].hash)
    assert AuditEvent.objects.get(pk=globex_ids[0]).seq == 2
    assert all(verify_chain(chain_key_for(t.pk)).ok and verify_chain(chain_key_for(t.pk)).pending == 0
               for t in (acme, globex))
    assert audit_seal_pending().sealed == 0


@pytest.mark.django_db
def test_the_beat_job_and_the_command_seal_and_verify_audit_seals_before_it_verifies(make_tenant):
    acme = tenant_sealed(make_tenant, "acme")
    record(acme, 2)
    assert job_run("audit.seal_pending") == "sealed 2 events on 1 chains"

    record(acme)
    code, out = verify_audit("--no-seal")
    assert code == 0 and "1 events pending sealing" in out, out
    code, out = verify_audit()
    assert code == 0 and "pending" not in out, out
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()


@pytest.mark.django_db
def test_the_database_lets_an_unsealed_event_be_sealed_once_and_changes_nothing_else(make_tenant):
    acme = tenant_sealed(make_tenant, "acme")
    [pk] = record(acme)
    refused = []

    def attempt(sql: str, params: list) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
        except DatabaseError:
            refused.append(sql.split(" SET ")[1].split(" WHERE")[0])

    attempt("UPDATE audit_auditevent SET details = %s WHERE id = %s", ['{"i": 9}', pk])  # unsealed, not a seal
    attempt("UPDATE audit_auditevent SET seq = 7, hash = %s, action = 'x' WHERE id = %s", ["a" * 64, pk])  # and more
    attempt("UPDATE audit_auditevent SET seq = 7, hash = '' WHERE id = %s", [pk])  # a seal without a hash
    attempt("UPDATE audit_auditevent SET seq = 7, prev_hash = '', hash = %s WHERE id = %s", ["a" * 64, pk])  # a seal
    attempt("UPDATE audit_auditevent SET seq = 8, hash = %s WHERE id = %s", ["b" * 64, pk])  # sealed: never again
    attempt("UPDATE audit_auditevent SET details = %s WHERE id = %s", ['{"i": 9}', pk])

    assert refused == ["details = %s", "seq = 7, hash = %s, action = 'x'", "seq = 7, hash = ''",
                       "seq = 8, hash = %s", "details = %s"]
    assert AuditEvent.objects.values_list("seq", "hash").get(pk=pk) == (7, "a" * 64)


@pytest.mark.django_db
def test_an_unsealed_event_cannot_be_deleted_even_behind_a_checkpoint(make_tenant):
    acme = tenant_sealed(make_tenant, "acme")
    record(acme, 2)
    audit_seal_pending()
    [pk] = record(acme)
    with connection.cursor() as cursor:  # a checkpoint past every seq: only a NULL seq could slip through
        cursor.execute("INSERT INTO audit_auditcheckpoint (chain_key, seq, hash, pruned_count, created_at, signature) "
                       "VALUES (%s, 99, '', 0, %s, '')", [chain_key_for(acme.pk), timezone.now()])

    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=pk).delete()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_late_with_a_smaller_id_is_sealed_by_the_next_batch_never_skipped(make_tenant):
    acme = tenant_sealed(make_tenant, "acme")
    written, release = threading.Event(), threading.Event()
    late: list[int] = []

    def slow_request() -> None:
        try:
            late.extend(record_while(acme, written, release))
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert written.wait(10)
    [early] = record(acme)  # a larger id, committed first
    assert audit_seal_pending().sealed == 1
    release.set()
    thread.join(10)

    assert audit_seal_pending().sealed == 1
    assert late[0] < early
    chained = AuditEvent.objects.filter(chain_key=chain_key_for(acme.pk)).order_by("seq").values_list("pk", flat=True)
    assert list(chained)[-2:] == [early, late[0]]
    assert verify_chain(chain_key_for(acme.pk)).ok


def record_while(tenant, written: threading.Event, release: threading.Event) -> list[int]:
    """A request that writes its event, then keeps its transaction open until released."""
    with transaction.atomic():
        pk = audit_record(tenant_id=tenant.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(tenant, "t")).pk
        written.set()
        assert release.wait(10)
    return [pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("inline", [False, True], ids=["sealer", "former design"])
def test_two_writers_of_one_tenant_wait_for_each_other_only_in_the_former_design(make_tenant, settings, inline):
    acme = tenant_sealed(make_tenant, "acme")
    settings.AUDIT_SEAL_INLINE = inline
    written, release = threading.Event(), threading.Event()

    def slow_request() -> None:
        try:
            record_while(acme, written, release)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        assert written.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '500ms'")
            if inline:
                with pytest.raises(DatabaseError, match="lock timeout"):
                    audit_record(tenant_id=acme.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(acme, "t"))
            else:
                audit_record(tenant_id=acme.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(acme, "t"))
    finally:
        release.set()
        thread.join(10)
    audit_seal_pending()
    assert verify_chain(chain_key_for(acme.pk)).ok


@pytest.mark.django_db
def test_healthz_warns_when_the_sealing_lag_passes_its_bound_and_names_the_check_failing_far_past_it(
        client, make_tenant, settings):
    acme = tenant_sealed(make_tenant, "acme")
    record(acme)
    beat_heartbeat_write()
    assert client.get("/healthz").json()["checks"]["audit_sealing"]["status"] == "ok"

    with time_machine.travel(timezone.now() + timedelta(seconds=settings.AUDIT_SEAL_LAG_WARN_SECONDS + 5)):
        beat_heartbeat_write()
        warned = client.get("/healthz")
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.AUDIT_SEAL_LAG_FAIL_SECONDS + 5)):
        beat_heartbeat_write()
        failed = client.get("/healthz")

    assert warned.status_code == 200 and "audit_sealing" in warned.json()["warnings"]
    check = warned.json()["checks"]["audit_sealing"]
    assert check["status"] == "warn" and check["unsealed"] == 1 and check["oldest_age_seconds"] > 60
    assert failed.status_code == 200 and failed.json()["checks"]["audit_sealing"]["status"] == "fail"
    audit_seal_pending()
    assert client.get("/healthz").json()["checks"]["audit_sealing"]["unsealed"] == 0


@pytest.mark.django_db
def test_the_sealing_lag_is_a_prometheus_gauge(make_tenant):
    acme = tenant_sealed(make_tenant, "acme")
    record(acme, 2)

    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        gauges = {m.name: m.samples[0].value for m in ScrapeTimeCollector().collect()}

    assert gauges["trustguard_audit_sealing_unsealed"] == 2
    assert gauges["trustguard_audit_sealing_lag_seconds"] >= 30


@pytest.mark.django_db
def test_the_audit_seal_command_seals_now_and_fails_naming_an_event_altered_before_sealing(make_tenant):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from .test_verify import behind_the_applications_back

    acme = tenant_sealed(make_tenant, "acme")
    record(acme, 2)
    out = StringIO()
    call_command("audit_seal", "--tenant", acme.slug, stdout=out)
    assert out.getvalue().startswith("sealed 2 events on 1 chains; 0 unsealed left")

    first, _ = record(acme, 2)
    behind_the_applications_back("UPDATE audit_auditevent SET details = '{}' WHERE id = %s", [first])
    with pytest.raises(CommandError, match=f"REFUSED: tenant:{acme.pk}: event id={first}: hash mismatch") as refused:
        call_command("audit_seal", stdout=StringIO())

    assert refused.value.returncode == 1
    assert AuditEvent.objects.filter(chain_key=chain_key_for(acme.pk), seq__isnull=True).count() == 2  # it stopped
