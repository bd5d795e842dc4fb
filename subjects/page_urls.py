from django.urls import path

from . import views

app_name = "privacy"

urlpatterns = [
    path("e/<str:pk>/reveal/", views.reveal, name="reveal"),
]
