"""No secret rests in clear: a dump of the database, everything in Redis and the logs hold none of the secrets
that the product handed out (issue #27).

Every kind of secret is made through the product: API keys, personal tokens, passwords and TOTP seeds by
seed_demo; webhook secrets by the API (with an Idempotency-Key, so the response is stored for replay) and
rotated; a one-time challenge code by POST /otp/challenge (waiting to be sent); a TOTP enrolment started on the
dashboard; a browser's Web Push subscription (its endpoint and keys) by POST /me/push-subscriptions. Then the
database is dumped (pg_dump on PostgreSQL; the file's bytes, from VACUUM INTO, on SQLite) and searched for each
secret, also in hex (how pg_dump writes binary columns) and, for TOTP seeds, in base32 and hex. The
transaction=True database commits, so pg_dump sees exactly what the application wrote.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets as secrets_module
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.models import SealedTOTPDevice, User
from accounts.totp import totp_enrolment_start
from escalations.demo import seed_demo
from notifications.models import Message

ESCALATION = {"type": "SANCTIONS_MATCH", "reason": "Screening hit", "requested_by": "kyc@bank.example",
              "source": {"system": "screening", "entity_type": "customer", "entity_id": "C-1"}}


def call(secret: str, path: str, body: dict | None = None, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {secret}", **({"Idempotency-Key": key} if key else {})}
    return Client().post("/api/v1" + path, data=json.dumps(body or {}), content_type="application/json",
                         headers=headers)


def database_dump(tmp_path: Path) -> bytes:
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
        return subprocess.run(["pg_dump", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432),
                               "-U", db["USER"], db["NAME"]], env=env, capture_output=True, check=True, timeout=120).stdout
    copy = tmp_path / "copy.sqlite3"
    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [str(copy)])
    return copy.read_bytes()


def redis_contents() -> bytes:
    """Every key of the configured Redis database and every value in it, whatever its type."""
    if not settings.REDIS_URL:
        return b""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()  # type: ignore[union-attr]
        value: Any = {"string": lambda k: client.get(k), "hash": lambda k: client.hgetall(k),
                      "list": lambda k: client.lrange(k, 0, -1), "set": lambda k: client.smembers(k),
                      "zset": lambda k: client.zrange(k, 0, -1)}.get(kind, lambda k: b"")(key)
        out.append(key + b"=" + repr(value).encode())
    return b"\n".join(out)


def forms(secret: str) -> set[str]:
    """The secret as text and as the hex that pg_dump writes for binary columns."""
    return {secret, secret.encode().hex()}


@pytest.mark.django_db(transaction=True)
def test_no_secret_the_product_created_is_in_clear_in_the_database_dump_redis_or_the_logs(tmp_path, caplog, settings):
    caplog.set_level(logging.DEBUG)
    settings.WEBHOOK_ALLOW_PRIVATE = True
    demo = seed_demo("demo")
    people = {u["username"]: u for u in demo["users"]}
    secrets: dict[str, set[str]] = {"api key": forms(demo["api_keys"]["vendor"])}
    for person in demo["users"]:
        seed = base64.b32decode(person["totp_secret"])
        secrets[f"{person['username']} token"] = forms(person["api_token"])
        secrets[f"{person['username']} password"] = forms(person["password"])
        secrets[f"{person['username']} TOTP seed"] = {person["totp_secret"], seed.hex(), seed.hex().upper()}

    ops = people["ops"]["api_token"]
    created = call(ops, "/webhooks", {"url": "http://127.0.0.1:9/hooks"}, key="create-hook")
    assert created.status_code == 201, created.content
    replayed = call(ops, "/webhooks", {"url": "http://127.0.0.1:9/hooks"}, key="create-hook")
    assert replayed["Idempotent-Replayed"] == "true" and replayed.json()["secret"] == created.json()["secret"]
    rotated = call(ops, f"/webhooks/{created.json()['id']}/rotate-secret", key="rotate-hook")
    assert rotated.status_code in (200, 201), rotated.content
    for name, secret in (("webhook secret", created.json()["secret"]), ("rotated webhook secret", rotated.json()["secret"])):
        raw = secret.removeprefix("whsec_")
        secrets[name] = forms(secret) | forms(raw) | {base64.b64decode(raw).hex()}

    escalation = call(demo["api_keys"]["vendor"], "/escalations", ESCALATION, key="esc-1").json()
    challenge = call(people["co"]["api_token"], "/otp/challenge", {"escalation": escalation["id"], "channel": "email"})
    assert challenge.status_code == 201, challenge.content
    waiting = Message.objects.get(purpose="otp_challenge")
    code_sentence = waiting.readable_body().split(". ")[0]  # "Your TrustGuard code is 123456"
    assert code_sentence[-6:].isdigit()
    secrets["challenge code"] = forms(code_sentence)

    newcomer = User.objects.create_user(username="newcomer", email="newcomer@demo.example", password="a long password 1")
    pending = totp_enrolment_start(user=newcomer)
    secrets["enrolment seed"] = {pending.key, pending.key.upper(), base64.b32encode(pending.bin_key).decode().rstrip("=")}
    assert SealedTOTPDevice.objects.filter(user=newcomer, confirmed=False).exists()

    from tests.notifications.push_standin import BrowserSubscription

    browser = BrowserSubscription(endpoint=f"https://127.0.0.1:9/wpush/{secrets_module.token_hex(16)}")
    enabled = call(people["ceo"]["api_token"], "/me/push-subscriptions", browser.as_json())
    assert enabled.status_code == 201, enabled.content
    secrets["push endpoint"] = {browser.token}
    secrets["push keys"] = {browser.as_json()["keys"]["p256dh"], browser.as_json()["keys"]["auth"], browser.auth.hex()}

    places = {"database dump": database_dump(tmp_path).decode("latin-1"), "redis": redis_contents().decode("latin-1"),
              "logs": caplog.text + "\n".join(r.getMessage() for r in caplog.records)}
    found = [f"{name} in the {place}" for place, text in places.items()
             for name, values in secrets.items() if any(v in text for v in values)]

    assert len(places["database dump"]) > 10_000  # a real dump, not an empty file
    assert found == []
