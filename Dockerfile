# syntax=docker/dockerfile:1
# TrustGuard: one image for every process (web, worker, beat, migrate); the command picks the role.
# docs/DEPLOYMENT.md explains the topology; compose.yaml runs it.

# --- build: wheels into a virtualenv (the compiler stays in this stage) ---------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile -r /tmp/requirements.txt

# --- runtime: no compiler, no pip cache, a non-root user ----------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=trustguard.settings \
    TRUSTGUARD_VAR_DIR=/app/var \
    BIND=0.0.0.0:8000
RUN groupadd --system --gid 10001 trustguard \
    && useradd --system --uid 10001 --gid trustguard --home-dir /app --shell /usr/sbin/nologin trustguard
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . .
# Static files are collected (hashed, compressed) at build time; whitenoise serves them from the web process.
# The throwaway key only lets the settings load: nothing is signed here.
RUN SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --no-input -v0 \
    && mkdir -p /app/var/exports /app/var/audit-anchors \
    && chown -R trustguard:trustguard /app/var
USER 10001:10001
EXPOSE 8000
# /readyz: this process answers and reaches the database (not /healthz: a broker outage must not take the web
# out of rotation). Worker and beat containers replace this check in compose.yaml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BIND', ':8000').rsplit(':', 1)[1] + '/readyz', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "trustguard.wsgi"]
