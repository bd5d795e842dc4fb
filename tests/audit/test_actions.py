"""Audit actions come from one catalogue (audit.actions.AuditAction): written, compared and labelled from there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from audit.actions import AuditAction, action_label
from audit.models import AuditEvent
from dashboard.templatetags.dashboard import action_label as dashboard_action_label

PRODUCT_APPS = ("accounts", "approvals", "audit", "dashboard", "escalations", "notifications", "reports", "privacy",
                "trustguard")
CATALOGUE = Path(settings.BASE_DIR) / "audit" / "actions.py"


def _product_modules() -> list[Path]:
    base = Path(settings.BASE_DIR)
    return sorted(path for app in PRODUCT_APPS if (base / app).is_dir() for path in (base / app).rglob("*.py")
                  if "migrations" not in path.parts and path != CATALOGUE)


def _names(node: ast.AST) -> set[str]:
    """The names a target or an operand spells (`action`, `self.action`, `ACTION_ESCALATED`, ...)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _action_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants that name an action: keyword `action=`, compared with an `action`, given to an ACTION name."""
    values = {member.value for member in AuditAction}
    found: list[tuple[int, str]] = []

    def spell(node: ast.AST | None) -> None:
        for n in ast.walk(node) if node is not None else ():
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in values:
                found.append((n.lineno, n.value))

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg and "action" in node.arg.lower():
            spell(node.value)
        elif isinstance(node, ast.Compare) and any("action" in name.lower() for name in _names(node)):
            spell(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any("action" in name.lower() for target in targets for name in _names(target)):
                spell(node.value)
    return found


def test_no_product_module_spells_an_audit_action_outside_the_catalogue():
    spelled = [f"{path.relative_to(settings.BASE_DIR)}:{line}: {value!r}"
               for path in _product_modules() for line, value in _action_literals(ast.parse(path.read_text()))]

    assert spelled == [], f"use audit.actions.AuditAction instead of these literals: {spelled}"


def test_the_scan_finds_an_action_spelled_as_a_literal():
    code = ('audit_record(action="decision.recorded")\nif event.action == "otp.failed": pass\n'
            'ACTION_X = "escalation.escalated"\nevent_emit(type="escalation.created")\n')

    assert sorted(value for _, value in _action_literals(ast.parse(code))) == [
        "decision.recorded", "escalation.escalated", "otp.failed"]


def test_every_action_has_a_label_in_words_and_a_value_that_fits_the_column():
    column = AuditEvent._meta.get_field("action").max_length
    assert column is not None
    for action in AuditAction:
        assert action.label and action.label != action.value
        assert len(action.value) <= column
    assert len({a.label for a in AuditAction}) == len(AuditAction), "two actions read the same to a person"


def test_the_dashboard_labels_the_reminder_the_sweep_writes():
    assert dashboard_action_label("escalation.reminder_sent") == "Reminder sent"
    assert dashboard_action_label(AuditAction.OTP_REPLAY_REFUSED) == "Reused one-time code refused"


def test_an_action_the_catalogue_lacks_is_still_shown_in_words():
    assert action_label("escalation.something_else") == "Something else"


@pytest.mark.django_db
def test_a_day_of_work_writes_only_actions_of_the_catalogue(demo, vendor, demo_actor):
    from escalations.services import SourceRef, escalation_acknowledge, escalation_create
    from escalations.sweeps import sweep_deadlines

    with transaction.atomic():
        case = escalation_create(actor=vendor, type="SMR", reason="Odd pattern",
                                 source=SourceRef(system="shop", entity_type="order", entity_id="ORD-7"))
        escalation_acknowledge(actor=demo_actor("co"), escalation=case)
    sweep_deadlines()

    written = set(AuditEvent.objects.values_list("action", flat=True))
    assert written, "the flow wrote no audit event"
    assert written <= {a.value for a in AuditAction}, sorted(written - {a.value for a in AuditAction})
