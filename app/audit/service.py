"""Appending to and verifying the audit chains.

Each entry's hash is SHA-256 over a canonical JSON of all its fields, the previous
entry's hash included, so an edited, removed or reordered entry breaks the chain
from that point on. Appends to one chain are serialised (an advisory lock held to
the end of the transaction on PostgreSQL; SQLite serialises writers already) so two
writers never fork it. Entries are written in the same transaction as the change
they record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from app.audit import repository
from app.audit.models import AuditEntry
from app.db import utcnow

GENESIS = "0" * 64


def _canonical(entry: AuditEntry) -> bytes:
    at = entry.at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    fields = {
        "organization_id": str(entry.organization_id),
        "engagement_id": str(entry.engagement_id) if entry.engagement_id else None,
        "chain_id": str(entry.chain_id),
        "seq": entry.seq,
        "at": at,
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "actor": entry.actor,
        "kind": entry.kind,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "data": entry.data,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


def _lock_chain(session: Session, chain_id: uuid.UUID) -> None:
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(b"audit:" + chain_id.bytes).digest()[:8], "big", signed=True
        )
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def append(
    session: Session,
    *,
    organization_id: uuid.UUID,
    engagement_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: Any = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    chain_id = engagement_id or organization_id
    _lock_chain(session, chain_id)
    last = repository.last_entry(session, organization_id, chain_id)
    # Microsecond precision survives every database round trip, so the hash re-computes.
    now = utcnow()
    entry = AuditEntry(
        organization_id=organization_id,
        engagement_id=engagement_id,
        chain_id=chain_id,
        seq=(last.seq + 1) if last else 1,
        at=now,
        actor_id=actor_id,
        actor=actor[:300],
        kind=kind,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=last.hash if last else GENESIS,
        hash="",
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Verification:
    chain_id: uuid.UUID
    length: int
    head_hash: str
    broken_at: int | None  # the seq of the first entry that does not verify
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_entries(chain_id: uuid.UUID, entries: Sequence[AuditEntry]) -> Verification:
    previous = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq:
            return Verification(
                chain_id, len(entries), previous, entry.seq, "missing or reordered entry"
            )
        if entry.prev_hash != previous:
            return Verification(
                chain_id, len(entries), previous, entry.seq, "does not follow the previous entry"
            )
        if entry_hash(entry) != entry.hash:
            return Verification(
                chain_id, len(entries), previous, entry.seq, "content changed after it was written"
            )
        previous = entry.hash
    return Verification(chain_id, len(entries), previous, None, None)


def verify_chain(session: Session, chain_id: uuid.UUID) -> Verification:
    return verify_entries(chain_id, repository.chain(session, chain_id))


def all_chain_ids(session: Session) -> Sequence[uuid.UUID]:
    return repository.chain_ids(session)


def checkpoint(verification: Verification, secret_key: str) -> dict[str, Any]:
    """A signed statement of the chain's length and head, for the brand to keep."""
    body = {
        "chain_id": str(verification.chain_id),
        "length": verification.length,
        "head_hash": verification.head_hash,
        "made_at": datetime.now(UTC).isoformat(),
    }
    body["signature"] = _sign(body, secret_key)
    return body


def _sign(body: dict[str, Any], secret_key: str) -> str:
    unsigned = {key: value for key, value in body.items() if key != "signature"}
    message = json.dumps(unsigned, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def check_checkpoint(session: Session, saved: dict[str, Any], secret_key: str) -> str | None:
    """Why the chain no longer contains the checkpoint, or None if it does."""
    if not hmac.compare_digest(str(saved.get("signature", "")), _sign(saved, secret_key)):
        return "the checkpoint's signature does not match: it was altered or made by another server"
    chain_id = uuid.UUID(str(saved["chain_id"]))
    entries = repository.chain(session, chain_id)
    length = int(saved["length"])
    if len(entries) < length:
        return (
            f"the chain has {len(entries)} entries, the checkpoint saw {length}: "
            "entries were removed"
        )
    if length and entries[length - 1].hash != saved["head_hash"]:
        return f"entry {length} is not the one the checkpoint saw"
    return None


AUDIT_COLUMNS = (
    "seq", "at", "actor", "kind", "subject_type", "subject_id", "data", "prev_hash", "hash",
)  # fmt: skip


def rows_for_export(entries: Sequence[AuditEntry]) -> list[list[Any]]:
    return [
        [
            entry.seq,
            entry.at.isoformat(),
            entry.actor,
            entry.kind,
            entry.subject_type,
            entry.subject_id,
            json.dumps(entry.data, ensure_ascii=False, sort_keys=True),
            entry.prev_hash,
            entry.hash,
        ]
        for entry in entries
    ]


def entries_of_chain(session: Session, chain_id: uuid.UUID) -> Sequence[AuditEntry]:
    return repository.chain(session, chain_id)


@dataclass(frozen=True)
class Record:
    """A chain's entries, re-verified as they were read."""

    entries: Sequence[AuditEntry]
    verification: Verification


def record_of(session: Session, chain_id: uuid.UUID) -> Record:
    """An engagement's chain (by the engagement's id) or an organization's (by its id)."""
    entries = repository.chain(session, chain_id)
    return Record(entries, verify_entries(chain_id, entries))
