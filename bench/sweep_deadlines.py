"""Bench 4: the deadline sweep over N overdue escalations, audit + outbox rows included.

Goal: 100,000 overdue escalations re-escalated (each with its own audit and outbox row) in < 10 s.
Seeds a fresh tenant (slug bench-sweep-<time>) with N pending SMR escalations whose acknowledgement
deadline (or expiry) has passed, written in bulk, then times one sweep_deadlines() call. The rows
stay (audit rows are append-only): point DATABASE_URL at a scratch database.

    DATABASE_URL=postgres://... .venv/bin/python -m bench --only 4 [--quick]
    DATABASE_URL=postgres://... .venv/bin/python -m bench.sweep_deadlines [--rows N] [--kind escalate|expire]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

from .common import Result, setup_django

GOAL_SECONDS, GOAL_ROWS = 10.0, 100_000


def seed(rows: int, kind: str) -> float:
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.roles import Role
    from approvals.models import ApprovalRequest, ApprovalStage
    from escalations.demo import seed_demo
    from escalations.models import Escalation, Policy
    from escalations.policies import policy_snapshot

    started = time.perf_counter()
    slug = f"bench-sweep-{int(time.time())}"
    seed_demo(slug)
    policy = Policy.objects.get(tenant__slug=slug, type="SMR")
    snapshot = policy_snapshot(policy)
    now = timezone.now()
    past = now - timedelta(minutes=5)
    with transaction.atomic():
        requests = ApprovalRequest.objects.bulk_create(
            [ApprovalRequest(tenant_id=policy.tenant_id) for _ in range(rows)], batch_size=5000)
        ApprovalStage.objects.bulk_create(
            [ApprovalStage(request=r, index=0, roles=[Role.COMPLIANCE_OFFICER], assigned_role=Role.COMPLIANCE_OFFICER,
                           approvals_required=1, status="open", opened_at=now) for r in requests], batch_size=5000)
        Escalation.objects.bulk_create([
            Escalation(tenant_id=policy.tenant_id, policy=policy, policy_version=policy.version,
                       policy_snapshot=snapshot, approval=r, type="SMR", reason="benchmark", source_system="bench",
                       source_entity_type="customer", source_entity_id=f"C-{i}", risk_level="medium",
                       assigned_role=Role.COMPLIANCE_OFFICER, approvals_required=1,
                       ack_due_at=past if kind == "escalate" else now + timedelta(hours=1),
                       expires_at=past if kind == "expire" else now + timedelta(hours=20), next_deadline_at=past)
            for i, r in enumerate(requests)], batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def measure(rows: int, kind: str = "escalate") -> list[Result]:
    from audit.models import AuditEvent
    from escalations.sweeps import sweep_deadlines
    from notifications.models import OutboxEvent

    seconds = seed(rows, kind)
    audit_before, outbox_before = AuditEvent.objects.count(), OutboxEvent.objects.count()
    started = time.perf_counter()
    result = sweep_deadlines()
    elapsed = time.perf_counter() - started
    audits, events = AuditEvent.objects.count() - audit_before, OutboxEvent.objects.count() - outbox_before
    rate = result.total / elapsed
    goal = f"{GOAL_ROWS:,} in < {GOAL_SECONDS:.0f} s"
    return [
        Result("4 sweep", f"seeding {rows:,} overdue ({kind})", seconds, "s"),
        Result("4 sweep", f"sweep of {rows:,} ({result.total:,} transitions, +{audits:,} audit, +{events:,} outbox)",
               elapsed, "s"),
        Result("4 sweep", "transitions per second", rate, "/s", goal, rate * GOAL_SECONDS >= GOAL_ROWS),
    ]


def run(quick: bool) -> tuple[list[Result], dict[str, str]]:
    return measure(10_000 if quick else GOAL_ROWS), {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=GOAL_ROWS)
    parser.add_argument("--kind", choices=["escalate", "expire"], default="escalate")
    args = parser.parse_args()
    setup_django()
    for row in measure(args.rows, args.kind):
        print(row.row())


if __name__ == "__main__":
    main()
