"""A tenant's language pack in its messages: French emails for a French tenant, in its own words and templates."""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from django.core.cache import cache

from accounts.models import Tenant, User
from escalations.models import Term
from escalations.services import Money, SourceRef, escalation_create
from notifications.models import MessageTemplate

from .conftest import deliver as deliver_one
from .conftest import email_part, pending, relay

pytestmark = pytest.mark.django_db
REASON = "Large order from a new customer"


@pytest.fixture(autouse=True)
def _forget_cached_packs(db: None) -> Iterator[None]:
    """Terms and templates are cached per tenant id; a rolled-back test leaves no row, so forget them here."""
    yield
    for pk in Tenant.objects.values_list("pk", flat=True):
        cache.delete_many([f"tg:terms:{pk}", f"tg:message-templates:{pk}"])


def french(demo: dict) -> Tenant:
    """The demo tenant, in French, with its own words for the CEO and for this reason."""
    tenant = demo["tenant_obj"]
    tenant.language = "fr"
    tenant.save(update_fields=["language"])
    Term.objects.create(tenant=tenant, kind=Term.Kind.ROLE, key="ceo", language="fr", label="Directrice du groupe")
    Term.objects.create(tenant=tenant, kind=Term.Kind.REASON, key=REASON, language="fr",
                        label="Grosse commande d'un nouveau client")
    return tenant


def big_order(vendor):
    return escalation_create(actor=vendor, reason=REASON, amount=Money(250_000_000, "NGN"),
                             source=SourceRef("shop", "order", "ORD-1"), requested_by="buyer@shop.example")


def emails_to(smtp_receiver, address: str) -> list:
    relay()
    for delivery in pending("email"):
        assert deliver_one(delivery) == "delivered"
    return [message for rcpts, message in smtp_receiver.messages if rcpts == [address]]


def text_of(message, content_type: str = "text/plain") -> str:
    return email_part(message, content_type).replace("\r\n", "\n")


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def test_a_french_tenant_with_its_own_labels_gets_french_emails_with_them(demo, vendor, smtp_receiver):
    french(demo)

    big_order(vendor)

    (email,) = emails_to(smtp_receiver, "ceo@demo.example")
    assert subject(email).startswith("Approuver ₦2,500,000.00 order ORD-1 avant le ")
    text = text_of(email)
    assert "demande l'approbation de ₦2,500,000.00 order ORD-1 (Directrice du groupe)." in text
    assert "Motif :        Grosse commande d'un nouveau client" in text
    assert "Attend :         Directrice du groupe" in text
    assert "Vous recevez ce message en tant que Directrice du groupe de Demo" in text
    html = text_of(email, "text/html")
    assert 'lang="fr"' in html or "Examiner et décider" in html
    assert "Examiner et décider" in html and "Grosse commande d&#x27;un nouveau client" in html


def test_a_person_who_chose_english_reads_english_in_a_french_tenant(demo, vendor, smtp_receiver):
    french(demo)
    User.objects.filter(username="ceo").update(language="en")

    big_order(vendor)

    (email,) = emails_to(smtp_receiver, "ceo@demo.example")
    assert subject(email).startswith("Approve ₦2,500,000.00 order ORD-1 by ")
    text = text_of(email)
    assert "Reason:        Large order from a new customer" in text  # the French term is for French only
    assert "Needs:         CEO" in text


def test_a_tenants_own_message_template_replaces_the_standard_one_in_its_language(demo, vendor, smtp_receiver):
    tenant = french(demo)
    MessageTemplate.objects.create(
        tenant=tenant, channel="email", audience="approver", event_type="escalation.created", language="fr",
        subject="À valider : {{ what }}",
        body="Bonjour,\n{{ role_label }}, merci de valider {{ what }} ({{ reason }}).\n{{ url }}")

    big_order(vendor)

    (email,) = emails_to(smtp_receiver, "ceo@demo.example")
    assert subject(email) == "À valider : ₦2,500,000.00 order ORD-1"
    text = text_of(email)
    assert text.startswith("Bonjour,\nDirectrice du groupe, merci de valider ₦2,500,000.00 order ORD-1 "
                           "(Grosse commande d'un nouveau client).")
    assert "/e/" in text
    assert "<p>Bonjour,<br>Directrice du groupe" in text_of(email, "text/html")


def test_a_french_customer_is_told_in_french(demo, vendor, smtp_receiver):
    french(demo)

    escalation_create(actor=vendor, reason=REASON, amount=Money(250_000_000, "NGN"),
                      source=SourceRef("shop", "order", "ORD-2"), contact={"email": "ada@example.com"})

    (email,) = emails_to(smtp_receiver, "ada@example.com")
    assert subject(email) == "Votre order ORD-2 est en cours d'examen"
    assert "Vous n'avez rien à faire." in text_of(email)
