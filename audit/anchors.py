"""Anchors: signed records of every chain's head, kept outside the database (docs/AUDIT.md, "Anchors").

The keyed chain (audit.keys) shows that no event in the database was altered or forged, but not that none was
removed from the end, nor that a whole chain was not emptied: a chain cut short still verifies. An anchor is the
heads of all chains at one moment ({chain: [seq, hash]}), signed with the Ed25519 signing key and written as a new
file in settings.AUDIT_ANCHOR_DIR, which is not in the database: one file per anchor, created exclusively and made
read-only, never rewritten (point the directory at storage the database's administrators cannot rewrite: another
host, an object store with object lock; and optionally mailed to TRUSTGUARD_ADMIN_EMAILS).

`anchors_check` then proves that the database still holds every anchored head, so truncation, a rewound head and a
rewritten history are found and named. After a point-in-time restore to T, anchors written after T describe
events the restore undid: `anchors_set_aside` moves them into a subdirectory, with an audit event saying so.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from trustguard.jsonutil import canonical_json

from .actions import AuditAction
from .checkpoints import latest_checkpoint
from .keys import signing_key, verifying_keys
from .models import AuditEvent
from .services import SystemActor, audit_record
from .verification import ChainReport

VERSION = 1
SET_ASIDE_PREFIX = "set-aside-"


@dataclass(frozen=True)
class Anchor:
    name: str  # the file's name
    created_at: datetime
    heads: dict[str, tuple[int, str]]

    def describe(self) -> str:
        return f"anchor {self.name} of {self.created_at.isoformat()}"


def _message(doc: dict[str, object]) -> bytes:
    """What the signature covers: the whole document but the signature."""
    return canonical_json({k: v for k, v in doc.items() if k != "signature"}).encode()


def anchor_write(heads: dict[str, tuple[int, str]], *, directory: Path | None = None,
                 now: datetime | None = None) -> Path:
    """Write one signed anchor of `heads` as a new, read-only file; return its path. Never replaces a file.

    Written under a temporary name, synced, then hard-linked to its final name (which fails rather than replace an
    existing file) and the temporary name removed, so a reader never sees half an anchor.
    """
    directory = Path(directory or settings.AUDIT_ANCHOR_DIR)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = now or timezone.now()
    key_id, key = signing_key()
    doc: dict[str, object] = {"version": VERSION, "created_at": now.astimezone(UTC).isoformat(), "key_id": key_id,
                              "heads": {chain: [seq, digest] for chain, (seq, digest) in sorted(heads.items())}}
    doc["signature"] = base64.b64encode(key.sign(_message(doc))).decode()
    name = f"anchor-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.json"
    temporary = directory / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(doc, out, indent=1, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o444)
        os.link(temporary, directory / name)
    finally:
        temporary.unlink(missing_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if getattr(settings, "AUDIT_ANCHOR_EMAIL", False) and settings.ADMINS:
        mail_admins(f"Audit anchor {doc['created_at']}", "Keep this message: it proves what the audit trail held "
                    "(docs/AUDIT.md, \"Anchors\").\n\n" + json.dumps(doc, indent=1, sort_keys=True), fail_silently=True)
    return directory / name


def _parse(path: Path) -> tuple[Anchor | None, str]:
    """The anchor in `path` when its signature verifies under a key of the signing ring; otherwise why not."""
    try:
        doc = json.loads(path.read_text())
        signature = base64.b64decode(doc["signature"], validate=True)
        created_at = parse_datetime(doc["created_at"])
        heads = {str(chain): (int(seq), str(digest)) for chain, (seq, digest) in doc["heads"].items()}
        key_id = str(doc["key_id"])
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        return None, f"anchor {path.name} cannot be read ({exc.__class__.__name__}: {exc}): altered or damaged"
    if created_at is None:
        return None, f"anchor {path.name} has no valid created_at: altered or damaged"
    public = verifying_keys().get(key_id)
    if public is None:
        return None, (f"anchor {path.name} is signed with key {key_id!r}, which TRUSTGUARD_AUDIT_SIGNING_KEY does not "
                      "hold: keep retired signing keys in the ring")
    try:
        public.verify(signature, _message(doc))
    except InvalidSignature:
        return None, f"anchor {path.name}: the signature is invalid: the file was altered or forged"
    return Anchor(path.name, created_at, heads), ""


def anchors_read(directory: Path, *, until: datetime | None = None) -> tuple[list[Anchor], list[str]]:
    """The anchors in `directory` (not its subdirectories: set-aside ones), oldest first, and the files that fail.

    `until`: leave out anchors written after it (a point-in-time restore's T).
    """
    anchors, problems = [], []
    for path in sorted(directory.glob("anchor-*.json")) if directory.is_dir() else []:
        anchor, problem = _parse(path)
        if anchor is None:
            problems.append(problem)
        elif until is None or anchor.created_at <= until:
            anchors.append(anchor)
    anchors.sort(key=lambda a: (a.created_at, a.name))
    return anchors, problems


def anchors_check(anchors: list[Anchor], *, chain_keys: set[str] | None = None) -> list[ChainReport]:
    """For each anchored chain (of `chain_keys`, or all): does the database still hold every anchored head?

    The earliest anchored seq that the database no longer holds as anchored is named: beyond the chain's end (cut
    off, or the whole chain emptied), or with another hash (history rewritten). A head that retention has since
    pruned is covered by its signed checkpoint, which verify_chain checks.
    """
    claims: dict[str, dict[int, list[tuple[str, Anchor]]]] = defaultdict(lambda: defaultdict(list))
    for anchor in anchors:
        for chain, (seq, digest) in anchor.heads.items():
            if (chain_keys is None or chain in chain_keys) and seq > 0:
                claims[chain][seq].append((digest, anchor))
    reports = []
    for chain in sorted(claims):
        by_seq = claims[chain]
        checkpoint = latest_checkpoint(chain)
        pruned_through = checkpoint.seq if checkpoint else 0
        held = dict(AuditEvent.objects.filter(chain_key=chain, seq__in=list(by_seq)).values_list("seq", "hash"))
        last = (AuditEvent.objects.filter(chain_key=chain, seq__isnull=False).order_by("-seq")
                .values_list("seq", flat=True).first())
        end = max(last or 0, pruned_through)
        problem, at = "", 0
        for seq in sorted(by_seq):
            for digest, anchor in by_seq[seq]:
                if seq < pruned_through or (seq == pruned_through and checkpoint and checkpoint.hash == digest):
                    continue
                if seq == pruned_through and checkpoint:
                    problem = (f"the retention checkpoint at seq {seq} does not have the hash {anchor.describe()} "
                               "recorded: the chain was rewritten before it was pruned")
                elif seq > end:
                    problem = f"truncated: {anchor.describe()} saw the chain at seq {seq}, but it " + (
                        f"ends at seq {end}: events at the end were removed and the head rewound" if end
                        else "holds no events at all: the chain was emptied")
                elif seq not in held:
                    problem = f"seq {seq}, anchored by {anchor.describe()}, is missing: events were removed"
                elif held[seq] != digest:
                    problem = (f"rewritten: seq {seq} no longer has the hash {anchor.describe()} recorded: the chain "
                               "was rewritten up to there")
                if problem:
                    at = seq
                    break
            if problem:
                break
        if problem:
            event = AuditEvent.objects.filter(chain_key=chain, seq=at).values_list("id", flat=True).first()
            reports.append(ChainReport(chain, 0, False, problem, event, at))
        else:
            reports.append(ChainReport(chain, 0, True))
    return reports


def anchors_set_aside(directory: Path, *, after: datetime, reason: str) -> list[str]:
    """Move the anchors written after `after` into a new `set-aside-<now>` subdirectory, and audit it.

    For a point-in-time restore to `after`: those anchors saw events the restore undid, and would fail every
    verification. Moved (renamed within the directory), never edited or deleted; verification no longer reads them.
    """
    anchors, _ = anchors_read(directory)
    later = [anchor.name for anchor in anchors if anchor.created_at > after]
    now = timezone.now()
    target = directory / f"{SET_ASIDE_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    with transaction.atomic():
        audit_record(tenant_id=None, action=AuditAction.AUDIT_ANCHORS_SET_ASIDE, actor=SystemActor("audit_anchors_set_aside"),
                     target_type="audit_anchors", target_id=str(directory)[-64:],
                     details={"after": after, "into": target.name, "files": later, "reason": reason})
        if later:
            target.mkdir(mode=0o700)
            for name in later:
                os.rename(directory / name, target / name)
    return later
