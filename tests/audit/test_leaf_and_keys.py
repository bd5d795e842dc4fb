"""Audit stays a leaf; signed checkpoints survive a SECRET_KEY rotation; retention runs safely twice at once."""

from __future__ import annotations

import ast
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.checkpoints import checkpoint_signature_valid
from audit.models import AuditCheckpoint, AuditEvent
from audit.retention import retention_apply
from audit.services import chain_key_for
from audit.verification import verify_chain

from ..factories import PersonFactory, TenantFactory

HIGHER_APPS = {"accounts", "approvals", "escalations", "notifications", "reports", "dashboard"}
# The outer layers may import accounts (authentication, capabilities); the core may not.
OUTER_LAYERS = {"api.py", "admin.py", "urls.py"}


def test_the_audit_core_imports_no_higher_app():
    offenders = []
    for path in sorted(Path(settings.BASE_DIR, "audit").rglob("*.py")):
        if path.name in OUTER_LAYERS or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in HIGHER_APPS]

    assert offenders == []


def _a_nine_year_old_tenant_chain() -> str:
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=9 * 365)):
        old = TenantFactory.create(slug="old")  # audited: tenant, membership and its people's events
        PersonFactory.create(tenant=old, role="ceo")
        PersonFactory.create(tenant=old, role="compliance_officer")
    return chain_key_for(AuditEvent.objects.filter(tenant__slug="old").values_list("tenant_id", flat=True).first())


@pytest.mark.django_db
def test_checkpoints_signed_before_a_secret_key_rotation_still_verify(settings):
    key = _a_nine_year_old_tenant_chain()
    retention_apply(chain_keys=[key])
    old_secret = settings.SECRET_KEY

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-brand-new-secret-key-after-rotation", [old_secret]
    assert verify_chain(key).ok

    settings.SECRET_KEY_FALLBACKS = []  # the old key forgotten: the checkpoint can no longer be trusted
    assert not checkpoint_signature_valid(AuditCheckpoint.objects.get(chain_key=key))
    assert "signature" in verify_chain(key).problem


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_retention_runs_at_once_prune_once_and_leave_a_verifiable_chain():
    key = _a_nine_year_old_tenant_chain()
    results: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(sum(r.pruned for r in retention_apply(chain_keys=[key])))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert sorted(results)[0] == 0 and sorted(results)[1] > 0
    assert AuditCheckpoint.objects.filter(chain_key=key).count() == 1
    assert verify_chain(key).ok
