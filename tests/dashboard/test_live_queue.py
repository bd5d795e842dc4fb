"""The live queue: an open queue page shows a new case within seconds, without polling and without a reload.

From the approver's side first (Chromium against a live server, on whichever engine the run uses: PostgreSQL + Redis
pub/sub when DATABASE_URL/REDIS_URL are set, SQLite + the file cache otherwise), then the stream itself: what it tells
whom (never another tenant, never another role's queue), how long it lives, and that a busy server says "poll".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.actors import Actor
from accounts.models import User
from dashboard.live import live_keys
from escalations.models import Escalation
from tests.dashboard.test_browser import CHROMIUM_ARGS, DESKTOP, browser  # noqa: F401  (browser is a fixture)
from trustguard.live import StreamSlots, live_stream, live_token

LIVE_WITHIN_MS = 3000


def _stream_text(client: Client, url: str) -> str:
    """The whole stream (the tests make it short-lived), as the browser would read it."""
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "text/event-stream"
    # Read to the end: the test client then closes the response (a second close() would end the test's transaction).
    return b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]


def _since(username: str, demo: dict, scope: str = "mine") -> str:
    actor = Actor(tenant=demo["tenant_obj"], user=User.objects.get(username=username))
    return live_token(live_keys(actor, scope))


# --- in the browser ------------------------------------------------------------------------------------------------


@pytest.fixture
def queue_page(browser, live_server, demo, settings) -> Iterator[Callable[[str], Any]]:  # noqa: F811
    """The queue page of a demo person, signed in, in a fresh Chromium context (real timers: nothing is fast-forwarded)."""
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # the live server speaks plain http
    contexts: list[Any] = []

    def _open(username: str) -> Any:
        context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", demo["by_name"][username]["password"])
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_open_queue_shows_a_new_case_within_three_seconds_without_polling_or_reload(
    queue_page, raise_escalation: Callable[..., Escalation], settings
) -> None:
    settings.QUEUE_POLL_SECONDS = 600  # polling cannot be what brings it
    page = queue_page("ceo")
    page.wait_for_selector("#queue-live[data-live=on]")
    assert "Live" in page.locator("#live-status").inner_text()
    page.evaluate("window.__sameDocument = true")
    assert "ORD-LIVE-1" not in page.locator("#queue-list").inner_text()

    raise_escalation(entity_id="ORD-LIVE-1")  # HIGH_VALUE: the CEO's queue

    page.locator("#queue-list", has_text="ORD-LIVE-1").wait_for(timeout=LIVE_WITHIN_MS)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_queue_without_its_stream_polls_as_before(queue_page, raise_escalation: Callable[..., Escalation], settings) -> None:
    settings.LIVE_MAX_STREAMS = 0  # this server refuses every stream (204): the page must not wait for one
    settings.QUEUE_POLL_SECONDS = 1
    page = queue_page("ceo")
    assert page.locator("#live-status").inner_text() == "Updating every 1 s."
    page.evaluate("window.__sameDocument = true")

    raise_escalation(entity_id="ORD-POLL-1")

    page.locator("#queue-list", has_text="ORD-POLL-1").wait_for(timeout=5000)
    assert page.get_attribute("#queue-live", "data-live") == "off"
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_while_the_stream_is_open_the_poller_stands_down(queue_page, settings) -> None:
    settings.QUEUE_POLL_SECONDS = 1
    page = queue_page("ceo")
    page.wait_for_selector("#queue-live[data-live=on]")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/live/" not in r.url and r.resource_type == "xhr" else None)

    page.wait_for_selector("#queue-live[data-polls-skipped='2']")  # two polls came due and were not sent

    assert fetched == []


# --- the stream ----------------------------------------------------------------------------------------------------


@pytest.fixture
def short_streams(settings: Any) -> None:
    settings.LIVE_STREAM_SECONDS = 1
    settings.LIVE_POLL_SECONDS = 0.1


def test_a_stream_tells_its_role_that_a_case_arrived_and_carries_no_case_data(
    demo, signed_in, raise_escalation, short_streams, django_capture_on_commit_callbacks
) -> None:
    since = _since("ceo", demo)
    with django_capture_on_commit_callbacks(execute=True):
        case = raise_escalation(entity_id="ORD-STREAM-1")

    text = _stream_text(signed_in("ceo"), f"/live/queue/?since={since}")

    assert text.startswith("retry: 1000\n\n")
    assert "event: changed\n" in text
    assert str(case.pk) not in text and "ORD-STREAM-1" not in text and "demo" not in text


def test_a_stream_stays_quiet_about_another_role_s_case(
    demo, signed_in, raise_escalation, short_streams, django_capture_on_commit_callbacks
) -> None:
    since = _since("co", demo)
    with django_capture_on_commit_callbacks(execute=True):
        raise_escalation(entity_id="ORD-STREAM-2")  # the CEO's, not the compliance officer's

    text = _stream_text(signed_in("co"), f"/live/queue/?since={since}")

    assert "event: hello\n" in text
    assert "event: changed" not in text


def test_a_stream_stays_quiet_about_another_tenant_s_case(
    demo, make_tenant, make_person, raise_escalation, short_streams, django_capture_on_commit_callbacks
) -> None:
    acme = make_tenant("acme")
    make_person(acme, "ceo", "acme-ceo")
    client = Client()
    client.post("/accounts/login/", {"username": "acme-ceo", "password": "correct horse battery"})
    since = live_token(live_keys(Actor(tenant=acme, user=User.objects.get(username="acme-ceo")), "all"))
    with django_capture_on_commit_callbacks(execute=True):
        raise_escalation(entity_id="ORD-STREAM-3")  # the demo tenant's CEO queue

    text = _stream_text(client, f"/live/queue/?scope=all&since={since}")

    assert "event: changed" not in text


def test_a_reconnecting_page_hears_what_it_missed_from_its_last_event_id(
    demo, signed_in, raise_escalation, short_streams, django_capture_on_commit_callbacks
) -> None:
    client = signed_in("ceo")
    first = _stream_text(client, "/live/queue/")
    last_id = re.search(r"^id: (\w+)$", first, re.M).group(1)  # type: ignore[union-attr]
    with django_capture_on_commit_callbacks(execute=True):
        raise_escalation(entity_id="ORD-STREAM-4")  # while the page was reconnecting

    again = client.get("/live/queue/", HTTP_LAST_EVENT_ID=last_id)
    text = b"".join(again.streaming_content).decode()  # type: ignore[attr-defined]

    assert text.split("\n\n")[1].startswith("id: ") and "event: changed" in text.split("\n\n")[1]


def test_a_server_with_every_stream_slot_taken_tells_the_page_to_poll(demo, signed_in, settings) -> None:
    settings.LIVE_MAX_STREAMS = 0

    response = signed_in("ceo").get("/live/queue/")

    assert response.status_code == 204
    assert StreamSlots.open_count() == 0


def test_a_stream_gives_its_slot_back_when_it_ends(demo, signed_in, short_streams) -> None:
    _stream_text(signed_in("ceo"), "/live/queue/")

    assert StreamSlots.open_count() == 0


def test_someone_signed_out_gets_no_stream(db) -> None:
    response = Client().get("/live/queue/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_stream_whose_cache_fails_ends_asking_the_browser_to_come_back_later(settings) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6390/0"}
    }  # nobody listens there
    settings.REDIS_URL = ""

    assert list(live_stream(["tg:live:1:all"])) == ["retry: 30000\n\n"]
