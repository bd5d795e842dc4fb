"""Test settings: the production settings with a test key and fast password hashing."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-in-production")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
