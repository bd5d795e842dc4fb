"""The operators' admin for tenants, people, memberships, capabilities and credentials.

Every write goes through accounts.services (or accounts.totp), so the admin leaves the same audit
trail as the API: a membership added here joins the role's group, a credential is created with
its secret shown exactly once and only its digest stored, a revocation is audited. One module per
sub-domain; importing this package registers them all (admin autodiscovery imports `accounts.admin`).
"""

from .base import ServiceBackedHistoryAdmin, audited_save, operator_actor
from .credentials import ApiKeyAdmin, CredentialAdminMixin, PersonalTokenAdmin, PersonalTokenForm
from .delegations import DelegationAdmin, DelegationStatusFilter
from .people import AddMembershipFormSet, AddMembershipInline, MembershipAdmin, MembershipForm, UserAdmin, UserMembershipInline
from .tenants import MembershipInline, RoleRow, TenantAdmin, TenantRoleGroupAdmin

__all__ = [
    "AddMembershipFormSet",
    "AddMembershipInline",
    "ApiKeyAdmin",
    "CredentialAdminMixin",
    "DelegationAdmin",
    "DelegationStatusFilter",
    "MembershipAdmin",
    "MembershipForm",
    "MembershipInline",
    "PersonalTokenAdmin",
    "PersonalTokenForm",
    "RoleRow",
    "ServiceBackedHistoryAdmin",
    "TenantAdmin",
    "TenantRoleGroupAdmin",
    "UserAdmin",
    "UserMembershipInline",
    "audited_save",
    "operator_actor",
]
