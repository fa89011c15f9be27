"""Pages: the bell, my notifications (mark read, all read: in place with HTMX), my choices."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.datastructures import FormData

from app import web
from app.deps import PageActor, SessionDep, verify_csrf
from app.errors import N_, NotFound
from app.notifications import service
from app.notifications.models import Channel, NotificationKind
from app.tenancy.service import Actor

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

web.register_labels("notification_kind_names", service.KIND_NAMES)
NO_SUCH_NOTIFICATION = N_("No notification here, or it is not yours.")


async def form_data(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _list_context(db: Session, actor: Actor, page: int) -> dict[str, Any]:
    rows, total = service.list_for(db, actor, page=page)
    return {
        "user": actor.user,
        "notifications": rows,
        "unread": service.unread_count(db, actor),
        "page_number": page,
        "has_next": page * service.PAGE_SIZE < total,
    }


def _notification_id(form: FormData) -> uuid.UUID:
    try:
        return uuid.UUID(str(form.get("notification") or ""))
    except ValueError:
        raise NotFound(NO_SUCH_NOTIFICATION) from None


@router.get("/notifications", name="notifications")
def notifications_page(
    request: Request,
    db: SessionDep,
    actor: PageActor,
    page: Annotated[int, Query(ge=1, le=10000)] = 1,
) -> Response:
    return web.render(request, "notifications/list.html", _list_context(db, actor, page))


@router.get("/notifications/bell", name="notification_bell")
def bell(request: Request, db: SessionDep, actor: PageActor) -> Response:
    """The header's bell with the unread count, loaded after the page (and refreshed)."""
    return web.render(
        request,
        "notifications/bell.html",
        {"user": actor.user, "unread": service.unread_count(db, actor)},
    )


@router.post("/notifications/read", name="mark_notification_read")
def mark_read(request: Request, db: SessionDep, actor: PageActor, form: FormDep) -> Response:
    service.mark_read(db, actor, _notification_id(form))
    if not web.is_htmx(request):
        return web.redirect(request, "/notifications")
    return web.render(request, "notifications/list.html", _list_context(db, actor, 1))


@router.post("/notifications/open", name="open_notification")
def open_notification(
    request: Request, db: SessionDep, actor: PageActor, form: FormDep
) -> Response:
    """Mark it read and go to its post."""
    notification = service.mark_read(db, actor, _notification_id(form))
    return web.redirect(request, f"/posts/{notification.post_id}")


@router.post("/notifications/read-all", name="mark_all_notifications_read")
def mark_all_read(request: Request, db: SessionDep, actor: PageActor) -> Response:
    service.mark_all_read(db, actor)
    if not web.is_htmx(request):
        return web.redirect(request, "/notifications")
    return web.render(request, "notifications/list.html", _list_context(db, actor, 1))


# --- choices ---------------------------------------------------------------------


@router.get("/account/notifications", name="notification_settings")
def settings_page(request: Request, db: SessionDep, actor: PageActor) -> Response:
    return web.render(
        request,
        "accounts/notifications.html",
        {"user": actor.user, "choices": service.preferences(db, actor), "saved": False},
    )


@router.post("/account/notifications", name="save_notification_settings")
def save_settings(request: Request, db: SessionDep, actor: PageActor, form: FormDep) -> Response:
    # An unticked checkbox sends nothing: every kind is saved, with the boxes ticked.
    wanted: dict[NotificationKind, set[Channel]] = {kind: set() for kind in NotificationKind}
    for kind in NotificationKind:
        for channel in Channel:
            if form.get(f"{kind.value}.{channel.value}"):
                wanted[kind].add(channel)
    choices = service.set_preferences(db, actor, wanted)
    if not web.is_htmx(request):
        return web.redirect(request, "/account/notifications")
    return web.render(
        request,
        "accounts/notifications.html",
        {"user": actor.user, "choices": choices, "saved": True},
    )
