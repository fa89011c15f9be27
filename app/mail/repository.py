"""Queries on the development outbox (mail kept instead of sent, in development only)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.jobs.models import DevMail


def store_dev_mail(session: Session, *, to: str, subject: str, text: str, html: str) -> DevMail:
    mail = DevMail(to=to, subject=subject[:300], text=text, html=html)
    session.add(mail)
    session.flush()
    return mail


def latest_dev_mails(session: Session, *, limit: int) -> Sequence[DevMail]:
    return session.exec(
        select(DevMail).order_by(col(DevMail.created_at).desc(), col(DevMail.id)).limit(limit)
    ).all()
