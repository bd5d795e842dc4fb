"""The case page's "Download PDF": the regulator's report as a person downloads it, and what it prints.

The report is read back with pypdf (the words) and rendered with pdftoppm (the picture, left in
test-artifacts/ to look at).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from pypdf import PdfReader

from accounts.actors import Actor
from accounts.services import capability_revoke
from escalations.services import Money, SourceRef, escalation_create, escalation_decide
from tests.conftest import totp_code
from tests.dashboard.conftest import signed_in  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"


@pytest.fixture
def two_stage_case(vendor, demo_actor):
    """₦2,500,000 due diligence, stage 1 (compliance officer) approved, stage 2 (senior manager) open."""
    case = escalation_create(actor=vendor, type="HIGH_RISK_CDD", reason="PEP, high-risk country",
                             amount=Money(250_000_000, "NGN"), source=SourceRef("kyc", "customer", "C-7"))
    co = demo_actor("co")
    return escalation_decide(actor=co, escalation=case, decision="approve", justification="Source of funds verified",
                             otp=totp_code(co.user))


def download(client, case) -> bytes:
    page = client.get(f"/e/{case.pk}/").content.decode()
    assert 'data-testid="download-pdf"' in page
    href = f"/ops/escalations/{case.pk}/report.pdf"
    assert f'href="{href}"' in page
    response = client.get(href)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    return response.content


def test_the_pdf_prints_money_as_money_and_stages_as_the_page_numbers_them(two_stage_case, signed_in):  # noqa: F811
    pdf = download(signed_in("co"), two_stage_case)

    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())  # a cell may wrap
    assert "₦2,500,000.00" in text
    assert "minor units" not in text and "250000000" not in text
    assert "0 of 1 (stage 2)" in text  # the page says "Stage 2" for the open stage, as does the report
    assert "Senior manager / level 0" in text and "kyc (vendor)" in text
    assert "Chioma Okafor" in text and "Compliance officer" in text
    # The ₦ sign is drawn from an embedded TrueType font, not Helvetica's missing glyph.
    fonts = {str(font.get_object()["/BaseFont"]) for page in reader.pages
             for font in page["/Resources"].get_object()["/Font"].get_object().values()}  # type: ignore[index,union-attr]
    assert any(name.endswith("+Roboto-Regular") for name in fonts), fonts
    assert not any("Helvetica" in name for name in fonts), fonts


def test_the_pdf_renders_to_a_page_picture(two_stage_case, signed_in):  # noqa: F811
    if shutil.which("pdftoppm") is None:
        pytest.skip("needs pdftoppm (apt-get install poppler-utils)")
    pdf = download(signed_in("co"), two_stage_case)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "case-report.pdf").write_bytes(pdf)

    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(ARTIFACTS / "case-report.pdf"),
                    str(ARTIFACTS / "case-report")], check=True, timeout=60)

    picture = ARTIFACTS / "case-report-1.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000


def test_only_people_who_may_export_see_the_link_or_get_the_pdf(demo, two_stage_case, signed_in):  # noqa: F811
    tenant = demo["tenant_obj"]
    capability_revoke(tenant=tenant, role="senior_manager", capability="audit.export",
                      actor=Actor.for_system(tenant, "test"))
    sm = signed_in("sm")  # assigned to stage 2: may see and decide the case, not export it

    page = sm.get(f"/e/{two_stage_case.pk}/")
    assert page.status_code == 200 and 'data-testid="download-pdf"' not in page.content.decode()
    assert sm.get(f"/ops/escalations/{two_stage_case.pk}/report.pdf").status_code == 404
    assert signed_in("co").get("/ops/escalations/not-an-id/report.pdf").status_code == 404
