from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("authenticator/", views.totp_enrol, name="totp_enrol"),
    path("tenant/", views.tenant_switch, name="tenant_switch"),
]
