"""Roles and capabilities. Which role carries which capability is data (guardian rows);
this module only names them and holds the default matrix of DESIGN.md."""

from __future__ import annotations

import re

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    CLIENT_FACING = "client_facing", _("Client-facing staff")
    COMPLIANCE_OFFICER = "compliance_officer", _("Compliance officer")
    SENIOR_MANAGER = "senior_manager", _("Senior manager")
    GOVERNING_BODY = "governing_body", _("Governing body")
    CEO = "ceo", _("CEO")
    OPERATOR = "operator", _("Operator")


def role_label(role: str) -> str:
    """How people read a built-in role ("CEO", "Compliance officer") in the active language; any other role as
    it is written. A tenant's own names (custom roles, its terminology) come from escalations.terminology.label."""
    return str(Role(role).label) if role in Role.values else role


# A custom role's key: what policies, ladders and memberships name (e.g. "finance_director").
ROLE_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def role_key_problem(key: str) -> str | None:
    """Why `key` cannot name a new custom role, or None."""
    if not ROLE_KEY_RE.match(key or ""):
        return "2-32 characters: lower-case letters, digits and _, starting with a letter (e.g. finance_director)."
    if key in Role.values:
        return f"{key!r} is a built-in role."
    return None


class Capability(models.TextChoices):
    ESCALATION_VIEW = "escalation.view", "View escalations assigned to own role"
    ESCALATION_VIEW_ALL = "escalation.view_all", "View all escalations of the tenant"
    ESCALATION_DECIDE = "escalation.decide", "Decide escalations assigned to own role"
    ESCALATION_ACKNOWLEDGE = "escalation.acknowledge", "Acknowledge escalations assigned to own role"
    ESCALATION_CREATE_MANUAL = "escalation.create_manual", "Create escalations by hand"
    POLICY_MANAGE = "policy.manage", "Manage policies, trigger rules and webhooks"
    AUDIT_VIEW = "audit.view", "View the audit log and reports"
    AUDIT_EXPORT = "audit.export", "Export escalations, decisions and audit events"
    PRIVACY_MANAGE = "privacy.manage", "Subject export and erasure, revealing a masked personal value"
    DELEGATION_MANAGE_OTHERS = "delegation.manage_others", "Set or end someone else's out-of-office (delegation)"


def codename(capability: str) -> str:
    """Guardian codename of a capability (permission codenames cannot hold the dot)."""
    return capability.replace(".", "_")


_APPROVER = {
    Capability.ESCALATION_VIEW,
    Capability.ESCALATION_VIEW_ALL,
    Capability.ESCALATION_DECIDE,
    Capability.ESCALATION_ACKNOWLEDGE,
    Capability.AUDIT_VIEW,
    Capability.AUDIT_EXPORT,
}

DEFAULT_MATRIX: dict[str, frozenset[str]] = {
    Role.CLIENT_FACING: frozenset(),
    Role.COMPLIANCE_OFFICER: frozenset(_APPROVER | {Capability.ESCALATION_CREATE_MANUAL, Capability.PRIVACY_MANAGE}),
    Role.SENIOR_MANAGER: frozenset(_APPROVER),
    Role.GOVERNING_BODY: frozenset(_APPROVER),
    Role.CEO: frozenset(_APPROVER | {Capability.ESCALATION_CREATE_MANUAL}),
    Role.OPERATOR: frozenset(
        {Capability.ESCALATION_VIEW_ALL, Capability.POLICY_MANAGE, Capability.AUDIT_VIEW, Capability.AUDIT_EXPORT,
         Capability.PRIVACY_MANAGE, Capability.DELEGATION_MANAGE_OTHERS}
    ),
}

# A tenant API key is a source system: it creates escalations, reads and cancels its own, and
# reports execution. These are fixed: a key never decides, and never sees other sources' cases.
API_KEY_CAPABILITIES: frozenset[str] = frozenset({"escalation.create", "escalation.check"})
