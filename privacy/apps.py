from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Personal data at rest: per-subject data keys (crypto-shredding), blind indexes, masking."""

    name = "privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import restore_checks  # noqa: F401  (the restore check: every subject's data key unwraps)
