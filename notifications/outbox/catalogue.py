"""The catalogue of event types: every event the product writes to the outbox, its version and its payload.

One entry per event type and version (a changed payload is a new version, a new entry; the old one stays
while anything may still read it). Nothing outside this module spells an event type: emitters call an
entry (`ESCALATION_CREATED(tenant_id=..., aggregate_id=..., data=...)` gives the Event the writer takes),
notification routing compares with `entry.type`, webhook subscriptions are checked against
`EVENT_TYPES`. The type strings and payload shapes are the wire format of CONTRACT.md ("Events") and
docs/WEBHOOKS.md: change them only with a new version.

(No `from __future__ import annotations` here: on Python 3.11 a TypedDict would then miss NotRequired.)
"""

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, NotRequired, TypedDict, TypeVar


class Event(NamedTuple):
    """One event for the outbox writer (notifications.outbox.emit.event_emit), as an entry builds it."""

    tenant_id: int
    type: str
    aggregate_type: str
    aggregate_id: object
    data: Mapping[str, Any]
    version: int = 1


Payload = TypeVar("Payload", bound=Mapping[str, Any])


@dataclass(frozen=True)
class EventKind(Generic[Payload]):
    """An event type at one version: what its `data` holds (a TypedDict) and what it is about."""

    type: str
    version: int
    aggregate_type: str
    payload: builtins.type[Payload]  # a TypedDict
    description: str

    def __call__(self, *, tenant_id: int, aggregate_id: object, data: Payload) -> Event:
        return Event(tenant_id, self.type, self.aggregate_type, aggregate_id, data, self.version)

    @property
    def required_keys(self) -> frozenset[str]:
        return frozenset(getattr(self.payload, "__required_keys__", ()))

    @property
    def optional_keys(self) -> frozenset[str]:
        return frozenset(getattr(self.payload, "__optional_keys__", ()))

    def payload_problems(self, data: Mapping[str, Any]) -> list[str]:
        """What in `data` does not fit this entry's payload: required keys missing, unknown keys present."""
        required, known = self.required_keys, self.required_keys | self.optional_keys
        return ([f"missing {key}" for key in sorted(required - data.keys())]
                + [f"unknown {key}" for key in sorted(data.keys() - known)])


# --- payloads ------------------------------------------------------------------------------------------

class Money(TypedDict):
    value_minor: int
    currency: str


class Source(TypedDict):
    system: str
    entity_type: str
    entity_id: str
    url: str | None


class EscalationData(TypedDict):
    """The public state of an escalation (escalations.services.event_data): never its payload or contact."""

    id: str
    type: str
    status: str
    source: Source
    amount: Money | None
    risk_level: str
    urgency: str
    assigned_role: str
    escalation_level: int
    current_stage: int
    approvals_required: int
    approvals_received: int
    conditions: list[Any]
    ack_due_at: datetime | None
    expires_at: datetime | None
    defer_until: datetime | None
    decided_at: datetime | None
    estimated_cost: NotRequired[Money | None]
    execution_window: NotRequired[dict[str, str] | None]  # {starts_at, ends_at}
    approval_expires_at: NotRequired[datetime | None]


class DecisionData(TypedDict):
    id: str
    decision: str
    role: str
    stage: int
    decided_by: str
    self_approved: bool
    conditions: list[Any]
    justification: str
    extends_expiry: NotRequired[bool]  # deferrals only
    on_behalf_of: NotRequired[str | None]  # the delegator's username, when a delegate decided (issue 19)


class DecidedData(EscalationData):
    """After a person's decision (escalations.services.escalation_decide)."""

    decision: DecisionData
    stage_completed: bool


class ApprovedData(EscalationData):
    """By the last approval, or at once on creation (auto_approved: the policy needs no approval)."""

    decision: NotRequired[DecisionData]
    stage_completed: NotRequired[bool]
    auto_approved: NotRequired[bool]


class RejectedData(EscalationData):
    """By a person's reject, or by the expiry sweep where the policy rejects on expiry (reason "expired")."""

    decision: NotRequired[DecisionData]
    stage_completed: NotRequired[bool]
    reason: NotRequired[str]


class AcknowledgedData(EscalationData):
    acknowledged_by: str


class CancelledData(EscalationData):
    reason: str


class ExecutedData(EscalationData):
    execution_result: dict[str, Any]
    actual_cost: NotRequired[Money | None]


class ExpiredData(EscalationData):
    reason: str  # "expired" (undecided by expires_at) or "approval_lapsed" (approved, not executed in time)
    expiry_reason: NotRequired[str]  # "undecided" or "approval_lapsed"
    approval_expires_at: NotRequired[datetime | None]


class ConditionData(EscalationData):
    """A condition (obligation) of an approval: met, waived or given evidence (escalations.obligations)."""

    condition: dict[str, Any]


class ConditionOverdueData(EscalationData):
    """Conditions that passed their due date unmet, each raised once (the deadline sweep)."""

    overdue: list[dict[str, Any]]


class ResumedData(EscalationData):
    deferred_until: datetime


class EscalatedData(EscalationData):
    from_role: str
    from_level: int
    to_role: str
    to_level: int
    skipped_roles: list[str]
    overdue_since: datetime | None


class SlaBreachedData(EscalationData):
    reason: str
    overdue_since: datetime | None


class ReminderData(EscalationData):
    level: int  # ack_due_at (the escalation's own key) is when the acknowledgement is due


class UnstaffedData(EscalationData):
    """Only people who are away could act at the current stage, and none has a delegate (escalations.standins)."""

    role: str
    away: list[str]  # usernames of the away members


class DelegationData(TypedDict):
    """An out-of-office period (accounts.delegations): usernames, never emails."""

    id: str
    delegator: str
    delegate: str | None
    starts_at: datetime
    ends_at: datetime
    escalation_types: list[str]
    status: str  # scheduled, active, ended, revoked


# --- the entries -------------------------------------------------------------------------------------------

ESCALATION = "escalation"  # the aggregate every event below is about

ESCALATION_CREATED = EventKind("escalation.created", 1, ESCALATION, EscalationData,
                               "A source system or a person asked for a decision.")
ESCALATION_ACKNOWLEDGED = EventKind("escalation.acknowledged", 1, ESCALATION, AcknowledgedData,
                                    "An approver of the assigned role took it up.")
ESCALATION_APPROVAL_RECORDED = EventKind(
    "escalation.approval_recorded", 1, ESCALATION, DecidedData,
    "A partial approval; with stage_completed, a stage completed and the next one opened.")
ESCALATION_APPROVED = EventKind("escalation.approved", 1, ESCALATION, ApprovedData, "The last approval needed.")
ESCALATION_REJECTED = EventKind("escalation.rejected", 1, ESCALATION, RejectedData,
                                "A reject, or expiry where the policy rejects.")
ESCALATION_DEFERRED = EventKind("escalation.deferred", 1, ESCALATION, DecidedData, "Put off until defer_until.")
ESCALATION_RESUMED = EventKind("escalation.resumed", 1, ESCALATION, ResumedData,
                               "A deferral ran out: pending again at the same stage.")
ESCALATION_ESCALATED = EventKind("escalation.escalated", 1, ESCALATION, EscalatedData,
                                 "Not acknowledged in time: one step up the ladder.")
ESCALATION_SLA_BREACHED = EventKind("escalation.sla_breached", 1, ESCALATION, SlaBreachedData,
                                    "Overdue at the top of the ladder: an alert, waiting for a person.")
ESCALATION_REMINDER = EventKind("escalation.reminder", 1, ESCALATION, ReminderData,
                                "75% of the acknowledgement window has passed.")
ESCALATION_EXPIRED = EventKind("escalation.expired", 1, ESCALATION, ExpiredData,
                               "Past expires_at without a final decision.")
ESCALATION_CONDITION_OVERDUE = EventKind("escalation.condition_overdue", 1, ESCALATION, ConditionOverdueData,
                                         "A condition of an approval passed its due date unmet.")
ESCALATION_CONDITION_MET = EventKind("escalation.condition_met", 1, ESCALATION, ConditionData,
                                     "An approver marked a condition of the approval met.")
ESCALATION_CONDITION_WAIVED = EventKind("escalation.condition_waived", 1, ESCALATION, ConditionData,
                                        "An approver waived a condition of the approval, with a justification.")
ESCALATION_CONDITION_EVIDENCE_ADDED = EventKind("escalation.condition_evidence_added", 1, ESCALATION, ConditionData,
                                                "Evidence (a note, a link) was added to a condition.")
ESCALATION_CANCELLED = EventKind("escalation.cancelled", 1, ESCALATION, CancelledData, "The requester withdrew it.")
ESCALATION_EXECUTED = EventKind("escalation.executed", 1, ESCALATION, ExecutedData,
                                "The requester reported the approved action done.")
ESCALATION_UNSTAFFED = EventKind("escalation.unstaffed", 1, ESCALATION, UnstaffedData,
                                 "Everyone who could act at the current stage is away, with nobody standing in.")

DELEGATION = "delegation"  # the aggregate of the out-of-office events
DELEGATION_CREATED = EventKind("delegation.created", 1, DELEGATION, DelegationData,
                               "Someone set an out-of-office period (with a delegate, or nobody standing in).")
DELEGATION_STARTED = EventKind("delegation.started", 1, DELEGATION, DelegationData,
                               "An out-of-office period began: the delegate now decides on the delegator's behalf.")
DELEGATION_ENDED = EventKind("delegation.ended", 1, DELEGATION, DelegationData,
                             "An out-of-office period ran out on its own.")
DELEGATION_REVOKED = EventKind("delegation.revoked", 1, DELEGATION, DelegationData,
                               "An out-of-office period was ended early (by the delegator or an operator).")

class CommentData(TypedDict):
    """A comment of a case's conversation, without its body (personal data: read it through the API)."""

    id: str
    kind: str  # comment | question (a question to the requester)
    author: str
    by_requester: bool
    mentions: list[int]  # user ids of the people named
    replaces: str | None  # the comment this one edits


class CommentedData(EscalationData):
    comment: CommentData
    awaiting_requester: bool


class DismissedApproval(TypedDict):
    id: str
    decided_by: str
    user_id: int


class AmendmentData(TypedDict):
    id: str
    revision: int
    fields: list[str]
    justification: str
    dismissed_approvals: list[DismissedApproval]
    policy_version: int


class AmendedData(EscalationData):
    amendment: AmendmentData
    auto_approved: NotRequired[bool]

ESCALATION_COMMENTED = EventKind(
    "escalation.commented", 1, ESCALATION, CommentedData,
    "A comment on the case; kind question asks the requester, whose answer clears awaiting_requester.")
ESCALATION_AMENDED = EventKind(
    "escalation.amended", 1, ESCALATION, AmendedData,
    "The requester changed the case: earlier approvals are dismissed and the route starts again.")


class CodeReplayedData(TypedDict):
    """Whose one-time code was reused, and on what (accounts.stepup.stepup_verify)."""

    user_id: int
    subject_type: str
    subject_id: str


# Internal events: written to the outbox like the others, consumed inside the product (notifications.consumers),
# never sent to webhooks (they are about a person, not a case a source system asked about).
STEPUP_CODE_REPLAYED = EventKind("stepup.code_replayed", 1, "user", CodeReplayedData,
                                 "Someone reused a person's one-time code (refused): its owner is warned.")
INTERNAL: tuple[EventKind[Any], ...] = (STEPUP_CODE_REPLAYED,)
INTERNAL_TYPES: frozenset[str] = frozenset(kind.type for kind in INTERNAL)

CATALOGUE: tuple[EventKind[Any], ...] = (
    ESCALATION_CREATED, ESCALATION_ACKNOWLEDGED, ESCALATION_APPROVAL_RECORDED, ESCALATION_APPROVED,
    ESCALATION_REJECTED, ESCALATION_DEFERRED, ESCALATION_RESUMED, ESCALATION_ESCALATED, ESCALATION_SLA_BREACHED,
    ESCALATION_REMINDER, ESCALATION_EXPIRED, ESCALATION_CANCELLED, ESCALATION_EXECUTED, ESCALATION_UNSTAFFED,
    ESCALATION_CONDITION_OVERDUE, ESCALATION_CONDITION_MET, ESCALATION_CONDITION_WAIVED,
    ESCALATION_CONDITION_EVIDENCE_ADDED,
    DELEGATION_CREATED, DELEGATION_STARTED, DELEGATION_ENDED, DELEGATION_REVOKED,
    ESCALATION_COMMENTED, ESCALATION_AMENDED,
)
EVENT_TYPES: frozenset[str] = frozenset(kind.type for kind in CATALOGUE)  # what webhooks may hear
_BY_TYPE: dict[tuple[str, int], EventKind[Any]] = {(kind.type, kind.version): kind for kind in (*CATALOGUE, *INTERNAL)}


def event_kind(event_type: str, version: int = 1) -> EventKind[Any] | None:
    """The catalogue entry of an event type and version (None: not one the product writes)."""
    return _BY_TYPE.get((event_type, version))


def subscribable(pattern: str) -> bool:
    """A webhook subscription names a catalogued type, or `<prefix>.*` matching at least one."""
    if pattern.endswith(".*"):
        return any(t.startswith(pattern[:-1]) for t in EVENT_TYPES)
    return pattern in EVENT_TYPES


# The entries by their name in this module, for message templates (EventIs); read once the module is complete.
ENTRIES: dict[str, EventKind[Any]] = {name: kind for name, kind in globals().items() if isinstance(kind, EventKind)}


class EventIs(Mapping[str, bool]):
    """`{% if event_is.ESCALATION_COMMENTED %}` in a message template: whether the event being rendered is that
    catalogue entry. Templates choose their wording with it instead of spelling event types, so the catalogue stays
    the one place they are written (tests/notifications/test_event_catalogue.py scans the templates). A name the
    catalogue lacks is a KeyError, which a template reads as false: the same scan refuses such a name."""

    def __init__(self, event_type: str) -> None:
        self._type = event_type

    def __getitem__(self, name: str) -> bool:
        return ENTRIES[name].type == self._type

    def __iter__(self) -> Iterator[str]:
        return iter(ENTRIES)

    def __len__(self) -> int:
        return len(ENTRIES)
