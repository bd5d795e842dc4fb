from django.urls import path

from . import api
from .push import api as push_api

urlpatterns = [
    path("webhooks", api.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<str:endpoint_id>", api.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<str:endpoint_id>/rotate-secret", api.WebhookRotateSecretView.as_view(), name="webhook-rotate"),
    path("notifications", api.NotificationListView.as_view(), name="notification-list"),
    path("notifications/preferences", api.NotificationPreferencesView.as_view(), name="notification-preferences"),
    path("notifications/<str:message_id>/read", api.NotificationReadView.as_view(), name="notification-read"),
    path("push/vapid-public-key", push_api.VapidPublicKeyView.as_view(), name="push-vapid-public-key"),
    path("me/push-subscriptions", push_api.PushSubscriptionListView.as_view(), name="push-subscription-list"),
    path("me/push-subscriptions/<str:subscription_id>", push_api.PushSubscriptionDetailView.as_view(),
         name="push-subscription-detail"),
]
