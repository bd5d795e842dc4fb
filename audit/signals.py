"""A signal for whoever wants to react to audited actions (metrics, for one) without the writers
knowing about them. Sent by both writers, in the writing transaction, after the rows are inserted;
batch inserts (COPY) send no post_save, so this is the one hook that sees every event.

Receivers that count or notify should defer to transaction.on_commit: the change may still roll back.
"""

from django.dispatch import Signal

# kwargs: events: a sequence of AuditEvent (audit_record) or of audit.services.RecordedEvent (audit_record_many:
# the same fields without the row id, which its COPY does not return)
audit_events_recorded = Signal()
