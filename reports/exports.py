"""Exports of escalations, decisions and audit events as CSV, JSON or XLSX, in constant memory.

Rows come from `.values_list(...).iterator(chunk_size=...)` (a server-side cursor on PostgreSQL),
are formatted one at a time, and leave in ~64 KiB pieces: a million rows cost what a thousand do.
XLSX goes through openpyxl's write-only mode into a temporary file.

Cells that a spreadsheet would run as a formula (= + - @ tab CR) get a leading apostrophe in CSV
and XLSX (OWASP "CSV injection"); JSON is data, not a spreadsheet, and keeps values as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import BigIntegerField, Case, F, QuerySet, When
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from accounts.models import Tenant
from approvals.models import Decision
from approvals.services import dismissed_sql
from audit.models import AuditEvent
from audit.sealing import audit_seal_pending
from audit.services import chain_key_for
from trustguard.dbfuncs import UuidText
from trustguard.jsonutil import canonical_json

from .models import ExportDataset, ExportFormat
from .selectors import tenant_escalations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
PIECE_BYTES = 64 * 1024
CONTENT_TYPES: dict[str, str] = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class ExportFilters:
    status: str | None = None
    type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items() if v}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportFilters:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(status=data.get("status") or None, type=data.get("type") or None,
                   created_after=when("created_after"), created_before=when("created_before"))


@dataclass(frozen=True)
class Dataset:
    name: str
    # (column name, values_list path)
    columns: tuple[tuple[str, str], ...]
    queryset: Callable[[Tenant, ExportFilters], QuerySet[Any]]
    order_by: tuple[str, ...]

    @property
    def header(self) -> list[str]:
        return [name for name, _ in self.columns]


def _escalations(tenant: Tenant, f: ExportFilters) -> QuerySet[Any]:
    qs = tenant_escalations(tenant)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.type:
        qs = qs.filter(type=f.type)
    if f.created_after:
        qs = qs.filter(created_at__gte=f.created_after)
    if f.created_before:
        qs = qs.filter(created_at__lt=f.created_before)
    # actual - estimated cost, where both are in one currency (never across currencies).
    return qs.annotate(cost_variance_minor=Case(
        When(actual_cost_currency=F("estimated_cost_currency"), actual_cost_minor__isnull=False,
             estimated_cost_minor__isnull=False, then=F("actual_cost_minor") - F("estimated_cost_minor")),
        default=None, output_field=BigIntegerField()))


def _decisions(tenant: Tenant, f: ExportFilters) -> QuerySet[Any]:
    # status and type describe the escalation; the period is when the decision was made.
    qs = Decision.objects.filter(request__tenant=tenant).annotate(dismissed=dismissed_sql())
    if f.status:
        qs = qs.filter(request__escalation__status=f.status)
    if f.type:
        qs = qs.filter(request__escalation__type=f.type)
    if f.created_after:
        qs = qs.filter(decided_at__gte=f.created_after)
    if f.created_before:
        qs = qs.filter(decided_at__lt=f.created_before)
    return qs


def _audit(tenant: Tenant, f: ExportFilters) -> QuerySet[Any]:
    # The export shows the chain (seq, prev_hash, hash): the tenant's pending events are sealed onto it first.
    audit_seal_pending(chain_key=chain_key_for(tenant.pk))
    qs = AuditEvent.objects.filter(tenant_id=tenant.pk)
    if f.status or f.type:
        # The events of the escalations that match (status/type describe the case, not the event).
        qs = qs.filter(target_type="escalation",
                       target_id__in=_escalations(tenant, ExportFilters(status=f.status, type=f.type))
                       .annotate(_t=UuidText("pk")).values("_t"))
    if f.created_after:
        qs = qs.filter(created_at__gte=f.created_after)
    if f.created_before:
        qs = qs.filter(created_at__lt=f.created_before)
    return qs


DATASETS: dict[str, Dataset] = {
    ExportDataset.ESCALATIONS: Dataset(
        name="escalations",
        columns=(("id", "id"), ("type", "type"), ("status", "status"), ("reason", "reason"),
                 ("risk_level", "risk_level"), ("urgency", "urgency"), ("source_system", "source_system"),
                 ("source_entity_type", "source_entity_type"), ("source_entity_id", "source_entity_id"),
                 ("amount_minor", "amount_minor"), ("currency", "currency"), ("requested_by", "requested_by_email"),
                 ("assigned_role", "assigned_role"), ("escalation_level", "escalation_level"),
                 ("current_stage", "current_stage"), ("approvals_required", "approvals_required"),
                 ("approvals_received", "approvals_received"), ("acknowledged_at", "acknowledged_at"),
                 ("ack_due_at", "ack_due_at"), ("expires_at", "expires_at"), ("created_at", "created_at"),
                 ("decided_at", "decided_at"), ("closed_at", "closed_at"), ("executed_at", "executed_at"),
                 ("estimated_cost_minor", "estimated_cost_minor"), ("estimated_cost_currency", "estimated_cost_currency"),
                 ("actual_cost_minor", "actual_cost_minor"), ("actual_cost_currency", "actual_cost_currency"),
                 ("cost_variance_minor", "cost_variance_minor"),
                 ("window_starts_at", "window_starts_at"), ("window_ends_at", "window_ends_at"),
                 ("approval_expires_at", "approval_expires_at"), ("expiry_reason", "expiry_reason"),
                 ("template", "template"), ("conditions", "conditions"), ("revision", "revision")),
        queryset=_escalations, order_by=("created_at", "id")),
    ExportDataset.DECISIONS: Dataset(
        name="decisions",
        columns=(("id", "id"), ("escalation", "request__escalation__id"), ("escalation_type", "request__escalation__type"),
                 ("decision", "decision"), ("justification", "justification"), ("conditions", "conditions"),
                 ("decided_by", "decided_by__username"), ("role", "role"), ("stage", "stage"),
                 ("self_approved", "self_approved"), ("defer_until", "defer_until"), ("decided_at", "decided_at"),
                 ("on_behalf_of", "on_behalf_of__username"), ("dismissed", "dismissed")),
        queryset=_decisions, order_by=("decided_at", "id")),
    ExportDataset.AUDIT: Dataset(
        name="audit",
        columns=(("seq", "seq"), ("created_at", "created_at"), ("action", "action"), ("actor_type", "actor_type"),
                 ("actor_id", "actor_id"), ("actor", "actor_label"), ("target_type", "target_type"),
                 ("target_id", "target_id"), ("before", "before"), ("after", "after"), ("details", "details"),
                 ("ip", "ip"), ("request_id", "request_id"), ("prev_hash", "prev_hash"), ("hash", "hash")),
        queryset=_audit, order_by=("seq",)),
}


def export_queryset(*, dataset: str, tenant: Tenant, filters: ExportFilters) -> QuerySet[Any]:
    spec = DATASETS[dataset]
    return spec.queryset(tenant, filters).order_by(*spec.order_by).values_list(*(src for _, src in spec.columns))


def iter_rows(*, dataset: str, tenant: Tenant, filters: ExportFilters) -> Iterator[tuple[Any, ...]]:
    """The rows, fetched in chunks: memory stays flat however many there are."""
    yield from export_queryset(dataset=dataset, tenant=tenant, filters=filters).iterator(
        chunk_size=settings.EXPORT_CHUNK_SIZE)


def neutralise(value: str) -> str:
    """A string a spreadsheet would evaluate becomes literal text."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def cell(value: Any) -> Any:
    """One value for a spreadsheet cell (CSV or XLSX): numbers stay numbers, the rest is safe text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = canonical_json(value)
    return neutralise(str(value))


def _pieces(lines: Iterator[str]) -> Iterator[bytes]:
    """Join small strings into ~64 KiB pieces (one write per piece, not per row)."""
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= PIECE_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_pieces(rows: Iterator[tuple[Any, ...]], header: list[str],
               progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # BOM: spreadsheet programs then read the file as UTF-8
        yield writer.writerow(header)
        for n, row in enumerate(rows, 1):
            yield writer.writerow([cell(v) for v in row])
            if progress and n % settings.EXPORT_CHUNK_SIZE == 0:
                progress(n)

    return _pieces(lines())


def json_pieces(rows: Iterator[tuple[Any, ...]], header: list[str],
                progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    encoder = DjangoJSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def lines() -> Iterator[str]:
        yield "["
        for n, row in enumerate(rows, 1):
            yield ("\n" if n == 1 else ",\n") + encoder.encode(dict(zip(header, row, strict=True)))
            if progress and n % settings.EXPORT_CHUNK_SIZE == 0:
                progress(n)
        yield "\n]\n"

    return _pieces(lines())


def xlsx_cell(value: Any) -> Any:
    """cell(), and the control characters a workbook cannot hold (XML 1.0 forbids them) shown as U+FFFD."""
    value = cell(value)
    return ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value) if isinstance(value, str) else value


def write_xlsx(rows: Iterator[tuple[Any, ...]], header: list[str], out: IO[bytes],
               progress: Callable[[int], None] | None = None, title: str = "export") -> int:
    """Write-only workbook: openpyxl streams rows to a temporary XML file, not into memory."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(header)
    n = 0
    for n, row in enumerate(rows, 1):
        # openpyxl would store "=..." as a formula; cell() makes it text first.
        sheet.append([xlsx_cell(v) for v in row])
        if progress and n % settings.EXPORT_CHUNK_SIZE == 0:
            progress(n)
    workbook.save(out)
    return n


def write_export(*, dataset: str, fmt: str, tenant: Tenant, filters: ExportFilters, out: IO[bytes],
                 progress: Callable[[int], None] | None = None) -> int:
    """Write the whole export to a binary file; returns the number of rows."""
    spec = DATASETS[dataset]
    counted = 0

    def counting(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        nonlocal counted
        for row in rows:
            counted += 1
            yield row

    rows = counting(iter_rows(dataset=dataset, tenant=tenant, filters=filters))
    if fmt == ExportFormat.XLSX:
        write_xlsx(rows, spec.header, out, progress, title=spec.name)
    else:
        pieces = csv_pieces if fmt == ExportFormat.CSV else json_pieces
        for piece in pieces(rows, spec.header, progress):
            out.write(piece)
    return counted


def stream_export(*, dataset: str, fmt: str, tenant: Tenant, filters: ExportFilters) -> Iterator[bytes]:
    """The pieces of a CSV or JSON export, for a StreamingHttpResponse."""
    spec = DATASETS[dataset]
    rows = iter_rows(dataset=dataset, tenant=tenant, filters=filters)
    if fmt == ExportFormat.CSV:
        return csv_pieces(rows, spec.header)
    if fmt == ExportFormat.JSON:
        return json_pieces(rows, spec.header)
    raise ValueError(f"{fmt} cannot be streamed; use write_export into a file")

