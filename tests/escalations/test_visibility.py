"""Who may see and who may act on which case: Escalation.objects.visible_to / actionable_by, and each consumer."""

from __future__ import annotations

import pytest

from accounts.actors import Actor
from accounts.models import ApiKey
from accounts.services import api_key_create
from escalations.models import Escalation
from escalations.selectors import QueueFilters, escalation_queue, escalation_summary, escalations_visible_to
from escalations.services import SourceRef, escalation_create, lock_escalation
from reports.exports import ExportFilters, export_queryset
from reports.selectors import report_summary
from trustguard.errors import NotFound, PermissionDenied

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(vendor: Actor) -> Escalation:
    return escalation_create(actor=vendor, type="SMR", reason="Odd pattern",
                             source=SourceRef(system="bank", entity_type="account", entity_id="AC-1"))


@pytest.fixture
def outsider(make_tenant, make_person) -> Actor:
    acme = make_tenant("acme")
    return Actor(tenant=acme, user=make_person(acme, "ceo", "acme-ceo"))


def test_another_tenant_s_person_neither_sees_nor_acts_on_the_case_anywhere(case, outsider):
    assert not Escalation.objects.visible_to(outsider).filter(pk=case.pk).exists()
    assert not Escalation.objects.actionable_by(outsider).filter(pk=case.pk).exists()
    assert list(escalation_queue(actor=outsider, filters=QueueFilters(scope="all"))) == []
    assert sum(n for _, n in escalation_summary(actor=outsider).by_status) == 0
    assert report_summary(tenant=outsider.tenant)["totals"]["escalations"] == 0
    assert list(export_queryset(dataset="escalations", tenant=outsider.tenant, filters=ExportFilters())) == []
    with pytest.raises(NotFound):
        lock_escalation(str(case.pk), actor=outsider)


def test_a_key_sees_and_acts_on_its_own_requests_only(case, demo):
    api_key_create(tenant=case.tenant, name="crm", actor=Actor.for_system(case.tenant, "test"))
    stranger = Actor(tenant=case.tenant, api_key=ApiKey.objects.get(tenant=case.tenant, name="crm"))

    assert not Escalation.objects.visible_to(stranger).exists()
    assert not Escalation.objects.actionable_by(stranger).exists()
    with pytest.raises(NotFound):
        lock_escalation(str(case.pk), actor=stranger)


def test_a_person_sees_the_cases_of_their_roles_and_acts_on_any_case_of_the_tenant(case, demo_actor):
    ceo = demo_actor("ceo")  # escalation.view_all in the default matrix
    analyst = demo_actor("analyst")  # client_facing: neither view capability

    assert Escalation.objects.visible_to(ceo).filter(pk=case.pk).exists()
    assert not Escalation.objects.visible_to(analyst).exists()  # the pages: an empty queue
    with pytest.raises(PermissionDenied):
        escalations_visible_to(analyst)  # the API: 403
    # Acting is refused by the service with a precise 403 (capability, role), not a 404.
    assert Escalation.objects.actionable_by(analyst).filter(pk=case.pk).exists()
