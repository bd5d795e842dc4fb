"""Trigger rules and policies are cached per process (accounts.tenant_config); a change is seen by the next request."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Tenant
from accounts.tenant_config import config_generation, mark_fresh
from escalations.models import Policy, TriggerRule
from escalations.policies import normalize_route, tenant_rules
from tests.api.conftest import ORDER

pytestmark = pytest.mark.django_db


def _create(api, **changes):
    order = {**ORDER, "source": {**ORDER["source"], "entity_id": f"ORD-{uuid.uuid4().hex[:8]}"}, **changes}
    response = api("vendor").post("/escalations", order, key=str(uuid.uuid4()))
    assert response.status_code in (201, 422), response.content
    return response


def test_a_second_create_reads_neither_trigger_rules_nor_policies(api):
    _create(api)

    with CaptureQueriesContext(connection) as queries:
        _create(api)

    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "escalations_triggerrule" not in sql and "escalations_policy" not in sql


def test_a_policy_change_is_seen_by_the_next_request(api, demo):
    assert _create(api).json()["route"][0]["role"] == "ceo"
    policy = Policy.objects.get(tenant=demo["tenant_obj"], type="HIGH_VALUE")
    policy.route = normalize_route(["governing_body"])
    policy.save()

    assert _create(api).json()["route"][0]["role"] == "governing_body"


def test_a_trigger_rule_switched_off_or_deleted_is_seen_by_the_next_request(api, demo):
    assert _create(api).status_code == 201
    rule = TriggerRule.objects.get(tenant=demo["tenant_obj"], escalation_type="HIGH_VALUE")
    rule.is_active = False
    rule.save()

    assert _create(api).status_code == 422  # nothing triggers any more

    rule.is_active = True
    rule.save()
    assert _create(api).status_code == 201
    rule.delete()
    assert _create(api).status_code == 422


def test_a_policy_change_through_the_api_is_seen_by_the_next_create(api, demo):
    _create(api)
    document = api("ops").get("/policies/HIGH_VALUE").json()

    changed = api("ops").put("/policies/HIGH_VALUE", {**document, "route": ["governing_body"]}, key=str(uuid.uuid4()))

    assert changed.status_code == 200, changed.content
    assert _create(api).json()["route"][0]["role"] == "governing_body"


def test_each_change_gives_the_tenant_a_new_generation_even_when_rolled_back_and_made_again(demo):
    tenant_id = demo["tenant_obj"].pk
    before = config_generation(tenant_id)
    rule = TriggerRule.objects.get(tenant_id=tenant_id, escalation_type="HIGH_VALUE")
    rule.save()
    after = config_generation(tenant_id)

    assert after != before
    rule.save()
    assert config_generation(tenant_id) not in (before, after)


def test_a_request_that_changes_a_policy_reads_its_own_change_and_a_rollback_leaves_none_behind(demo):
    # The tenant row as a request's authentication read it (its generation stands for the request) ...
    tenant = mark_fresh(Tenant.objects.get(slug="demo"))
    route = tenant_rules(tenant=tenant).policies["HIGH_VALUE"].route

    with pytest.raises(RuntimeError), transaction.atomic():
        policy = Policy.objects.get(tenant=tenant, type="HIGH_VALUE")
        policy.route = normalize_route(["governing_body"])
        policy.save()
        # ... is not trusted once the same connection changed the configuration.
        assert tenant_rules(tenant=tenant).policies["HIGH_VALUE"].route[0]["roles"] == ["governing_body"]
        raise RuntimeError("the request fails: its change is rolled back")

    assert tenant_rules(tenant=mark_fresh(Tenant.objects.get(slug="demo"))).policies["HIGH_VALUE"].route == route


def test_a_queryset_update_of_a_policy_is_seen_by_the_next_request_too(api, demo):
    assert _create(api).json()["route"][0]["role"] == "ceo"

    Policy.objects.filter(tenant=demo["tenant_obj"], type="HIGH_VALUE").update(route=normalize_route(["governing_body"]))

    assert _create(api).json()["route"][0]["role"] == "governing_body"
