"""django-viewflow's side of benches 1 and 2: a process with one human task (approve), started from code
and approved by a person, at service level (no HTTP), as the issue compares it with our create and decide."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from viewflow import this
from viewflow.workflow import flow, lock
from viewflow.workflow.models import Process, Task


def _approve_view(request: Any, **kwargs: Any) -> None:  # never served: the bench approves at service level
    raise NotImplementedError


class ApprovalFlow(flow.Flow):
    """Start -> approve (a person of the compliance group) -> end; the process row holds the case's data."""

    lock_impl = lock.select_for_update_lock  # a decision locks its process, as ours locks its escalation

    start = flow.StartHandle(this.start_process).Next(this.approve)
    approve = flow.View(_approve_view).Assign(this.owner).Next(this.end)
    end = flow.End()

    def owner(self, activation: Any) -> Any:
        return get_user_model().objects.get(pk=activation.process.data["owner"])

    def start_process(self, activation: Any, **data: Any) -> Process:
        activation.process.data = data
        return activation.process


def viewflow_start(*, owner: Any, data: dict[str, Any]) -> Process:
    """Start a process with one human task, in one transaction (viewflow's StartHandle)."""
    with transaction.atomic():
        return ApprovalFlow.start.run(owner=owner.pk, **data)


def viewflow_approve(*, process_pk: int, user: Any) -> None:
    """What viewflow's task view does on submit: lock the process, start the task as its owner, record the
    decision on the process, complete the task and activate the next node (the end), in one transaction."""
    with transaction.atomic():
        task = Task.objects.get(process_id=process_pk, flow_task=ApprovalFlow.approve, status="ASSIGNED")
        with task.activation() as activation:  # locks the process, re-reads the task
            activation.start(None)
            task.process.data["decision"] = {"approved": True, "by": user.pk}
            task.process.save(update_fields=["data"])
            activation.execute()
