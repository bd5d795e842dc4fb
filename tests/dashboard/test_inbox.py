"""The notifications page: the unread badge leads to it, opening one marks it read and goes to the case."""

from __future__ import annotations

import re

import pytest

from notifications.models import Channel, Message
from notifications.relay import outbox_relay
from tests.dashboard.conftest import user

pytestmark = pytest.mark.django_db


def told(raise_escalation, **kwargs):
    """An escalation, relayed: the CEO's inbox gets its in-app notification."""
    escalation = raise_escalation(**kwargs)
    outbox_relay()
    return escalation


def inbox_items(page: str) -> list[str]:
    return re.findall(r'data-testid="inbox-item" data-id="([^"]+)"', page)


def test_the_unread_badge_leads_to_the_notifications_newest_first(raise_escalation, signed_in):
    first = told(raise_escalation, entity_id="ORD-1")
    second = told(raise_escalation, entity_id="ORD-2")
    ceo = signed_in("ceo")

    queue = ceo.get("/").content.decode()
    assert re.search(r'<a class="pill pill-info" href="/inbox/" data-testid="unread-badge">\s*<span class="pill-count">2<',
                     queue)
    page = ceo.get("/inbox/").content.decode()

    mine = Message.objects.filter(user=user("ceo"), channel=Channel.IN_APP)
    newest = mine.get(data__escalation=str(second.pk))
    assert inbox_items(page) == [str(newest.pk), str(mine.get(data__escalation=str(first.pk)).pk)]
    assert page.count('class="card inbox-item unread"') == 2 and "ORD-2" in page
    assert "Mark all as read" in page


def test_opening_a_notification_marks_it_read_and_opens_its_case(raise_escalation, signed_in):
    escalation = told(raise_escalation)
    message = Message.objects.get(user=user("ceo"), channel=Channel.IN_APP)
    ceo = signed_in("ceo")

    response = ceo.post(f"/inbox/{message.pk}/open/")

    assert response.status_code == 302 and response["Location"] == f"/e/{escalation.pk}/"
    message.refresh_from_db()
    assert message.read_at is not None
    assert 'class="card inbox-item"' in ceo.get("/inbox/").content.decode()
    assert ceo.get(f"/inbox/{message.pk}/open/").status_code == 405  # reading changes state: POST only


def test_someone_elses_notification_is_404_and_stays_unread(raise_escalation, signed_in):
    told(raise_escalation)
    message = Message.objects.get(user=user("ceo"), channel=Channel.IN_APP)

    assert signed_in("co").post(f"/inbox/{message.pk}/open/").status_code == 404
    assert signed_in("co").post("/inbox/not-a-uuid/open/").status_code == 404
    assert inbox_items(signed_in("co").get("/inbox/").content.decode()) == []
    message.refresh_from_db()
    assert message.read_at is None


def test_mark_all_as_read_clears_the_badge(raise_escalation, signed_in):
    told(raise_escalation, entity_id="ORD-1")
    told(raise_escalation, entity_id="ORD-2")
    ceo = signed_in("ceo")

    response = ceo.post("/inbox/read-all/", follow=True)

    page = response.content.decode()
    assert "Marked 2 notifications as read." in page
    assert re.search(r'data-testid="unread-badge">\s*<span class="pill-count">0<', page)
    assert not Message.objects.filter(user=user("ceo"), channel=Channel.IN_APP, read_at__isnull=True).exists()


def test_an_empty_inbox_says_so(signed_in):
    page = signed_in("ceo").get("/inbox/").content.decode()

    assert "No notifications" in page and "Mark all as read" not in page


def test_the_badges_poll_on_their_own_except_on_the_queue_whose_refresh_brings_them(raise_escalation, signed_in):
    escalation = raise_escalation()
    ceo = signed_in("ceo")

    def badges_tag(page: str) -> str:
        match = re.search(r'<div id="badges"[^>]*>', page)
        assert match, "no badges"
        return match.group(0)

    assert "hx-trigger" not in badges_tag(ceo.get("/").content.decode())
    assert "hx-trigger" not in badges_tag(ceo.get("/", HTTP_HX_REQUEST="true").content.decode())
    assert 'hx-trigger="every 15s"' in badges_tag(ceo.get(f"/e/{escalation.pk}/").content.decode())
    assert 'hx-trigger="every 15s"' in badges_tag(ceo.get("/inbox/").content.decode())
