"""Settings for the HTTP benchmarks: production settings (DEBUG off, Redis cache and broker, the full
middleware stack) plus the bench's bare baseline views. Test settings only for the password hasher."""

from trustguard.settings_test import *  # noqa: F403
from trustguard.settings_test import BASE_DIR, TEMPLATES

DEBUG = False
ROOT_URLCONF = "bench.urls"
TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates", BASE_DIR / "bench" / "templates"]

# Bench-only apps: the DRF-create floor's table and django-viewflow (a bench-only dependency in
# requirements-dev.txt) with its scratch tables. The product's settings never load them.
INSTALLED_APPS = [*INSTALLED_APPS, "django_filters", "viewflow", "viewflow.workflow", "bench.floor"]  # noqa: F405
