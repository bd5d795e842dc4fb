"""Messages about a data subject's cases, for subject export and erasure (subjects.services).

Messages are operational copies (what was sent to whom), mutable and outside the audit chain, so erasure
redacts them in place. Outbox events never carry personal data (escalations.services.event_data: no payload, no
contact), so they need nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from .models import Message

REDACTED = "[erased]"


def _of_cases(tenant_id: int, escalation_ids: Iterable[str]) -> QuerySet[Message]:
    return Message.objects.filter(tenant_id=tenant_id, audience="customer", event__aggregate_type="escalation",
                                  event__aggregate_id__in=[str(i) for i in escalation_ids])


def customer_messages_of(*, tenant_id: int, escalation_ids: Iterable[str]) -> list[dict[str, Any]]:
    """What was sent to the customer of these cases: for a subject export."""
    return [{"escalation": m.event.aggregate_id if m.event else None, "channel": m.channel, "purpose": m.purpose,
             "to": m.to_address, "subject": m.subject, "body": "" if m.sensitive else m.body,
             "created_at": m.created_at.isoformat(), "sent_at": m.sent_at.isoformat() if m.sent_at else None}
            for m in _of_cases(tenant_id, escalation_ids).select_related("event").order_by("created_at")]


def customer_messages_redact(*, tenant_id: int, escalation_ids: Iterable[str]) -> int:
    """Blank the address and text of the messages sent to the customer of these cases; the count redacted."""
    return _of_cases(tenant_id, escalation_ids).update(to_address=REDACTED, subject=REDACTED, body=REDACTED,
                                                       body_html="")
