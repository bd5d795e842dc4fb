"""Seed escalations at scale with set-based SQL (generate_series), in chunks, indexes built after.

The approver-queue benchmark needs 10M escalations (1M open) across 100 tenants. Row-by-row ORM
inserts would take hours; INSERT ... SELECT generate_series writes a million rows in seconds.
A marker table remembers what was seeded so the next run reuses it.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connection, transaction

# A version 7 id (trustguard.ids.uuid7: the millisecond first, then random bits) made in SQL, as the app
# makes its ids: the seeded rows' keys are in creation order, like the rows the app writes.
UUID7_SQL = ("encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing substring(int8send("
             "(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid")

BIG_TENANT_SLUG = "bench-000"
TENANTS = 100
ROLES = ["compliance_officer", "senior_manager", "governing_body", "ceo"]


Params = list[Any] | dict[str, Any] | None


def _exec(sql: str, params: Params = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def _scalar(sql: str, params: Params = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
        return row[0] if row else None


def seeded_scale() -> tuple[int, int, float] | None:
    """The scale seeded last time and how long that took, if its data and the queue index are in place."""
    _exec("CREATE TABLE IF NOT EXISTS bench_seed_marker (total bigint, open bigint, seconds float)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT total, open, seconds FROM bench_seed_marker")
        row = cursor.fetchone()
    if row is None or not _scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'esc_queue_idx'"):
        return None
    return int(row[0]), int(row[1]), float(row[2])


def _tenants_and_policies() -> list[tuple[int, int]]:
    """100 bench tenants, each with one policy; returns [(tenant_id, policy_id)], the big tenant first."""
    from accounts.models import Tenant
    from escalations.models import Policy

    pairs = []
    for i in range(TENANTS):
        tenant, _ = Tenant.objects.get_or_create(slug=f"bench-{i:03d}", defaults={"name": f"Bench {i}"})
        policy, _ = Policy.objects.get_or_create(
            tenant=tenant, type="HIGH_VALUE",
            defaults={"name": "High value", "route": [{"roles": ["compliance_officer"], "approvals_required": 1}]})
        pairs.append((tenant.pk, policy.pk))
    return pairs


def seed(total: int, open_: int, big_share: float = 0.25, chunk: int = 1_000_000) -> tuple[float, bool]:
    """Insert `total` escalations, `open_` of them open (pending); a quarter of the open ones
    belong to one tenant's compliance officers so that deep pages exist. Returns the seconds the
    seeding took and whether that was an earlier run (the data was reused)."""
    from escalations.models import Escalation

    existing = seeded_scale()
    if existing is not None and existing[:2] == (total, open_):
        return existing[2], True
    start = time.perf_counter()
    with transaction.atomic():  # all or nothing: a failed load never leaves the table without its indexes
        _load(total, open_, big_share, chunk)
    _exec(f"ANALYZE {Escalation._meta.db_table}")
    seconds = time.perf_counter() - start
    _exec("INSERT INTO bench_seed_marker VALUES (%s, %s, %s)", [total, open_, seconds])
    return seconds, False


def _load(total: int, open_: int, big_share: float, chunk: int) -> None:
    from escalations.models import Escalation

    pairs = _tenants_and_policies()
    tenant_ids = [t for t, _ in pairs]
    policy_ids = [p for _, p in pairs]
    table = Escalation._meta.db_table
    _exec(f"TRUNCATE {table} CASCADE")
    _exec("TRUNCATE approvals_approvalrequest CASCADE")
    _exec("DELETE FROM bench_seed_marker")
    # Build indexes once after loading instead of maintaining them per row: drop the unique
    # constraints and plain indexes (not the primary key), put them back the same way after.
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = %s::regclass AND contype = 'u'", [table])
        constraints = cursor.fetchall()
        cursor.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
                       "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", [table])
        indexes = cursor.fetchall()
    for name, _ in constraints:
        _exec(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        _exec(f'DROP INDEX "{name}"')
    _exec("SET LOCAL synchronous_commit = off")
    # Foreign keys are satisfied by construction; skip their per-row trigger checks while loading.
    _exec("SET LOCAL session_replication_role = replica")
    big_open = int(open_ * big_share)
    done = 0
    while done < total:
        n = min(chunk, total - done)
        first_approval = int(_scalar("SELECT nextval(pg_get_serial_sequence('approvals_approvalrequest', 'id'))"))
        _exec("SELECT setval(pg_get_serial_sequence('approvals_approvalrequest', 'id'), %s)", [first_approval + n])
        # Row g (global index) is open when g < open_; the first big_open open rows belong to the big tenant.
        _exec(
            """
            INSERT INTO approvals_approvalrequest (id, tenant_id, status, requester_email, allow_self_approval,
                                                   current_stage, created_at)
            SELECT %(a)s + i, (%(tenants)s::bigint[])[1 + ((%(done)s + i) %% %(nt)s)],
                   CASE WHEN %(done)s + i < %(open)s THEN 'open' ELSE 'approved' END, '', false, 0, now()
            FROM generate_series(0, %(n)s - 1) AS i
            """,
            {"a": first_approval, "tenants": tenant_ids, "done": done, "nt": TENANTS, "open": open_, "n": n},
        )
        _exec(
            f"""
            INSERT INTO {table} (id, tenant_id, policy_id, policy_version, policy_snapshot, approval_id, type, reason,
                source_system, source_entity_type, source_entity_id, source_url, amount_minor, currency, risk_level,
                urgency, flags, payload, contact, requested_by_email, status, current_stage, assigned_role,
                escalation_level, approvals_required, approvals_received, conditions, ack_due_at, expires_at,
                next_deadline_at, created_at, updated_at, closed_at)
            SELECT {UUID7_SQL}, t.tenant_id, t.policy_id, 1, '{{}}'::jsonb, %(a)s + i, 'HIGH_VALUE', 'bench',
                'shop', 'order', 'ORD-' || (%(done)s + i), '', 100000000 + (%(done)s + i), 'NGN', 'medium', 'normal',
                '[]', '{{}}', '{{}}', '', CASE WHEN g < %(open)s THEN 'pending' ELSE 'approved' END, 0,
                CASE WHEN g < %(big)s THEN 'compliance_officer' ELSE (%(roles)s::text[])[1 + (g %% 4)] END,
                0, 1, 0, '[]', due, due + interval '20 hours',
                CASE WHEN g < %(open)s THEN due END, now() - interval '1 hour', now(),
                CASE WHEN g < %(open)s THEN NULL ELSE now() END
            FROM generate_series(0, %(n)s - 1) AS i
            CROSS JOIN LATERAL (SELECT (%(done)s + i)::bigint AS g) AS gi
            CROSS JOIN LATERAL (SELECT now() + ((g * 7919) %% 86400) * interval '1 second' AS due) AS d
            CROSS JOIN LATERAL (
                SELECT CASE WHEN g < %(big)s THEN (%(tenants)s::bigint[])[1] ELSE (%(tenants)s::bigint[])[1 + (g %% %(nt)s)] END
                       AS tenant_id,
                       CASE WHEN g < %(big)s THEN (%(policies)s::bigint[])[1] ELSE (%(policies)s::bigint[])[1 + (g %% %(nt)s)] END
                       AS policy_id) AS t
            """,
            {"a": first_approval, "done": done, "open": open_, "big": big_open, "roles": ROLES, "n": n,
             "tenants": tenant_ids, "policies": policy_ids, "nt": TENANTS},
        )
        done += n
    _exec("SET LOCAL session_replication_role = origin")
    for _, definition in indexes:
        _exec(definition)
    for name, definition in constraints:
        _exec(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def pending_escalations(policy: Any, n: int, *, ack_due_at: Any, expires_at: Any, role: str = "compliance_officer",
                        entity_prefix: str = "C", requested_by_email: str = "",
                        customer_contact: bool = False) -> list[Any]:
    """`n` pending escalations of `policy` assigned to `role` (one stage, one approval needed), written in
    bulk with their approval requests and stages, deadlines as given; optionally a requester by email and
    a customer to keep informed (customer<i>@example.com), who get notifications. Returns the escalations."""
    from django.db import transaction
    from django.utils import timezone

    from approvals.models import ApprovalRequest, ApprovalStage
    from escalations.models import Escalation
    from escalations.policies import policy_snapshot

    snapshot = policy_snapshot(policy)
    now = timezone.now()
    with transaction.atomic():
        requests = ApprovalRequest.objects.bulk_create(
            [ApprovalRequest(tenant_id=policy.tenant_id) for _ in range(n)], batch_size=5000)
        ApprovalStage.objects.bulk_create(
            [ApprovalStage(request=r, index=0, roles=[role], assigned_role=role, approvals_required=1, status="open",
                           opened_at=now) for r in requests], batch_size=5000)
        return Escalation.objects.bulk_create([
            Escalation(tenant_id=policy.tenant_id, policy=policy, policy_version=policy.version,
                       policy_snapshot=snapshot, approval=r, type=policy.type, reason="benchmark",
                       source_system="bench", source_entity_type="customer", source_entity_id=f"{entity_prefix}-{i}",
                       risk_level="medium", assigned_role=role, approvals_required=1, ack_due_at=ack_due_at,
                       expires_at=expires_at, next_deadline_at=min(ack_due_at, expires_at),
                       requested_by_email=requested_by_email,
                       contact={"email": f"customer{i}@example.com"} if customer_contact else {})
            for i, r in enumerate(requests)], batch_size=5000)
