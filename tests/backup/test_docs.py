"""docs/BACKUP.md tells operators which keys to keep outside the database: the same list the restore checks use."""

from pathlib import Path

from django.conf import settings

from trustguard.backup.keys import KEYS


def test_every_key_the_restore_checks_know_is_in_the_operators_table_of_keys_to_back_up():
    text = Path(settings.BASE_DIR, "docs", "BACKUP.md").read_text()
    section = text.split("## Keys and secrets: back them up separately", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}

    assert {key.variable for key in KEYS} <= rows
