"""Provider health: /healthz and the admin show, per provider, the last successful delivery, the circuit breaker and an
active check that sends no message. A real SMTP server (aiosmtpd) and a Twilio stand-in on 127.0.0.1 answer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import transaction

from accounts.models import User
from notifications.breakers import breaker_for, breaker_reset
from notifications.health import provider_health_rows
from notifications.messages import message_send
from tests.dashboard.test_browser import browser, open_as  # noqa: F401  (fixtures)
from trustguard.health import beat_heartbeat_write

from ..factories import PASSWORD, PersonFactory, TenantFactory
from .conftest import _free_port, deliver

pytestmark = pytest.mark.django_db
SID = "AC" + "1" * 32


@dataclass
class FakeTwilio:
    """Twilio's REST API as far as the check uses it: GET /2010-04-01/Accounts/<sid>.json with basic auth."""

    url: str
    account_status: str = "active"
    requests: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def fake_twilio(settings: Any) -> Iterator[FakeTwilio]:
    state: dict[str, FakeTwilio] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            twilio = state["t"]
            twilio.requests.append(("GET", self.path))
            expected = "Basic " + base64.b64encode(f"{SID}:token".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            elif self.path == f"/2010-04-01/Accounts/{SID}.json":
                self._answer(200, {"sid": SID, "status": twilio.account_status, "friendly_name": "TrustGuard"})
            else:
                self._answer(404, {"code": 20404, "message": "Not found", "status": 404})

        def do_POST(self) -> None:
            state["t"].requests.append(("POST", self.path))
            self._answer(500, {})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["t"] = FakeTwilio(url=f"http://127.0.0.1:{server.server_port}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = SID, "token"
    settings.TWILIO_FROM_NUMBER = "+2348000000000"
    settings.TWILIO_BASE_URL = state["t"].url
    yield state["t"]
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fresh_checks(settings: Any) -> None:
    settings.PROVIDER_CHECK_CACHE_SECONDS = 0  # each test sees its own providers, not a kept check
    beat_heartbeat_write()


def _providers(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    return response.status_code, response.json()["checks"]["providers"]


def _trip(target: str, settings: Any) -> None:
    breaker = breaker_for(target)
    for _ in range(settings.BREAKER_FAIL_MAX):
        with contextlib.suppress(ConnectionRefusedError):
            breaker.call(_refuse)


def _refuse() -> None:
    raise ConnectionRefusedError("down")


# --- /healthz --------------------------------------------------------------------------------------------------------


def test_healthz_shows_the_smtp_server_and_twilio_healthy_after_checks_that_send_nothing(
    client, smtp_receiver, fake_twilio
) -> None:
    status, providers = _providers(client)

    assert status == 200 and providers["status"] == "ok" and providers["critical"] is False
    email, sms = providers["providers"]["email"], providers["providers"]["sms"]
    assert (email["backend"], email["status"], email["breaker"], email["check"]["status"]) == ("smtp", "ok", "closed", "ok")
    assert "EHLO and NOOP" in email["check"]["detail"]
    assert smtp_receiver.messages == []  # no message was sent to find that out
    assert (sms["backend"], sms["status"], sms["check"]["status"]) == ("twilio", "ok", "ok")
    assert fake_twilio.requests == [("GET", f"/2010-04-01/Accounts/{SID}.json")]


def test_an_unreachable_smtp_server_is_a_warning_naming_it_not_a_503(client, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _free_port()  # nobody listens there

    status, providers = _providers(client)

    assert status == 200
    assert providers["status"] == "warn"
    email = providers["providers"]["email"]
    assert email["status"] == "fail" and email["check"]["detail"] == "ConnectionRefusedError"
    assert "email: the active check failed" in providers["detail"]


def test_a_kept_check_holds_only_for_the_server_it_checked(client, smtp_receiver, settings) -> None:
    answering_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = _free_port()  # an operator's typo: nobody listens there
    _, before = _providers(client)
    settings.EMAIL_PORT = answering_port  # corrected: the next report checks the new server, not the kept failure

    _, after = _providers(client)

    assert before["providers"]["email"]["status"] == "fail"
    assert after["providers"]["email"]["status"] == "ok"


def test_a_suspended_twilio_account_fails_its_check(client, fake_twilio) -> None:
    fake_twilio.account_status = "suspended"

    _, providers = _providers(client)

    assert providers["providers"]["sms"]["status"] == "fail"
    assert providers["providers"]["sms"]["check"]["detail"] == "PermissionError"


def test_wrong_twilio_credentials_fail_the_check(client, fake_twilio, settings) -> None:
    settings.TWILIO_AUTH_TOKEN = "not-the-token"

    _, providers = _providers(client)

    assert providers["providers"]["sms"]["status"] == "fail"


def test_an_open_breaker_is_a_warning_and_healthz_stays_200(client, smtp_receiver, settings) -> None:
    _trip("email:smtp", settings)

    status, providers = _providers(client)

    assert status == 200
    email = providers["providers"]["email"]
    assert email["status"] == "warn" and email["breaker"] == "open" and email["breaker_open_until"]
    assert "the circuit breaker is open" in providers["detail"]
    breaker_reset("email:smtp")


def test_the_last_successful_delivery_is_shown_per_provider(client, smtp_receiver) -> None:
    tenant = TenantFactory.create()
    ceo = PersonFactory.create(tenant=tenant, role="ceo")
    with transaction.atomic():
        message = message_send(
            tenant_id=tenant.pk,
            channel="email",
            subject="Hello",
            body="Hi",
            purpose="test",
            to_user_id=ceo.pk,
        )
    assert deliver(message.delivery) == "delivered"
    message.delivery.refresh_from_db()

    _, providers = _providers(client)

    assert providers["providers"]["email"]["last_success_at"] is not None
    delivered_at = message.delivery.delivered_at
    assert delivered_at is not None
    shown = datetime.fromisoformat(providers["providers"]["email"]["last_success_at"])
    assert abs((shown - delivered_at).total_seconds()) < 5  # the same delivery (not compared by the minute: a
    # delivery at hh:mm:59.9 is recorded a moment later)


def test_checks_are_kept_for_a_while_so_a_polling_monitor_does_not_call_twilio_each_time(client, fake_twilio, settings) -> None:
    settings.PROVIDER_CHECK_CACHE_SECONDS = 60
    provider_health_rows(fresh=True)
    fake_twilio.requests.clear()

    _providers(client)
    _providers(client)

    assert fake_twilio.requests == []


# --- the admin ---------------------------------------------------------------------------------------------------------


def test_an_operator_sees_provider_health_in_the_admin_and_can_check_now(
    admin_client, smtp_receiver, fake_twilio, settings
) -> None:
    _trip("sms:twilio", settings)

    page = admin_client.get("/admin/notifications/delivery/providers/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Provider health" in html and 'data-channel="email"' in html and 'data-channel="sms"' in html
    assert "The circuit breaker is open" in html
    fake_twilio.requests.clear()
    settings.PROVIDER_CHECK_CACHE_SECONDS = 60
    assert admin_client.post("/admin/notifications/delivery/providers/").status_code == 200
    assert fake_twilio.requests == [("GET", f"/2010-04-01/Accounts/{SID}.json")]
    breaker_reset("sms:twilio")


def test_the_deliveries_list_links_to_provider_health(admin_client) -> None:
    page = admin_client.get("/admin/notifications/delivery/")

    assert "/admin/notifications/delivery/providers/" in page.content.decode()


def test_people_who_are_not_operators_do_not_see_provider_health(client) -> None:
    ceo = PersonFactory.create(role="ceo")
    assert client.post("/accounts/login/", {"username": ceo.username, "password": PASSWORD}).status_code == 302  # signed in

    page = client.get("/admin/notifications/delivery/providers/")

    assert page.status_code == 302 and "/admin/login/" in page["Location"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_operator_reads_provider_health_in_the_admin_and_on_the_health_page(
    open_as,  # noqa: F811
    demo,
    smtp_receiver,
    fake_twilio,
    settings,
) -> None:
    from playwright.sync_api import expect

    from tests.dashboard.test_browser import shoot

    with transaction.atomic():
        message = message_send(
            tenant_id=demo["tenant_obj"].pk,
            channel="email",
            subject="Hello",
            body="Hi",
            purpose="test",
            to_user_id=User.objects.get(username="ceo").pk,
        )
    assert deliver(message.delivery) == "delivered"
    _trip("sms:twilio", settings)
    page = open_as("ops")
    page.goto("/admin/notifications/delivery/")
    page.click("text=Provider health")
    expect(page.locator("#provider-health tr[data-channel=email]")).to_contain_text("OK")
    expect(page.locator("#provider-health tr[data-channel=sms]")).to_contain_text("The circuit breaker is open")
    shoot(page, "provider-health-admin")
    page.goto("/ops/health/")
    expect(page.locator("body")).to_contain_text("providers")
    shoot(page, "provider-health-ops")
    breaker_reset("sms:twilio")
