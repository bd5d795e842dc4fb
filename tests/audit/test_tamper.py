"""Issue #26: nine ways to tamper with the audit trail, and `verify_audit --anchors` names each one.

What each tamperer may do is what it could do in production (docs/AUDIT.md, "What it proves, against whom"):
- the application's database role (PostgreSQL: a role of its own, SET ROLE here; SQLite: the connection, triggers
  on) may INSERT audit events and checkpoints, UPDATE chain heads, and call audit_prune_prefix, nothing else;
- a database superuser switches the triggers off and may change anything in the database.
Neither holds the audit key nor the signing key, nor can reach the anchor directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from accounts.actors import Actor
from audit.actions import AuditAction
from audit.anchors import anchors_check, anchors_read
from audit.hashing import canonical_text
from audit.models import AuditChainHead, AuditEvent
from audit.services import RecordedEvent, audit_record, chain_key_for
from tests.audit.commands import verify_audit
from trustguard.db_protections import pg_app_role_grant
from trustguard.jsonutil import canonical_json
from trustguard.periodic import job_run

from .test_verify import behind_the_applications_back as as_superuser

pytestmark = pytest.mark.django_db


def record(tenant, n: int = 1) -> list[RecordedEvent]:
    """n events, written unsealed as a request writes them."""
    with transaction.atomic():
        return [audit_record(tenant_id=tenant.pk, action=AuditAction.DECISION_RECORDED, actor=Actor.for_system(tenant, "test"),
                             target_type="escalation", target_id=str(i), details={"decision": "reject", "i": i})
                for i in range(n)]


def app_role_name() -> str:
    return f"{connection.settings_dict['NAME']}_app"[:63]


@pytest.fixture
def app_role(db: None) -> str:
    """PostgreSQL: the application's role, granted as `migrate` grants it (inside the test's transaction: CREATE ROLE
    and GRANT are transactional, so they are gone afterwards)."""
    if connection.vendor != "postgresql":
        return ""
    role = app_role_name()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE ROLE "{role}" NOLOGIN')
    pg_app_role_grant(connection, role)
    return role


@contextmanager
def acting_as(role: str) -> Iterator[None]:
    """A transaction in which the connection has `role`'s rights only (PostgreSQL); SQLite: the connection."""
    with transaction.atomic():
        if role:
            with connection.cursor() as cursor:
                cursor.execute(f'SET LOCAL ROLE "{role}"')
        yield


def as_app(role: str, sql: str, params: list) -> None:
    with acting_as(role), connection.cursor() as cursor:
        cursor.execute(sql, params)


def forged_hash(prev_hash: str, event: AuditEvent) -> str:
    """What someone without the key computes: SHA-256 over the previous hash and the event, as the chain once was."""
    return hashlib.sha256((prev_hash + canonical_text(event)).encode()).hexdigest()


def insert_forged(role: str, head: AuditChainHead, *, key_id: str, hash_of: Callable[[str, AuditEvent], str]) -> int:
    """Append an approval nobody gave, then move the head to it (both within the app role's rights)."""
    template = AuditEvent.objects.filter(chain_key=head.chain_key).order_by("-seq").first()
    assert template is not None
    forged = AuditEvent(chain_key=head.chain_key, seq=head.last_seq + 1, tenant_id=template.tenant_id,
                        action=AuditAction.DECISION_RECORDED, actor_type="user", actor_id="7", actor_label="ceo",
                        target_type="escalation", target_id="99", before=None, after=None,
                        details={"decision": "approve"}, ip=None, user_agent="", request_id="",
                        created_at=template.created_at + timedelta(seconds=1), key_id=key_id, prev_hash=head.last_hash)
    forged.hash = hash_of(head.last_hash, forged)
    with acting_as(role):
        forged.save(force_insert=True)
        AuditChainHead.objects.filter(chain_key=head.chain_key).update(last_seq=forged.seq, last_hash=forged.hash)
    return forged.pk


def rewind_head(role: str, key: str, to: AuditEvent) -> None:
    as_app(role, "UPDATE audit_auditchainhead SET last_seq = %s, last_hash = %s WHERE chain_key = %s",
           [to.seq, to.hash, key])


@pytest.fixture
def chain(make_tenant, app_role) -> dict:
    """A tenant chain of five events, sealed, verified and anchored outside the database (the nightly job)."""
    acme = make_tenant("acme")
    recorded = record(acme, 5)
    assert job_run("audit.verify_chains").startswith("OK ")  # seals them first
    key = chain_key_for(acme.pk)
    events = list(AuditEvent.objects.filter(chain_key=key).order_by("seq"))
    return {"tenant": acme, "key": key, "events": events, "role": app_role,
            "recorded": [next(e for e in events if e.pk == r.pk) for r in recorded]}


def change_payload(c: dict) -> tuple[str, int | None]:
    victim = c["recorded"][2]
    as_superuser("UPDATE audit_auditevent SET details = %s WHERE id = %s", ['{"decision": "approve"}', victim.pk])
    return "altered or forged", victim.pk


def delete_middle(c: dict) -> tuple[str, int | None]:
    victim, survivor = c["recorded"][2], c["recorded"][3]
    as_superuser("DELETE FROM audit_auditevent WHERE id = %s", [victim.pk])
    return f"events {victim.seq}..{victim.seq} are missing", survivor.pk


def delete_last(c: dict) -> tuple[str, int | None]:
    last = c["events"][-1]
    as_superuser("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    return "events at the end were removed", None


def delete_last_and_rewind_head(c: dict) -> tuple[str, int | None]:
    last, before = c["events"][-1], c["events"][-2]
    as_superuser("DELETE FROM audit_auditevent WHERE id = %s", [last.pk])
    rewind_head(c["role"], c["key"], before)
    return "events at the end were removed and the head rewound", None


def forged_garbage_hash(c: dict) -> tuple[str, int | None]:
    head = AuditChainHead.objects.get(chain_key=c["key"])
    forged = insert_forged(c["role"], head, key_id="test", hash_of=lambda prev, event: "f" * 64)
    return "altered or forged", forged


def forged_computed_hash(c: dict) -> tuple[str, int | None]:
    head = AuditChainHead.objects.get(chain_key=c["key"])
    forged = insert_forged(c["role"], head, key_id="", hash_of=forged_hash)
    return "forged: the decision.recorded event is not sealed with the audit key", forged


def rewrite_and_rehash_every_later_one(c: dict) -> tuple[str, int | None]:
    """The superuser changes event 3 and recomputes its hash and every later one (without the key), head included."""
    events = list(AuditEvent.objects.filter(chain_key=c["key"]).order_by("seq"))
    victim = next(i for i, event in enumerate(events) if event.pk == c["recorded"][2].pk)
    prev = events[victim - 1].hash
    events[victim].details = {"decision": "approve", "i": 2}
    for event in events[victim:]:
        event.prev_hash, event.key_id = prev, ""
        event.hash = forged_hash(prev, event)
        as_superuser("UPDATE audit_auditevent SET details = %s, prev_hash = %s, key_id = '', hash = %s WHERE id = %s",
                     [canonical_json(event.details), event.prev_hash, event.hash, event.pk])
        prev = event.hash
    as_superuser("UPDATE audit_auditchainhead SET last_hash = %s WHERE chain_key = %s", [prev, c["key"]])
    return "forged: the decision.recorded event is not sealed with the audit key", c["recorded"][2].pk


def truncate_and_clear_heads(c: dict) -> tuple[str, int | None]:
    if connection.vendor == "postgresql":
        # (The test's own inserts left deferred foreign-key checks pending: run them first, as a commit would.)
        as_superuser("SET CONSTRAINTS ALL IMMEDIATE; TRUNCATE audit_auditevent, audit_auditchainhead, "
                     "audit_auditcheckpoint", [])
    else:
        for table in ("audit_auditevent", "audit_auditchainhead", "audit_auditcheckpoint"):
            as_superuser(f"DELETE FROM {table}", [])
    return "holds no events at all: the chain was emptied", None


def prune_under_a_forged_checkpoint(c: dict) -> tuple[str, int | None]:
    """The app role writes a retention checkpoint without the key and prunes the prefix it 'covers'."""
    third = c["recorded"][2]
    with acting_as(c["role"]), connection.cursor() as cursor:
        cursor.execute("INSERT INTO audit_auditcheckpoint (chain_key, seq, hash, pruned_count, created_at, signature) "
                       "VALUES (%s, %s, %s, %s, %s, %s)", [c["key"], third.seq, third.hash, third.seq,
                                                           third.created_at, "0" * 64])
        if connection.vendor == "postgresql":
            cursor.execute("SELECT audit_prune_prefix(%s, %s)", [c["key"], third.seq])
        else:
            cursor.execute("DELETE FROM audit_auditevent WHERE chain_key = %s AND seq <= %s", [c["key"], third.seq])
    assert not AuditEvent.objects.filter(pk=third.pk).exists()
    return "the retention checkpoint's signature is invalid", None


def change_unsealed_payload(c: dict) -> tuple[str, int | None]:
    """An event not sealed yet, altered by the superuser before the sealer came: its own seal no longer holds, so the
    sealer refuses to chain it (verify_audit seals first) and verification names it."""
    victim, _ = record(c["tenant"], 2)
    as_superuser("UPDATE audit_auditevent SET details = %s WHERE id = %s", ['{"decision": "approve"}', victim.pk])
    return "the unsealed decision.recorded event was altered or forged before it was sealed", victim.pk


def forged_unsealed_event(c: dict) -> tuple[str, int | None]:
    """The app role (which may INSERT) adds an unsealed approval nobody gave, without the key."""
    template = c["events"][-1]
    forged = AuditEvent(chain_key=c["key"], seq=None, tenant_id=template.tenant_id, action=AuditAction.DECISION_RECORDED,
                        actor_type="user", actor_id="7", actor_label="ceo", target_type="escalation", target_id="99",
                        details={"decision": "approve"}, created_at=template.created_at, key_id="test", prev_hash="")
    forged.hash = forged_hash("", forged)
    with acting_as(c["role"]):
        forged.save(force_insert=True)
    return "the unsealed decision.recorded event was altered or forged before it was sealed", forged.pk


def sealed_by_someone_without_the_key(c: dict) -> tuple[str, int | None]:
    """The app role may fill in an unsealed event's seal columns (the sealer runs as it): it chains an event itself,
    with a hash computed without the key, and moves the head."""
    [victim] = record(c["tenant"])
    head = AuditChainHead.objects.get(chain_key=c["key"])
    event = AuditEvent.objects.get(pk=victim.pk)
    event.seq, event.prev_hash, event.key_id = head.last_seq + 1, head.last_hash, "test"
    as_app(c["role"], "UPDATE audit_auditevent SET seq = %s, prev_hash = %s, key_id = %s, hash = %s WHERE id = %s",
           [event.seq, event.prev_hash, event.key_id, forged_hash(head.last_hash, event), event.pk])
    as_app(c["role"], "UPDATE audit_auditchainhead SET last_seq = %s WHERE chain_key = %s", [event.seq, c["key"]])
    return "altered or forged after it was written", victim.pk


TAMPERINGS = [change_payload, delete_middle, delete_last, delete_last_and_rewind_head, forged_garbage_hash,
              forged_computed_hash, rewrite_and_rehash_every_later_one, truncate_and_clear_heads,
              prune_under_a_forged_checkpoint, change_unsealed_payload, forged_unsealed_event,
              sealed_by_someone_without_the_key]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=[t.__name__ for t in TAMPERINGS])
def test_verify_audit_with_the_anchors_names_each_way_to_tamper(chain, settings, tamper):
    assert verify_audit("--anchors", str(settings.AUDIT_ANCHOR_DIR))[0] == 0

    expected, event_id = tamper(chain)

    code, out = verify_audit("--anchors", str(settings.AUDIT_ANCHOR_DIR))
    assert code == 1, out
    line = next(line for line in out.splitlines() if line.startswith(f"BROKEN {chain['key']}:"))
    assert expected in line, out
    if event_id is not None:
        assert f"event id={event_id} " in line, out


def test_the_anchors_outside_the_database_alone_find_a_cut_off_tail_and_a_rewound_head(chain, settings):
    delete_last_and_rewind_head(chain)
    anchors, unreadable = anchors_read(settings.AUDIT_ANCHOR_DIR)

    [report] = anchors_check(anchors, chain_keys={chain["key"]})

    assert unreadable == [] and len(anchors) == 1
    assert not report.ok and report.problem.startswith(f"truncated: {anchors[0].describe()} saw the chain at seq 6")


def test_the_nightly_job_finds_a_cut_off_tail_through_the_anchors_and_writes_no_new_anchor(chain, settings):
    before = sorted(settings.AUDIT_ANCHOR_DIR.iterdir())
    delete_last_and_rewind_head(chain)

    summary = job_run("audit.verify_chains")

    assert summary.startswith("BROKEN") and "truncated" in summary
    assert sorted(settings.AUDIT_ANCHOR_DIR.iterdir()) == before
    assert AuditEvent.objects.filter(action="audit.chain_broken").exists()


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_auditcheckpoint", "approvals_decision"])
def test_the_application_role_is_refused_update_delete_truncate_and_disable_trigger(app_role, table):
    statements = [f"UPDATE {table} SET id = id", f"DELETE FROM {table}", f"TRUNCATE {table}",
                  f"ALTER TABLE {table} DISABLE TRIGGER USER"]
    refused = []
    for sql in statements:
        try:
            as_app(app_role, sql, [])
        except DatabaseError as exc:
            refused.append((sql.split()[0], getattr(exc.__cause__, "sqlstate", None)))

    # 42501 insufficient_privilege: "permission denied for table ..." and "must be owner of table ..."
    assert refused == [("UPDATE", "42501"), ("DELETE", "42501"), ("TRUNCATE", "42501"), ("ALTER", "42501")]
