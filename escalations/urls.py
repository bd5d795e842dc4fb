from django.urls import path

from . import api, api_changes, conversation_api, delegation_api

urlpatterns = [
    path("escalations/check", api.EscalationCheckView.as_view(), name="api-escalations-check"),
    path("escalations", api.EscalationCollectionView.as_view(), name="api-escalations"),
    path("escalations/<str:escalation_id>", api.EscalationDetailView.as_view(), name="api-escalation"),
    path("escalations/<str:escalation_id>/acknowledge", api.EscalationAcknowledgeView.as_view(),
         name="api-escalation-acknowledge"),
    path("escalations/<str:escalation_id>/decisions", api.EscalationDecisionView.as_view(),
         name="api-escalation-decisions"),
    path("escalations/<str:escalation_id>/cancel", api.EscalationCancelView.as_view(), name="api-escalation-cancel"),
    path("escalations/<str:escalation_id>/execution", api.EscalationExecutionView.as_view(),
         name="api-escalation-execution"),
    path("escalations/<str:escalation_id>/conditions/<str:condition_id>/evidence",
         api_changes.ConditionEvidenceView.as_view(), name="api-condition-evidence"),
    path("escalations/<str:escalation_id>/conditions/<str:condition_id>/met", api_changes.ConditionMetView.as_view(),
         name="api-condition-met"),
    path("escalations/<str:escalation_id>/conditions/<str:condition_id>/waive",
         api_changes.ConditionWaiveView.as_view(), name="api-condition-waive"),
    path("templates", api_changes.TemplateCollectionView.as_view(), name="api-templates"),
    path("templates/<str:slug>", api_changes.TemplateView.as_view(), name="api-template"),
    path("escalations/<str:escalation_id>/comments", conversation_api.CommentsView.as_view(),
         name="api-escalation-comments"),
    path("escalations/<str:escalation_id>/amendments", conversation_api.AmendmentView.as_view(),
         name="api-escalation-amendments"),
    path("otp/challenge", api.OtpChallengeView.as_view(), name="api-otp-challenge"),
    path("policies/<str:policy_type>", api.PolicyView.as_view(), name="api-policy"),
    path("delegations", delegation_api.DelegationCollectionView.as_view(), name="api-delegations"),
    path("delegations/<str:delegation_id>", delegation_api.DelegationDetailView.as_view(), name="api-delegation"),
]
