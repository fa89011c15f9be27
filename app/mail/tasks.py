"""The ``send_email`` job."""

from __future__ import annotations

from sqlmodel import Session

from app.config import Settings
from app.jobs.service import Job, handler
from app.mail.delivery import OutgoingMail, deliver
from app.mail.service import SEND_EMAIL


# Once sent (or given up on), only who and what stay in the outbox: the bodies may
# carry a link with a secret token.
@handler(SEND_EMAIL, keep=("to", "template", "subject"))
def send_email(session: Session, settings: Settings, job: Job) -> None:
    deliver(session, settings, OutgoingMail.from_payload(job.payload))
