"""The API of a case's conversation and amendments (CONTRACT.md section 5, "Conversation and amendments")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trustguard.api.serializers import StrictSerializer
from trustguard.errors import ValidationFailed

from .amendments import AMENDABLE_FIELDS, MAX_JUSTIFICATION, escalation_amend
from .api import actor_of, escalation_response, validated
from .comments import MAX_COMMENT_LENGTH, CommentView, awaiting_requester, case_for_conversation, comment_post, comments_of
from .serializers import EscalationCreateInput, EscalationOutput, iso

TAG = "Conversation and amendments"


class CommentInput(StrictSerializer):
    body = serializers.CharField(max_length=MAX_COMMENT_LENGTH, help_text="The text; @username tells that person.")
    question = serializers.BooleanField(required=False, default=False,
                                        help_text="Approvers: a question to the requester (the case then awaits "
                                                  "the requester until they write again).")
    replaces = serializers.UUIDField(required=False, help_text="An edit: the id of your own comment this replaces.")


class CommentOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    author = serializers.CharField(help_text="Username, or api_key:<name>, or requester:<masked email> for a requester "
                                               "known only by email who answered through their status link "
                                               "(\"requester\" once their data was erased).")
    body = serializers.CharField(allow_null=True, help_text="null once the personal data was erased.")
    created_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=[("comment", "comment"), ("question", "question")])
    by_requester = serializers.BooleanField()
    mentions = serializers.ListField(child=serializers.CharField())
    replaces = serializers.UUIDField(allow_null=True)
    replaced_by = serializers.UUIDField(allow_null=True, help_text="Set when a newer version exists (edited).")


class CommentListOutput(serializers.Serializer[Any]):
    awaiting_requester = serializers.BooleanField()
    results = CommentOutput(many=True)


def comment_dict(view: CommentView) -> dict[str, Any]:
    c = view.comment
    return {"id": str(c.pk), "author": view.author, "body": view.body, "created_at": iso(c.created_at),
            "kind": c.kind, "by_requester": c.by_requester, "mentions": view.mentions,
            "replaces": str(c.replaces_id) if c.replaces_id else None, "replaced_by": view.replaced_by}


class CommentsView(APIView):
    @extend_schema(tags=[TAG], operation_id="escalations_comments_list", responses={200: CommentListOutput},
                   summary="The case's conversation, oldest first (every version of edited comments)")
    def get(self, request: Request, escalation_id: str) -> Response:
        case = case_for_conversation(actor_of(request), escalation_id)
        views = comments_of(case)
        return Response({"awaiting_requester": awaiting_requester(case, views),
                         "results": [comment_dict(v) for v in views]})

    @extend_schema(tags=[TAG], operation_id="escalations_comments_create", request=CommentInput,
                   responses={201: CommentOutput}, summary="Comment, ask the requester, or answer",
                   description="People who may see the case and its requester (the key or the person) may post. "
                               "Comments are immutable: `replaces` makes an edit a new version. Event "
                               "`escalation.commented` (without the body).",
                   examples=[OpenApiExample("Question", request_only=True,
                                            value={"body": "Which bank statement backs this?", "question": True})])
    def post(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        data = validated(CommentInput, request)
        comment = comment_post(actor=actor, escalation=escalation_id, body=data["body"],
                               question=data.get("question", False),
                               replaces=str(data["replaces"]) if data.get("replaces") else None)
        view = next(v for v in comments_of(comment.escalation) if v.comment.pk == comment.pk)
        return Response(comment_dict(view), status=status.HTTP_201_CREATED)


def _amendment_input() -> type[StrictSerializer]:
    """The amendment's body: each of AMENDABLE_FIELDS exactly as POST /escalations takes it (optional here), plus the
    justification. A field added to AMENDABLE_FIELDS is accepted here with no other change."""
    attrs: dict[str, Any] = {}
    for name in AMENDABLE_FIELDS:
        # Rebuilt from its own arguments (DRF copies fields that way), optional here.
        field: Any = EscalationCreateInput._declared_fields[name]
        attrs[name] = type(field)(*field._args, **{**field._kwargs, "required": False})
    attrs["justification"] = serializers.CharField(max_length=MAX_JUSTIFICATION, allow_blank=True,
                                                   help_text="Why the request changes (required, not blank).")
    return type("AmendmentInput", (StrictSerializer,), attrs)


AmendmentInput = _amendment_input()


class AmendmentView(APIView):
    @extend_schema(
        tags=[TAG], operation_id="escalations_amend", request=AmendmentInput, responses={201: EscalationOutput},
        summary="Amend an open case (the requester only; requires Idempotency-Key)",
        description="Pending, acknowledged or deferred cases only (409 otherwise). Approvals given before stay in "
                    "`decisions` with `dismissed: true`; the route starts again at its first stage, re-evaluated from the "
                    "amended request (risk level, the route's conditions; cost and window checked as on creation) "
                    "under the policy version the case started with (unless the policy has "
                    "`amendments_take_current_version`); one-time codes issued for the old content stop working. "
                    "Event `escalation.amended`.",
        examples=[OpenApiExample("A larger amount", request_only=True, value={
            "amount": {"value_minor": 300000000, "currency": "NGN"}, "risk_level": "high",
            "justification": "The supplier's final invoice is higher."})])
    def post(self, request: Request, escalation_id: str) -> Response:
        actor = actor_of(request)
        if not request.headers.get("Idempotency-Key"):
            raise ValidationFailed("POST .../amendments requires an Idempotency-Key header",
                                   errors={"Idempotency-Key": ["This header is required."]})
        data = validated(AmendmentInput, request)
        justification = data.pop("justification", "")
        escalation = escalation_amend(actor=actor, escalation=escalation_id, changes=data, justification=justification)
        return escalation_response(actor, escalation.pk, code=status.HTTP_201_CREATED)
