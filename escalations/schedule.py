"""Execution windows and lapsing approvals: when an approved change may be carried out, and until when.

An approval is valid until `approval_expires_at`, the earlier of the policy's approval_ttl_seconds after the
approval and the end of the case's execution window. Execution is refused (409) before the window opens or
after it closes; the deadline sweep (escalations.sweeps, pass "approval-lapse") expires an approval not
executed in time, with expiry_reason "approval_lapsed".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from trustguard.errors import Conflict

from .intake import ExecutionWindow
from .models import Escalation


def window_of(escalation: Escalation) -> ExecutionWindow | None:
    if escalation.window_starts_at is None or escalation.window_ends_at is None:
        return None
    return ExecutionWindow(starts_at=escalation.window_starts_at, ends_at=escalation.window_ends_at)


def window_dict(escalation: Escalation) -> dict[str, Any] | None:
    """The window as the API, events and problem details show it (ISO 8601, Z)."""
    window = window_of(escalation)
    if window is None:
        return None
    return {"starts_at": _iso(window.starts_at), "ends_at": _iso(window.ends_at)}


def approval_expiry(escalation: Escalation, approved_at: datetime) -> datetime | None:
    """approval_expires_at of an approval given at `approved_at` (None: it does not lapse)."""
    candidates = []
    ttl = escalation.policy_snapshot.get("approval_ttl_seconds")
    if ttl:
        candidates.append(approved_at + timedelta(seconds=int(ttl)))
    if escalation.window_ends_at is not None:
        candidates.append(escalation.window_ends_at)
    return min(candidates) if candidates else None


def execution_window_check(escalation: Escalation, now: datetime) -> None:
    """Refuse (409 outside-execution-window, the window in the problem detail) an execution outside the window."""
    window = window_of(escalation)
    if window is None or window.starts_at <= now <= window.ends_at:
        return
    when = "has not opened yet" if now < window.starts_at else "has closed"
    raise Conflict(f"the execution window ({_iso(window.starts_at)} to {_iso(window.ends_at)}) {when}",
                   slug="outside-execution-window", extra={"execution_window": window_dict(escalation)})


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")  # as escalations.serializers.iso
