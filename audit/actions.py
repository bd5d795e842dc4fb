"""The catalogue of audit actions: every action any app writes, with its label in words.

The value is what the chain stores and hashes, and what GET /audit returns as `action`: never change a
value (old events keep theirs; the chain would no longer verify against a renamed one). Add a member for a
new action; the dashboard, the admin and anything else that shows an action to a person reads its label here.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    # Escalations: the case's lifecycle (services and sweeps).
    ESCALATION_CREATED = "escalation.created", _("Created")
    ESCALATION_APPROVED = "escalation.approved", _("Approved")  # approved on creation (an auto-approve rule)
    ESCALATION_ACKNOWLEDGED = "escalation.acknowledged", _("Acknowledged")
    DECISION_RECORDED = "decision.recorded", _("Decision recorded")
    ESCALATION_CANCELLED = "escalation.cancelled", _("Cancelled")
    ESCALATION_EXECUTED = "escalation.executed", _("Executed")
    ESCALATION_COMMENTED = "escalation.commented", _("Commented")
    ESCALATION_AMENDED = "escalation.amended", _("Amended by the requester")
    ESCALATION_RESUMED = "escalation.resumed", _("Back from deferral")
    ESCALATION_REJECTED = "escalation.rejected", _("Rejected")  # rejected when it expired (policy on expiry)
    ESCALATION_EXPIRED = "escalation.expired", _("Expired")
    ESCALATION_ESCALATED = "escalation.escalated", _("Escalated to the next level")
    ESCALATION_LADDER_LEVEL_SKIPPED = "escalation.ladder_level_skipped", _("Ladder level skipped")
    ESCALATION_SLA_BREACHED = "escalation.sla_breached", _("Sla breached")
    ESCALATION_UNSTAFFED = "escalation.unstaffed", _("Nobody present to decide (everyone away)")
    ESCALATION_REMINDER_SENT = "escalation.reminder_sent", _("Reminder sent")
    ESCALATION_REPORT_GENERATED = "escalation.report_generated", _("Report generated")
    # Change management: lapsed approvals, obligations, templates (escalations.schedule/obligations/templates).
    ESCALATION_APPROVAL_LAPSED = "escalation.approval_lapsed", _("Approval lapsed (not executed in time)")
    CONDITION_OVERDUE = "condition.overdue", _("Condition overdue")
    CONDITION_MET = "condition.met", _("Condition met")
    CONDITION_WAIVED = "condition.waived", _("Condition waived")
    CONDITION_EVIDENCE_ADDED = "condition.evidence_added", _("Condition evidence added")
    TEMPLATE_CHANGED = "template.changed", _("Change template changed")
    POLICY_CHANGED = "policy.changed", _("Policy changed")
    TRIGGER_RULE_CHANGED = "trigger_rule.changed", _("Trigger rule changed")
    TERMINOLOGY_CHANGED = "terminology.changed", _("Terminology changed")
    MESSAGE_TEMPLATE_CHANGED = "message_template.changed", _("Message template changed")

    # Step-up: second-factor codes.
    OTP_CHALLENGE_SENT = "otp.challenge_sent", _("One-time code sent")
    OTP_FAILED = "otp.failed", _("Wrong one-time code")
    OTP_REPLAY_REFUSED = "otp.replay_refused", _("Reused one-time code refused")
    OTP_LOCKED_OUT = "otp.locked_out", _("Locked out after wrong codes")
    TOTP_ENROLLED = "totp.enrolled", _("Authenticator enrolled")
    TOTP_RESET = "totp.reset", _("Authenticator reset")

    # Accounts: sign-in, tenants, people, capabilities, credentials.
    LOGIN_SUCCEEDED = "login.succeeded", _("Signed in")
    LOGIN_FAILED = "login.failed", _("Sign-in failed")
    LOGIN_LOCKED_OUT = "login.locked_out", _("Sign-in locked out")
    TENANT_CREATED = "tenant.created", _("Tenant created")
    TENANT_CHANGED = "tenant.changed", _("Tenant changed")
    ROLE_CREATED = "role.created", _("Role created")
    ROLE_CHANGED = "role.changed", _("Role changed")
    CAPABILITY_GRANTED = "capability.granted", _("Capability granted")
    CAPABILITY_REVOKED = "capability.revoked", _("Capability revoked")
    LANGUAGE_CHANGED = "person.language_changed", _("Language changed")
    TIME_ZONE_CHANGED = "person.time_zone_changed", _("Time zone changed")
    MEMBERSHIP_ADDED = "membership.added", _("Membership added")
    MEMBERSHIP_DEACTIVATED = "membership.deactivated", _("Membership deactivated")
    CREDENTIAL_CREATED = "credential.created", _("Credential created")
    CREDENTIAL_REVOKED = "credential.revoked", _("Credential revoked")
    CREDENTIAL_RESTORED = "credential.restored", _("Credential restored")
    # Out of office (accounts.delegations): who stands in for whom, and when.
    DELEGATION_CREATED = "delegation.created", _("Out of office set")
    DELEGATION_ENDED = "delegation.ended", _("Out of office ended")
    DELEGATION_REVOKED = "delegation.revoked", _("Out of office ended early")

    # Notifications: webhooks, deliveries, purges.
    WEBHOOK_CREATED = "webhook.created", _("Webhook created")
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated", _("Webhook secret rotated")
    WEBHOOK_DELETED = "webhook.deleted", _("Webhook deleted")
    PUSH_SUBSCRIPTION_ADDED = "push_subscription.added", _("Push notifications enabled on a device")
    PUSH_SUBSCRIPTION_REMOVED = "push_subscription.removed", _("Push notifications removed from a device")
    PUSH_SUBSCRIPTION_RENEWED = "push_subscription.renewed", _("A device renewed its push subscription")
    DELIVERY_REPLAYED = "delivery.replayed", _("Delivery replayed")
    NOTIFICATIONS_PURGED = "notifications.purged", _("Notifications purged")
    NOTIFICATION_SETTINGS_CHANGED = "notification_settings.changed", _("Notification settings changed")
    NOTIFICATION_DEFAULTS_CHANGED = "notification_defaults.changed", _("Tenant notification defaults changed")

    # Reports: exports.
    EXPORT_REQUESTED = "export.requested", _("Export requested")
    EXPORT_COMPLETED = "export.completed", _("Export completed")
    EXPORT_DOWNLOADED = "export.downloaded", _("Export downloaded")

    # Privacy: personal data revealed, data subjects exported and erased (subjects.services). Details carry field
    # names, subject ids and keyed hashes (commitments), never a personal value.
    PRIVACY_VALUES_REVEALED = "privacy.values_revealed", _("Personal data revealed")
    PRIVACY_SUBJECT_EXPORTED = "privacy.subject_exported", _("Data subject exported")
    PRIVACY_SUBJECT_ERASED = "privacy.subject_erase_erased", _("Data subject erased")
    PRIVACY_SUBJECT_ERASE_REFUSED = "privacy.subject_erase_refused", _("Erasure refused (legal hold)")
    PRIVACY_SUBJECT_ERASE_NOTHING = "privacy.subject_erase_nothing", _("Erasure asked: nothing held")
    PRIVACY_HOLD_ENDED_ERASED = "privacy.hold_ended_erased", _("Erased after the legal hold ended")

    # The audit trail itself: verification, anchors, retention, keys.
    AUDIT_CHAINS_ANCHORED = "audit.chains_anchored", _("Chains anchored")
    AUDIT_ANCHORS_SET_ASIDE = "audit.anchors_set_aside", _("Anchors set aside")
    AUDIT_CHAIN_BROKEN = "audit.chain_broken", _("Chain broken")
    AUDIT_CHAIN_KEYED = "audit.chain_keyed", _("Chain keyed")
    AUDIT_PRUNED = "audit.pruned", _("Events pruned")


def action_label(action: str) -> str:
    """An action in words: its catalogue label; one it lacks (an older release's) from its name."""
    try:
        return str(AuditAction(action).label)
    except ValueError:
        return action.split(".", 1)[-1].replace(".", " ").replace("_", " ").strip().capitalize()
