"""The keyed chain and its anchors over time: key rotation, retention, older unkeyed events, a point-in-time restore,
least privilege, and the start-up checks."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.sql import emit_post_migrate_signal
from django.db import transaction
from django.utils import timezone

from accounts.actors import Actor
from accounts.models import Tenant
from audit.actions import AuditAction
from audit.anchors import anchor_write, anchors_read
from audit.checks import audit_keys
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.retention import retention_apply
from audit.services import AuditEntry, RecordedEvent, audit_record, audit_record_many, chain_key_for
from audit.verification import verify_chain
from tests.audit.commands import verify_audit
from trustguard.checks import database_role
from trustguard.periodic import job_run

from .test_tamper import acting_as, app_role, forged_hash  # noqa: F401  (app_role: a fixture)
from .test_verify import behind_the_applications_back as as_superuser

pytestmark = pytest.mark.django_db
K1 = ("k1", "first-audit-key-" + "1" * 32)
K2 = ("k2", "second-audit-key-" + "2" * 32)
S1 = ("s1", "c2lnbmluZy1rZXktb25lLXRoaXJ0eS10d28tYnl0ZXM=")
S2 = ("s2", "c2lnbmluZy1rZXktdHdvLXRoaXJ0eS10d28tYnl0ZXM=")


def record(tenant, n: int = 1) -> list[RecordedEvent]:
    with transaction.atomic():
        return [audit_record(tenant_id=tenant.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(tenant, "test"),
                             details={"i": i}) for i in range(n)]


def test_events_are_sealed_with_the_newest_key_and_every_key_of_the_ring_verifies(make_tenant, settings):
    settings.AUDIT_KEYS = [K1]
    acme = make_tenant("acme")
    old = record(acme, 2)
    with transaction.atomic():  # the batch writer seals the same way
        audit_record_many([AuditEntry(acme.pk, AuditAction.DECISION_RECORDED, Actor.for_system(acme, "test"))])

    settings.AUDIT_KEYS = [K2, K1]  # rotation: the new key first, the old one kept
    new = record(acme, 2)

    assert {e.key_id for e in old} == {"k1"} and {e.key_id for e in new} == {"k2"}
    assert verify_chain(chain_key_for(acme.pk)).ok

    settings.AUDIT_KEYS = [K2]  # the old key dropped too early
    report = verify_chain(chain_key_for(acme.pk))
    assert not report.ok and "sealed with audit key 'k1', which TRUSTGUARD_AUDIT_KEY does not hold" in report.problem


def test_a_row_sealed_with_another_key_under_a_known_key_id_is_found(make_tenant, settings):
    settings.AUDIT_KEYS = [K1]
    acme = make_tenant("acme")
    victim = record(acme, 3)[1]

    settings.AUDIT_KEYS = [("k1", "someone-elses-key-" + "x" * 32)]
    report = verify_chain(chain_key_for(acme.pk))

    assert not report.ok and report.event_id is not None and report.event_id <= victim.pk
    assert "altered or forged" in report.problem


def test_anchors_signed_with_a_retired_signing_key_verify_while_it_stays_in_the_ring(make_tenant, settings):
    record(make_tenant("acme"))
    settings.AUDIT_SIGNING_KEYS = [S1]
    assert job_run("audit.verify_chains").startswith("OK ")

    settings.AUDIT_SIGNING_KEYS = [S2, S1]
    assert job_run("audit.verify_chains").startswith("OK ")
    anchors, problems = anchors_read(settings.AUDIT_ANCHOR_DIR)
    assert problems == [] and len(anchors) == 2
    assert sorted(json.loads(p.read_text())["key_id"] for p in settings.AUDIT_ANCHOR_DIR.iterdir()) == ["s1", "s2"]

    settings.AUDIT_SIGNING_KEYS = [S2]
    code, out = verify_audit("--anchors")
    assert code == 1 and "signed with key 's1', which TRUSTGUARD_AUDIT_SIGNING_KEY does not hold" in out


def test_an_anchor_file_is_new_read_only_and_an_edited_one_is_refused(make_tenant, settings):
    record(make_tenant("acme"))
    job_run("audit.verify_chains")
    [path] = list(settings.AUDIT_ANCHOR_DIR.iterdir())
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert anchor_write({"x": (1, "0" * 64)}) != path  # a second anchor is another file

    doc = json.loads(path.read_text())
    doc["heads"] = {key: [seq - 1, digest] for key, (seq, digest) in doc["heads"].items()}
    os.chmod(path, 0o644)
    path.write_text(json.dumps(doc))

    code, out = verify_audit("--anchors")
    assert code == 1 and f"anchor {path.name}: the signature is invalid: the file was altered or forged" in out


def test_anchors_are_mailed_to_the_operators_when_asked(make_tenant, settings):
    settings.ADMINS, settings.AUDIT_ANCHOR_EMAIL = [("Ops", "ops@trustguard.example")], True
    record(make_tenant("acme"))

    job_run("audit.verify_chains")

    [message] = mail.outbox
    assert "Audit anchor " in message.subject and '"signature"' in message.body


def test_retention_and_anchors_keep_working_together(make_tenant, settings, app_role):  # noqa: F811
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=60)):
        acme = make_tenant("acme")
        Tenant.objects.filter(pk=acme.pk).update(audit_retention_days=30)
        record(acme, 4)
        assert job_run("audit.verify_chains").startswith("OK ")  # anchors a head retention will prune
    record(acme, 2)

    with acting_as(app_role):  # PostgreSQL: as the application's role, through audit_prune_prefix
        [result] = retention_apply(chain_keys=[chain_key_for(acme.pk)], now=now)

    assert result.pruned >= 4 and not result.refused
    assert AuditCheckpoint.objects.filter(chain_key=chain_key_for(acme.pk)).exists()
    assert verify_audit("--anchors")[0] == 0
    assert job_run("audit.verify_chains").startswith("OK ")  # and anchors the pruned chain's head again
    assert verify_audit("--anchors")[0] == 0


def test_chains_an_older_release_left_unkeyed_are_sealed_by_migrate_and_then_verify(make_tenant, settings):
    acme = make_tenant("acme")
    settings.AUDIT_KEYS = []  # what an older release wrote: plain SHA-256, no key id
    key = chain_key_for(acme.pk)
    template = AuditEvent.objects.filter(chain_key=key).order_by("-seq").first()
    assert template is not None
    as_superuser("DELETE FROM audit_auditevent WHERE chain_key = %s", [key])
    prev = ""
    for seq in range(1, 4):
        event = AuditEvent(chain_key=key, seq=seq, tenant_id=acme.pk, action="old.event", actor_type="system",
                           created_at=template.created_at, prev_hash=prev, details={"seq": seq})
        event.hash = forged_hash(prev, event)
        event.save(force_insert=True)
        prev = event.hash
    AuditChainHead.objects.update_or_create(chain_key=key, defaults={"last_seq": 3, "last_hash": prev})
    settings.AUDIT_KEYS = [K1]
    report = verify_chain(key)
    assert not report.ok and "ends with the unkeyed old.event event" in report.problem

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # the end of every `migrate`

    sealed = AuditEvent.objects.get(chain_key=key, seq=4)
    assert (sealed.action, sealed.key_id, sealed.details) == ("audit.chain_keyed", "k1", {"sealed_through_seq": 3})
    assert verify_chain(key).ok
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert AuditEvent.objects.filter(chain_key=key).count() == 4  # idempotent


def test_after_a_point_in_time_restore_later_anchors_are_set_aside_with_an_audit_event(make_tenant, settings, app_role):  # noqa: F811
    acme = make_tenant("acme")
    key = chain_key_for(acme.pk)
    record(acme, 2)
    job_run("audit.verify_chains")
    restore_point = timezone.now()
    at_t = {h.chain_key: (h.last_seq, h.last_hash) for h in AuditChainHead.objects.all()}
    record(acme, 3)
    with time_machine.travel(restore_point + timedelta(minutes=5)):
        job_run("audit.verify_chains")
    # The restore to T: every chain back to its head at T (what PostgreSQL's recovery gives).
    for chain, (seq, digest) in at_t.items():
        as_superuser("DELETE FROM audit_auditevent WHERE chain_key = %s AND seq > %s", [chain, seq])
        as_superuser("UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE chain_key = %s",
                     [seq, digest, chain])
    assert verify_audit()[0] == 0  # the database alone is consistent

    code, out = verify_audit("--anchors")
    assert code == 1 and f"BROKEN {key}: first broken event seq=" in out and "truncated: anchor" in out
    assert verify_audit("--anchors", str(settings.AUDIT_ANCHOR_DIR), "--until", restore_point.isoformat())[0] == 0

    printed = StringIO()
    call_command("audit_anchors_set_aside", "--after", restore_point.isoformat(), "--reason", "INC-42", stdout=printed)

    assert printed.getvalue().startswith("set aside 1 anchors written after")
    [aside] = [p for p in settings.AUDIT_ANCHOR_DIR.iterdir() if p.is_dir()]
    assert len(list(aside.iterdir())) == 1
    event = AuditEvent.objects.get(action="audit.anchors_set_aside")
    assert event.details["reason"] == "INC-42" and event.details["into"] == aside.name
    assert verify_audit("--anchors")[0] == 0
    assert job_run("audit.verify_chains").startswith("OK ")


def test_verify_audit_refuses_a_time_without_its_offset_and_a_missing_directory(settings, db):
    with pytest.raises(CommandError):
        call_command("verify_audit", "--anchors", str(settings.AUDIT_ANCHOR_DIR), "--until", "2025-06-01 14:05")
    assert verify_audit("--anchors", "/nonexistent/anchors")[0] == 2


def test_production_refuses_to_start_without_the_audit_keys(settings):
    settings.DEBUG, settings.AUDIT_KEYS, settings.AUDIT_SIGNING_KEYS = False, [], []

    messages = audit_keys()

    assert [m.id for m in messages] == ["audit.E001", "audit.E001"]
    assert "TRUSTGUARD_AUDIT_KEY" in messages[0].msg and "TRUSTGUARD_AUDIT_SIGNING_KEY" in messages[1].msg


def test_a_signing_key_that_is_not_32_bytes_is_refused(settings):
    settings.AUDIT_SIGNING_KEYS = [("bad", "c2hvcnQ=")]

    [message] = audit_keys()

    assert "key 'bad' must be 32 random bytes in base64" in message.msg


@pytest.mark.postgres
def test_web_and_worker_refuse_to_run_as_the_tables_owner_but_run_as_the_application_role(settings, app_role):  # noqa: F811
    settings.DEBUG, settings.ALLOW_OWNER_ROLE = False, False

    problems = database_role()
    with acting_as(app_role):
        as_app_role = database_role()

    assert problems and all(m.id == "trustguard.E011" for m in problems)
    assert any("is a superuser" in m.msg and "audit_auditevent" in m.msg for m in problems)
    assert as_app_role == []
    settings.ALLOW_OWNER_ROLE = True
    assert database_role() == []


def test_the_application_role_writes_and_verifies_the_audit_trail(make_tenant, app_role):  # noqa: F811
    acme = make_tenant("acme")
    with acting_as(app_role):
        record(acme, 3)
        assert verify_chain(chain_key_for(acme.pk)).ok
        assert job_run("audit.verify_chains").startswith("OK ")


def test_a_forged_hash_of_any_text_is_reported_not_crashed_on(make_tenant):
    acme = make_tenant("acme")
    victim = record(acme, 2)[1]
    as_superuser("UPDATE audit_auditevent SET hash = %s WHERE id = %s", ["é" * 64, victim.pk])

    code, out = verify_audit("--tenant", "acme")

    assert code == 1 and f"event id={victim.pk} " in out and "altered or forged" in out
