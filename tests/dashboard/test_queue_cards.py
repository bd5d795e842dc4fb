"""The queue's cards, formatted in Python (dashboard.queue_cards): what the template tags printed, escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template import engines
from django.utils import formats, timezone

from dashboard.queue_cards import queue_cards
from escalations.models import Escalation
from escalations.selectors import QUEUE_CARD_FIELDS

pytestmark = pytest.mark.django_db


def as_template_prints(value: datetime) -> tuple[str, str]:
    """`{{ value|date:'c' }}` and `{{ value }}`, rendered by the template engine itself."""
    template = engines["django"].from_string("{{ value|date:'c' }}|{{ value }}")
    iso, title = template.render({"value": value}).split("|")
    return iso, title


def card_of(escalation: Escalation) -> dict:
    row = Escalation.objects.filter(pk=escalation.pk).values(*QUEUE_CARD_FIELDS).get()
    return queue_cards([row])[0]


def test_user_data_on_a_card_is_escaped_on_the_page(raise_escalation, signed_in):
    raise_escalation(entity_id="<b>ORD-1</b>", reason='<script>alert("x")</script> & more')

    page = signed_in("ceo").get("/").content.decode()

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page
    assert "&lt;b&gt;ORD-1&lt;/b&gt;" in page


def test_a_card_prints_its_times_as_the_template_engine_would(raise_escalation):
    escalation = raise_escalation()
    created = datetime(2026, 3, 1, 11, 59, 42, 123456, tzinfo=UTC)
    Escalation.objects.filter(pk=escalation.pk).update(created_at=created)

    card = card_of(escalation)

    assert (card["created_iso"], card["created_title"]) == as_template_prints(created)


def test_the_memoised_time_format_follows_the_current_time_zone(raise_escalation):
    escalation = raise_escalation()
    created = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # another day in Lagos (UTC+1)
    Escalation.objects.filter(pk=escalation.pk).update(created_at=created)

    titles = {}
    for zone in ("UTC", "Africa/Lagos", "UTC"):
        with timezone.override(zone):
            titles[zone] = card_of(escalation)["created_title"]
            assert titles[zone] == formats.localize(timezone.localtime(created))

    assert titles["UTC"] != titles["Africa/Lagos"]


def test_a_card_shows_the_deadline_that_matters_and_the_approvals_still_needed(raise_escalation):
    escalation = raise_escalation()
    deadline = timezone.now() + timedelta(minutes=30)
    Escalation.objects.filter(pk=escalation.pk).update(
        status="acknowledged", expires_at=deadline, next_deadline_at=deadline, approvals_required=3,
        approvals_received=1, urgency="critical", escalation_level=2)

    card = card_of(escalation)

    assert card["sla_state"] == "soon"
    assert card["deadline_label"].startswith("Decide in ")
    assert (card["deadline_iso"], card["deadline_title"]) == as_template_prints(deadline)
    assert card["approvals"] == "1/3"
    assert "Critical urgency" in card["urgency_badge"]
    assert card["url"] == f"/e/{escalation.pk}/"
