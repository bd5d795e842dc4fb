from django.apps import AppConfig


class SubjectsConfig(AppConfig):
    """Data subjects' rights: export everything held about a customer, erase it (crypto-shredding), legal holds."""

    name = "subjects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import jobs  # noqa: F401  (registers the nightly legal-hold sweep: a Celery task)
