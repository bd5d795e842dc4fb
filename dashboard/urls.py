"""The approver dashboard's pages. (The REST API has its own URL module; this name keeps the two apart.)"""

from django.urls import path

from . import language, views

app_name = "dashboard"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("settings/language/", language.language_settings, name="language"),
    path("badges/", views.badges, name="badges"),
    path("inbox/", views.inbox_page, name="inbox"),
    path("inbox/read-all/", views.inbox_read_all, name="inbox_read_all"),
    path("inbox/<str:message_id>/open/", views.inbox_open, name="inbox_open"),
    path("summary/", views.summary, name="summary"),
    path("e/<str:pk>/", views.detail, name="detail"),
    path("e/<str:pk>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("e/<str:pk>/decide/", views.decide, name="decide"),
    path("e/<str:pk>/send-code/", views.send_code, name="send_code"),
    path("e/<str:pk>/attachments/<int:index>/", views.attachment, name="attachment"),
]
