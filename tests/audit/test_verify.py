"""verify_audit and the nightly verification: intact chains pass, tampering is found and named."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.db import connection, transaction

from accounts.actors import Actor
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.sealing import audit_seal_pending
from audit.services import PLATFORM_CHAIN, audit_record, chain_key_for
from audit.verification import verify_chain
from tests.audit.commands import verify_audit
from trustguard.db_protections import expected_triggers
from trustguard.periodic import job_run


def record(tenant, action="test.happened", **kwargs) -> AuditEvent:
    """An event written and then sealed onto its chain (the chain as it stands once the sealer has run)."""
    with transaction.atomic():
        recorded = audit_record(tenant_id=tenant.pk, action=action, actor=Actor.for_system(tenant, "test"), **kwargs)
    audit_seal_pending()
    return AuditEvent.objects.get(pk=recorded.pk)


def behind_the_applications_back(sql: str, params: list) -> None:
    """What a DBA with superuser rights can do: switch the triggers off and change a row.

    PostgreSQL: session_replication_role = replica (triggers do not fire). SQLite: drop the triggers,
    inside the test's transaction (SQLite's DDL is transactional, so they come back afterwards).
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            for trigger in expected_triggers("sqlite"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger.name}")
        cursor.execute(sql, params)


@pytest.mark.django_db
def test_verify_audit_says_ok_with_the_number_of_events_when_every_chain_is_intact(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    for _ in range(3):
        record(acme)
    record(globex)
    total = AuditEvent.objects.count()

    assert verify_audit() == (0, f"OK {total} events\n")
    assert verify_audit("--tenant", "globex") == (0, f"OK {AuditEvent.objects.filter(tenant=globex).count()} events\n")


@pytest.mark.django_db
def test_verify_audit_refuses_an_unknown_tenant(make_tenant):
    code, _ = verify_audit("--tenant", "nobody")

    assert code == 2


@pytest.mark.django_db
def test_a_row_altered_behind_the_applications_back_is_found_and_named(make_tenant):
    acme = make_tenant("acme")
    record(acme)
    victim = record(acme, action="decision.recorded", details={"decision": "reject"})
    record(acme)

    behind_the_applications_back("UPDATE audit_auditevent SET details = %s WHERE id = %s",
                                 ['{"decision": "approve"}', victim.pk])

    code, out = verify_audit("--tenant", "acme")
    assert code == 1
    assert f"event id={victim.pk} seq={victim.seq}" in out
    assert "altered" in out
    assert verify_audit("--tenant", "acme") == verify_audit()  # the whole run names the same event


@pytest.mark.django_db
def test_a_row_deleted_behind_the_applications_back_is_found(make_tenant):
    acme = make_tenant("acme")
    record(acme)
    victim = record(acme)
    survivor = record(acme)

    behind_the_applications_back("DELETE FROM audit_auditevent WHERE id = %s", [victim.pk])

    report = verify_chain(chain_key_for(acme.pk))
    assert not report.ok
    assert report.event_id == survivor.pk
    assert "missing" in report.problem


@pytest.mark.django_db
def test_cutting_off_the_end_of_a_chain_is_found(make_tenant):
    acme = make_tenant("acme")
    record(acme)
    last = record(acme)

    behind_the_applications_back("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])

    report = verify_chain(chain_key_for(acme.pk))
    assert not report.ok
    assert "removed" in report.problem


@pytest.mark.django_db
def test_a_forged_checkpoint_does_not_excuse_a_missing_prefix(make_tenant):
    acme = make_tenant("acme")
    first = record(acme)
    record(acme)
    assert first.seq is not None
    AuditCheckpoint.objects.create(chain_key=first.chain_key, seq=first.seq, hash=first.hash, pruned_count=1,
                                   created_at=first.created_at, signature="0" * 64)

    report = verify_chain(first.chain_key)

    assert not report.ok
    assert "signature" in report.problem


@pytest.mark.django_db
def test_the_nightly_job_alerts_operators_when_a_chain_is_broken(make_tenant, settings, caplog,
                                                                   django_capture_on_commit_callbacks):
    settings.ADMINS = [("Ops", "ops@trustguard.example")]
    acme = make_tenant("acme")
    victim = record(acme)
    behind_the_applications_back("UPDATE audit_auditevent SET action = 'nothing.happened' WHERE id = %s", [victim.pk])

    with caplog.at_level(logging.ERROR, logger="trustguard.audit"), django_capture_on_commit_callbacks(execute=True):
        summary = job_run("audit.verify_chains")

    assert summary.startswith("BROKEN 1 of")
    assert any(f"event id={victim.pk}" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    alert = AuditEvent.objects.filter(chain_key=PLATFORM_CHAIN, action="audit.chain_broken").get()
    assert alert.details["broken"][0]["event_id"] == victim.pk
    assert len(mail.outbox) == 1 and "Audit chain broken" in mail.outbox[0].subject


@pytest.mark.django_db
def test_the_nightly_job_stays_quiet_when_every_chain_is_intact(make_tenant, settings):
    settings.ADMINS = [("Ops", "ops@trustguard.example")]
    record(make_tenant("acme"))

    summary = job_run("audit.verify_chains")

    assert summary.startswith("OK ")
    assert not AuditEvent.objects.filter(action="audit.chain_broken").exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_missing_chain_head_is_reported(make_tenant):
    acme = make_tenant("acme")
    record(acme)
    AuditChainHead.objects.filter(chain_key=chain_key_for(acme.pk)).delete()

    assert not verify_chain(chain_key_for(acme.pk)).ok


@pytest.mark.django_db
def test_cutting_off_the_end_and_rewriting_the_head_is_found_by_the_nightly_anchor(make_tenant):
    acme = make_tenant("acme")
    record(acme)
    assert job_run("audit.verify_chains").startswith("OK ")  # anchors acme's head on the platform chain
    key = chain_key_for(acme.pk)
    anchored = AuditChainHead.objects.get(chain_key=key)
    survivor = AuditEvent.objects.get(chain_key=key, seq=anchored.last_seq - 1)

    behind_the_applications_back("DELETE FROM audit_auditevent WHERE chain_key = %s AND seq = %s",
                                 [key, anchored.last_seq])
    AuditChainHead.objects.filter(chain_key=key).update(last_seq=survivor.seq, last_hash=survivor.hash)

    report = verify_chain(key)
    assert not report.ok
    assert f"anchored (on the platform chain) at seq {anchored.last_seq}" in report.problem
