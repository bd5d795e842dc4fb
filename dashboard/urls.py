"""The approver dashboard's pages. (The REST API has its own URL module; this name keeps the two apart.)"""

from django.urls import path

from . import away, language, live, notification_settings, obligation_views, push_views, requester_status, requester_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("settings/language/", language.language_settings, name="language"),
    path("badges/", views.badges, name="badges"),
    path("live/queue/", live.queue_live, name="queue_live"),
    path("inbox/", views.inbox_page, name="inbox"),
    path("inbox/read-all/", views.inbox_read_all, name="inbox_read_all"),
    path("inbox/<str:message_id>/open/", views.inbox_open, name="inbox_open"),
    path("summary/", views.summary, name="summary"),
    path("away/", away.away, name="away"),
    path("away/<str:delegation_id>/end/", away.away_end, name="away_end"),
    path("settings/notifications/", notification_settings.notification_settings, name="notification_settings"),
    path("e/<str:pk>/", views.detail, name="detail"),
    path("e/<str:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("e/<str:pk>/decide/", views.decide, name="decide"),
    path("e/<str:pk>/conditions/<str:cid>/", obligation_views.condition_action, name="condition_action"),
    path("e/<str:pk>/send-code/", views.send_code, name="send_code"),
    path("requests/", requester_views.my_requests_page, name="my_requests"),
    path("new/", requester_views.new_escalation, name="new_escalation"),
    path("new/preview/", requester_views.new_escalation_preview, name="new_escalation_preview"),
    path("e/<str:pk>/cancel/", requester_views.cancel, name="cancel"),
    path("e/<str:pk>/execute/", requester_views.execute, name="execute"),
    path("e/<str:pk>/amend/", requester_views.amend, name="amend"),
    path("e/<str:pk>/comment/", requester_views.comment, name="comment"),
    path("e/<str:pk>/attachments/<int:index>/", views.attachment, name="attachment"),
    # A requester known only by email follows their case here, without an account (signed link): read-only but for
    # answering a question an approver asked them.
    path("r/<str:token>/", requester_status.requester_status_page, name="requester_status"),
    path("r/<str:token>/answer/", requester_status.requester_answer, name="requester_answer"),
    path("push-sw.js", push_views.service_worker, name="push_service_worker"),
    path("settings/devices/", push_views.devices, name="devices"),
    path("settings/devices/push/", push_views.push_subscribe, name="push_subscribe"),
    path("settings/devices/push/status/", push_views.push_status, name="push_status"),
    path("settings/devices/push/renew/", push_views.push_renew, name="push_renew"),
    path("settings/devices/<str:subscription_id>/remove/", push_views.push_remove, name="push_remove"),
]
