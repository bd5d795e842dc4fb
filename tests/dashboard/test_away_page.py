"""The "I'm away" page (issue 19) and the operators' delegation list: set, refuse naming the field, end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Delegation, User
from audit.models import AuditEvent

from ..factories import PersonFactory, PolicyFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people() -> dict[str, User]:
    """A CEO, a senior manager and a compliance officer of one tenant that handles HIGH_VALUE cases."""
    tenant = TenantFactory.create()
    PolicyFactory.create(tenant=tenant, type="HIGH_VALUE", route=[{"roles": ["ceo"], "approvals_required": 1}])
    return {name: PersonFactory.create(tenant=tenant, role=role, username=name)
            for name, role in (("ceo", "ceo"), ("sm", "senior_manager"), ("co", "compliance_officer"))}


def local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_the_ceo_sets_an_out_of_office_and_the_banner_says_so(sign_in, people):
    client = sign_in(people["ceo"])
    now = timezone.now()

    response = client.post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=2)),
                                      "delegate": str(people["sm"].pk), "types": ["HIGH_VALUE"]}, follow=True)

    page = response.content.decode()
    assert 'data-testid="away-banner"' in page and people["sm"].get_full_name() in page
    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.escalation_types) == (
        people["ceo"], people["sm"], ["HIGH_VALUE"])
    assert 'data-testid="away-banner"' in client.get("/").content.decode()  # on every page while away


def test_more_than_90_days_is_refused_next_to_the_field_and_nothing_is_saved(sign_in, people):
    now = timezone.now()

    response = sign_in(people["ceo"]).post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=95)),
                                                      "delegate": ""})

    assert response.status_code == 400
    assert "at most 90 days" in response.content.decode()
    assert not Delegation.objects.exists()


def test_someone_elses_period_cannot_be_ended_from_the_away_page(sign_in, people):
    now = timezone.now()
    sign_in(people["ceo"]).post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=1)),
                                           "delegate": str(people["sm"].pk)})
    delegation = Delegation.objects.get()

    sign_in(people["co"]).post(f"/away/{delegation.pk}/end/")

    delegation.refresh_from_db()
    assert delegation.revoked_at is None


def test_operators_list_delegations_with_filters_and_end_one(sign_in, people):
    now = timezone.now()
    sign_in(people["ceo"]).post("/away/", {"starts_at": local(now), "ends_at": local(now + timedelta(days=1)),
                                           "delegate": ""})
    delegation = Delegation.objects.get()
    ops = User.objects.create_superuser("ops", "ops@operator.example", "x")
    operator = Client()
    operator.force_login(ops)

    for url in ("/admin/accounts/delegation/", "/admin/accounts/delegation/?status=active",
                "/admin/accounts/delegation/?delegate__isempty=1", f"/admin/accounts/delegation/{delegation.pk}/change/"):
        assert operator.get(url).status_code == 200, url
    operator.post("/admin/accounts/delegation/", {"action": "end_now", "_selected_action": [str(delegation.pk)]})

    delegation.refresh_from_db()
    assert delegation.revoked_at is not None and delegation.revoked_by == ops
    assert AuditEvent.objects.filter(action="delegation.revoked", target_id=str(delegation.pk)).exists()
