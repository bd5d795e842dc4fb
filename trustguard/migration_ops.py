"""Migration operations that are safe on a live PostgreSQL database, and plain on SQLite (docs/DEPLOYMENT.md,
"Zero-downtime deploys and migrations"; tests/test_migrations_online.py).

- AddIndexOnline: CREATE INDEX CONCURRENTLY on PostgreSQL (the migration sets atomic = False); a plain index
  elsewhere (SQLite has neither the keyword nor concurrent writers to spare).
- AddCheckNotValid: ADD CONSTRAINT ... CHECK ... NOT VALID on PostgreSQL (new rows are checked at once; the
  existing ones by ValidateConstraint in a later migration, under a lock that lets writes through).
- ValidateConstraint: ALTER TABLE ... VALIDATE CONSTRAINT on PostgreSQL; nothing elsewhere (already checked).
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from django.db.migrations.operations import AddConstraint, AddIndex


def _postgres(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


class AddIndexOnline(AddIndexConcurrently):
    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if _postgres(schema_editor) and schema_editor.collect_sql:
            # sqlmigrate only prints the SQL (it may run inside a test's transaction): nothing is built here.
            schema_editor.add_index(to_state.apps.get_model(app_label, self.model_name), self.index, concurrently=True)
        elif _postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if _postgres(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class AddCheckNotValid(AddConstraint):
    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if not _postgres(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        check = self.constraint.constraint_sql(model, schema_editor)  # CONSTRAINT "name" CHECK (...)
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(model._meta.db_table)} ADD {check} NOT VALID")


class ValidateConstraint(migrations.operations.base.Operation):
    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, name: str) -> None:
        self.model_name, self.name = model_name, name

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if _postgres(schema_editor):
            model = to_state.apps.get_model(app_label, self.model_name)
            schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(model._meta.db_table)} "
                                  f"VALIDATE CONSTRAINT {schema_editor.quote_name(self.name)}")

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        pass

    def describe(self) -> str:
        return f"Validate constraint {self.name} on {self.model_name}"
