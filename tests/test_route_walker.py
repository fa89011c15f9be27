"""Every route keeps organizations apart; and the walk that says so can tell when one does not."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlmodel import Session, col, select

from app.config import Settings
from app.db import Database
from app.deps import ApiActor, PageActor, SessionDep
from app.errors import NotFound
from app.main import create_app
from app.tenancy.deps import ApiOrg
from app.tenancy.models import Membership, Organization
from app.tenancy.repository import get_org_by_slug_unscoped
from tests.route_walker import walk

MEMBER_ROUTES = {
    ("GET", "/orgs/{org_slug}/members"),
    ("POST", "/orgs/{org_slug}/members"),
    ("POST", "/orgs/{org_slug}/members/{membership_id}/role"),
    ("POST", "/orgs/{org_slug}/members/{membership_id}/remove"),
    ("GET", "/api/v1/orgs/{org_slug}/members"),
    ("POST", "/api/v1/orgs/{org_slug}/members"),
    ("GET", "/api/v1/orgs/{org_slug}/members/{membership_id}"),
    ("PATCH", "/api/v1/orgs/{org_slug}/members/{membership_id}"),
    ("DELETE", "/api/v1/orgs/{org_slug}/members/{membership_id}"),
}


def test_every_route_is_walked(app: FastAPI, db: Session) -> None:
    report = walk(app, db)
    assert not report.problems, "\n".join(report.problems)
    # It cannot pass by visiting nothing: the member routes were tried as the attacker...
    assert report.foreign >= MEMBER_ROUTES
    assert ("POST", "/account/tokens/{token_id}/revoke") in report.foreign
    # ...routes that take an organization in their form too...
    assert ("POST", "/switch-organization") in report.foreign
    assert ("POST", "/account/tokens") in report.foreign
    # ...and everything that is not public was tried without signing in.
    assert report.anonymous >= MEMBER_ROUTES | {("GET", "/home"), ("GET", "/api/v1/me")}
    assert ("GET", "/sign-in") not in report.anonymous


def _leaky_app(settings: Settings, database: Database) -> FastAPI:
    app = create_app(settings, database)

    @app.get("/api/v1/orgs/{org_slug}/leak")
    def api_leak(db: SessionDep, actor: ApiActor, org_slug: str) -> dict[str, str]:
        org = get_org_by_slug_unscoped(db, org_slug)  # signed in, but not scoped
        if org is None:
            raise NotFound()
        return {"name": org.name}

    @app.get("/orgs/{org_slug}/leak")
    def page_leak(db: SessionDep, actor: PageActor, org_slug: str) -> HTMLResponse:
        org = get_org_by_slug_unscoped(db, org_slug)
        if org is None:
            raise NotFound()
        return HTMLResponse(f"<p>{org.name}</p>")

    return app


def _problems_about(problems: list[str], label: str) -> list[str]:
    """What the walk says about one route (the rest of the app is test_every_route_is_walked's)."""
    return [problem for problem in problems if problem.startswith(label)]


def test_the_walker_catches_an_unscoped_route(
    settings: Settings, database: Database, db: Session
) -> None:
    report = walk(_leaky_app(settings, database), db)
    api = _problems_about(report.problems, "GET /api/v1/orgs/{org_slug}/leak ")
    page = _problems_about(report.problems, "GET /orgs/{org_slug}/leak ")
    assert api and page, report.problems
    assert any("expected 404, got 200" in problem for problem in api)
    assert any("expected 404, got 200" in problem for problem in page)
    assert any("shows the victim's" in problem for problem in api + page)


def test_the_walker_catches_an_unscoped_list_without_parameters(
    settings: Settings, database: Database, db: Session
) -> None:
    app = create_app(settings, database)

    @app.get("/api/v1/all-organizations")
    def all_organizations(db: SessionDep, actor: ApiActor) -> list[str]:
        return list(db.exec(select(Organization.name).order_by(col(Organization.name))))

    report = walk(app, db)
    problems = _problems_about(report.problems, "GET /api/v1/all-organizations ")
    assert len(problems) == 1, report.problems
    assert problems[0].startswith("GET /api/v1/all-organizations as the attacker:")
    assert "shows the victim's 'Victim Org " in problems[0]


def test_the_walker_catches_a_route_that_forgets_sign_in(
    settings: Settings, database: Database, db: Session
) -> None:
    app = create_app(settings, database)

    @app.get("/api/v1/open")
    def api_open() -> dict[str, str]:
        return {"status": "open"}

    @app.post("/reports/open")
    def page_open() -> HTMLResponse:
        return HTMLResponse("<p>done</p>")

    report = walk(app, db)
    [api] = _problems_about(report.problems, "GET /api/v1/open ")
    [page] = _problems_about(report.problems, "POST /reports/open ")
    assert api.startswith(
        "GET /api/v1/open anonymous: expected 401 problem details with WWW-Authenticate: Bearer, "
        "got 200"
    )
    assert page.startswith("POST /reports/open anonymous: expected a 303 redirect to /sign-in")


def test_a_parameter_without_a_registry_entry_fails_the_walk_and_says_what_to_add(
    settings: Settings, database: Database, db: Session
) -> None:
    app = create_app(settings, database)

    @app.get("/api/v1/widgets/{widget_id}")
    def widget(actor: ApiActor, widget_id: str) -> dict[str, str]:
        raise NotFound()

    report = walk(app, db)
    [problem] = _problems_about(report.problems, "GET /api/v1/widgets/{widget_id}:")
    assert "Add an entry for 'widget_id' to PARAMETERS in tests/route_walker.py" in problem


def test_the_walker_catches_a_member_loaded_outside_the_organization(
    settings: Settings, database: Database, db: Session
) -> None:
    """'My organization, your member': the organization is checked, the member is not."""
    app = create_app(settings, database)

    @app.get("/api/v1/orgs/{org_slug}/people/{membership_id}")
    def person(db: SessionDep, access: ApiOrg, membership_id: uuid.UUID) -> dict[str, str]:
        membership = db.get(Membership, membership_id)  # by id alone: any organization's
        if membership is None:
            raise NotFound()
        return {"role": membership.role}

    report = walk(app, db)
    problems = _problems_about(
        report.problems, "GET /api/v1/orgs/{org_slug}/people/{membership_id} "
    )
    assert problems == [
        "GET /api/v1/orgs/{org_slug}/people/{membership_id} as the attacker with "
        "org_slug=<attacker's>, membership_id=<victim's>: expected the answer for an id that "
        'does not exist (404), got 200: {"role":"reviewer"}'
    ], report.problems
