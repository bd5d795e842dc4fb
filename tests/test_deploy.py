"""The shipping files (Dockerfile, compose.yaml, .env.example, Procfile.production) and the production settings
they rely on: `check --deploy` clean under the documented environment, static files hashed and compressed, every
variable documented, the compose file valid against the compose specification, the Dockerfile linted.

Docker itself is not on these machines: nothing here builds the image or starts the compose project (README,
"Run it in production", says what is and is not validated).
"""

from __future__ import annotations

import ast
import base64
import os
import re
import runpy
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.test import Client, RequestFactory

from trustguard.middleware import client_ip

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def production_env() -> dict[str, str]:
    """.env.example's values, as an operator fills them in (a real secret key), for a process on this machine."""
    env: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["TRUSTGUARD_AUDIT_KEY"] = "a1:" + secrets.token_urlsafe(32)
    env["TRUSTGUARD_AUDIT_SIGNING_KEY"] = "s1:" + base64.urlsafe_b64encode(os.urandom(32)).decode()
    env["TRUSTGUARD_FIELD_KEYS"] = Fernet.generate_key().decode()
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ["PATH"], "TRUSTGUARD_VAR_DIR": str(ROOT / "var" / "deploy-test"),
             "DJANGO_SETTINGS_MODULE": "trustguard.settings", **env}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120, check=False)


def test_check_deploy_is_clean_under_the_documented_production_environment(tmp_path):
    # The checks that read the database (its protection triggers) need one that is migrated: a SQLite file here,
    # not .env.example's PostgreSQL host, which does not exist on this machine.
    env = {**production_env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}"}
    migrated = manage(env, "migrate", "--no-input", "-v0")
    assert migrated.returncode == 0, migrated.stderr

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_about_hsts_and_the_ssl_redirect_without_them():
    result = manage({"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50)}, "check", "--deploy", "--fail-level",
                    "WARNING")

    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def _variables_read_by_the_code() -> set[str]:
    """Every NAME in env_str("NAME"), env_int(...), os.environ.get("NAME"), os.environ["NAME"] in the settings,
    the project's plumbing, gunicorn.conf.py and the apps."""
    files = [ROOT / "gunicorn.conf.py", *(ROOT / "trustguard").glob("*.py")]
    for app in ("accounts", "approvals", "audit", "escalations", "notifications", "reports"):
        files += [f for f in (ROOT / app).rglob("*.py") if "migrations" not in f.parts]
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            target = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = ast.unparse(node.func)
                if func in {"env_str", "env_bool", "env_int", "env_list", "env_url", "env_key_ring", "os.environ.get",
                            "os.getenv"}:
                    target = node.args[0].value
            elif (isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"
                  and isinstance(node.slice, ast.Constant)):
                target = node.slice.value
            if isinstance(target, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", target):
                names.add(target)
    return names - {"DJANGO_SETTINGS_MODULE"}


def test_env_example_names_every_variable_the_settings_read():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    read = _variables_read_by_the_code()

    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SECURE_HSTS_SECONDS", "BIND"} <= read  # the scan works
    assert read - documented == set(), "add these to .env.example"


def test_the_compose_file_is_valid_against_the_compose_specification():
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                             str(ROOT / "compose.yaml")], capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_two_web_servers_behind_a_proxy_two_workers_one_beat_and_migrates_first():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    app = {name: s for name, s in services.items() if s.get("image") == "trustguard:latest"}

    assert {"postgres", "redis", "proxy", "migrate", "web1", "web2", "worker", "beat"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["beat"]["command"][-2:] == ["beat", "--loglevel=INFO"]
    assert services["migrate"]["restart"] == "no"
    for name in set(app) - {"migrate"}:
        assert app[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server web1:8000" in nginx and "server web2:8000" in nginx
    assert "X-Forwarded-Proto" in nginx and "$proxy_add_x_forwarded_for" in nginx


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run([str(BIN / "hadolint"), str(ROOT / "Dockerfile")], capture_output=True, text=True,
                            timeout=120, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_final_image_is_non_root_without_a_compiler_with_collected_static_and_a_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    final = stages[-1]

    assert len(stages) >= 2
    assert "build-essential" in stages[0] and "build-essential" not in final and "gcc" not in final
    assert re.search(r"^USER 10001", final, re.MULTILINE)
    assert "collectstatic" in final and "HEALTHCHECK" in final and "/readyz" in final


def test_procfile_production_runs_gunicorn_a_worker_and_beat():
    roles = dict(line.split(": ", 1) for line in (ROOT / "Procfile.production").read_text().splitlines() if line)

    assert roles["web"].startswith("gunicorn -c gunicorn.conf.py")
    assert "worker" in roles["worker"] and "beat" in roles["beat"]
    assert "runserver" not in (ROOT / "Procfile.production").read_text()


@pytest.mark.parametrize(("env", "bind"), [
    ({"BIND": "0.0.0.0:9000", "PORT": "7000"}, "0.0.0.0:9000"),
    ({"PORT": "7000"}, "127.0.0.1:7000"),
    ({}, "127.0.0.1:8000"),
])
def test_gunicorn_binds_from_bind_or_port(monkeypatch, env, bind):
    for name in ("BIND", "GUNICORN_BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == bind


def test_behind_a_proxy_the_client_address_is_the_proxys_last_forwarded_entry(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")

    settings.BEHIND_PROXY = False
    direct = client_ip(request)
    settings.BEHIND_PROXY = True
    proxied = client_ip(request)

    assert (direct, proxied) == ("10.0.0.5", "203.0.113.7")  # never the first, client-written entry


def test_static_files_are_collected_hashed_and_compressed_and_whitenoise_serves_them(tmp_path, settings):
    static_root = tmp_path / "static"
    result = manage({**production_env(), "TRUSTGUARD_STATIC_ROOT": str(static_root)}, "collectstatic", "--no-input",
                    "-v0")
    assert result.returncode == 0, result.stderr
    assert (static_root / "staticfiles.json").is_file()
    assert list(static_root.rglob("htmx.min.*.js.gz")), "hashed and gzipped copies"

    settings.STATIC_ROOT = static_root
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
    from django.templatetags.static import static

    url = static("vendor/htmx.min.js")
    response = Client().get(url, headers={"Accept-Encoding": "gzip"})  # a new client: WhiteNoise reads the root

    assert re.search(r"htmx\.min\.[0-9a-f]{12}\.js$", url)
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    shutil.rmtree(static_root)
