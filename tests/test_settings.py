"""Settings come from the environment, strictly: a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import the production settings in a fresh interpreter with exactly `env` (plus PATH)."""
    clean = {"PATH": os.environ["PATH"], "TRUSTGUARD_VAR_DIR": str(ROOT / "var" / "settings-test"), **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; from django.conf import settings; settings.INSTALLED_APPS; print('ok')"],
        cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "trustguard.settings"}, capture_output=True, text=True,
        timeout=60, check=False,
    )


def test_production_without_a_secret_key_refuses_to_start():
    result = start({"DEBUG": "0"})

    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG=0" in result.stderr


def test_a_secret_key_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file-" + "x" * 40)

    assert start({"DEBUG": "0", "SECRET_KEY_FILE": str(secret)}).stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be 1 or 0"),
        ({"DEBUG": "1", "TRUSTGUARD_RATE_LIMIT": "lots"}, "TRUSTGUARD_RATE_LIMIT must be a whole number"),
        ({"DEBUG": "1", "TRUSTGUARD_RATE_LIMIT": "-5"}, "TRUSTGUARD_RATE_LIMIT must be >= 0"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://db/x"}, "DATABASE_URL must be a URL starting with one of"),
        ({"DEBUG": "1", "REDIS_URL": "localhost:6379"}, "REDIS_URL must be a URL starting with one of"),
        ({"DEBUG": "1", "EMAIL_PORT": "99999"}, "EMAIL_PORT must be <= 65535"),
        ({"DEBUG": "1", "SMS_PROVIDER": "pigeon"}, "SMS_PROVIDER must be console or twilio"),
        ({"DEBUG": "1", "SMS_PROVIDER": "twilio"}, "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID"),
        ({"DEBUG": "1", "ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS must list at least one value"),
        ({"DEBUG": "1", "SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE='/nonexistent/secret' cannot be read"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env, message):
    result = start(env)

    assert result.returncode != 0
    assert message in result.stderr


def test_development_defaults_need_no_service():
    result = start({"DEBUG": "1"})

    assert result.returncode == 0, result.stderr


def test_the_default_csrf_origins_follow_port():
    clean = {"PATH": os.environ["PATH"], "TRUSTGUARD_VAR_DIR": str(ROOT / "var" / "settings-test"), "DEBUG": "1",
             "DJANGO_SETTINGS_MODULE": "trustguard.settings"}
    script = "from django.conf import settings; print(','.join(settings.CSRF_TRUSTED_ORIGINS))"

    def origins(**env: str) -> str:
        return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**clean, **env}, capture_output=True,
                              text=True, timeout=60, check=True).stdout.strip()

    assert origins(PORT="8123") == "http://localhost:8123,http://127.0.0.1:8123"
    assert origins() == "http://localhost:8000,http://127.0.0.1:8000"
    assert origins(PORT="8123", CSRF_TRUSTED_ORIGINS="https://tg.example") == "https://tg.example"
