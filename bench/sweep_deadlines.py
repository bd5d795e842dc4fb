"""Benchmark: the deadline sweep over N overdue escalations (default 100,000), audit + outbox included.

    DEBUG=1 DATABASE_URL=postgres://... .venv/bin/python -m bench.sweep_deadlines [--rows N] [--kind escalate|expire]

Seeds a fresh tenant (slug bench-<timestamp>) with N pending SMR escalations whose acknowledgement
deadline (or expiry) has passed, written in bulk, then times one sweep_deadlines() call. The rows stay
in the database (audit rows are append-only); use a scratch database.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trustguard.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.roles import Role
    from approvals.models import ApprovalRequest, ApprovalStage
    from audit.models import AuditEvent
    from escalations import sweeps
    from escalations.demo import seed_demo
    from escalations.models import Escalation, Policy
    from escalations.policies import policy_snapshot
    from notifications.models import OutboxEvent

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kind", choices=["escalate", "expire"], default="escalate")
    args = parser.parse_args()

    slug = f"bench-{int(time.time())}"
    seed_demo(slug)
    policy = Policy.objects.get(tenant__slug=slug, type="SMR")
    snapshot = policy_snapshot(policy)
    now = timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        requests = ApprovalRequest.objects.bulk_create(
            [ApprovalRequest(tenant_id=policy.tenant_id) for _ in range(args.rows)], batch_size=5000)
        ApprovalStage.objects.bulk_create(
            [ApprovalStage(request=r, index=0, roles=[Role.COMPLIANCE_OFFICER], assigned_role=Role.COMPLIANCE_OFFICER,
                           approvals_required=1, status="open", opened_at=now) for r in requests], batch_size=5000)
        past = now - timedelta(minutes=5)
        Escalation.objects.bulk_create([
            Escalation(tenant_id=policy.tenant_id, policy=policy, policy_version=policy.version,
                       policy_snapshot=snapshot, approval=r, type="SMR", reason="benchmark", source_system="bench",
                       source_entity_type="customer", source_entity_id=f"C-{i}", risk_level="medium",
                       assigned_role=Role.COMPLIANCE_OFFICER, approvals_required=1,
                       ack_due_at=past if args.kind == "escalate" else now + timedelta(hours=1),
                       expires_at=past if args.kind == "expire" else now + timedelta(hours=20),
                       next_deadline_at=past)
            for i, r in enumerate(requests)], batch_size=5000)
    print(f"seeded {args.rows} overdue escalations in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    audit_before, outbox_before = AuditEvent.objects.count(), OutboxEvent.objects.count()
    started = time.perf_counter()
    result = sweeps.sweep_deadlines()
    elapsed = time.perf_counter() - started
    print(f"sweep: {result.summary()}")
    print(f"{elapsed:.2f}s for {result.total} transitions ({result.total / elapsed:,.0f}/s); "
          f"+{AuditEvent.objects.count() - audit_before} audit rows, +{OutboxEvent.objects.count() - outbox_before} outbox rows")


if __name__ == "__main__":
    main()
