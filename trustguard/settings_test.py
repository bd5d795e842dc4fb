"""Test settings: the production settings with a test key and fast password hashing."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-in-production")
# A fixed field key for tests (and the server processes they start, which inherit the environment).
os.environ.setdefault("TRUSTGUARD_FIELD_KEYS", "dGVzdC1vbmx5LWZpZWxkLWtleS1uZXZlci1pbi1wcjA=")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Pages render without a collectstatic run (the hashed manifest is production's; tests/test_deploy.py builds it).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# No collected folder in tests: WhiteNoise serves from the source folders, as with DEBUG=1.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
