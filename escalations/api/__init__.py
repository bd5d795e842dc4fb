"""The vendor REST API of escalations, decisions, OTP challenges and policies (CONTRACT.md section 3).

Views are thin: validate input with a StrictSerializer, call one service or selector, serialize.
Errors are DomainErrors / DRF exceptions, turned into problem+json by trustguard.api.errors.
One module per group of endpoints; every view and helper is re-exported here (escalations/urls.py reads them).
"""

from .actions import (
    EscalationAcknowledgeView,
    EscalationCancelView,
    EscalationDecisionView,
    EscalationExecutionView,
    OtpChallengeView,
)
from .cases import EscalationCheckView, EscalationCollectionView, EscalationDetailView
from .common import TAG_ESC, actor_of, escalation_response, validated
from .policies import PolicyView

__all__ = [
    "TAG_ESC",
    "EscalationAcknowledgeView",
    "EscalationCancelView",
    "EscalationCheckView",
    "EscalationCollectionView",
    "EscalationDecisionView",
    "EscalationDetailView",
    "EscalationExecutionView",
    "OtpChallengeView",
    "PolicyView",
    "actor_of",
    "escalation_response",
    "validated",
]
