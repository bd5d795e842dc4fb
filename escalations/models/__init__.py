"""Policies, trigger rules and the escalation case, with its templates, terms, comments and amendments.

One module per sub-domain; every model and name is re-exported here (Django finds the models through this
module, and `from escalations.models import X` keeps working).
"""

from .change_template import ChangeTemplate
from .conversation import SQLITE_TRIGGERS, Amendment, Comment
from .escalation import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    Escalation,
    EscalationQuerySet,
    EscalationStatus,
    delegated_parts,
    delegated_q,
    named_q,
)
from .policy import (
    APPROVALS_PRECEDENCE,
    DEFAULT_CONDITION_DUE_SECONDS,
    DEFAULT_MAX_DEFERRAL_SECONDS,
    DEFAULT_MAX_WINDOW_SECONDS,
    ExpiryOutcome,
    ExpiryReason,
    Policy,
    RiskLevel,
    TriggerRule,
    Urgency,
    stage_approvals,
)
from .term import Term

__all__ = [
    "APPROVALS_PRECEDENCE",
    "DEFAULT_CONDITION_DUE_SECONDS",
    "DEFAULT_MAX_DEFERRAL_SECONDS",
    "DEFAULT_MAX_WINDOW_SECONDS",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "SQLITE_TRIGGERS",
    "Amendment",
    "ChangeTemplate",
    "Comment",
    "Escalation",
    "EscalationQuerySet",
    "EscalationStatus",
    "ExpiryOutcome",
    "ExpiryReason",
    "Policy",
    "RiskLevel",
    "Term",
    "TriggerRule",
    "Urgency",
    "delegated_parts",
    "delegated_q",
    "named_q",
    "stage_approvals",
]
