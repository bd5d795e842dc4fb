"""A signal for whoever wants to react to audited actions (metrics, for one) without the writer
knowing about them. Sent by the writer, in the writing transaction, after the rows are inserted;
its inserts send no post_save, so this is the one hook that sees every event.

Receivers that count or notify should defer to transaction.on_commit: the change may still roll back.
"""

from django.dispatch import Signal

# kwargs: events: a sequence of audit.services.RecordedEvent (AuditEvent's fields without the row id)
audit_events_recorded = Signal()
