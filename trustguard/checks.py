"""System checks of the project (registered in TrustguardConfig.ready()).

`database_protections`: every trigger declared in trustguard.db_protections exists, enabled, on the engine in
use (apps add their own protections under the same tag: audit's keys). It runs with `manage.py check`, runserver
and every management command that checks, and at the start-up of web (trustguard/wsgi.py), worker and beat
(trustguard/celery.py), so an application whose audit log the database no longer guards refuses to start instead
of running unprotected. `database_role` (a deployment check, run at the same start-ups): the processes do not
connect as a role that could change the insert-only tables.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from .db_protections import insert_only_violations, triggers_missing

TAG = "database_protections"
ROLE_TAG = "database_role"
_REPAIR = {
    "sqlite": "`manage.py migrate --skip-checks` installs it again.",
    "postgresql": "`manage.py pgtrigger install` installs it again; `manage.py pgtrigger enable` switches it back on.",
}


def _migrations_pending(alias: str) -> bool:
    executor = MigrationExecutor(connections[alias])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@register(TAG)
def database_protections(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """trustguard.E010: an expected trigger is missing or disabled. W010: pending migrations will add it. W011: no database."""
    messages: list[CheckMessage] = []
    for alias in databases or [DEFAULT_DB_ALIAS]:
        connection = connections[alias]
        try:
            problems = triggers_missing(connection)
            pending = bool(problems) and _migrations_pending(alias)
        except DatabaseError as exc:
            # Nothing to guard can be reached (a build step without a database, say); whatever needs
            # the database will fail on its own.
            messages.append(Warning(f"Could not check the database's protection triggers ({alias}): {exc}",
                                    id="trustguard.W011"))
            continue
        for problem in problems:
            trigger = problem.trigger
            text = (f"Database {alias!r} ({connection.vendor}): trigger {trigger.name} on {trigger.table} is "
                    f"{problem.problem}; it refuses {trigger.refuses}.")
            if pending:
                messages.append(Warning(text, hint="Run `manage.py migrate`: pending migrations install it.",
                                        id="trustguard.W010"))
            else:
                messages.append(Error(text, id="trustguard.E010", hint=_REPAIR[connection.vendor] + (
                    " Then find out who removed it: `manage.py verify_audit` checks what it protected.")))
    return messages


@register(ROLE_TAG, deploy=True)
def database_role(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """trustguard.E011: web, worker or beat would run as a role that may change the insert-only tables (DEBUG=0).

    A deployment check (`check --deploy`, and the processes' start-up below), not an ordinary one: `migrate` runs as
    the tables' owner on purpose.
    """
    if settings.DEBUG or getattr(settings, "ALLOW_OWNER_ROLE", False):
        return []
    messages: list[CheckMessage] = []
    for alias in databases or [DEFAULT_DB_ALIAS]:
        try:
            found = insert_only_violations(connections[alias])
        except DatabaseError:
            continue  # database_protections reports an unreachable database
        messages += [Error(f"Database {alias!r}: {problem}.", id="trustguard.E011", hint=(
            "Connect web, worker and beat as the application's role (DATABASE_URL), run `migrate` as the owner with "
            "TRUSTGUARD_DB_APP_ROLE naming that role (docs/DEPLOYMENT.md, \"Least privilege\"), or set "
            "TRUSTGUARD_ALLOW_OWNER_ROLE=1 to accept the risk.")) for problem in found]
    return messages


def refuse_to_start_unprotected() -> None:
    """Raise SystemCheckError when the database's protections are not in place (web, worker and beat start-up).

    Protections: the triggers, the audit keys (audit/checks.py, same tag), the field keys, and (DEBUG=0) a database
    role that cannot change the audit trail.
    """
    from django.core.checks import run_checks
    from django.core.management.base import SystemCheckError

    messages = run_checks(tags=[TAG, ROLE_TAG, KEYS_TAG], include_deployment_checks=True)
    errors = [message for message in messages if message.is_serious()]
    connections.close_all()  # the check's connection is not a request's
    if errors:
        raise SystemCheckError("TrustGuard refuses to start:\n" + "\n".join(f"{e}\n  HINT: {e.hint}" for e in errors))


KEYS_TAG = "trustguard_keys"


@register(KEYS_TAG)
def field_keys_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """trustguard.E020: DEBUG=0 without TRUSTGUARD_FIELD_KEYS (secrets at rest would have no key)."""
    from django.conf import settings

    if settings.FIELD_KEYS:
        return []
    return [Error("TRUSTGUARD_FIELD_KEYS (or TRUSTGUARD_FIELD_KEYS_FILE) is required when DEBUG=0: it encrypts TOTP "
                  "seeds, webhook secrets and stored API responses at rest.", id="trustguard.E020",
                  hint="Generate one with `python -c 'from cryptography.fernet import Fernet; "
                       "print(Fernet.generate_key().decode())'` and keep it outside the database (docs/BACKUP.md).")]
