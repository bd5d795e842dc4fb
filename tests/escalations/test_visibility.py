"""Who may see and who may act on which case: Escalation.objects.visible_to / actionable_by, and each consumer."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from escalations.models import Escalation
from escalations.selectors import QueueFilters, escalation_queue, escalation_summary, escalations_visible_to
from escalations.services import lock_escalation
from reports.exports import ExportFilters, export_queryset
from reports.selectors import report_summary
from trustguard.errors import NotFound, PermissionDenied

from ..factories import ApiKeyFactory, EscalationFactory, PersonFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def case() -> Escalation:
    return EscalationFactory.create(type="SMR")


@pytest.fixture
def outsider() -> Actor:
    acme = TenantFactory.create(slug="acme")
    return Actor(tenant=acme, user=PersonFactory.create(tenant=acme, role="ceo"))


def test_another_tenant_s_person_neither_sees_nor_acts_on_the_case_anywhere(case, outsider):
    assert not Escalation.objects.visible_to(outsider).filter(pk=case.pk).exists()
    assert not Escalation.objects.actionable_by(outsider).filter(pk=case.pk).exists()
    assert list(escalation_queue(actor=outsider, filters=QueueFilters(scope="all"))) == []
    assert sum(n for _, n in escalation_summary(actor=outsider).by_status) == 0
    assert report_summary(tenant=outsider.tenant)["totals"]["escalations"] == 0
    assert list(export_queryset(dataset="escalations", tenant=outsider.tenant, filters=ExportFilters())) == []
    with pytest.raises(NotFound):
        lock_escalation(str(case.pk), actor=outsider)


def test_a_key_sees_and_acts_on_its_own_requests_only(case):
    stranger = Actor(tenant=case.tenant, api_key=ApiKeyFactory.create(tenant=case.tenant, name="crm"))

    assert not Escalation.objects.visible_to(stranger).exists()
    assert not Escalation.objects.actionable_by(stranger).exists()
    with pytest.raises(NotFound):
        lock_escalation(str(case.pk), actor=stranger)


def test_a_person_sees_the_cases_of_their_roles_and_acts_on_any_case_of_the_tenant(case):
    ceo = Actor(tenant=case.tenant, user=PersonFactory.create(tenant=case.tenant, role="ceo"))  # escalation.view_all
    analyst = Actor(tenant=case.tenant, user=PersonFactory.create(tenant=case.tenant, role="client_facing"))  # no view capability

    assert Escalation.objects.visible_to(ceo).filter(pk=case.pk).exists()
    assert not Escalation.objects.visible_to(analyst).exists()  # the pages: an empty queue
    with pytest.raises(PermissionDenied):
        escalations_visible_to(analyst)  # the API: 403
    # Acting is refused by the service with a precise 403 (capability, role), not a 404.
    assert Escalation.objects.actionable_by(analyst).filter(pk=case.pk).exists()
