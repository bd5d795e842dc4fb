from django.apps import AppConfig


class TrustguardConfig(AppConfig):
    """The project itself as an app: its models (idempotency keys), management commands and jobs."""

    name = "trustguard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers periodic jobs of the API plumbing (trustguard.jobs registry) and schema extensions.
        from .api import jobs, schema  # noqa: F401
