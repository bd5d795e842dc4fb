"""TrustGuard settings: everything that varies comes from the environment (see README, "Configuration").

One file on purpose, although it is longer than the ~400 lines a module may have (issue 17): it holds no logic,
only one flat namespace of declarations, read top to bottom, where later sections use earlier values (DEBUG,
VAR_DIR, SECRET_KEY, DATABASES, REDIS_URL). Split into a package, the sections would be chained by `from .x import *`,
which hides where a name is set (ruff's F403/F405 exist for that), lets a later module silently override an earlier
one, and makes "what does this setting default to" a search over several files. The sections below are marked
with `# --- <name> ---` headers instead; settings_test.py overrides it by importing it whole.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .crypto import derive_key, parse_keys
from .env import env_bool, env_int, env_key_ring, env_list, env_str, env_url
from .vapid import parse_vapid_keys

# ModelAdmin[Model], ModelForm[Model] and the like at runtime: the type arguments mypy --strict asks for.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TRUSTGUARD_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY: str = env_str("SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG=0")
    # Development only: a fixed, obviously-unsafe key so sessions survive restarts of `make run`.
    SECRET_KEY = "dev-insecure-trustguard-key-do-not-use-in-production"
# Older keys that still verify what they signed (sessions, retention checkpoints): rotate SECRET_KEY by
# moving the old one here. Comma-separated; SECRET_KEY_FALLBACKS_FILE works too.
SECRET_KEY_FALLBACKS = [key.strip() for key in (env_str("SECRET_KEY_FALLBACKS") or "").split(",") if key.strip()]
# Keyed hash for API keys and tokens. Separate from SECRET_KEY so rotating the session key
# does not revoke every integration.
CREDENTIAL_PEPPER = env_str("TRUSTGUARD_CREDENTIAL_PEPPER") or SECRET_KEY
# The key of the blind indexes that find a customer's cases by email or phone without decrypting (privacy.vault).
# Changing it needs `manage.py privacy_reindex`; unset, it is derived from SECRET_KEY (docs/PRIVACY.md).
BLIND_INDEX_KEY = env_str("TRUSTGUARD_BLIND_INDEX_KEY") or SECRET_KEY
# Field keys (trustguard/crypto.py): Fernet keys, newest first, that encrypt TOTP seeds, webhook secrets, one-time
# codes waiting to be sent and stored API responses. Never in the database. DEBUG only: derived from SECRET_KEY when
# unset; with DEBUG=0 the system check trustguard.E020 refuses to start without them.
FIELD_KEYS = parse_keys(env_str("TRUSTGUARD_FIELD_KEYS"))
if not FIELD_KEYS and DEBUG:
    FIELD_KEYS = [derive_key(SECRET_KEY)]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])
# The port `make run` serves on (its web process gets PORT from honcho; gunicorn.conf.py reads it too).
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
# Every link that leaves the server (email, SMS, in-app) is absolute on this base URL.
SITE_URL = (env_url("TRUSTGUARD_SITE_URL", ("http", "https")) or f"http://127.0.0.1:{PORT}").rstrip("/")
# How many days the status link emailed to a requester known only by email keeps working (trustguard/links.py).
REQUESTER_LINK_DAYS = env_int("TRUSTGUARD_REQUESTER_LINK_DAYS", 30, minimum=1, maximum=365)
# Web Push (trustguard/vapid.py): the VAPID key pair that signs every push. Unset: push is off (the dashboard says
# so). DEBUG only: `seed_demo` writes a key to var/vapid-private.pem and it is read from there. A malformed or
# mismatched key stops start-up. The subject (mailto: or https:) tells push services whom to contact.
VAPID_KEY_FILE = VAR_DIR / "vapid-private.pem"
VAPID_PRIVATE_KEY = env_str("TRUSTGUARD_VAPID_PRIVATE_KEY") or ""
if not VAPID_PRIVATE_KEY and DEBUG and VAPID_KEY_FILE.is_file():
    VAPID_PRIVATE_KEY = VAPID_KEY_FILE.read_text()
VAPID_PUBLIC_KEY = env_str("TRUSTGUARD_VAPID_PUBLIC_KEY") or ""
parse_vapid_keys(VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY)
VAPID_SUBJECT = (env_str("TRUSTGUARD_VAPID_SUBJECT") or "").strip()
if VAPID_SUBJECT and not VAPID_SUBJECT.startswith(("mailto:", "https://")):
    raise ImproperlyConfigured("TRUSTGUARD_VAPID_SUBJECT must start with mailto: or https://")
# How long a push service keeps an undelivered push (a phone that is off): past this it is of no use.
PUSH_TTL_SECONDS = env_int("TRUSTGUARD_PUSH_TTL_SECONDS", 12 * 3600, minimum=0, maximum=28 * 24 * 3600)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [f"http://localhost:{PORT}", f"http://127.0.0.1:{PORT}"])

INSTALLED_APPS = [
    "dashboard.admin_site.TrustGuardAdminConfig",  # django.contrib.admin, as TrustGuard (issue 22)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_htmx",
    "axes",
    "pgtrigger",
    "django_prometheus",
    "trustguard",
    "accounts",
    "approvals",
    "audit",
    "notifications",
    "escalations",
    "reports",
    "dashboard",
    "privacy",
    "subjects",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (compressed, hashed names, far-future caching) from the web process itself: no separate
    # file server needed behind the proxy (docs/DEPLOYMENT.md).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "trustguard.csp.ContentSecurityPolicyMiddleware",
    "trustguard.middleware.RequestIdMiddleware",
    "trustguard.request_log.RequestLogMiddleware",
    # /api/: body limit, problem+json for every error; then idempotency keys for writes under /api/v1/.
    "trustguard.api.middleware.ApiGuardMiddleware",
    # /api/: rate limits per credential and per address, before any transaction (trustguard/api/throttling.py).
    "trustguard.api.throttling.RateLimitMiddleware",
    "trustguard.api.idempotency.IdempotencyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the person's language (User.language), else their tenant's, else the browser's.
    "accounts.middleware.LanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # simple_history.middleware.HistoryRequestMiddleware, made safe for DRF requests (user is an Actor there).
    "trustguard.api.history.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "trustguard.urls"
WSGI_APPLICATION = "trustguard.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.dashboard",
            ],
        },
    }
]

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "sqlite"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "trustguard.sqlite3")}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend, except `flush`: it goes round the append-only triggers, as TRUNCATE does on
    # PostgreSQL (trustguard/sqlite_backend).
    DATABASES["default"]["ENGINE"] = "trustguard.sqlite_backend"
    # Every SQLite database (the embedded default, or DATABASE_URL=sqlite:///...), so that web threads, worker and
    # beat share one file without "database is locked" (a 500): WAL lets readers run beside the one writer;
    # IMMEDIATE takes the write lock at BEGIN, so a transaction waits for it there (up to `timeout` seconds)
    # instead of failing when its first write finds another writer (SQLite cannot wait at that point: a
    # deferred transaction that read first would deadlock). Options given in DATABASE_URL's query win.
    DATABASES["default"]["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE",
                                       "timeout": 20, **DATABASES["default"].get("OPTIONS", {})}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Where `manage.py backup` (`make backup`) writes; copy what lands here off the machine (docs/BACKUP.md).
BACKUP_DIR = Path(env_str("TRUSTGUARD_BACKUP_DIR") or VAR_DIR / "backups")
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

# --- Broker and cache ---------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", ("redis", "rediss"))
# The Celery broker: REDIS_URL unless CELERY_BROKER_URL names another Redis or RabbitMQ (docs/DEPLOYMENT.md,
# "Redis or RabbitMQ"); the cache stays on REDIS_URL either way.
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", ("redis", "rediss", "amqp", "amqps", "pyamqp")) or REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL and CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}}
if not CELERY_BROKER_URL:
    # Embedded default: kombu's filesystem transport, so worker and beat are real processes
    # without a broker server. Good for one machine; production uses Redis or RabbitMQ.
    _queue_dir = VAR_DIR / "broker"
    (_queue_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
# Publishing from a request (relay kicks, export jobs) is best-effort (trustguard/broker.py): it gives up after
# this long, and after BROKER_BREAKER_FAIL_MAX failures in a row a process stops trying for
# BROKER_BREAKER_RESET_SECONDS (one trial publish then). The work is in the database; beat's sweeps send it.
BROKER_PUBLISH_TIMEOUT_SECONDS = env_int("TRUSTGUARD_BROKER_PUBLISH_TIMEOUT_MS", 500, minimum=50, maximum=10_000) / 1000
BROKER_BREAKER_FAIL_MAX = env_int("TRUSTGUARD_BROKER_BREAKER_FAIL_MAX", 3, minimum=1)
BROKER_BREAKER_RESET_SECONDS = env_int("TRUSTGUARD_BROKER_BREAKER_RESET_SECONDS", 10, minimum=1)

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# At-least-once: a task is acknowledged after it ran, and a worker killed mid-task gives it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker waits for the broker however long it is away (Celery gives up after 100 tries by default: ~50 minutes).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Celery's Django fixup closes every database connection before and after every task unless this is
# set, so each task (each webhook attempt at low volume) opened a new PostgreSQL connection. With it,
# trustguard/celery_db.py applies Django's own rules at task boundaries instead (CONN_MAX_AGE, and a
# connection that saw an error is checked), as for web requests; the fixup still recycles after this
# many tasks.
CELERY_DB_REUSE_MAX = 1000
# trustguard.beat.Scheduler: django-celery-beat's DatabaseScheduler, which writes the defaults below only for entries
# that do not exist yet (an operator's retime or pause in the admin survives restarts). Run exactly one beat.
CELERY_BEAT_SCHEDULER = "trustguard.beat:Scheduler"
CELERY_TIMEZONE = "UTC"

# The periodic jobs (trustguard.periodic): one Celery task each, named like its beat entry, with its default
# schedule, in the order `run_sweeps` runs them.
SWEEP_INTERVAL_SECONDS = env_int("TRUSTGUARD_SWEEP_INTERVAL", 30, minimum=5)
# Requests write audit events unsealed; the sealer (audit.sealing) chains them this often (the sealing lag's bound,
# with the time a batch takes). /healthz warns when the oldest unsealed event is older than the WARN bound, and names
# the check failing (still 200: not a reason to drop the web) past the FAIL one.
AUDIT_SEAL_INTERVAL_SECONDS = env_int("TRUSTGUARD_AUDIT_SEAL_INTERVAL", 2, minimum=1)
AUDIT_SEAL_LAG_WARN_SECONDS = env_int("TRUSTGUARD_AUDIT_SEAL_LAG_WARN", 60, minimum=1)
AUDIT_SEAL_LAG_FAIL_SECONDS = env_int("TRUSTGUARD_AUDIT_SEAL_LAG_FAIL", 900, minimum=1)
# 1: the former design, every event chained in its request under the tenant's chain-head lock (no sealing lag;
# one tenant's writers queue on that lock). The bench compares the two.
AUDIT_SEAL_INLINE = env_bool("TRUSTGUARD_AUDIT_SEAL_INLINE", False)
PERIODIC_JOBS: dict[str, object] = {
    "escalations.sweep_deadlines": float(SWEEP_INTERVAL_SECONDS),
    "escalations.sweep_delegations": 60.0,  # out-of-office starts and ends (escalations.standins)
    "audit.seal_pending": float(AUDIT_SEAL_INTERVAL_SECONDS),  # after the sweeps: run_sweeps seals what they wrote
    "audit.apply_retention": crontab(hour=3, minute=17),
    "notifications.relay_outbox": 15.0,
    "audit.verify_chains": crontab(hour=3, minute=47),
    "notifications.deliver_due": 15.0,
    "api.purge_idempotency_keys": 3600.0,
    "api.purge_rate_limits": 3600.0,
    "reports.kick_queued_exports": 60.0,
    "notifications.purge": crontab(hour=3, minute=31),
    "reports.purge_exports": 3600.0,
    "subjects.sweep_holds": crontab(hour=3, minute=53),
}
BEAT_HEARTBEAT_INTERVAL_SECONDS = 30.0
BEAT_HEARTBEAT_MAX_AGE = timedelta(minutes=3)

# --- API --------------------------------------------------------------------------------
RATE_LIMIT_PER_MINUTE = env_int("TRUSTGUARD_RATE_LIMIT", 600, minimum=0)
# Requests per minute per client address without a credential or with one that fails (guessing tokens); 0 = off.
AUTH_RATE_LIMIT_PER_MINUTE = env_int("TRUSTGUARD_AUTH_RATE_LIMIT", 60, minimum=0)
WEBHOOK_ALLOW_PRIVATE = env_bool("TRUSTGUARD_WEBHOOK_ALLOW_PRIVATE", False)
MAX_REQUEST_BODY_BYTES = env_int("TRUSTGUARD_MAX_BODY_BYTES", 256 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["trustguard.api.parsers.StrictJSONParser"],
    # Rate limits are trustguard.api.throttling.RateLimitMiddleware: failed authentication is limited too.
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "trustguard.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TrustGuard API",
    "DESCRIPTION": "Escalation and approval engine: create escalations, receive decisions by signed webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Docs assets from drf-spectacular-sidecar: served locally, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SECURITY": [{"bearerAuth": []}],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "trustguard.api.schema.postprocess_api"],
    "ENUM_NAME_OVERRIDES": {
        "RiskLevelEnum": "escalations.models.RiskLevel",
        "UrgencyEnum": "escalations.models.Urgency",
        "EscalationStatusEnum": "escalations.models.EscalationStatus",
        "ExpiryOutcomeEnum": "escalations.models.ExpiryOutcome",
    },
}

# --- Reports, exports, health, metrics (reports app, trustguard.health, trustguard.metrics) ---------
EXPORT_DIR = Path(env_str("TRUSTGUARD_EXPORT_DIR") or VAR_DIR / "exports")
# Rows fetched per database round trip while streaming an export (constant memory, see docs/PERFORMANCE.md).
EXPORT_CHUNK_SIZE = env_int("TRUSTGUARD_EXPORT_CHUNK_SIZE", 2000, minimum=100)
# A synchronous .xlsx download is built in a temp file first; past this many rows use POST /exports (a job).
EXPORT_SYNC_XLSX_MAX_ROWS = env_int("TRUSTGUARD_EXPORT_SYNC_XLSX_MAX_ROWS", 100_000, minimum=1)
EXPORT_JOB_RETENTION = timedelta(days=env_int("TRUSTGUARD_EXPORT_RETENTION_DAYS", 7, minimum=1))
# /metrics outside DEBUG: `Authorization: Bearer <token>` or a staff session. Empty: staff session only.
METRICS_TOKEN = env_str("TRUSTGUARD_METRICS_TOKEN", "") or ""
CELERY_DEFAULT_QUEUE_NAME = "celery"
# Above these, /healthz lists a warning (still 200: a backlog is not a reason to take the web out).
HEALTH_QUEUE_DEPTH_WARN = env_int("TRUSTGUARD_HEALTH_QUEUE_DEPTH_WARN", 1000, minimum=1)
HEALTH_OUTBOX_BACKLOG_WARN = env_int("TRUSTGUARD_HEALTH_OUTBOX_BACKLOG_WARN", 1000, minimum=1)
HEALTH_OUTBOX_AGE_WARN_SECONDS = env_int("TRUSTGUARD_HEALTH_OUTBOX_AGE_WARN", 300, minimum=1)
# /healthz's "providers" check: the report function (the project wires the apps by name, as INSTALLED_APPS does;
# plumbing imports no app). Its active checks (SMTP EHLO/NOOP, Twilio account fetch) are kept this long.
HEALTH_PROVIDER_ROWS = "notifications.health.provider_health_report"
PROVIDER_CHECK_CACHE_SECONDS = env_int("TRUSTGUARD_PROVIDER_CHECK_CACHE_SECONDS", 60, minimum=0)
PROVIDER_CHECK_TIMEOUT_SECONDS = env_int("TRUSTGUARD_PROVIDER_CHECK_TIMEOUT", 3, minimum=1, maximum=30)

# --- Security ---------------------------------------------------------------------------
# Sessions are written to the database and read through the cache (Redis, or the file cache of the
# embedded setup: shared by every process either way, so a logout is seen everywhere at once): a
# dashboard request costs no session query once its session is cached.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Production behind TLS (docs/DEPLOYMENT.md; `manage.py check --deploy` is clean with .env.example's values).
# Off by default so that `make run` and the tests speak plain HTTP on loopback.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# The load balancer's and the container's health checks come in over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a reverse proxy that terminates TLS: trust its X-Forwarded-Proto (https) and take the client's address
# from the last X-Forwarded-For entry, the one the proxy appended (trustguard.middleware.client_ip). Only set it
# when nothing but the proxy can reach the web servers: otherwise a client could forge both headers.
BEHIND_PROXY = env_bool("TRUSTGUARD_BEHIND_PROXY", False)
# The header the proxy puts the client's address in (its last comma-separated entry is used), e.g. X-Real-IP.
PROXY_CLIENT_IP_HEADER = env_str("TRUSTGUARD_PROXY_CLIENT_IP_HEADER", "X-Forwarded-For") or "X-Forwarded-For"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
AXES_FAILURE_LIMIT = env_int("TRUSTGUARD_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The same client address as the audit log's (the proxy's X-Forwarded-For entry behind a proxy).
AXES_CLIENT_IP_CALLABLE = "trustguard.middleware.client_ip"
GUARDIAN_MONKEY_PATCH_USER = False
ANONYMOUS_USER_NAME = None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Step-up OTP --------------------------------------------------------------------------
OTP_TOTP_ISSUER = "TrustGuard"
OTP_CHALLENGE_TTL = timedelta(minutes=5)
OTP_MAX_FAILURES = 5
OTP_FAILURE_WINDOW = timedelta(minutes=15)
OTP_LOCKOUT = timedelta(minutes=15)

# --- Notifications ------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "TrustGuard <no-reply@trustguard.local>")
SMS_PROVIDER = env_str("SMS_PROVIDER", "console")
if SMS_PROVIDER not in {"console", "twilio"}:
    raise ImproperlyConfigured(f"SMS_PROVIDER must be console or twilio (got {SMS_PROVIDER!r})")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_BASE_URL = env_str("TWILIO_BASE_URL", "")
if SMS_PROVIDER == "twilio" and not (TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER):
    raise ImproperlyConfigured("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER")
DEFAULT_PHONE_REGION = env_str("TRUSTGUARD_DEFAULT_PHONE_REGION", "NG")
# Outbox delivery (notifications app): retries with exponential backoff and jitter, then dead letter.
DELIVERY_MAX_ATTEMPTS = env_int("TRUSTGUARD_DELIVERY_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
DELIVERY_BACKOFF_BASE_SECONDS = env_int("TRUSTGUARD_DELIVERY_BACKOFF_BASE", 30, minimum=1)
DELIVERY_BACKOFF_MAX_SECONDS = env_int("TRUSTGUARD_DELIVERY_BACKOFF_MAX", 6 * 3600, minimum=1)
# Finished deliveries, messages and relayed events are deleted after this many days (notifications/retention.py).
NOTIFICATION_RETENTION_DAYS = env_int("TRUSTGUARD_NOTIFICATION_RETENTION_DAYS", 90, minimum=1)
# An attempt in flight holds its delivery this long; a worker killed mid-send lets it go after that.
DELIVERY_LEASE_SECONDS = env_int("TRUSTGUARD_DELIVERY_LEASE_SECONDS", 120, minimum=1)
# A relay batch's new deliveries are kicked as at most this many tasks (slices of ids); fewer
# deliveries get one task each. Set it to at least the delivery workers' total concurrency.
DELIVERY_KICK_TASKS = env_int("TRUSTGUARD_DELIVERY_KICK_TASKS", 32, minimum=1, maximum=10_000)
WEBHOOK_TIMEOUT_SECONDS = env_int("TRUSTGUARD_WEBHOOK_TIMEOUT", 10, minimum=1, maximum=60)
# Circuit breakers (one per external target): open after this many consecutive failures, retry after reset.
BREAKER_FAIL_MAX = env_int("TRUSTGUARD_BREAKER_FAIL_MAX", 5, minimum=1)
BREAKER_RESET_SECONDS = env_int("TRUSTGUARD_BREAKER_RESET_SECONDS", 60, minimum=1)
# --- Live queue (trustguard/live.py; README "Live queue") ----------------------------------------------------
# An open queue page holds one stream (one server thread under gunicorn's gthread worker) for at most
# LIVE_STREAM_SECONDS, then the browser reconnects. A process serves at most LIVE_MAX_STREAMS at once; beyond that
# a page is told "no stream" (204) and polls. gunicorn.conf.py sets the default to half its threads per worker.
LIVE_STREAM_SECONDS = env_int("TRUSTGUARD_LIVE_STREAM_SECONDS", 45, minimum=1, maximum=3600)
LIVE_MAX_STREAMS = env_int("TRUSTGUARD_LIVE_MAX_STREAMS", 16, minimum=0)
LIVE_HEARTBEAT_SECONDS = 15
LIVE_POLL_SECONDS = 0.5  # without Redis: how often a stream reads its topics' versions in the cache
LIVE_RETRY_MS = 1000
LIVE_FAILURE_RETRY_MS = 30_000  # a stream whose Redis or cache failed: the browser tries again after this
LIVE_PUBLISH_TIMEOUT_SECONDS = 0.5
LIVE_PUBLISH_BACKOFF_SECONDS = 10
LIVE_VERSION_TTL_SECONDS = 24 * 3600
# The queue page's fallback poll (the stream down or refused), in seconds.
QUEUE_POLL_SECONDS = env_int("TRUSTGUARD_QUEUE_POLL_SECONDS", 15, minimum=1)
# Before field keys: the key webhook secrets were encrypted under. Only read (trustguard/crypto.py) so that values
# written then still decrypt until `manage.py rotate_field_keys` has moved them under TRUSTGUARD_FIELD_KEYS.
WEBHOOK_SECRET_KEY = env_str("TRUSTGUARD_WEBHOOK_SECRET_KEY", "") or ""

# --- Audit (docs/AUDIT.md) ----------------------------------------------------------------
# The audit chain's keys are never in the database. TRUSTGUARD_AUDIT_KEY: the HMAC key ring that seals every event
# (`id:secret,...`, newest first: the first seals, all verify). TRUSTGUARD_AUDIT_SIGNING_KEY: the Ed25519 key ring that
# signs the anchors written to TRUSTGUARD_AUDIT_ANCHOR_DIR (`id:<32 bytes, base64>,...`). Required when DEBUG=0 (a
# system check, audit/checks.py); development derives fixed ones from SECRET_KEY.
AUDIT_KEYS = env_key_ring("TRUSTGUARD_AUDIT_KEY", min_length=32)
AUDIT_SIGNING_KEYS = env_key_ring("TRUSTGUARD_AUDIT_SIGNING_KEY")
if DEBUG and not AUDIT_KEYS:
    AUDIT_KEYS = [("dev", hashlib.sha256(f"trustguard.audit.key:{SECRET_KEY}".encode()).hexdigest())]
if DEBUG and not AUDIT_SIGNING_KEYS:
    AUDIT_SIGNING_KEYS = [("dev", base64.urlsafe_b64encode(
        hashlib.sha256(f"trustguard.audit.signing-key:{SECRET_KEY}".encode()).digest()).decode())]
# Anchors (signed chain heads) go outside the database: one new file per anchor, never rewritten. Default: a folder
# per database under var/, so two databases on one machine never check each other's anchors.
_DB = DATABASES["default"]
AUDIT_ANCHOR_DIR = Path(env_str("TRUSTGUARD_AUDIT_ANCHOR_DIR") or VAR_DIR / "audit-anchors" / (
    f"sqlite-{Path(str(_DB['NAME'])).stem}" if "sqlite" in _DB["ENGINE"]
    else f"postgresql-{_DB.get('HOST') or 'local'}-{_DB.get('PORT') or 5432}-{_DB['NAME']}"))
# 1: mail every anchor to TRUSTGUARD_ADMIN_EMAILS too (one more copy outside the database, once a night).
AUDIT_ANCHOR_EMAIL = env_bool("TRUSTGUARD_AUDIT_ANCHOR_EMAIL", False)
# Least privilege on PostgreSQL (docs/DEPLOYMENT.md): `migrate`, run as the tables' owner, grants this role what the
# application needs and no more (audit events, checkpoints and decisions: SELECT and INSERT only; on audit events
# also UPDATE of the four seal columns, which the trigger lets through once per event, for the sealer).
DB_APP_ROLE = env_str("TRUSTGUARD_DB_APP_ROLE") or ""
# Web, worker and beat refuse to start as the tables' owner (or a superuser) when DEBUG=0, unless this is 1.
ALLOW_OWNER_ROLE = env_bool("TRUSTGUARD_ALLOW_OWNER_ROLE", False)
# Mailed (after the ERROR log and the platform audit event) when nightly verification finds a broken chain.
ADMINS = [("TrustGuard operators", email) for email in env_list("TRUSTGUARD_ADMIN_EMAILS", [])]

# --- I18N, static ------------------------------------------------------------------------
LANGUAGE_CODE = "en"
# The interface's languages (docs: README "Languages and terminology"). A person's choice (User.language), else
# their tenant's (Tenant.language), else the browser's, else LANGUAGE_CODE: accounts.middleware.
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Africa/Lagos")
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("TRUSTGUARD_STATIC_ROOT") or VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic writes hashed, compressed copies (the Docker image does it at build time); with DEBUG=1 the
# files are served from the source folders as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Logging ------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_JSON = env_bool("LOG_JSON", not DEBUG)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "trustguard.logging.RequestIdFilter"},
        "mask_pii": {"()": "trustguard.logging.MaskPiiFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id", "mask_pii"],
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # httpx logs every request URL at INFO; webhook URLs may carry tenants' tokens in the query.
        "httpx": {"level": "WARNING"},
        # twilio logs every API request and its headers at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}

# django-otp's own throttling is off: TrustGuard's step-up lockout (accounts.stepup) is the one rule.
OTP_TOTP_THROTTLE_FACTOR = 0
