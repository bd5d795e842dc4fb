"""The catalogue of audit actions: every action any app writes, with its label in words.

The value is what the chain stores and hashes, and what GET /audit returns as `action`: never change a
value (old events keep theirs; the chain would no longer verify against a renamed one). Add a member for a
new action; the dashboard, the admin and anything else that shows an action to a person reads its label here.
"""

from __future__ import annotations

from django.db import models


class AuditAction(models.TextChoices):
    # Escalations: the case's lifecycle (services and sweeps).
    ESCALATION_CREATED = "escalation.created", "Created"
    ESCALATION_APPROVED = "escalation.approved", "Approved"  # approved on creation (an auto-approve rule)
    ESCALATION_ACKNOWLEDGED = "escalation.acknowledged", "Acknowledged"
    DECISION_RECORDED = "decision.recorded", "Decision recorded"
    ESCALATION_CANCELLED = "escalation.cancelled", "Cancelled"
    ESCALATION_EXECUTED = "escalation.executed", "Executed"
    ESCALATION_COMMENTED = "escalation.commented", "Commented"
    ESCALATION_AMENDED = "escalation.amended", "Amended by the requester"
    ESCALATION_RESUMED = "escalation.resumed", "Back from deferral"
    ESCALATION_REJECTED = "escalation.rejected", "Rejected"  # rejected when it expired (policy on expiry)
    ESCALATION_EXPIRED = "escalation.expired", "Expired"
    ESCALATION_ESCALATED = "escalation.escalated", "Escalated to the next level"
    ESCALATION_LADDER_LEVEL_SKIPPED = "escalation.ladder_level_skipped", "Ladder level skipped"
    ESCALATION_SLA_BREACHED = "escalation.sla_breached", "Sla breached"
    ESCALATION_UNSTAFFED = "escalation.unstaffed", "Nobody present to decide (everyone away)"
    ESCALATION_REMINDER_SENT = "escalation.reminder_sent", "Reminder sent"
    ESCALATION_REPORT_GENERATED = "escalation.report_generated", "Report generated"
    # Change management: lapsed approvals, obligations, templates (escalations.schedule/obligations/templates).
    ESCALATION_APPROVAL_LAPSED = "escalation.approval_lapsed", "Approval lapsed (not executed in time)"
    CONDITION_OVERDUE = "condition.overdue", "Condition overdue"
    CONDITION_MET = "condition.met", "Condition met"
    CONDITION_WAIVED = "condition.waived", "Condition waived"
    CONDITION_EVIDENCE_ADDED = "condition.evidence_added", "Condition evidence added"
    TEMPLATE_CHANGED = "template.changed", "Change template changed"
    POLICY_CHANGED = "policy.changed", "Policy changed"
    TRIGGER_RULE_CHANGED = "trigger_rule.changed", "Trigger rule changed"
    TERMINOLOGY_CHANGED = "terminology.changed", "Terminology changed"
    MESSAGE_TEMPLATE_CHANGED = "message_template.changed", "Message template changed"

    # Step-up: second-factor codes.
    OTP_CHALLENGE_SENT = "otp.challenge_sent", "One-time code sent"
    OTP_FAILED = "otp.failed", "Wrong one-time code"
    OTP_REPLAY_REFUSED = "otp.replay_refused", "Reused one-time code refused"
    OTP_LOCKED_OUT = "otp.locked_out", "Locked out after wrong codes"
    TOTP_ENROLLED = "totp.enrolled", "Authenticator enrolled"
    TOTP_RESET = "totp.reset", "Authenticator reset"

    # Accounts: sign-in, tenants, people, capabilities, credentials.
    LOGIN_SUCCEEDED = "login.succeeded", "Signed in"
    LOGIN_FAILED = "login.failed", "Sign-in failed"
    LOGIN_LOCKED_OUT = "login.locked_out", "Sign-in locked out"
    TENANT_CREATED = "tenant.created", "Tenant created"
    TENANT_CHANGED = "tenant.changed", "Tenant changed"
    ROLE_CREATED = "role.created", "Role created"
    ROLE_CHANGED = "role.changed", "Role changed"
    CAPABILITY_GRANTED = "capability.granted", "Capability granted"
    CAPABILITY_REVOKED = "capability.revoked", "Capability revoked"
    LANGUAGE_CHANGED = "person.language_changed", "Language changed"
    TIME_ZONE_CHANGED = "person.time_zone_changed", "Time zone changed"
    MEMBERSHIP_ADDED = "membership.added", "Membership added"
    MEMBERSHIP_DEACTIVATED = "membership.deactivated", "Membership deactivated"
    CREDENTIAL_CREATED = "credential.created", "Credential created"
    CREDENTIAL_REVOKED = "credential.revoked", "Credential revoked"
    CREDENTIAL_RESTORED = "credential.restored", "Credential restored"
    # Out of office (accounts.delegations): who stands in for whom, and when.
    DELEGATION_CREATED = "delegation.created", "Out of office set"
    DELEGATION_ENDED = "delegation.ended", "Out of office ended"
    DELEGATION_REVOKED = "delegation.revoked", "Out of office ended early"

    # Notifications: webhooks, deliveries, purges.
    WEBHOOK_CREATED = "webhook.created", "Webhook created"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", "Webhook secret rotated"
    WEBHOOK_DELETED = "webhook.deleted", "Webhook deleted"
    PUSH_SUBSCRIPTION_ADDED = "push_subscription.added", "Push notifications enabled on a device"
    PUSH_SUBSCRIPTION_REMOVED = "push_subscription.removed", "Push notifications removed from a device"
    PUSH_SUBSCRIPTION_RENEWED = "push_subscription.renewed", "A device renewed its push subscription"
    DELIVERY_REPLAYED = "delivery.replayed", "Delivery replayed"
    NOTIFICATIONS_PURGED = "notifications.purged", "Notifications purged"
    NOTIFICATION_SETTINGS_CHANGED = "notification_settings.changed", "Notification settings changed"
    NOTIFICATION_DEFAULTS_CHANGED = "notification_defaults.changed", "Tenant notification defaults changed"

    # Reports: exports.
    EXPORT_REQUESTED = "export.requested", "Export requested"
    EXPORT_COMPLETED = "export.completed", "Export completed"
    EXPORT_DOWNLOADED = "export.downloaded", "Export downloaded"

    # Privacy: personal data revealed, data subjects exported and erased (subjects.services). Details carry field
    # names, subject ids and keyed hashes (commitments), never a personal value.
    PRIVACY_VALUES_REVEALED = "privacy.values_revealed", "Personal data revealed"
    PRIVACY_SUBJECT_EXPORTED = "privacy.subject_exported", "Data subject exported"
    PRIVACY_SUBJECT_ERASED = "privacy.subject_erase_erased", "Data subject erased"
    PRIVACY_SUBJECT_ERASE_REFUSED = "privacy.subject_erase_refused", "Erasure refused (legal hold)"
    PRIVACY_SUBJECT_ERASE_NOTHING = "privacy.subject_erase_nothing", "Erasure asked: nothing held"
    PRIVACY_HOLD_ENDED_ERASED = "privacy.hold_ended_erased", "Erased after the legal hold ended"

    # The audit trail itself: verification, anchors, retention, keys.
    AUDIT_CHAINS_ANCHORED = "audit.chains_anchored", "Chains anchored"
    AUDIT_ANCHORS_SET_ASIDE = "audit.anchors_set_aside", "Anchors set aside"
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", "Chain broken"
    AUDIT_CHAIN_KEYED = "audit.chain_keyed", "Chain keyed"
    AUDIT_PRUNED = "audit.pruned", "Events pruned"


def action_label(action: str) -> str:
    """An action in words: its catalogue label; one it lacks (an older release's) from its name."""
    try:
        return str(AuditAction(action).label)
    except ValueError:
        return action.split(".", 1)[-1].replace(".", " ").replace("_", " ").strip().capitalize()
