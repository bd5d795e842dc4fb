"""The case page in a real browser: personal data masked, revealed with privacy.manage; the subject export PDF.

Screenshots land in test-artifacts/ (docs/screenshots/privacy-*.png are copies of them).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.test import Client

from escalations.services import Money, SourceRef, escalation_create
from tests.dashboard.test_browser import ARTIFACTS, browser, open_as, shoot  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONTACT = {"email": "ada.customer@example.com", "phone": "0803 123 4567", "name": "Ada Obi-Lovelace"}


@pytest.fixture
def customer_case(vendor):
    return escalation_create(actor=vendor, reason="Order above the threshold, new customer",
                             source=SourceRef(system="shop", entity_type="order", entity_id="ORD-1001"),
                             amount=Money(value_minor=250_000_000, currency="NGN"), contact=CONTACT,
                             payload={"customer_name": "Ada Obi-Lovelace", "date_of_birth": "1990-04-01", "items": 3})


def test_personal_data_is_masked_on_the_case_page_and_revealed_only_on_request(open_as, customer_case):  # noqa: F811
    page = open_as("co")
    page.goto(f"/e/{customer_case.pk}/")
    panel = page.locator("#personal-data")
    assert panel.get_by_test_id("masked-contact.email").inner_text() == "a***@example.com"
    assert panel.get_by_test_id("masked-contact.phone").inner_text() == "***4567"
    assert "Ada Obi-Lovelace" not in page.content()
    shoot(page, "privacy-masked")

    page.get_by_test_id("reveal").click()
    revealed = page.get_by_test_id("revealed-contact.phone")
    revealed.wait_for()
    assert revealed.inner_text() == "+2348031234567"
    assert page.get_by_test_id("revealed-payload.customer_name").inner_text() == "Ada Obi-Lovelace"
    shoot(page, "privacy-revealed")


def test_the_subject_export_pdf_reads_as_a_document(demo, customer_case):
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    client = Client()
    response = client.get("/api/v1/subjects/export.pdf", {"phone": "+234 803 123 4567"},
                          headers={"Authorization": f"Bearer {demo['by_name']['co']['api_token']}"})
    assert response.status_code == 200
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "privacy-subject-export.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(ARTIFACTS / "privacy-subject-export-pdf")],
                   check=True)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Subject access export" in text and "Ada Obi-Lovelace" in text and "+2348031234567" in text
