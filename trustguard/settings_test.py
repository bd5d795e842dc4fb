"""Test settings: the production settings with a test key and fast password hashing."""

import atexit
import os
import shutil
import sys
import tempfile

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-in-production")
os.environ.setdefault("TRUSTGUARD_AUDIT_KEY", "test:test-only-audit-key-never-used-in-production")
os.environ.setdefault("TRUSTGUARD_AUDIT_SIGNING_KEY", "test:dGVzdC1vbmx5LWVkMjU1MTktc2VlZC0zMi1ieXRlcyE=")
# The suite connects as the database's superuser (it creates and empties the test database); tests of the
# least-privilege check switch this off.
os.environ.setdefault("TRUSTGUARD_ALLOW_OWNER_ROLE", "1")
# A fixed field key for tests (and the server processes they start, which inherit the environment).
os.environ.setdefault("TRUSTGUARD_FIELD_KEYS", "dGVzdC1vbmx5LWZpZWxkLWtleS1uZXZlci1pbi1wcjA=")
# A test run's working files (the file cache that holds beat's heartbeat and the sessions, the filesystem broker's
# queue, exports) live in a folder of its own, not in the checkout's var/: that one is shared with a `make run` of
# the same checkout (whose worker consumes the run's messages and writes its cache) and keeps what earlier runs
# left. The processes the tests start inherit the folder through the environment; the run removes it at exit.
# Only in a test run (pytest): mypy's Django plugin loads these settings too, and exits without running atexit.
if not os.environ.get("TRUSTGUARD_VAR_DIR") and "pytest" in sys.modules:
    os.environ["TRUSTGUARD_VAR_DIR"] = tempfile.mkdtemp(prefix="trustguard-test-var-")
    atexit.register(shutil.rmtree, os.environ["TRUSTGUARD_VAR_DIR"], True)

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Pages render without a collectstatic run (the hashed manifest is production's; tests/test_deploy.py builds it).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# No collected folder in tests: WhiteNoise serves from the source folders, as with DEBUG=1.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
