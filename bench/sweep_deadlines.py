"""Bench 4: the deadline sweep over N due escalations, audit + outbox rows included, against raw SQL.

Goal (issue #25): 100,000 overdue escalations re-escalated (each with its own audit and outbox row) in < 10 s,
and at least 60% of the speed of raw SQL doing the same writes (raw time / sweep time >= 60%).

Each of >= 3 rounds (interleaved, the order alternating, so drift in the machine's load hits both alike):
1. Sweep: seed a fresh tenant with N pending SMR escalations whose acknowledgement deadline (or expiry) has
   passed (set-based INSERT ... SELECT generate_series), vacuum, park every other tenant's due rows (untimed);
   time one sweep_deadlines() call; check every row moved exactly once, with one audit and one outbox event
   each, and that the tenant's audit chain verifies; delete the tenant's escalations (untimed).
2. Raw: the same on a tenant of its own, timing one committed set-based statement doing every write the
   sweep does (RAW_ESCALATE / RAW_EXPIRE: claim, the row, stage or request, outbox, audit with JSON and a
   SHA-256 per row built in SQL; no chain, no HMAC, no ladder or policy lookup).
Figures are medians (min-max) of the rounds; the ratio is the median of the per-round ratios. The load
average is printed next to each round: the machine may be shared.

The rows stay (audit rows are append-only): point DATABASE_URL at a scratch database.

    DATABASE_URL=postgres://... .venv/bin/python -m bench --only 4 [--quick]
    DATABASE_URL=postgres://... .venv/bin/python -m bench.sweep_deadlines [--rows N] [--kind escalate|expire]
        [--rounds R] [--no-pipeline]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .common import Result, setup_django
from .http import spread

GOAL_SECONDS, GOAL_ROWS, GOAL_RATIO = 10.0, 100_000, 0.60


@dataclass
class Seeded:
    tenant_id: int
    seconds: float


def seed(rows: int, kind: str, *, slug: str, now: datetime) -> Seeded:
    """N overdue SMR escalations (with their approval requests and open stages) in a new tenant, set-based."""
    from django.core.serializers.json import DjangoJSONEncoder
    from django.db import connection, transaction

    from accounts.models import ApiKey
    from accounts.roles import Role
    from escalations.demo import seed_demo
    from escalations.models import Policy
    from escalations.policies import policy_snapshot

    from .seed import UUID7_SQL

    started = time.perf_counter()
    seed_demo(slug)
    policy = Policy.objects.get(tenant__slug=slug, type="SMR")
    vendor = ApiKey.objects.get(tenant_id=policy.tenant_id, name="vendor")
    past = now - timedelta(minutes=5)
    ack_due = past if kind == "escalate" else now + timedelta(hours=1)
    expires = past if kind == "expire" else now + timedelta(hours=20)
    params: dict[str, Any] = {"n": rows, "tenant": policy.tenant_id, "policy": policy.pk, "version": policy.version,
              "snapshot": json.dumps(policy_snapshot(policy), cls=DjangoJSONEncoder), "key": vendor.pk,
              "role": Role.COMPLIANCE_OFFICER, "roles": json.dumps([Role.COMPLIANCE_OFFICER]),
              "created": now - timedelta(hours=5), "ack_due": ack_due, "expires": expires,
              "overdue": "ack" if kind == "escalate" else "expiry"}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")  # test data: no need to wait for the disk
        # As escalation_create leaves them (created by the tenant's vendor key), minus the audit and outbox
        # rows of the creation: the sweep does not read those.
        cursor.execute(
            f"""
            WITH request AS (
                INSERT INTO approvals_approvalrequest (tenant_id, status, requester_email, allow_self_approval,
                                                       current_stage, created_at)
                SELECT %(tenant)s, 'open', '', false, 0, %(created)s FROM generate_series(1, %(n)s)
                RETURNING id
            ), numbered AS (
                SELECT id, row_number() OVER (ORDER BY id) AS i FROM request
            ), stage AS (
                INSERT INTO approvals_approvalstage (request_id, index, roles, assigned_role, approvals_required,
                                                     approvals_received, status, opened_at)
                SELECT id, 0, %(roles)s::jsonb, %(role)s, 1, 0, 'open', %(created)s FROM numbered
            )
            INSERT INTO escalations_escalation (
                id, tenant_id, policy_id, policy_version, policy_snapshot, approval_id, type, reason, source_system,
                source_entity_type, source_entity_id, source_url, currency, risk_level, urgency, flags, payload,
                contact, requested_by_api_key_id, requested_by_email, status, current_stage, assigned_role,
                escalation_level, approvals_required, approvals_received, conditions, ack_due_at, expires_at,
                next_deadline_at, created_at, updated_at)
            SELECT {UUID7_SQL}, %(tenant)s, %(policy)s, %(version)s, %(snapshot)s::jsonb, id, 'SMR', 'benchmark',
                   'bench', 'customer', 'C-' || i, '', '', 'medium', 'normal', '[]', '{{}}', '{{}}', %(key)s, '',
                   'pending', 0, %(role)s, 0, 1, 0, '[]', d.ack_due, d.expires, LEAST(d.ack_due, d.expires),
                   %(created)s, %(created)s
            FROM numbered
            -- The overdue deadline is spread over the last ~N seconds (1 ms apart), as a day's intake would be.
            CROSS JOIN LATERAL (SELECT %(ack_due)s - CASE WHEN %(overdue)s = 'ack' THEN i * interval '1 ms' ELSE '0' END
                                       AS ack_due,
                                       %(expires)s - CASE WHEN %(overdue)s = 'expiry' THEN i * interval '1 ms' ELSE '0' END
                                       AS expires) AS d
            """,
            params,
        )
    return Seeded(policy.tenant_id, time.perf_counter() - started)


RAW_ESCALATE = """
WITH due AS (
    SELECT id, approval_id, assigned_role, escalation_level, ack_due_at, status FROM escalations_escalation
    WHERE tenant_id = %(t)s AND status = 'pending' AND ack_due_at <= now() AND top_alerted_at IS NULL
    ORDER BY ack_due_at, id FOR UPDATE SKIP LOCKED
), esc AS (
    UPDATE escalations_escalation e
    SET escalation_level = e.escalation_level + 1, assigned_role = 'senior_manager', current_stage = e.current_stage,
        approvals_required = e.approvals_required, approvals_received = e.approvals_received,
        ack_due_at = now() + interval '4 hours', reminder_sent_at = NULL,
        next_deadline_at = LEAST(now() + interval '4 hours', e.expires_at), updated_at = now()
    FROM due WHERE e.id = due.id
    RETURNING e.id, e.tenant_id, e.approval_id, e.type, e.status, e.assigned_role, e.escalation_level, e.ack_due_at,
              e.expires_at, e.next_deadline_at, e.approvals_required, e.approvals_received,
              due.assigned_role AS from_role, due.escalation_level AS from_level, due.ack_due_at AS overdue_since,
              due.status AS from_status
), stage AS (
    UPDATE approvals_approvalstage s SET assigned_role = 'senior_manager'
    FROM esc WHERE s.request_id = esc.approval_id AND s.index = 0
), body AS (
    SELECT esc.*,
           jsonb_build_object('from_role', from_role, 'from_level', from_level, 'to_role', assigned_role,
                              'to_level', escalation_level, 'skipped_roles', '[]'::jsonb,
                              'overdue_since', overdue_since) AS moved,
           jsonb_build_object('status', from_status, 'assigned_role', from_role, 'escalation_level', from_level,
                              'ack_due_at', overdue_since, 'expires_at', expires_at) AS before,
           jsonb_build_object('status', status, 'assigned_role', assigned_role, 'escalation_level', escalation_level,
                              'ack_due_at', ack_due_at, 'expires_at', expires_at) AS after
    FROM esc
), outbox AS (
    INSERT INTO notifications_outboxevent (event_id, tenant_id, type, version, aggregate_type, aggregate_id, data,
                                           occurred_at)
    SELECT gen_random_uuid(), tenant_id, 'escalation.escalated', 1, 'escalation', id::text,
           moved || jsonb_build_object('escalation_id', id, 'type', type, 'status', status,
                                       'assigned_role', assigned_role, 'level', escalation_level,
                                       'approvals_required', approvals_required,
                                       'approvals_received', approvals_received, 'ack_due_at', ack_due_at,
                                       'expires_at', expires_at, 'next_deadline_at', next_deadline_at),
           now()
    FROM body
)
INSERT INTO audit_auditevent (chain_key, seq, tenant_id, action, actor_type, actor_id, actor_label, target_type,
                              target_id, before, after, details, ip, user_agent, request_id, created_at, key_id,
                              prev_hash, hash)
SELECT 'bench-raw:' || tenant_id, %(seq)s + row_number() OVER (ORDER BY id), tenant_id, 'escalation.escalated',
       'system', 'sweep_deadlines', 'sweep_deadlines', 'escalation', id::text, before, after, moved, NULL, '', '',
       now(), 'raw', '', encode(sha256(convert_to(before::text || after::text || moved::text, 'UTF8')), 'hex')
FROM body
"""


RAW_EXPIRE = """
WITH due AS (
    SELECT id, approval_id, status, assigned_role, escalation_level, current_stage, approvals_required,
           approvals_received, ack_due_at, expires_at, defer_until FROM escalations_escalation
    WHERE tenant_id = %(t)s AND status IN ('pending', 'acknowledged') AND expires_at <= now()
    ORDER BY expires_at, id FOR UPDATE SKIP LOCKED
), esc AS (
    UPDATE escalations_escalation e
    SET status = 'expired', closed_at = now(), decided_at = e.decided_at, defer_until = NULL, deferred_at = NULL,
        next_deadline_at = NULL, expiry_reason = 'undecided', updated_at = now()
    FROM due WHERE e.id = due.id
    RETURNING e.*, due.status AS from_status
), request AS (
    UPDATE approvals_approvalrequest r SET status = 'cancelled', decided_at = now()
    FROM esc WHERE r.id = esc.approval_id AND r.status = 'open'
), body AS (
    SELECT esc.*,
           jsonb_build_object('reason', 'expired', 'outcome', 'expire', 'expires_at', expires_at,
                              'expiry_reason', 'undecided') AS details,
           jsonb_build_object('status', from_status, 'assigned_role', assigned_role, 'escalation_level',
                              escalation_level, 'current_stage', current_stage, 'approvals_required',
                              approvals_required, 'approvals_received', approvals_received, 'ack_due_at', ack_due_at,
                              'expires_at', expires_at, 'defer_until', NULL) AS before,
           jsonb_build_object('status', status, 'assigned_role', assigned_role, 'escalation_level', escalation_level,
                              'current_stage', current_stage, 'approvals_required', approvals_required,
                              'approvals_received', approvals_received, 'ack_due_at', ack_due_at,
                              'expires_at', expires_at, 'defer_until', defer_until) AS after
    FROM esc
), outbox AS (
    INSERT INTO notifications_outboxevent (event_id, tenant_id, type, version, aggregate_type, aggregate_id, data,
                                           occurred_at)
    SELECT gen_random_uuid(), tenant_id, 'escalation.expired', 1, 'escalation', id::text,
           jsonb_build_object('id', id, 'type', type, 'status', status,
                              'source', jsonb_build_object('system', source_system, 'entity_type', source_entity_type,
                                                           'entity_id', source_entity_id, 'url', NULL),
                              'amount', NULL, 'risk_level', risk_level, 'urgency', urgency,
                              'assigned_role', assigned_role, 'escalation_level', escalation_level,
                              'current_stage', current_stage, 'approvals_required', approvals_required,
                              'approvals_received', approvals_received, 'conditions', conditions,
                              'ack_due_at', ack_due_at, 'expires_at', expires_at, 'defer_until', defer_until,
                              'decided_at', decided_at, 'estimated_cost', NULL, 'execution_window', NULL,
                              'approval_expires_at', approval_expires_at, 'reason', 'expired',
                              'expiry_reason', 'undecided'),
           now()
    FROM body
)
INSERT INTO audit_auditevent (chain_key, seq, tenant_id, action, actor_type, actor_id, actor_label, target_type,
                              target_id, before, after, details, ip, user_agent, request_id, created_at, key_id,
                              prev_hash, hash)
SELECT 'bench-raw:' || tenant_id, %(seq)s + row_number() OVER (ORDER BY id), tenant_id, 'escalation.expired',
       'system', 'sweep_deadlines', 'sweep_deadlines', 'escalation', id::text, before, after, details, NULL, '', '',
       now(), 'raw', '', encode(sha256(convert_to(before::text || after::text || details::text, 'UTF8')), 'hex')
FROM body
"""

RAW = {"escalate": RAW_ESCALATE, "expire": RAW_EXPIRE}


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) the server process `pid` has used, when the server runs on this machine."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_writes(tenant_id: int, kind: str) -> tuple[int, float, float | None]:
    """The baseline: one committed set-based statement doing every write the sweep does to each due row of the
    tenant: claim (FOR UPDATE SKIP LOCKED), the escalation's fields (ladder and deadlines, or the closing ones),
    its stage's role or its request's closing, an outbox event (JSON built in SQL) and an audit row
    (before/after/details JSON, a SHA-256 per row computed in SQL). What it leaves out: the audit rows are not
    chained (each hash is its own row's, on a chain key of its own, 'bench-raw:<tenant>', so the tenant's real
    chain stays verifiable), no HMAC, no ladder or policy lookup. Returns (rows, seconds, server CPU seconds)."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    cpu_before, started = _backend_cpu(pid), time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RAW[kind], {"t": tenant_id, "seq": int(time.time() * 1000) * 1000})
        count = cursor.rowcount
    seconds, cpu_after = time.perf_counter() - started, _backend_cpu(pid)
    return count, seconds, (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else None


def park_other_due(tenant_ids: list[int]) -> int:
    """Untimed: move the deadlines of every other tenant's open rows that are due (or fall due within the next
    10 minutes, e.g. bench 3's seeded rows) 30 days on, so that the timed sweep finds only the bench's rows.
    Returns how many rows were moved."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE escalations_escalation SET ack_due_at = ack_due_at + interval '30 days',
                   expires_at = expires_at + interval '30 days', defer_until = defer_until + interval '30 days',
                   next_deadline_at = next_deadline_at + interval '30 days'
            WHERE NOT (tenant_id = ANY(%(t)s)) AND status IN ('pending', 'acknowledged', 'deferred')
              AND (ack_due_at <= now() + interval '10 minutes' OR expires_at <= now() + interval '10 minutes'
                   OR defer_until <= now() + interval '10 minutes'
                   OR (policy_snapshot ? 'ack_sla_seconds' AND reminder_sent_at IS NULL
                       AND ack_due_at <= now() + interval '2 days'))
            """, {"t": tenant_ids})
        return cursor.rowcount


def vacuum(tables: tuple[str, ...]) -> None:
    """Fresh statistics and no dead row versions in the way (the server may run no autovacuum)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def discard(tenant_ids: list[int]) -> None:
    """Delete the bench's escalations and approval requests (untimed) so that no later sweep acts on them.

    Their audit and outbox rows stay (audit events are append-only; both name the escalation by id only).
    """
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        # Children and parents go together: skip the per-row foreign-key triggers (as bench.seed does).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM escalations_escalation WHERE tenant_id = ANY(%s)", [tenant_ids])
        cursor.execute("DELETE FROM approvals_approvalstage WHERE request_id IN "
                       "(SELECT id FROM approvals_approvalrequest WHERE tenant_id = ANY(%s))", [tenant_ids])
        cursor.execute("DELETE FROM approvals_approvalrequest WHERE tenant_id = ANY(%s)", [tenant_ids])


@dataclass
class SweepRound:
    seconds: float
    cpu: float  # the sweep process's CPU seconds (both workers' threads)
    transitions: int
    audits: int
    others: int  # rows of other tenants swept (should be 0)
    chain_ok: bool
    chain: str
    load: tuple[float, float]


@dataclass
class RawRound:
    seconds: float
    cpu: float | None  # the server process's CPU seconds, when it runs on this machine
    rows: int


def _fresh(rows: int, kind: str, slug: str) -> Seeded:
    """A tenant of N due rows, the tables vacuumed, every other tenant's due rows parked: the only due rows."""
    from django.utils import timezone

    seeded = seed(rows, kind, slug=slug, now=timezone.now())
    vacuum(("escalations_escalation", "approvals_approvalstage", "approvals_approvalrequest"))
    park_other_due([seeded.tenant_id])
    return seeded


def sweep_round(rows: int, kind: str, slug: str, *, pipeline: bool = True) -> tuple[Seeded, SweepRound]:
    from audit.models import AuditEvent
    from audit.services import chain_key_for
    from audit.verification import verify_chain
    from escalations.sweeps import sweep_deadlines
    from notifications.models import OutboxEvent

    seeded = _fresh(rows, kind, slug)
    tenant = seeded.tenant_id
    audit_before = AuditEvent.objects.filter(tenant_id=tenant).count()
    outbox_before = OutboxEvent.objects.filter(tenant_id=tenant).count()
    load_before, cpu_before, started = os.getloadavg()[0], time.process_time(), time.perf_counter()
    result = sweep_deadlines() if pipeline else sweep_deadlines(pipeline=False)
    elapsed, cpu, load_after = time.perf_counter() - started, time.process_time() - cpu_before, os.getloadavg()[0]
    audits = AuditEvent.objects.filter(tenant_id=tenant).count() - audit_before
    events = OutboxEvent.objects.filter(tenant_id=tenant).count() - outbox_before
    chain = verify_chain(chain_key_for(tenant))
    discard([tenant])
    return seeded, SweepRound(elapsed, cpu, events, audits, result.total - events, chain.ok,
                              "" if chain.ok else chain.describe(), (load_before, load_after))


def raw_round(rows: int, kind: str, slug: str) -> RawRound:
    seeded = _fresh(rows, kind, slug)
    count, seconds, cpu = raw_writes(seeded.tenant_id, kind)
    discard([seeded.tenant_id])
    return RawRound(seconds, cpu, count)


def measure(rows: int, kind: str = "escalate", rounds: int = 3, *, pipeline: bool = True) -> list[Result]:
    """`rounds` rounds of (sweep, raw), interleaved, the order alternating: figures are medians (min-max)."""
    stamp = int(time.time())
    sweeps: list[SweepRound] = []
    raws: list[RawRound] = []
    seeding = 0.0
    for i in range(rounds):
        for which in (("sweep", "raw") if i % 2 == 0 else ("raw", "sweep")):
            if which == "sweep":
                seeded, swept = sweep_round(rows, kind, f"bench-sweep-{stamp}-{i}", pipeline=pipeline)
                seeding = max(seeding, seeded.seconds)
                sweeps.append(swept)
            else:
                raws.append(raw_round(rows, kind, f"bench-sweep-raw-{stamp}-{i}"))

    ratios = [r.seconds / s.seconds for s, r in zip(sweeps, raws, strict=True)]  # raw time / sweep time, per round
    honest = all(s.chain_ok and s.others == 0 and s.transitions == s.audits == rows for s in sweeps) and all(
        r.rows == rows for r in raws)
    rate = statistics.median(s.transitions / s.seconds for s in sweeps)
    at_goal = GOAL_ROWS / rate
    notes = [f"audit chain broken: {s.chain}" for s in sweeps if not s.chain_ok]
    loads = ", ".join(f"{s.load[0]:.1f}->{s.load[1]:.1f}" for s in sweeps)
    raw_cpu = [r.cpu for r in raws if r.cpu is not None]
    label = {"escalate": "ladder/deadline fields, stage", "expire": "closing fields, request"}[kind]
    return [
        Result("4 sweep", f"seeding {rows:,} due ({kind}), set-based, slowest of {rounds}", seeding, "s"),
        Result("4 sweep", f"sweep of {rows:,} ({kind}; per round {sweeps[0].transitions:,} transitions, +audit, "
               f"+outbox, {'two chunks' if pipeline else 'one chunk'} in flight, "
               f"chain {'verified' if all(s.chain_ok for s in sweeps) else 'BROKEN'}, "
               f"{sum(s.others for s in sweeps):,} other rows swept), median (min-max) of {rounds} rounds; "
               f"load average per round {loads} on {os.cpu_count()} CPUs",
               statistics.median(s.seconds for s in sweeps), "s", notes=notes,
               display=spread([s.seconds for s in sweeps], "{:.2f}") + " s"),
        Result("4 sweep", "sweep process CPU (both workers), median (min-max)",
               statistics.median(s.cpu for s in sweeps), "s", display=spread([s.cpu for s in sweeps], "{:.2f}") + " s"),
        Result("4 sweep", "sweep transitions per second, median", rate, "/s"),
        Result("4 sweep", f"raw SQL doing all the sweep's writes (claim, {label}, outbox, audit), {rows:,} rows, "
               f"median (min-max)", statistics.median(r.seconds for r in raws), "s",
               display=spread([r.seconds for r in raws], "{:.2f}") + " s",
               notes=[f"server CPU {spread(raw_cpu, '{:.2f}')} s"] if raw_cpu else []),
        Result("4 sweep", f"sweep of {GOAL_ROWS:,} (measured, or extrapolated at this rate)", at_goal, "s",
               f"< {GOAL_SECONDS:.0f} s", at_goal < GOAL_SECONDS and honest),
        Result("4 sweep", "raw SQL time / sweep time (same writes), median (min-max) of per-round ratios",
               statistics.median(ratios) * 100, "%", f">= {GOAL_RATIO:.0%}", statistics.median(ratios) >= GOAL_RATIO
               and honest, display=spread([r * 100 for r in ratios], "{:.1f}") + " %"),
    ]


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    return measure(10_000 if quick else GOAL_ROWS, rounds=3), {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=GOAL_ROWS)
    parser.add_argument("--kind", choices=["escalate", "expire"], default="escalate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pipeline", action="store_true", help="one chunk in flight (what the overlap buys)")
    args = parser.parse_args()
    setup_django()
    for row in measure(args.rows, args.kind, args.rounds, pipeline=not args.no_pipeline):
        print(row.row())


if __name__ == "__main__":
    main()
