"""The chain itself: one per tenant, never forked by concurrent writers, refused changes by the database."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.actors import Actor
from approvals.models import Decision
from audit.actions import AuditAction
from audit.models import AuditCheckpoint, AuditEvent
from audit.sealing import audit_seal_pending
from audit.services import audit_record, chain_key_for
from audit.verification import verify_chain
from escalations.services import Money, SourceRef, escalation_create, escalation_decide
from tests.conftest import totp_code
from trustguard import context

ORDER = SourceRef(system="shop", entity_type="order", entity_id="ORD-1")


def record(tenant, action="test.happened", **kwargs):
    with transaction.atomic():
        return audit_record(tenant_id=tenant.pk, action=action, actor=Actor.for_system(tenant, "test"), **kwargs)


@pytest.mark.django_db
def test_each_tenant_has_its_own_chain_and_each_event_hashes_onto_the_previous(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")

    recorded = [record(acme), record(acme), record(globex)]
    audit_seal_pending()
    first, second, other = (AuditEvent.objects.get(pk=r.pk) for r in recorded)

    assert [first.chain_key, second.chain_key, other.chain_key] == [f"tenant:{acme.pk}"] * 2 + [f"tenant:{globex.pk}"]
    assert first.seq is not None and second.seq == first.seq + 1  # (make_tenant's own event came first)
    assert second.prev_hash == first.hash
    assert other.prev_hash != second.hash
    assert verify_chain(chain_key_for(acme.pk)).ok
    assert verify_chain(chain_key_for(globex.pk)).ok


@pytest.mark.django_db(transaction=True)  # no test transaction around it: autocommit, as in a careless caller
def test_audit_record_refuses_to_run_outside_the_transaction_of_a_change(make_tenant):
    acme = make_tenant("acme")

    with pytest.raises(RuntimeError):
        audit_record(tenant_id=acme.pk, action=AuditAction.ESCALATION_CREATED, actor=Actor.for_system(acme, "test"))


@pytest.mark.django_db
def test_hostile_request_context_is_stored_so_that_the_chain_still_verifies(make_tenant):
    acme = make_tenant("acme")
    token = context.bind(context.RequestContext(request_id="req-1", ip="2001:0db8:0000:0000:0000:0000:0000:0001",
                                                user_agent="bad\x00agent"))
    try:
        event = record(acme, details={"note": "nul\x00inside", "when": "2026-01-01"}, target_id="t\x00")
        unknown_ip = context.bind(context.RequestContext(request_id="req-2", ip="not-an-ip"))
        try:
            second = record(acme)
        finally:
            context.reset(unknown_ip)
    finally:
        context.reset(token)

    event = AuditEvent.objects.get(pk=event.pk)  # as stored
    assert event.ip == "2001:db8::1"
    assert event.user_agent == "badagent"
    assert event.details == {"note": "nulinside", "when": "2026-01-01"}
    assert second.ip is None
    assert verify_chain(event.chain_key).ok


@pytest.mark.django_db
def test_numbers_the_database_would_rewrite_are_stored_so_that_the_chain_still_verifies(make_tenant):
    acme = make_tenant("acme")
    odd = {"big": 1e16, "huge": 2.5e300, "tiny": 1e-7, "one": 1.0, "nan": float("nan"), "inf": float("-inf"),
           "int": 2**70}

    event = record(acme, details={"result": odd})

    event = AuditEvent.objects.get(pk=event.pk)  # as stored
    assert event.details["result"]["big"] == 10**16
    assert event.details["result"]["nan"] == "NaN"
    report = verify_chain(event.chain_key)
    assert report.ok, report.describe()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_writers_and_three_concurrent_sealers_never_fork_the_chain(make_tenant):
    acme = make_tenant("acme")
    before = AuditEvent.objects.filter(tenant=acme).count()
    writers, per_writer = 20, 5
    start = threading.Barrier(writers)
    errors: list[BaseException] = []
    writing = threading.Event()

    def seal() -> None:
        try:
            while not writing.is_set():
                audit_seal_pending(batch=7)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def write(n: int) -> None:
        try:
            start.wait(timeout=30)
            for i in range(per_writer):
                with transaction.atomic():
                    audit_record(tenant_id=acme.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(acme, f"w{n}"),
                                 details={"writer": n, "i": i})
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    sealers = [threading.Thread(target=seal) for _ in range(3)]
    for t in threads + sealers:
        t.start()
    for t in threads:
        t.join(timeout=120)
    writing.set()
    for t in sealers:
        t.join(timeout=120)
    audit_seal_pending()

    assert errors == []
    events = list(AuditEvent.objects.filter(chain_key=chain_key_for(acme.pk)).order_by("seq"))
    assert len(events) == before + writers * per_writer
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.prev_hash for e in events}) == len(events)  # no two events share a parent: no fork
    report = verify_chain(chain_key_for(acme.pk))
    assert report.ok, report.describe()
    assert report.events == len(events)


def _raw(sql: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


# What each engine's trigger says: pgtrigger's words on PostgreSQL, trustguard.db_protections' on SQLite.
REFUSED = {"postgresql": {"update": "Cannot update|append-only", "delete": "update or delete rows"},
           "sqlite": {"update": "append-only|immutable", "delete": "append-only|immutable"}}


def refused(operation: str) -> str:
    return REFUSED[connection.vendor][operation]


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_audit_events(make_tenant):
    acme = make_tenant("acme")
    event = record(acme)

    with pytest.raises(DatabaseError, match=refused("update")):
        _raw("UPDATE audit_auditevent SET action = 'nothing.happened' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()  # the ORM is no way round it either

    assert AuditEvent.objects.get(pk=event.pk).action == "test.happened"


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_a_decision(vendor, demo_actor):
    ceo = demo_actor("ceo")
    case = escalation_create(actor=vendor, reason="Large order", source=ORDER,
                             amount=Money(300_000_000, "NGN"))
    escalation_decide(actor=ceo, escalation=case, decision="approve", justification="Known customer",
                      otp=totp_code(ceo.user))
    decision = Decision.objects.get()
    pk = Decision._meta.pk.get_db_prep_value(decision.pk, connection)  # a uuid, or its hex on SQLite

    with pytest.raises(DatabaseError, match=refused("update")):
        _raw("UPDATE approvals_decision SET decision = 'reject' WHERE id = %s", [pk])
    with pytest.raises(DatabaseError, match=refused("delete")):
        _raw("DELETE FROM approvals_decision WHERE id = %s", [pk])

    assert Decision.objects.get().decision == "approve"


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_a_retention_checkpoint(make_tenant):
    acme = make_tenant("acme")
    record(acme)
    checkpoint = AuditCheckpoint.objects.create(chain_key=chain_key_for(acme.pk), seq=1, hash="0" * 64,
                                                pruned_count=1, created_at="2020-01-01T00:00:00Z", signature="x")

    with pytest.raises(DatabaseError, match=refused("update")):
        _raw("UPDATE audit_auditcheckpoint SET seq = 99 WHERE id = %s", [checkpoint.pk])
    with pytest.raises(DatabaseError, match=refused("delete")):
        _raw("DELETE FROM audit_auditcheckpoint WHERE id = %s", [checkpoint.pk])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_vendors_requests_at_once_each_leave_one_event_on_an_intact_chain(demo, vendor):
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            start.wait(timeout=30)
            escalation_create(actor=vendor, type="SMR", reason="Odd pattern",
                              source=SourceRef("bank", "account", f"ACC-{n}"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert AuditEvent.objects.filter(action="escalation.created").count() == 20
    report = verify_chain(chain_key_for(demo["tenant_obj"].pk))
    assert report.ok, report.describe()
