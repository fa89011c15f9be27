"""Rules of deliverables: delivering with evidence, accepting, returning with a reason.

``planned → delivered → accepted | returned → delivered → …``. The agency delivers
(``deliverable.deliver``), the brand accepts or returns (``deliverable.accept``).
Every transition is a conditional update on the row's version and expected status,
and lands on the engagement's hash-chained audit record with who and when.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session
from starlette.datastructures import UploadFile

from app import transitions
from app.audit import service as audit
from app.config import Settings
from app.content import service as content
from app.db import utcnow
from app.deliverables import evidence as evidence_files
from app.deliverables import planning, repository
from app.deliverables.models import Deliverable, DeliverableStatus, EvidenceFile
from app.deliverables.schemas import DeliverableCreate, DeliverIn, ReturnIn
from app.engagements import service as engagements
from app.engagements.models import Status
from app.engagements.service import EngagementAccess
from app.errors import (
    N_,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from app.storage import BlobStore
from app.tenancy.service import Actor

NOT_FOUND = N_("No deliverable here, or it is not yours.")


@dataclass(frozen=True)
class DeliverableAccess:
    """A deliverable loaded through the scoped layer, with the caller's access to its engagement."""

    deliverable: Deliverable
    granted: EngagementAccess


def access(session: Session, actor: Actor, deliverable_id: uuid.UUID) -> DeliverableAccess:
    """Load a deliverable for this actor: 404 if its engagement is not theirs."""
    found = repository.get_deliverable(session, deliverable_id, actor.org_ids)
    deliverable, granted = engagements.access_through(session, actor, found, NOT_FOUND)
    return DeliverableAccess(deliverable, granted)


# --- reading -------------------------------------------------------------------


def list_deliverables(
    session: Session,
    granted: EngagementAccess,
    *,
    status: DeliverableStatus | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
) -> Sequence[Deliverable]:
    granted.require("engagement.read")
    return repository.deliverables_of(
        session,
        granted.engagement,
        status=status,
        period_start=period_start,
        period_end=period_end,
    )


is_late = planning.is_late


# --- changing ------------------------------------------------------------------


def _require_open(granted: EngagementAccess) -> None:
    if engagements.effective_status(granted.engagement) in (Status.ended, Status.declined):
        raise Conflict(N_("This engagement has ended; its deliverables can be read, not changed."))


def _audit(
    session: Session,
    granted: EngagementAccess,
    kind: str,
    deliverable: Deliverable,
    data: dict[str, Any],
) -> None:
    """Every state change of a deliverable lands on the engagement's hash-chained record."""
    user = granted.actor.user
    audit.append(
        session,
        organization_id=granted.engagement.brand_id,
        engagement_id=granted.engagement.id,
        actor_id=user.id,
        actor=f"{user.name} <{user.email}>",
        kind=kind,
        subject_type="deliverable",
        subject_id=deliverable.id,
        data=data,
    )


def create_deliverable(
    session: Session, granted: EngagementAccess, data: DeliverableCreate
) -> Deliverable:
    """An ad-hoc deliverable: the agency logs extra work, or the brand's lead asks for it."""
    if not (granted.can("deliverable.deliver") or granted.can("engagement.edit")):
        raise Forbidden(
            N_(
                "Only the agency's owners and managers, or the brand's owners and account "
                "leads, add deliverables."
            )
        )
    _require_open(granted)
    engagement = granted.engagement
    period = planning.period_of("monthly", data.due_on, engagement)
    timezone = repository.brand_timezone(session, engagement.brand_id)
    deliverable = Deliverable(
        brand_id=engagement.brand_id,
        engagement_id=engagement.id,
        ad_hoc=True,
        kind=data.kind,
        title=data.title.strip(),
        description=data.description.strip(),
        quantity=data.quantity,
        period_start=period.start,
        period_end=period.end,
        due_on=data.due_on,
        due_at=planning.due_instant(data.due_on, timezone),
        created_by_id=granted.actor.user.id,
    )
    session.add(deliverable)
    session.flush()
    _audit(
        session,
        granted,
        "deliverable_added",
        deliverable,
        {"title": deliverable.title, "due_on": data.due_on.isoformat(), "ad_hoc": True},
    )
    return deliverable


def _evidence(
    session: Session,
    granted: EngagementAccess,
    data: DeliverIn,
    files: Sequence[evidence_files.CheckedFile],
) -> list[dict[str, Any]]:
    """The delivery's evidence; a post must be one of this engagement's, seen by the caller."""
    evidence: list[dict[str, Any]] = [
        {"type": "link", "url": link.url, "label": link.label.strip()} for link in data.links
    ]
    for index, post_id in enumerate(dict.fromkeys(data.post_ids)):
        try:
            found = content.access(session, granted.actor, post_id)
        except NotFound:
            found = None
        if found is None or found.post.engagement_id != granted.engagement.id:
            raise InvalidInput(
                field_errors=[
                    FieldError(f"post_ids.{index}", N_("This is not a post of this engagement."))
                ]
            )
        evidence.append({"type": "post", "post_id": str(post_id), "label": found.post.title})
    evidence.extend(file.evidence_item() for file in files)
    if not evidence:
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "links",
                    N_("Give the evidence: a link, one of the engagement's posts, or a file."),
                )
            ]
        )
    return evidence


def check_deliverable(found: DeliverableAccess, expected_version: int | None = None) -> None:
    """May this caller deliver it now? Answered before an upload is read."""
    granted, deliverable = found.granted, found.deliverable
    granted.require("deliverable.deliver")
    _require_open(granted)
    transitions.check_version(deliverable, expected_version)
    status = DeliverableStatus(deliverable.status)
    if status not in (DeliverableStatus.planned, DeliverableStatus.returned):
        raise Conflict(
            N_("Only a planned or returned deliverable is delivered; this one is %(status)s."),
            params={"status": status.value},
        )


def deliver(
    session: Session,
    found: DeliverableAccess,
    data: DeliverIn,
    *,
    expected_version: int | None = None,
    files: Sequence[UploadFile] = (),
    store: BlobStore | None = None,
    settings: Settings | None = None,
) -> Deliverable:
    """Deliver with evidence: links, the engagement's posts, files (``store`` and
    ``settings`` are needed with files).

    Every file is checked before anything changes; the bytes are stored once the
    delivery's conditional update has won, as evidence of this round only.
    """
    granted, deliverable = found.granted, found.deliverable
    check_deliverable(found, expected_version)
    previous = DeliverableStatus(deliverable.status)
    checked: list[evidence_files.CheckedFile] = []
    if files:
        if store is None or settings is None:
            raise ValueError("files are delivered with a blob store and the settings")
        checked = evidence_files.check(files, settings)
    evidence = _evidence(session, granted, data, checked)
    now = utcnow()
    user = granted.actor.user
    values: dict[str, Any] = {
        "status": DeliverableStatus.delivered,
        "rounds": deliverable.rounds + 1,
        "evidence": evidence,
        "delivery_note": data.note.strip(),
        "delivered_at": now,
        "delivered_by_id": user.id,
        "delivered_by_name": user.name,
        "updated_at": now,
    }
    if deliverable.first_delivered_at is None:
        values["first_delivered_at"] = now
    transitions.transition(
        session,
        deliverable,
        expected_statuses=(previous,),
        conflict=N_("The deliverable changed while you were delivering it: reload it."),
        **values,
    )
    if checked and store is not None:
        evidence_files.keep(
            session,
            deliverable,
            checked,
            round_=deliverable.rounds,
            uploaded_by_id=user.id,
            store=store,
        )
    _audit(
        session,
        granted,
        "deliverable_delivered",
        deliverable,
        {
            "round": deliverable.rounds,
            "evidence": evidence,
            "note": deliverable.delivery_note,
            "late": planning.is_late(deliverable, now),
        },
    )
    return deliverable


def evidence_files_of(session: Session, found: DeliverableAccess) -> Sequence[EvidenceFile]:
    """Every round's files of the deliverable, for either side of the engagement."""
    found.granted.require("engagement.read")
    return repository.evidence_files_of(session, found.granted.engagement, found.deliverable)


def evidence_file(session: Session, found: DeliverableAccess, file_id: uuid.UUID) -> EvidenceFile:
    found.granted.require("engagement.read")
    return evidence_files.file_of(session, found.deliverable, file_id)


def _require_brand(granted: EngagementAccess) -> None:
    if not granted.on_brand_side:
        raise Forbidden(N_("Only the brand accepts or returns a deliverable."))
    granted.require("deliverable.accept")


def accept(
    session: Session, found: DeliverableAccess, *, expected_version: int | None = None
) -> Deliverable:
    granted, deliverable = found.granted, found.deliverable
    _require_brand(granted)
    _require_open(granted)
    transitions.check_version(deliverable, expected_version)
    if deliverable.status != DeliverableStatus.delivered:
        raise Conflict(
            N_("Only a delivered deliverable is accepted; this one is %(status)s."),
            params={"status": str(deliverable.status)},
        )
    now = utcnow()
    user = granted.actor.user
    transitions.transition(
        session,
        deliverable,
        expected_statuses=(DeliverableStatus.delivered,),
        conflict=N_("The deliverable changed while you were accepting it: reload it."),
        status=DeliverableStatus.accepted,
        decided_at=now,
        decided_by_id=user.id,
        decided_by_name=user.name,
        return_reason="",
        updated_at=now,
    )
    _audit(session, granted, "deliverable_accepted", deliverable, {"round": deliverable.rounds})
    return deliverable


def return_(
    session: Session,
    found: DeliverableAccess,
    data: ReturnIn,
    *,
    expected_version: int | None = None,
) -> Deliverable:
    """Send a delivery back with the reason; the agency delivers again."""
    granted, deliverable = found.granted, found.deliverable
    _require_brand(granted)
    _require_open(granted)
    transitions.check_version(deliverable, expected_version)
    reason = data.reason.strip()
    if not reason:
        raise InvalidInput(field_errors=[FieldError("reason", N_("Say what is missing."))])
    if deliverable.status != DeliverableStatus.delivered:
        raise Conflict(
            N_("Only a delivered deliverable is returned; this one is %(status)s."),
            params={"status": str(deliverable.status)},
        )
    now = utcnow()
    user = granted.actor.user
    transitions.transition(
        session,
        deliverable,
        expected_statuses=(DeliverableStatus.delivered,),
        conflict=N_("The deliverable changed while you were returning it: reload it."),
        status=DeliverableStatus.returned,
        decided_at=now,
        decided_by_id=user.id,
        decided_by_name=user.name,
        return_reason=reason,
        updated_at=now,
    )
    _audit(
        session,
        granted,
        "deliverable_returned",
        deliverable,
        {"round": deliverable.rounds, "reason": reason},
    )
    return deliverable
