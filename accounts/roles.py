"""Roles and capabilities. Which role carries which capability is data (guardian rows);
this module only names them and holds the default matrix of DESIGN.md."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    CLIENT_FACING = "client_facing", "Client-facing staff"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    SENIOR_MANAGER = "senior_manager", "Senior manager"
    GOVERNING_BODY = "governing_body", "Governing body"
    CEO = "ceo", "CEO"
    OPERATOR = "operator", "Operator"


def role_label(role: str) -> str:
    """How people read a role ("CEO", "Compliance officer"); an unknown (custom) role as it is written."""
    return str(Role(role).label) if role in Role.values else role


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


def tenant_role_choices(tenant: object | None = None) -> list[tuple[str, str]]:
    """The roles a tenant's routes, ladders and memberships may name, as (value, label) choices.

    The one source of role choices for the policy editor and policy validation: today the six built-ins;
    a tenant's custom roles (issue #22 item 4) join here.
    """
    return [(value, str(label)) for value, label in Role.choices]
