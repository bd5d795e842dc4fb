"""The one way to lock rows for read-then-write: `SELECT ... FOR UPDATE OF <the model's own table>`.

A bare `select_for_update()` locks every table the query joins. A model ordered by `tenant` (Policy,
TriggerRule, WebhookEndpoint) joins `accounts_tenant` for the ordering, so `.first()` on it used to lock
the tenant row FOR UPDATE: every configuration write of a tenant queued on that one row, and deadlocked
with the foreign-key checks that PostgreSQL runs at COMMIT (Django's foreign keys are DEFERRABLE
INITIALLY DEFERRED, and each check takes FOR KEY SHARE on the tenant row while the writer holds the
audit chain head). docs/CONCURRENCY.md is the policy; tests/test_concurrency_policy.py holds it.
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def for_update(queryset: QuerySet[M], *, skip_locked: bool = False) -> QuerySet[M]:
    """Lock the queryset's own rows only, in primary-key order (two lockers of the same rows never cross)."""
    return queryset.select_for_update(of=("self",), skip_locked=skip_locked).order_by("pk")
