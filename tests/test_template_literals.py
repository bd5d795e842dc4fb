"""Templates, like the Python code, spell no event type and no audit action: they read the catalogues.

A message template chooses its wording with `event_is.<ENTRY>` (notifications.outbox.catalogue.EventIs), an
entry of the event catalogue by its name; a template that compared `event.type == "escalation.reminder"` would
keep working after the type's spelling changed in the catalogue, and say the wrong thing.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.template import Context, Template

from audit.actions import AuditAction
from notifications.outbox.catalogue import ENTRIES, ESCALATION_CREATED, ESCALATION_REMINDER, EVENT_TYPES, INTERNAL_TYPES, EventIs

ROOT = Path(settings.BASE_DIR)
SPELLED = EVENT_TYPES | INTERNAL_TYPES | {action.value for action in AuditAction}
QUOTED = re.compile(r"\"([^\"\n]*)\"|'([^'\n]*)'")
FLAG = re.compile(r"\bevent_is\.([A-Za-z_][A-Za-z0-9_]*)")


def _template_files(root: Path = ROOT) -> list[Path]:
    dirs = [root / "templates", *sorted(p for p in root.glob("*/templates") if p.parent.name != ".venv")]
    return sorted(path for folder in dirs for path in folder.rglob("*")
                  if path.is_file() and path.suffix in {".html", ".txt"})


def _spelled_literals(path: Path, root: Path = ROOT) -> list[str]:
    """The quoted strings in a template that spell an event type or an audit action exactly."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        found += [f"{path.relative_to(root)}:{number}: {value!r}"
                  for match in QUOTED.finditer(line) for value in [match.group(1) or match.group(2)]
                  if value in SPELLED]
    return found


def _unknown_flags(path: Path, root: Path = ROOT) -> list[str]:
    """`event_is.<NAME>` where the catalogue has no entry of that name (the template would read it as false)."""
    return [f"{path.relative_to(root)}: {name}" for name in FLAG.findall(path.read_text()) if name not in ENTRIES]


def test_no_template_spells_an_event_type_or_an_audit_action():
    files = _template_files()
    assert len(files) > 20  # the scan sees the templates, the message templates among them
    assert any("notifications" in path.parts for path in files)

    spelled = [hit for path in files for hit in _spelled_literals(path)]

    assert spelled == [], "choose by notifications.outbox.catalogue (event_is.<ENTRY>) instead:\n" + "\n".join(spelled)


def test_every_event_flag_a_template_reads_is_a_catalogue_entry():
    flags = [name for path in _template_files() for name in FLAG.findall(path.read_text())]
    assert "ESCALATION_REMINDER" in flags  # the message templates do choose by the catalogue

    assert [hit for path in _template_files() for hit in _unknown_flags(path)] == []


def test_the_scan_finds_a_spelled_event_type_an_action_and_an_unknown_flag(tmp_path):
    (tmp_path / "templates").mkdir()
    sneaky = tmp_path / "templates" / "sneaky.txt"
    sneaky.write_text('{% if event.type == "escalation.reminder" %}x{% endif %}\n'
                      "{% if action == 'otp.failed' %}y{% endif %}{% include \"escalation.created.txt\" %}\n"
                      "{% if event_is.ESCALATION_REMINDED %}z{% endif %}\n")

    assert _template_files(tmp_path) == [sneaky]
    assert _spelled_literals(sneaky, tmp_path) == ["templates/sneaky.txt:1: 'escalation.reminder'",
                                                   "templates/sneaky.txt:2: 'otp.failed'"]
    assert _unknown_flags(sneaky, tmp_path) == ["templates/sneaky.txt: ESCALATION_REMINDED"]


def test_a_template_reads_which_event_it_renders_from_the_catalogue():
    template = Template("{% if event_is.ESCALATION_REMINDER %}reminder{% elif event_is.NO_SUCH %}typo{% else %}"
                        "other{% endif %}")

    assert template.render(Context({"event_is": EventIs(ESCALATION_REMINDER.type)})) == "reminder"
    assert template.render(Context({"event_is": EventIs(ESCALATION_CREATED.type)})) == "other"


def test_no_template_comment_spans_lines_for_django_would_print_it():
    # {# ... #} is one line only: a longer one reaches the page as text (the queue page showed its notes to people).
    spanning = [f"{path.relative_to(ROOT)}:{text[:match.start()].count(chr(10)) + 1}"
                for path in _template_files() for text in [path.read_text()]
                for match in re.finditer(r"\{#(?:(?!#\}).)*?\n", text, re.S)]
    assert spanning == [], "use {% comment %} ... {% endcomment %}: " + ", ".join(spanning)
