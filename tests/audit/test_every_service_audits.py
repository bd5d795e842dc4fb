"""Every state-changing service writes its audit event: an enumeration that new services must join.

1. Discovery: every public function of every `<app>.services` module (or package) and of the
   service modules named in EXTRA_SERVICE_MODULES must be classified here, either as AUDITED
   (with a scenario that runs it and the actions it must record) or as EXEMPT (with the reason).
   A new service that nobody classified fails `test_every_service_function_is_classified`.
2. Each scenario runs the service against a real database, must record its expected actions, and
   must leave every chain verifiable (batch writers such as the sweeps' COPY path included).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts import services as accounts_services
from accounts.actors import Actor
from accounts.models import ApiKey, Membership, User
from audit.actions import AuditAction
from audit.alerts import chain_break_alert
from audit.models import AuditEvent
from audit.retention import retention_apply
from audit.verification import ChainReport, all_chain_keys, verify_chains
from escalations.amendments import escalation_amend
from escalations.comments import comment_answer_by_emailed_requester, comment_post
from escalations.demo import seed_demo
from escalations.obligation_actions import condition_add_evidence, condition_resolve
from escalations.policies import policy_upsert
from escalations.services import (
    SourceRef,
    escalation_acknowledge,
    escalation_cancel,
    escalation_create,
    escalation_decide,
    escalation_record_execution,
)
from escalations.standard_changes import template_upsert
from escalations.sweeps import sweep_deadlines
from notifications.deliveries.replay import delivery_replay
from notifications.deliveries.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
)
from notifications.models import Delivery, DeliveryStatus, OutboxEvent
from notifications.push import subscriptions as push_subscriptions
from privacy.models import Subject
from reports import services as report_services
from reports.exports import ExportFilters
from subjects import services as subjects_services
from subjects.services import subject_query
from tests.conftest import totp_code
from trustguard.errors import DomainError

# Service modules not called services.py.
EXTRA_SERVICE_MODULES = ["accounts.stepup", "escalations.creation", "escalations.policies", "escalations.sweeps",
                         "escalations.changes",
                         "escalations.ladder", "escalations.obligations", "escalations.obligation_actions",
                         "escalations.standard_changes",
                         "audit.retention",
                         "escalations.ladder", "escalations.amendments", "escalations.comments", "audit.retention",
                         "audit.alerts", "notifications.outbox.emit", "notifications.relay",
                         "notifications.deliveries.queue", "notifications.deliveries.attempts",
                         "notifications.deliveries.replay", "notifications.deliveries.webhooks", "notifications.messages",
                         "notifications.inbox", "notifications.push.subscriptions"]
ORDER = SourceRef(system="shop", entity_type="order", entity_id="ORD-42")


@dataclass
class World:
    demo: dict
    vendor: Actor
    actor: Callable[[str], Actor]

    def person(self, username: str) -> User:
        return User.objects.get(username=username)

    @property
    def tenant(self):
        return self.demo["tenant_obj"]

    def case(self, type: str = "SMR"):
        return escalation_create(actor=self.vendor, type=type, reason="Odd pattern", source=ORDER)


def _swallow(func: Callable[[], Any]) -> None:
    """Refused actions (a wrong code) still have to leave their audit event behind."""
    with contextlib.suppress(DomainError):
        func()


def _decide(w: World, username: str = "co", otp: str | None = None, **kwargs: Any):
    return escalation_decide(actor=w.actor(username), escalation=kwargs.pop("case", None) or w.case(),
                             decision="approve", justification="Checked", otp=otp or totp_code(w.person(username)),
                             **kwargs)


def _outsider_answers(w: World) -> None:
    """A requester outside the tenant answers a question through their status link (no account, no key)."""
    case = escalation_create(actor=w.vendor, type="SMR", reason="Odd pattern", source=ORDER,
                             requested_by="buyer@shop.example")
    comment_post(actor=w.actor("co"), escalation=case, body="Which account?", question=True)
    comment_answer_by_emailed_requester(escalation_id=str(case.pk), email="buyer@shop.example", body="The savings one.")


def _replay(w: World) -> None:
    code = totp_code(w.person("co"))
    _decide(w, otp=code)
    _swallow(lambda: _decide(w, otp=code))


def _lock_out(w: World) -> None:
    case = w.case()
    for _ in range(settings.OTP_MAX_FAILURES):
        _swallow(lambda: _decide(w, otp="000000", case=case))


def _otp_failures(w: World) -> None:
    _swallow(lambda: _decide(w, otp="000000"))
    _replay(w)
    _lock_out(w)


def _deadlines(w: World) -> None:
    now = timezone.now()
    w.case()  # nobody acknowledges it: up the ladder, then expired
    escalation_decide(actor=w.actor("co"), escalation=w.case(), decision="defer", justification="Need statements",
                      otp=totp_code(w.person("co")), defer_until=now + timedelta(hours=1))
    sweep_deadlines(now=now + timedelta(hours=5))
    sweep_deadlines(now=now + timedelta(days=30))


def _decided_too_late(w: World) -> None:
    case = w.case()
    with time_machine.travel(case.expires_at + timedelta(seconds=1), tick=False):
        _swallow(lambda: _decide(w, case=case, otp="000000"))  # 409: the deadline passed; the case is expired


def _push_browser(w: World):
    """The CEO enables push on a browser (a real P-256 key; the endpoint is never contacted here)."""
    from tests.notifications.push_standin import BrowserSubscription

    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        return push_subscriptions.push_subscription_add(
            user_id=w.person("ceo").pk, tenant_id=w.tenant.pk, actor=w.actor("ceo"),
            subscription=BrowserSubscription(endpoint="https://127.0.0.1:9/push/1").as_json())
def _push_browser_renewed(w: World):
    """The CEO's browser renews its subscription (its service worker's pushsubscriptionchange)."""
    from tests.notifications.push_standin import BrowserSubscription

    old = _push_browser(w)
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
        return push_subscriptions.push_subscription_renew(
            old_endpoint=push_subscriptions.subscription_info(old).endpoint,
            subscription=BrowserSubscription(endpoint="https://127.0.0.1:9/push/2").as_json())


def _approval_lapsed(w: World) -> None:
    policy_upsert(tenant=w.tenant, type="SMR", fields={"approval_ttl_seconds": 3600}, actor=w.actor("ops"))
    case = _decide(w)
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        _swallow(lambda: escalation_record_execution(actor=w.vendor, escalation=case, result={}))  # 409: lapsed


def _conditioned(w: World):
    case = _decide(w, conditions=["Send the filing receipt"])
    return case, case.conditions[0]["id"]


def _evidence(w: World) -> None:
    case, cid = _conditioned(w)
    condition_add_evidence(actor=w.vendor, escalation=case, condition_id=cid, url="https://files.example/receipt")


def _resolved(w: World, status: str) -> None:
    case, cid = _conditioned(w)
    condition_resolve(actor=w.actor("co2"), escalation=case, condition_id=cid, status=status, justification="Seen")


def _template(w: World) -> None:
    template_upsert(actor=w.actor("ops"), slug="smr-standard", fields={"name": "Standard SMR", "type": "SMR"})


def _webhook(w: World):
    with override_settings(WEBHOOK_ALLOW_PRIVATE=True):  # the endpoint never gets a delivery here
        endpoint, _ = webhook_endpoint_create(
            tenant_id=w.tenant.pk, actor=w.actor("ops"), url="https://127.0.0.1:9/hook")
    return endpoint


def _dead_letter_replayed(w: World) -> None:
    now = timezone.now()
    case = w.case()
    event = OutboxEvent.objects.filter(aggregate_id=str(case.pk)).latest("id")
    dead = Delivery.objects.create(tenant=w.tenant, kind=Delivery.Kind.WEBHOOK, endpoint=_webhook(w), event=event,
                                   status=DeliveryStatus.DEAD, next_attempt_at=now, dead_at=now, attempts=8)
    delivery_replay(delivery_id=dead.pk, actor=w.actor("ops"))


def _export_run_and_downloaded(w: World) -> None:
    w.case()
    with tempfile.TemporaryDirectory() as folder, override_settings(EXPORT_DIR=folder):
        job = report_services.export_job_create(actor=w.actor("ops"), dataset="audit", fmt="csv",
                                                filters=ExportFilters())
        report_services.export_job_run(job_id=job.pk)
        report_services.export_job_file_open(actor=w.actor("ops"), job_id=job.pk)


def _new_user(w: World) -> User:
    return User.objects.create_user(username="newbie", email="newbie@demo.example", password="x" * 12)


def _retention(w: World) -> None:
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=9 * 365)):
        seed_demo("old")
    retention_apply(now=now)


# qualified name -> (scenario, actions it must record)
def _hold_ended(w: World) -> None:
    Subject.objects.create(tenant=w.tenant, wrapped_key="x", held_until=timezone.now() - timedelta(days=1))
    subjects_services.subject_holds_sweep(actor=w.actor("ops"))


AUDITED: dict[str, tuple[Callable[[World], Any], set[str]]] = {
    "accounts.services.tenant_create": (
        lambda w: accounts_services.tenant_create(slug="acme", name="Acme"), {"tenant.created"}),
    "accounts.services.capability_grant": (
        lambda w: accounts_services.capability_grant(tenant=w.tenant, role="client_facing", capability="audit.view",
                                                     actor=w.actor("ops")), {"capability.granted"}),
    "accounts.services.capability_revoke": (
        lambda w: accounts_services.capability_revoke(tenant=w.tenant, role="ceo", capability="audit.view",
                                                      actor=w.actor("ops")), {"capability.revoked"}),
    "accounts.services.custom_role_create": (
        lambda w: accounts_services.custom_role_create(tenant=w.tenant, key="finance_director", label="Finance director",
                                                       capabilities=["escalation.view"], actor=w.actor("ops")),
        {"role.created"}),
    "accounts.services.custom_role_rename": (
        lambda w: accounts_services.custom_role_rename(
            role=accounts_services.custom_role_create(tenant=w.tenant, key="treasurer", label="treasurer", actor=w.actor("ops")),
            label="Treasurer", actor=w.actor("ops")), {"role.created", "role.changed"}),
    "accounts.services.user_preferences_set": (
        lambda w: accounts_services.user_preferences_set(user=w.person("ceo"), language="fr", time_zone="Europe/Paris",
                                                         actor=w.actor("ceo")),
        {"person.language_changed", "person.time_zone_changed"}),
    "accounts.services.membership_add": (
        lambda w: accounts_services.membership_add(tenant=w.tenant, user=_new_user(w), role="ceo", actor=w.actor("ops")),
        {"membership.added"}),
    "accounts.services.membership_deactivate": (
        lambda w: accounts_services.membership_deactivate(
            membership=Membership.objects.get(user__username="co2"), actor=w.actor("ops")), {"membership.deactivated"}),
    "accounts.services.api_key_create": (
        lambda w: accounts_services.api_key_create(tenant=w.tenant, name="erp", actor=w.actor("ops")),
        {"credential.created"}),
    "accounts.services.personal_token_create": (
        lambda w: accounts_services.personal_token_create(user=w.person("co"), tenant=w.tenant, name="cli",
                                                          actor=w.actor("co")), {"credential.created"}),
    "accounts.services.credential_revoke": (
        lambda w: accounts_services.credential_revoke(credential=ApiKey.objects.get(name="vendor", tenant=w.tenant),
                                                      actor=w.actor("ops")), {"credential.revoked"}),
    "accounts.services.credential_restore": (
        lambda w: accounts_services.credential_restore(
            credential=accounts_services.credential_revoke(credential=ApiKey.objects.get(name="vendor", tenant=w.tenant),
                                                           actor=w.actor("ops")), actor=w.actor("ops")),
        {"credential.revoked", "credential.restored"}),
    "accounts.stepup.stepup_verify": (
        lambda w: _otp_failures(w),
        {"otp.failed", "otp.replay_refused", "otp.locked_out"}),
    "escalations.creation.escalation_create": (lambda w: w.case(), {"escalation.created"}),
    "escalations.services.escalation_acknowledge": (
        lambda w: escalation_acknowledge(actor=w.actor("co"), escalation=w.case()), {"escalation.acknowledged"}),
    "escalations.services.escalation_decide": (lambda w: _decide(w), {"decision.recorded"}),
    "escalations.amendments.escalation_amend": (
        lambda w: escalation_amend(actor=w.vendor, escalation=w.case(), changes={"reason": "Odder"},
                                   justification="Clearer"), {"escalation.amended"}),
    "escalations.comments.comment_post": (
        lambda w: comment_post(actor=w.actor("co"), escalation=w.case(), body="Which account?", question=True),
        {"escalation.commented"}),
    "escalations.comments.comment_answer_by_emailed_requester": (
        lambda w: _outsider_answers(w), {"escalation.commented"}),
    "escalations.services.escalation_cancel": (
        lambda w: escalation_cancel(actor=w.vendor, escalation=w.case()), {"escalation.cancelled"}),
    "escalations.services.escalation_record_execution": (
        lambda w: escalation_record_execution(actor=w.vendor, escalation=_decide(w), result={"done": True}),
        {"escalation.executed"}),
    "escalations.policies.policy_upsert": (
        lambda w: policy_upsert(tenant=w.tenant, type="SMR", fields={"expiry_seconds": 7200}, actor=w.actor("ops")),
        {"policy.changed"}),
    "escalations.sweeps.sweep_deadlines": (
        _deadlines, {"escalation.resumed", "escalation.escalated", "escalation.expired"}),
    "escalations.sweeps.deadlines_apply_one": (_decided_too_late, {"escalation.expired"}),
    "escalations.services.deadline_passed": (_decided_too_late, {"escalation.expired"}),
    "escalations.services.approval_lapsed": (_approval_lapsed, {"escalation.approval_lapsed"}),
    "escalations.obligation_actions.condition_add_evidence": (_evidence, {"condition.evidence_added"}),
    "escalations.obligation_actions.condition_resolve": (lambda w: _resolved(w, "waived"), {"condition.waived"}),
    "escalations.standard_changes.template_upsert": (_template, {"template.changed"}),
    "notifications.deliveries.webhooks.webhook_endpoint_create": (_webhook, {"webhook.created"}),
    "notifications.deliveries.webhooks.webhook_endpoint_rotate_secret": (
        lambda w: webhook_endpoint_rotate_secret(
            tenant_id=w.tenant.pk, actor=w.actor("ops"), endpoint_id=_webhook(w).pk), {"webhook.secret_rotated"}),
    "notifications.deliveries.webhooks.webhook_endpoint_delete": (
        lambda w: webhook_endpoint_delete(
            tenant_id=w.tenant.pk, actor=w.actor("ops"), endpoint_id=_webhook(w).pk), {"webhook.deleted"}),
    "notifications.deliveries.replay.delivery_replay": (_dead_letter_replayed, {"delivery.replayed"}),
    "notifications.push.subscriptions.push_subscription_add": (_push_browser, {"push_subscription.added"}),
    "notifications.push.subscriptions.push_subscription_remove": (
        lambda w: push_subscriptions.push_subscription_remove(
            user_id=w.person("ceo").pk, tenant_id=w.tenant.pk, actor=w.actor("ceo"),
            subscription_id=_push_browser(w).pk), {"push_subscription.removed"}),
    "notifications.push.subscriptions.push_subscription_renew": (_push_browser_renewed, {"push_subscription.renewed"}),
    "notifications.push.subscriptions.push_subscription_expired": (
        lambda w: push_subscriptions.push_subscription_expired(
            subscription_id=_push_browser(w).pk, tenant_id=w.tenant.pk, status_code=410), {"push_subscription.removed"}),
    "reports.services.export_download_record": (
        lambda w: report_services.export_download_record(actor=w.actor("ops"), dataset="audit", fmt="csv",
                                                         filters=ExportFilters()), {"export.downloaded"}),
    "reports.services.export_job_create": (_export_run_and_downloaded, {"export.requested"}),
    "reports.services.export_job_run": (_export_run_and_downloaded, {"export.completed"}),
    "reports.services.export_job_file_open": (_export_run_and_downloaded, {"export.downloaded"}),
    "reports.services.escalation_report_record": (
        lambda w: report_services.escalation_report_record(actor=w.actor("ops"), escalation_id=w.case().pk),
        {"escalation.report_generated"}),
    "subjects.services.subject_export": (
        lambda w: subjects_services.subject_export(actor=w.actor("co"), query=subject_query(email="a@example.com")),
        {"privacy.subject_exported"}),
    "subjects.services.subject_erase": (
        lambda w: subjects_services.subject_erase(actor=w.actor("co"), query=subject_query(email="a@example.com")),
        {"privacy.subject_erase_nothing"}),
    "subjects.services.values_reveal": (
        lambda w: subjects_services.values_reveal(actor=w.actor("co"), escalation=escalation_create(
            actor=w.vendor, type="SMR", reason="Odd pattern", source=ORDER, contact={"email": "a@example.com"})),
        {"privacy.values_revealed"}),
    "subjects.services.subject_holds_sweep": (_hold_ended, {"privacy.hold_ended_erased"}),
    "audit.retention.retention_apply": (_retention, {"audit.pruned"}),
    "audit.alerts.chain_break_alert": (
        lambda w: chain_break_alert(reports=[ChainReport("tenant:0", 1, False, "test", 1, 1)], job="test"),
        {"audit.chain_broken"}),
}

# qualified name -> why it needs no audit event of its own
EXEMPT: dict[str, str] = {
    "subjects.services.subject_holds_sweep_all": "calls subject_holds_sweep per tenant, which audits each erasure",
    "accounts.services.secret_digest": "pure function",
    "accounts.services.tenant_role_group": "creates a tenant's role groups inside tenant_create / membership_add",
    "accounts.services.credential_authenticate": "a read; only touches last_used_at (excluded from history too)",
    "accounts.stepup.lockout_remaining": "pure function",
    "accounts.stepup.challenge_code_digest": "pure function",
    "accounts.stepup.challenge_create": "stores a code for the OTP challenge service (POST /otp/challenge), "
                                            "which audits otp.challenge_sent",
    "accounts.stepup.challenge_consume": "marks a code used inside escalation_decide, audited there",
    "approvals.services.approval_request_create": "engine step inside escalation_create, audited there",
    "approvals.services.approval_decide": "engine step inside escalation_decide, audited there",
    "approvals.services.approval_lock": "a lock (SELECT ... FOR UPDATE), writes nothing",
    "approvals.services.approval_close": "engine step inside escalation_cancel (and sweeps), audited there",
    "approvals.services.approval_close_many": "engine step inside sweep_deadlines (expiry), audited there",
    "approvals.services.approval_stages_reassign": "engine step inside sweep_deadlines (re-escalation), audited there",
    "approvals.services.approval_check_decider": "a check, writes nothing",
    "approvals.services.deciding_role_of": "a check (in what a person decides at a stage), writes nothing",
    "approvals.services.validate_decision_input": "a check, writes nothing",
    "approvals.services.is_requester": "a check, writes nothing",
    "approvals.services.current_stage": "a read",
    "approvals.services.approval_already_counted": "a check (the one-vote rule), writes nothing",
    "approvals.services.approval_restart": "engine step inside escalation_amend, audited there",
    "approvals.services.is_dismissed": "a check, writes nothing",
    "approvals.services.is_dismissed_in": "a check, writes nothing",
    "approvals.services.dismissed_sql": "a query expression, writes nothing",
    "escalations.amendments.amendable_values": "a read",
    "escalations.amendments.amendment_policy": "a read",
    "escalations.amendments.amendments_of": "a read",
    "escalations.comments.mentioned_usernames": "parses text, writes nothing",
    "escalations.comments.is_case_requester": "a check, writes nothing",
    "escalations.comments.emailed_requester": "a check, writes nothing",
    "escalations.comments.requester_author": "formats a masked name, writes nothing",
    "escalations.comments.case_for_conversation": "a read",
    "escalations.comments.awaiting_requester": "a read",
    "escalations.comments.comments_of": "a read",
    "audit.services.audit_record": "is the audit trail",
    "audit.services.audit_record_many": "is the audit trail (audit_record is it with one event)",
    "audit.services.chain_key_for": "pure function",
    "audit.services.lock_chain_head": "a lock taken by the sealer, retention and AUDIT_SEAL_INLINE writes",
    "audit.services.chains_seal_unkeyed": "is the audit trail (appends audit.chain_keyed to chains an older release "
                                          "left unkeyed; tests/audit/test_keyed_chain.py)",
    "audit.services.chains_seal_unkeyed_after_migrate": "post_migrate handler of chains_seal_unkeyed",
    "audit.retention.register_retention_period": "start-up registration, no data",
    "audit.retention.register_retention_hold": "start-up registration, no data",
    "audit.retention.default_retention_days": "a setting",
    "audit.retention.keep_from": "a read",
    "notifications.outbox.emit.event_emit": "the outbox rows of audited changes, written in their transaction",
    "notifications.outbox.emit.kick_relay": "queues a Celery task, no data",
    "notifications.outbox.emit.kick_taken": "clears a flag in Redis, no data",
    "notifications.deliveries.queue.kick_deliveries": "queues Celery tasks, no data",
    "reports.services.export_jobs_kick_queued": "queues Celery tasks again for audited export jobs (kicked_at only)",
    "notifications.relay.outbox_relay": "delivery machinery: fans audited changes' outbox rows out to deliveries",
    "notifications.relay.outbox_relay_step": "delivery machinery (outbox_relay for the relay task)",
    "notifications.deliveries.attempts.delivery_attempt": "delivery machinery; the Delivery row (attempts, errors, dead "
                                               "letter) is its own record",
    "notifications.deliveries.attempts.deliveries_deliver_due": "delivery machinery (calls delivery_attempt)",
    "notifications.deliveries.attempts.deliveries_attempt": "delivery machinery (calls delivery_attempt)",
    "notifications.messages.message_send": "delivery machinery: queues a message for an audited action "
                                           "(e.g. otp_challenge_send audits otp.challenge_sent)",
    "notifications.inbox.notification_mark_read": "a person's own inbox state",
    "notifications.inbox.notifications_mark_all_read": "a person's own inbox state",
    "notifications.inbox.channel_preference_set": "a person's own notification opt-out (inbox settings), "
                                                     "not tenant configuration",
    "notifications.messages.render_message": "pure function",
    "notifications.push.subscriptions.parse_subscription": "pure function (validation)",
    "notifications.push.subscriptions.endpoint_digest": "pure function",
    "notifications.push.subscriptions.push_service_of": "pure function",
    "notifications.push.subscriptions.device_label": "pure function",
    "notifications.push.subscriptions.subscription_info": "a read (decrypts one stored subscription)",
    "notifications.push.subscriptions.push_subscriptions_of": "a read",
    "notifications.push.subscriptions.push_subscription_registered": "a read",
    "notifications.deliveries.attempts.backoff_seconds": "pure function",
    "notifications.deliveries.attempts.breaker_target": "pure function",
    "notifications.deliveries.webhooks.new_webhook_secret": "pure function",
    "notifications.deliveries.webhooks.endpoint_signing_secrets": "a read (decrypts)",
    "notifications.deliveries.queue.aggregate_key": "pure function",
    "notifications.deliveries.queue.address_key": "pure function",
    "notifications.messages.dispatch_messages": "delivery machinery: the relay's messages for audited changes' events",
    "notifications.inbox.inbox_items_done": "delivery machinery: the relay marks inbox items of closed cases done",
    "reports.services.require_capability": "a check",
    "subjects.services.subject_query": "pure function (validates the identifier)",
    "subjects.services.holds_on": "a read (which cases are under a legal hold)",
    "reports.services.export_job_get": "a read",
    "reports.services.export_file_path": "pure function",
    "reports.services.export_jobs_purge": "housekeeping: removes expired export files and their job rows "
                                          "(the exports' audit events stay)",
    "escalations.ladder.ladder_of": "pure function",
    "escalations.ladder.max_level_of": "pure function",
    "escalations.ladder.next_ladder_step": "a read",
    "escalations.services.content_hash": "pure function",
    "escalations.obligations.parse_specs": "pure function",
    "escalations.obligation_actions.is_approver": "a check, writes nothing",
    "escalations.obligations.iso_z": "pure function",
    "escalations.obligations.default_owner": "pure function",
    "escalations.obligations.conditions_add": "in-memory helper of escalation_decide (audited)",
    "escalations.obligations.normalized": "pure function",
    "escalations.obligations.refresh_conditions_due": "in-memory helper of audited services",
    "escalations.obligations.unmet": "pure function",
    "escalations.obligations.conditions_check": "a check inside escalation_record_execution, writes nothing",
    "escalations.obligations.mark_overdue": "in-memory helper of the sweep (audited: condition.overdue)",
    "escalations.standard_changes.template_get": "a read",
    "escalations.standard_changes.template_validate": "a check, writes nothing",
    "escalations.standard_changes.template_apply": "a read inside escalation_create (audited)",
    "escalations.standard_changes.within_limits": "pure function",
    "escalations.standard_changes.template_record": "pure function",
    "escalations.standard_changes.template_dict": "pure function",
    "escalations.services.stepup_subject": "pure function",
    "escalations.changes.refresh_next_deadline": "in-memory helper of audited services",
    "escalations.changes.audit_state": "pure function",
    "escalations.changes.event_data": "pure function",
    "escalations.changes.record_change": "writes the audit and outbox events of the lifecycle services",
    "escalations.services.lock_escalation": "a locking read",
    "escalations.changes.sync_from_approval": "in-memory helper of audited services",
    "escalations.changes.ack_window": "pure function",
    "escalations.changes.open_for_acknowledgement": "in-memory helper of audited services",
    "escalations.changes.end_deferral": "in-memory helper of audited services",
    "escalations.changes.resume_deferred": "in-memory helper of audited services and the sweep",
    "escalations.changes.close": "in-memory helper of audited services",
    "escalations.services.deferral_check": "a check inside escalation_decide (a refused deferral writes nothing)",
    "escalations.creation.escalation_check": "a dry run, creates nothing",
    "escalations.services.is_requester": "a check, writes nothing",
    "escalations.policies.normalize_route": "pure function",
    "escalations.policies.normalize_approvals_by_risk": "pure function",
    "escalations.policies.policy_snapshot": "pure function",
    "escalations.policies.expiry_outcome": "pure function",
    "escalations.policies.policy_for": "a read",
    "escalations.policies.match_trigger": "a read",
    "escalations.policies.tenant_rules": "a read (cached per process by the tenant's configuration generation)",
    "escalations.policies.validate_policy_fields": "a check, writes nothing",
    "notifications.messages.message_templates_changed": "forgets a cache entry (the admin audits the template's change)",
}


def _service_modules() -> list[str]:
    names = list(EXTRA_SERVICE_MODULES)
    for config in apps.get_app_configs():
        if not config.path.startswith(str(settings.BASE_DIR)):
            continue  # third-party apps
        try:
            module = importlib.import_module(f"{config.name}.services")
        except ModuleNotFoundError:
            continue
        names.append(module.__name__)
        if hasattr(module, "__path__"):  # a services package
            names += [f"{module.__name__}.{m.name}" for m in pkgutil.iter_modules(module.__path__)]
    return sorted(set(names))


def discovered_services() -> set[str]:
    found = set()
    for name in _service_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == name and not attr.startswith("_"):
                found.add(f"{name}.{attr}")
    return found


def test_every_service_function_is_classified():
    found = discovered_services()

    unclassified = sorted(found - AUDITED.keys() - EXEMPT.keys())
    assert unclassified == [], (
        "new service functions: add each to AUDITED (a scenario and the actions it records) or to EXEMPT "
        f"(why it needs no audit event) in {__file__}: {unclassified}")
    assert not AUDITED.keys() & EXEMPT.keys()
    stale = sorted((AUDITED.keys() | EXEMPT.keys()) - found)
    assert stale == [], f"classified but gone (renamed?): {stale}"


@pytest.mark.django_db
@pytest.mark.parametrize("service", sorted(AUDITED))
def test_a_state_changing_service_writes_its_audit_event(service, demo, vendor, demo_actor):
    scenario, expected = AUDITED[service]
    world = World(demo=demo, vendor=vendor, actor=demo_actor)
    last_id = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    with transaction.atomic():
        scenario(world)

    recorded = set(AuditEvent.objects.filter(id__gt=last_id).values_list("action", flat=True))
    assert expected <= recorded, f"{service} did not record {sorted(expected - recorded)}"
    catalogue = {action.value for action in AuditAction}
    assert recorded <= catalogue, f"{service} wrote actions the catalogue lacks: {sorted(recorded - catalogue)}"
    broken = [r.describe() for r in verify_chains(all_chain_keys()) if not r.ok]
    assert broken == [], f"{service} left a chain that does not verify"
