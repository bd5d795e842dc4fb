"""The "I'm away" page (issue 19) and the operators' delegation list: set, refuse naming the field, end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Delegation
from audit.models import AuditEvent
from tests.dashboard.conftest import user

pytestmark = pytest.mark.django_db


def local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_the_ceo_sets_an_out_of_office_and_the_banner_says_so(signed_in):
    client = signed_in("ceo")
    now = timezone.now()

    response = client.post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=2)),
                                      "delegate": str(user("sm").pk), "types": ["HIGH_VALUE"]}, follow=True)

    page = response.content.decode()
    assert 'data-testid="away-banner"' in page and user("sm").get_full_name() in page
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.escalation_types) == (
        user("ceo"), user("sm"), ["HIGH_VALUE"])
    assert 'data-testid="away-banner"' in client.get("/").content.decode()  # on every page while away


def test_more_than_90_days_is_refused_next_to_the_field_and_nothing_is_saved(signed_in):
    now = timezone.now()

    response = signed_in("ceo").post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=95)),
                                                "delegate": ""})

    assert response.status_code == 400
    assert "at most 90 days" in response.content.decode()
    assert not Delegation.objects.exists()


def test_someone_elses_period_cannot_be_ended_from_the_away_page(signed_in):
    now = timezone.now()
    signed_in("ceo").post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=1)),
                                     "delegate": str(user("sm").pk)})
    delegation = Delegation.objects.get()

    signed_in("co").post(f"/away/{delegation.pk}/end/")

    delegation.refresh_from_db()
    assert delegation.revoked_at is None


def test_operators_list_delegations_with_filters_and_end_one(demo, signed_in):
    now = timezone.now()
    signed_in("ceo").post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=1)),
                                     "delegate": ""})
    delegation = Delegation.objects.get()
    operator = Client()
    operator.force_login(user("ops"))

    for url in ("/admin/accounts/delegation/", "/admin/accounts/delegation/?status=active",
                "/admin/accounts/delegation/?delegate__isempty=1", f"/admin/accounts/delegation/{delegation.pk}/change/"):
        assert operator.get(url).status_code == 200, url
    operator.post("/admin/accounts/delegation/", {"action": "end_now", "_selected_action": [str(delegation.pk)]})

    delegation.refresh_from_db()
    assert delegation.revoked_at is not None and delegation.revoked_by == user("ops")
    assert AuditEvent.objects.filter(action="delegation.revoked", target_id=str(delegation.pk)).exists()
