"""The operator summary on a known data set: every figure checked against the story in conftest."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client

from reports.selectors import ReportFilters, report_summary
from tests.reports.conftest import T0, KnownData, at

pytestmark = pytest.mark.django_db

PERIOD = ReportFilters(period_from=T0, period_to=T0 + timedelta(days=1))


def summary(demo: dict, data: KnownData, filters: ReportFilters = PERIOD) -> dict:
    return report_summary(tenant=demo["tenant_obj"], filters=filters, now=data.now)


def test_counts_by_status_and_type_cover_only_the_period(demo, known_data):
    result = summary(demo, known_data)

    assert result["totals"] == {"escalations": 7, "open": 1, "final": 6}
    assert result["by_status"] == {"pending": 1, "acknowledged": 0, "approved": 3, "rejected": 2, "deferred": 0,
                                   "expired": 1, "cancelled": 0, "executed": 0}
    assert result["by_type"] == {"HIGH_VALUE": 1, "OPERATION_CHANGE": 1, "SANCTIONS_MATCH": 1, "SMR": 4}


def test_the_approval_rate_counts_people_s_decisions_only(demo, known_data):
    outcomes = summary(demo, known_data)["outcomes"]

    assert (outcomes["approved"], outcomes["rejected"]) == (2, 1)
    # Neither the auto-approval nor the sweep's rejection on expiry was anyone's decision.
    assert (outcomes["auto_approved"], outcomes["rejected_on_expiry"], outcomes["expired"]) == (1, 1, 1)
    assert outcomes["approval_rate"] == pytest.approx(2 / 3, abs=1e-4)


def test_time_to_acknowledge_is_the_median_and_p90_of_first_acknowledgements(demo, known_data):
    # e1 30 min, e2 90 min, e3 5 h: median 5400 s; p90 = 5400 + 0.8 * (18000 - 5400).
    assert summary(demo, known_data)["time_to_acknowledge"] == {
        "count": 3, "median_seconds": 5400.0, "p90_seconds": 15480.0}


def test_time_to_decision_leaves_out_requests_nobody_decided(demo, known_data):
    # e1 2 h, e2 4 h, e3 6 h; e4 (approved at creation) and e5 (rejected by the expiry sweep) are left out.
    assert summary(demo, known_data)["time_to_decision"] == {
        "count": 3, "median_seconds": 14400.0, "p90_seconds": 20160.0}


def test_sla_breaches_come_from_the_sweep_by_the_role_and_level_that_missed(demo, known_data):
    sla = summary(demo, known_data)["sla"]

    # e5 missed at compliance_officer/0, senior_manager/1 and (alert only) governing_body/2; e6 at
    # compliance_officer/0. e7's alert is outside the period.
    assert sla["by_role_and_level"] == [
        {"role": "compliance_officer", "level": 0, "sla_breaches": 2, "re_escalations": 2, "top_level_alerts": 0},
        {"role": "governing_body", "level": 2, "sla_breaches": 1, "re_escalations": 0, "top_level_alerts": 1},
        {"role": "senior_manager", "level": 1, "sla_breaches": 1, "re_escalations": 1, "top_level_alerts": 0},
    ]
    assert (sla["sla_breaches"], sla["re_escalations"], sla["top_level_alerts"]) == (4, 3, 1)
    # From the deadline columns: e3 acknowledged late, e5 and e6 closed unacknowledged past their
    # deadline, e8 still waiting a day past its 4 h deadline.
    assert sla["ack_deadline_missed"] == 4


def test_bottlenecks_are_the_roles_with_the_oldest_open_work_whatever_the_period(demo, known_data):
    bottlenecks = summary(demo, known_data)["bottlenecks"]

    assert [(b["role"], b["open"], b["overdue"]) for b in bottlenecks] == [
        ("governing_body", 1, 1), ("compliance_officer", 1, 1)]  # both past their acknowledgement deadline
    assert bottlenecks[0]["oldest_open_age_seconds"] == int(timedelta(days=5).total_seconds())
    assert bottlenecks[1]["oldest_open_created_at"] == known_data.escalations["e8"].created_at


def test_by_role_joins_decisions_breaches_and_backlog(demo, known_data):
    by_role = {r["role"]: r for r in summary(demo, known_data)["by_role"]}

    assert by_role["compliance_officer"]["decisions"] == {"approve": 1, "reject": 1, "defer": 0}
    assert by_role["compliance_officer"]["sla_breaches"] == 2
    assert by_role["ceo"]["decisions"]["approve"] == 1
    assert (by_role["governing_body"]["open"], by_role["governing_body"]["sla_breaches"]) == (1, 1)


def test_a_type_filter_narrows_every_figure(demo, known_data):
    result = summary(demo, known_data, ReportFilters(period_from=T0, period_to=T0 + timedelta(days=1), type="SMR"))

    assert result["totals"]["escalations"] == 4
    assert result["outcomes"]["approval_rate"] == 0.5
    assert result["time_to_acknowledge"]["count"] == 2
    assert (result["sla"]["sla_breaches"], result["sla"]["re_escalations"]) == (1, 1)
    assert [b["role"] for b in result["bottlenecks"]] == ["compliance_officer"]


def test_an_empty_period_gives_zeros_and_no_rates(demo, known_data):
    result = summary(demo, known_data, ReportFilters(period_from=T0 + timedelta(days=100)))

    assert result["totals"]["escalations"] == 0
    assert result["outcomes"]["approval_rate"] is None
    assert result["time_to_decision"] == {"count": 0, "median_seconds": None, "p90_seconds": None}


def test_another_tenant_s_escalations_never_count(demo, known_data, make_tenant):
    other = make_tenant("acme")

    result = report_summary(tenant=other, now=known_data.now)

    assert result["totals"]["escalations"] == 0
    assert result["bottlenecks"] == []


def test_the_api_returns_the_summary_for_the_period_and_type(demo, known_data, api):
    with at(known_data.now):
        response = api("co").get("/api/v1/reports/summary", {"from": T0.isoformat(), "type": "SMR",
                                                               "to": (T0 + timedelta(days=1)).isoformat()})

    assert response.status_code == 200
    body = response.json()
    assert body["totals"]["escalations"] == 4
    assert body["filters"]["type"] == "SMR"


def test_the_summary_needs_audit_view(demo, api):
    response = api("analyst").get("/api/v1/reports/summary")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_a_reversed_period_is_a_validation_problem(demo, api):
    response = api("ops").get("/api/v1/reports/summary", {"from": "2026-11-05T00:00:00Z", "to": "2026-11-01T00:00:00Z"})

    assert response.status_code == 400
    assert "to" in response.json()["errors"]


def test_the_summary_without_credentials_is_401(db):
    assert Client().get("/api/v1/reports/summary").status_code == 401


def test_the_reports_page_shows_the_summary_to_a_person_with_audit_view(demo, known_data):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="co"), backend="django.contrib.auth.backends.ModelBackend")

    with at(known_data.now):
        # Days are the site's (Africa/Lagos, UTC+1): 2 Nov 00:00 to 3 Nov 24:00 local holds e1..e6 and e8.
        page = client.get("/ops/reports/", {"from": "2026-11-02", "to": "2026-11-03"})

    assert page.status_code == 200
    assert page.context["summary"]["totals"]["escalations"] == 7
    assert b"Bottlenecks" in page.content
    assert "<title>Reports · demo</title>" in page.content.decode()
    assert page.content.count(b'id="exports"') == 1


def test_the_reports_page_is_refused_without_audit_view(demo):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="analyst"),
                       backend="django.contrib.auth.backends.ModelBackend")

    assert client.get("/ops/reports/").status_code == 403


def test_the_dashboard_summary_and_the_report_show_the_same_figures_for_the_same_cases(demo, known_data):
    from django.contrib.auth import get_user_model

    from escalations.selectors import SUMMARY_WINDOW

    client = Client()  # co has escalation.view_all: the dashboard's cases are the tenant's, as the report's
    client.force_login(get_user_model().objects.get(username="co"), backend="django.contrib.auth.backends.ModelBackend")
    report = summary(demo, known_data, ReportFilters(period_from=known_data.now - SUMMARY_WINDOW))

    with at(known_data.now):
        page = client.get("/summary/")

    dashboard = page.context["s"]
    # e5 missed three deadlines (co/0, senior_manager/1, the alert at governing_body/2), e6 one, e7 its alert.
    assert dashboard.sla_breaches == report["sla"]["sla_breaches"] == 5
    # e1 2 h, e2 4 h, e3 6 h: the auto-approved e4 and e5, rejected on expiry, were nobody's decision.
    assert dashboard.median_decision_seconds == report["time_to_decision"]["median_seconds"] == 14400.0
    assert dashboard.decided_count == report["time_to_decision"]["count"] == 3
    assert re.search(r'<span class="stat-value">5</span>\s*<span class="stat-label">SLA breaches', page.content.decode())
