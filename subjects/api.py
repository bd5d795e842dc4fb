"""GET /subjects/export (JSON), GET /subjects/export.pdf and POST /subjects/erase: privacy.manage only.

An unknown subject (or another tenant's: lookups never leave the caller's tenant) gives the same empty result,
never a 404, so the answer tells nothing about who exists elsewhere.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.actors import Actor
from trustguard.errors import Conflict, ValidationFailed

from .pdf import subject_export_pdf
from .services import subject_erase, subject_export, subject_query

TAG = "privacy"
_PARAMS = [
    OpenApiParameter("email", str, description="The subject's email (matched case-insensitively, by blind index)."),
    OpenApiParameter("phone", str, description="The subject's phone number (any format; matched in E.164)."),
    OpenApiParameter("entity_id", str, description="A source entity id of the subject's cases (e.g. a customer id)."),
]


class SubjectInput(serializers.Serializer[Any]):
    # Lengths are of what was sent, as the schema's maxLength says (DRF would trim first, and Python's strip() also
    # takes control characters such as \x1d); subject_query strips.
    email = serializers.CharField(required=False, allow_blank=True, max_length=254, trim_whitespace=False)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=64, trim_whitespace=False)
    entity_id = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=False)


def _query(data: Any) -> Any:
    if hasattr(data, "lists"):  # a query string: one value per name (?phone=a&phone=b names nobody)
        repeated = {name: ["Give it once."] for name, values in data.lists() if len(values) > 1}
        if repeated:
            raise ValidationFailed("a query parameter is repeated: " + ", ".join(sorted(repeated)), errors=repeated)
    serializer = SubjectInput(data=data)
    serializer.is_valid(raise_exception=True)
    return subject_query(**serializer.validated_data)


class SubjectExportView(APIView):
    @extend_schema(tags=[TAG], operation_id="subjects_export", parameters=_PARAMS,
                   responses={200: OpenApiTypes.OBJECT},
                   summary="Everything held about a data subject, as one JSON document (privacy.manage; audited)",
                   description="Exactly one of email, phone, entity_id. An unknown subject gives empty lists.")
    def get(self, request: Request) -> Response:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        return Response(subject_export(actor=actor, query=_query(request.query_params)))


class SubjectExportPdfView(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)  # errors stay problem+json

    @extend_schema(tags=[TAG], operation_id="subjects_export_pdf", parameters=_PARAMS,
                   responses={(200, "application/pdf"): OpenApiTypes.BINARY},
                   summary="The subject export as a human-readable PDF (privacy.manage; audited)")
    def get(self, request: Request) -> HttpResponse:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        document = subject_export(actor=actor, query=_query(request.query_params))
        response = HttpResponse(subject_export_pdf(document), content_type="application/pdf")
        response["Content-Disposition"] = 'attachment; filename="subject-export.pdf"'
        return response


_ERASE_RESULT = inline_serializer("SubjectErasure", {
    "status": serializers.ChoiceField(choices=["erased", "nothing"]),
    "subjects": serializers.ListField(child=serializers.CharField()),
    "escalations": serializers.ListField(child=serializers.CharField()),
    "legal_holds": serializers.ListField(child=serializers.DictField()),
    "pseudonymised": serializers.ListField(child=serializers.CharField()),
    "messages_redacted": serializers.IntegerField(),
})


class SubjectEraseView(APIView):
    @extend_schema(
        tags=[TAG], operation_id="subjects_erase", request=SubjectInput,
        responses={200: _ERASE_RESULT, 409: OpenApiResponse(description="Refused: a legal hold (AML record keeping) "
                                                                        "stands; `legal_holds` names the cases.")},
        summary="Erase a data subject by crypto-shredding their data key (privacy.manage; audited)",
        description="Exactly one of email, phone, entity_id. The subject's personal fields become unreadable "
                    "everywhere they are stored; the audit chain still verifies. Cases under an AML retention "
                    "hold refuse the erasure (409) or are pseudonymised, per the tenant's privacy settings.")
    def post(self, request: Request) -> Response:
        actor: Actor = request.user  # type: ignore[assignment]  # the API's authenticators make request.user an Actor
        result = subject_erase(actor=actor, query=_query(request.data if isinstance(request.data, dict) else {}))
        if result.status == "refused":
            holds = [h.as_dict() for h in result.held]
            raise Conflict(f"erasure refused: {len(holds)} case(s) are records the tenant must keep "
                           f"({holds[0]['reason']}); nothing was erased", slug="legal-hold",
                           extra={"legal_holds": holds})
        return Response(result.as_dict())
