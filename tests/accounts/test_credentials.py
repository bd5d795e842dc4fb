"""API keys and personal tokens: random, shown once, stored hashed, revocable, tenant-bound."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.actors import Actor
from accounts.models import ApiKey, PersonalToken
from accounts.roles import Role
from accounts.services import api_key_create, credential_authenticate, credential_revoke, personal_token_create
from trustguard.errors import NotAuthenticated

pytestmark = pytest.mark.django_db


class WhoAmI(APIView):
    def get(self, request):
        return Response({"tenant": request.user.tenant.slug, "actor": request.user.actor_label})


def call(secret: str | None, header: str | None = None):
    factory = APIRequestFactory()
    authorization = header if header is not None else f"Bearer {secret}" if secret else None
    request = factory.get("/whoami", HTTP_AUTHORIZATION=authorization) if authorization else factory.get("/whoami")
    return WhoAmI.as_view()(request).render()


def test_an_api_key_authenticates_as_its_tenant(make_tenant):
    tenant = make_tenant()
    _, secret = api_key_create(tenant=tenant, name="shop", actor=Actor.for_system(tenant, "test"))

    response = call(secret)

    assert response.status_code == 200
    assert response.data == {"tenant": "acme", "actor": "api_key:shop"}


def test_a_personal_token_acts_as_its_person(make_tenant, make_person):
    tenant = make_tenant()
    person = make_person(tenant, Role.CEO, "ngozi")
    _, secret = personal_token_create(user=person, tenant=tenant, name="cli", actor=Actor(tenant=tenant, user=person))

    actor = credential_authenticate(secret)

    assert actor.user == person
    assert actor.tenant == tenant
    assert actor.roles == {Role.CEO}


def test_the_raw_secret_is_nowhere_in_the_database(make_tenant, make_person):
    tenant = make_tenant()
    person = make_person(tenant, Role.CEO, "ngozi")
    _, key_secret = api_key_create(tenant=tenant, name="shop", actor=Actor.for_system(tenant, "test"))
    _, token_secret = personal_token_create(user=person, tenant=tenant, name="cli", actor=Actor(tenant=tenant, user=person))

    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            dump = repr(cursor.fetchall())
            assert key_secret not in dump, table
            assert token_secret not in dump, table
            assert key_secret[12:] not in dump, table


def test_a_revoked_key_gets_401(make_tenant):
    tenant = make_tenant()
    key, secret = api_key_create(tenant=tenant, name="shop", actor=Actor.for_system(tenant, "test"))
    credential_revoke(credential=key, actor=Actor.for_system(tenant, "test"))

    response = call(secret)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.data["detail"] == "The API key is unknown or has been revoked."
    assert "Bearer" in response["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Bearer tgk_not-a-real-key", "Bearer something-else", "Basic dXNlcjpwYXNz", "Bearer "])
def test_unknown_or_malformed_credentials_get_401(db, header):
    response = call(None, header=header)

    assert response.status_code == 401
    assert response.data["type"].endswith("/invalid-credential")


def test_a_token_of_a_deactivated_person_stops_working(make_tenant, make_person):
    tenant = make_tenant()
    person = make_person(tenant, Role.CEO, "ngozi")
    _, secret = personal_token_create(user=person, tenant=tenant, name="cli", actor=Actor(tenant=tenant, user=person))
    person.is_active = False
    person.save()

    with pytest.raises(NotAuthenticated):
        credential_authenticate(secret)


def test_keys_are_bound_to_their_tenant(make_tenant):
    acme, globex = make_tenant("acme"), make_tenant("globex")
    _, acme_secret = api_key_create(tenant=acme, name="shop", actor=Actor.for_system(acme, "test"))
    _, globex_secret = api_key_create(tenant=globex, name="shop", actor=Actor.for_system(globex, "test"))

    assert credential_authenticate(acme_secret).tenant == acme
    assert credential_authenticate(globex_secret).tenant == globex


def test_last_used_is_recorded_without_a_write_per_request(make_tenant):
    tenant = make_tenant()
    key, secret = api_key_create(tenant=tenant, name="shop", actor=Actor.for_system(tenant, "test"))

    credential_authenticate(secret)
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    credential_authenticate(secret)

    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first


def test_changing_the_pepper_invalidates_stored_digests(make_tenant, make_person):
    tenant = make_tenant()
    person = make_person(tenant, Role.CEO, "ngozi")
    _, secret = personal_token_create(user=person, tenant=tenant, name="cli", actor=Actor(tenant=tenant, user=person))

    with override_settings(CREDENTIAL_PEPPER="another-pepper"), pytest.raises(NotAuthenticated):
        credential_authenticate(secret)
    assert PersonalToken.objects.count() == 1
