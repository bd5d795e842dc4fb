"""The sweeps' view of an escalation: the model's fields they use, read as a tuple, no model instance.

A sweep claims thousands of rows per chunk; building an Escalation per row (and decoding its policy
snapshot's JSON per row) costs more than the row's own UPDATE. The in-memory lifecycle helpers of
escalations.services (audit_state, event_data, close, ...) take either an Escalation or this.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from accounts.models import Tenant


@dataclass(slots=True)
class SweptEscalation:
    # Read from the row, in this order (SWEPT_COLUMNS):
    id: uuid.UUID
    tenant_id: int
    approval_id: int
    type: str
    status: str
    source_system: str
    source_entity_type: str
    source_entity_id: str
    source_url: str
    amount_minor: int | None
    currency: str
    risk_level: str
    urgency: str
    current_stage: int
    assigned_role: str
    escalation_level: int
    approvals_required: int
    approvals_received: int
    ack_due_at: datetime | None
    expires_at: datetime
    defer_until: datetime | None
    deferred_at: datetime | None
    next_deadline_at: datetime | None
    reminder_sent_at: datetime | None
    top_alerted_at: datetime | None
    decided_at: datetime | None
    closed_at: datetime | None
    # Read as JSON text, decoded once per distinct value in a chunk (most rows share them; read-only):
    conditions: list[Any]
    policy_snapshot: dict[str, Any]
    tenant: Tenant
    updated_at: datetime | None = None

    @property
    def pk(self) -> uuid.UUID:
        return self.id


SWEPT_COLUMNS = tuple(f.name for f in fields(SweptEscalation))[:-4]
