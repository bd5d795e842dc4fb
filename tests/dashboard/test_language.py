"""The dashboard in a person's language and in the tenant's words; the operators' terminology admin and preview."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import Tenant, User
from audit.models import AuditEvent
from escalations.models import Term
from notifications.models import MessageTemplate

from ..factories import ApiKeyFactory, EscalationFactory, PersonFactory, PolicyFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_cached_packs(db: None) -> Iterator[None]:
    """Terms and templates are cached per tenant id; a rolled-back test leaves no row, so forget them here."""
    yield
    for pk in Tenant.objects.values_list("pk", flat=True):
        cache.delete_many([f"tg:terms:{pk}", f"tg:message-templates:{pk}"])


def operator() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("operator", "operator@ops.example", None))
    return client


@pytest.fixture
def ceo() -> User:
    return PersonFactory.create(role="ceo")


def test_a_person_chooses_french_in_settings_and_the_dashboard_speaks_it(sign_in, ceo):
    client = sign_in(ceo)
    assert "My queue" in client.get("/").content.decode()

    saved = client.post("/settings/language/", {"language": "fr"}, follow=True)

    assert "Enregistré. Vos pages et vos messages les utilisent désormais." in saved.content.decode()
    page = client.get("/").content.decode()
    assert '<html lang="fr">' in page
    assert "Ma file" in page and "Se déconnecter" in page and "My queue" not in page
    ceo.refresh_from_db()
    assert ceo.language == "fr"
    assert AuditEvent.objects.filter(action="person.language_changed", target_id=str(ceo.pk)).exists()


def test_an_unknown_language_is_refused_and_nothing_changes(sign_in, ceo):
    client = sign_in(ceo)

    client.post("/settings/language/", {"language": "xx"})

    ceo.refresh_from_db()
    assert ceo.language == ""


def test_a_person_without_a_choice_reads_their_tenants_language_and_words(sign_in):
    tenant = TenantFactory.create()
    PolicyFactory.create(tenant=tenant, type="HIGH_VALUE", route=[{"roles": ["ceo"], "approvals_required": 1}])
    ceo = PersonFactory.create(tenant=tenant, role="ceo")
    tenant.language = "fr"
    tenant.save(update_fields=["language"])
    Term.objects.create(tenant=tenant, kind=Term.Kind.ROLE, key="ceo", label="Directrice du groupe")
    Term.objects.create(tenant=tenant, kind=Term.Kind.STATUS, key="pending", language="fr", label="À examiner")
    Term.objects.create(tenant=tenant, kind=Term.Kind.ESCALATION_TYPE, key="HIGH_VALUE", label="Grosse commande")
    case = EscalationFactory.create(tenant=tenant, type="HIGH_VALUE", amount_minor=250_000_000)
    client = sign_in(ceo)

    queue = client.get("/").content.decode()
    page = client.get(f"/e/{case.pk}/").content.decode()

    assert "Ma file" in queue and 'data-testid="my-role">Directrice du groupe<' in queue
    assert "À examiner" in queue and "Grosse commande" in queue
    assert "Pourquoi ce dossier a été escaladé" in page
    assert "À examiner" in page and "Directrice du groupe" in page and "Grosse commande" in page


def test_the_operator_previews_a_message_in_the_tenants_words_and_language(demo):
    tenant = demo["tenant_obj"]
    Term.objects.create(tenant=tenant, kind=Term.Kind.ROLE, key="ceo", language="fr", label="Directrice du groupe")

    page = operator().get("/admin/escalations/term/preview/", {"tenant": tenant.pk, "language": "fr",
                                                                "channel": "email", "audience": "approver"})

    body = page.content.decode()
    assert page.status_code == 200
    assert "Approuver ₦2,500,000.00 order ORD-1001 avant le" in body  # HIGH_VALUE goes to the CEO
    assert "Directrice du groupe" in body
    assert "Responsable de la conformité" in body  # the labels table, in French


def test_a_term_saved_in_the_admin_is_audited_and_read_at_once():
    tenant = TenantFactory.create()

    response = operator().post("/admin/escalations/term/add/", {"tenant": tenant.pk, "kind": "role", "key": "ceo",
                                                                 "language": "", "label": "Managing director"})

    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="terminology.changed").exists()
    from escalations.terminology import label

    assert label("role", "ceo", tenant=tenant, language="en") == "Managing director"


def test_a_message_template_that_does_not_parse_is_refused_naming_the_field():
    response = operator().post("/admin/notifications/messagetemplate/add/", {
        "tenant": TenantFactory.create().pk, "channel": "email", "audience": "approver", "event_type": "default",
        "language": "fr", "subject": "ok", "body": "Bonjour {% if %}"})

    assert response.status_code == 200
    assert "Not a valid template" in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_the_api_answers_in_english_whatever_the_browser_asks():
    secret = ApiKeyFactory.create().secret  # type: ignore[attr-defined]  # shown once: the factory keeps it there
    response = Client().post("/api/v1/escalations", "{}", content_type="application/json",
                             headers={"Accept-Language": "fr", "Authorization": f"Bearer {secret}",
                                      "Idempotency-Key": "k-1"})

    assert response.status_code == 400
    assert response["Content-Language"] == "en"
    assert "obligatoire" not in response.content.decode()


def test_a_signed_out_page_follows_the_browsers_language(db):
    page = Client().get("/accounts/login/", headers={"Accept-Language": "fr"})

    assert "Se connecter" in page.content.decode()
