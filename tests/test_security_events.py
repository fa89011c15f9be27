"""Security events: recorded with time, person, IP and user agent; shown to the owners."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app import i18n
from app.accounts import security_events
from app.accounts.models import ApiToken, SecurityEvent, User
from app.accounts.security_events import SecurityEventKind
from app.tenancy.models import Membership, Organization, OrgKind, Role
from tests.conftest import csrf_of
from tests.factories import (
    PASSWORD,
    add_member,
    bearer,
    create_org,
    create_token,
    create_user,
    sign_in,
)

IP = "203.0.113.9"
UA = "BrandkeepTest/1.0 (security events)"


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A browser with a known address and user agent."""
    with TestClient(
        app, follow_redirects=False, client=(IP, 4711), headers={"User-Agent": UA}
    ) as client:
        yield client


@dataclass
class Org:
    org: Organization
    owner: User
    reviewer: User
    outsider: User  # has an account, no membership yet


@pytest.fixture
def acme(db: Session) -> Org:
    org = create_org(db, kind=OrgKind.brand, name="Acme Outdoor")
    owner = create_user(db, email="owner@acme.example", name="Olga Owner")
    reviewer = create_user(db, email="reviewer@acme.example", name="Rita Reviewer")
    outsider = create_user(db, email="new@acme.example", name="Nuno New", password=PASSWORD)
    add_member(db, org, owner, Role.owner)
    add_member(db, org, reviewer, Role.reviewer)
    # Start each test from no events (setting up recorded two memberships).
    db.execute(sa.delete(SecurityEvent))
    db.commit()
    return Org(org, owner, reviewer, outsider)


def events(db: Session, kind: SecurityEventKind | None = None) -> list[SecurityEvent]:
    db.expire_all()
    query = select(SecurityEvent).order_by(col(SecurityEvent.at))
    if kind is not None:
        query = query.where(SecurityEvent.kind == kind)
    return list(db.exec(query).all())


def only(db: Session, kind: SecurityEventKind) -> SecurityEvent:
    found = events(db, kind)
    assert len(found) == 1, [e.kind for e in events(db)]
    event = found[0]
    assert (event.ip_address, event.user_agent) == (IP, UA), event
    assert event.at is not None
    return event


def membership_id(db: Session, org: Organization, user: User) -> str:
    db.expire_all()
    membership = db.exec(
        select(Membership).where(
            Membership.organization_id == org.id, Membership.user_id == user.id
        )
    ).one()
    return str(membership.id)


class TestEachKindIsRecorded:
    def test_sign_in_failed_sign_in_and_sign_out(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        page = browser.get("/sign-in")
        browser.post(
            "/sign-in",
            data={
                "email": "Owner@Acme.Example",
                "password": "wrong password!",
                "csrf_token": csrf_of(page.text),
            },
        )
        failed = only(db, SecurityEventKind.sign_in_failed)
        assert failed.user_id == acme.owner.id  # the account that was tried
        assert failed.email == "Owner@Acme.Example"

        csrf = sign_in(browser, acme.owner.email)
        assert only(db, SecurityEventKind.sign_in).user_id == acme.owner.id

        assert browser.post("/sign-out", data={"csrf_token": csrf}).status_code == 303
        assert only(db, SecurityEventKind.sign_out).user_id == acme.owner.id

    def test_a_failed_sign_in_for_an_unknown_email_names_nobody(
        self, browser: TestClient, db: Session
    ) -> None:
        page = browser.get("/sign-in")
        browser.post(
            "/sign-in",
            data={"email": "ghost@example.com", "password": "x", "csrf_token": csrf_of(page.text)},
        )
        event = only(db, SecurityEventKind.sign_in_failed)
        assert (event.user_id, event.email) == (None, "ghost@example.com")

    def test_sign_out_everywhere(self, browser: TestClient, acme: Org, db: Session) -> None:
        csrf = sign_in(browser, acme.owner.email)
        browser.post("/account/sign-out-everywhere", data={"csrf_token": csrf})
        event = only(db, SecurityEventKind.sign_out_everywhere)
        assert event.user_id == acme.owner.id and event.detail == {"sessions": 1}

    def test_password_change(self, browser: TestClient, acme: Org, db: Session) -> None:
        csrf = sign_in(browser, acme.owner.email)
        response = browser.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": "an even longer new passphrase",
                "csrf_token": csrf,
            },
        )
        assert response.status_code == 303
        assert only(db, SecurityEventKind.password_changed).user_id == acme.owner.id

    def test_a_refused_password_change_records_nothing(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        csrf = sign_in(browser, acme.owner.email)
        browser.post(
            "/account/password",
            data={"current_password": "not it", "new_password": "x" * 20, "csrf_token": csrf},
        )
        assert events(db, SecurityEventKind.password_changed) == []

    def test_api_token_created_and_revoked(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        csrf = sign_in(browser, acme.owner.email)
        created = browser.post(
            "/account/tokens",
            data={"org_slug": acme.org.slug, "name": "CI", "scope": "read", "csrf_token": csrf},
        )
        assert created.status_code == 201
        event = only(db, SecurityEventKind.api_token_created)
        token = db.exec(select(ApiToken)).one()
        assert (event.user_id, event.organization_id) == (acme.owner.id, acme.org.id)
        assert event.detail == {"name": "CI", "prefix": token.prefix, "scope": "read"}
        assert token.prefix and "bk_" in token.prefix

        browser.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf})
        browser.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf})
        revoked = only(db, SecurityEventKind.api_token_revoked)  # once, not twice
        assert revoked.organization_id == acme.org.id

    def test_membership_added_role_changed_and_removed_on_pages(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        csrf = sign_in(browser, acme.owner.email)
        slug = acme.org.slug
        browser.post(
            f"/orgs/{slug}/members",
            data={"email": acme.outsider.email, "role": "viewer", "csrf_token": csrf},
        )
        added = only(db, SecurityEventKind.membership_added)
        assert (added.user_id, added.actor_id, added.organization_id) == (
            acme.outsider.id,
            acme.owner.id,
            acme.org.id,
        )
        assert added.detail == {"role": "viewer"}

        member = membership_id(db, acme.org, acme.outsider)
        browser.post(
            f"/orgs/{slug}/members/{member}/role",
            data={"role": "reviewer", "version": "1", "csrf_token": csrf},
        )
        changed = only(db, SecurityEventKind.membership_role_changed)
        assert changed.detail == {"from": "viewer", "to": "reviewer"}
        assert changed.actor_id == acme.owner.id

        browser.post(
            f"/orgs/{slug}/members/{member}/remove", data={"version": "2", "csrf_token": csrf}
        )
        removed = only(db, SecurityEventKind.membership_removed)
        assert (removed.user_id, removed.detail) == (acme.outsider.id, {"role": "reviewer"})

    def test_membership_changes_through_the_api_are_recorded_too(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        raw = create_token(db, acme.owner, acme.org)
        response = browser.post(
            f"/api/v1/orgs/{acme.org.slug}/members",
            json={"email": acme.outsider.email, "role": "viewer"},
            headers=bearer(raw),
        )
        assert response.status_code == 201, response.text
        assert only(db, SecurityEventKind.membership_added).actor_id == acme.owner.id

    def test_a_refused_change_records_nothing(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        csrf = sign_in(browser, acme.owner.email)
        owner = membership_id(db, acme.org, acme.owner)
        response = browser.post(
            f"/orgs/{acme.org.slug}/members/{owner}/role",
            data={"role": "viewer", "version": "1", "csrf_token": csrf},
        )
        assert response.status_code == 409  # the last owner
        assert events(db, SecurityEventKind.membership_role_changed) == []

    @pytest.mark.parametrize(
        "kind", [SecurityEventKind.password_reset, SecurityEventKind.sso_settings_changed]
    )
    def test_record_takes_ip_and_user_agent_from_a_request(
        self, app: FastAPI, acme: Org, db: Session, kind: SecurityEventKind
    ) -> None:
        """For the password-reset and single sign-on code, which call record() themselves."""
        request = Request(
            {
                "type": "http",
                "app": app,
                "client": (IP, 1),
                "headers": [(b"user-agent", UA.encode())],
            }
        )
        security_events.record(
            db, kind, request=request, actor=acme.owner, organization_id=acme.org.id
        )
        db.commit()
        event = only(db, kind)
        assert (event.actor_id, event.organization_id) == (acme.owner.id, acme.org.id)


class TestTheOwnersPage:
    def test_an_owner_sees_the_orgs_events_and_its_members_not_another_orgs(
        self,
        browser: TestClient,
        acme: Org,
        db: Session,
        make_client,  # type: ignore[no-untyped-def]
    ) -> None:
        other = create_org(db, kind=OrgKind.agency, name="Bluepeak Media")
        stranger = create_user(db, email="stranger@bluepeak.example", name="Sam Stranger")
        add_member(db, other, stranger, Role.owner)
        # The reviewer also works for the other organization: what happens there stays there.
        add_member(db, other, acme.reviewer, Role.manager)
        create_token(db, acme.reviewer, other)
        sign_in(make_client(), stranger.email)
        sign_in(make_client(), acme.reviewer.email)

        security_events.record(
            db, SecurityEventKind.membership_added, user=acme.outsider, organization_id=acme.org.id
        )
        db.commit()

        sign_in(browser, acme.owner.email)
        page = browser.get(f"/orgs/{acme.org.slug}/security")
        assert page.status_code == 200
        text = page.text
        assert "Signed in" in text
        assert "Rita Reviewer" in text and "Olga Owner" in text
        assert "Member added" in text and "Nuno New" in text
        assert text.count("Member added") == 1  # not the reviewer's at Bluepeak
        assert IP in text and UA in text  # the owner's own sign-in
        assert "Sam Stranger" not in text and "stranger@bluepeak.example" not in text
        assert "API token created" not in text  # the reviewer's token belongs to Bluepeak
        assert "Manager" not in text  # the reviewer's role at Bluepeak

    def test_newest_first_in_the_viewers_time_zone(
        self, browser: TestClient, acme: Org, db: Session
    ) -> None:
        owner = db.get(User, acme.owner.id)
        assert owner is not None
        owner.timezone = "Asia/Tokyo"
        db.add(owner)
        db.commit()
        sign_in(browser, acme.owner.email)
        text = browser.get(f"/orgs/{acme.org.slug}/security").text
        times = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', text)
        assert [iso for iso, _ in times] == sorted((iso for iso, _ in times), reverse=True)
        newest = events(db)[-1]
        assert newest.kind == SecurityEventKind.sign_in
        assert times[0][1] == i18n.format_datetime(newest.at, "en", "Asia/Tokyo")

    def test_paginated(self, browser: TestClient, acme: Org, db: Session) -> None:
        for _ in range(5):
            security_events.record(db, SecurityEventKind.sign_out, user=acme.reviewer)
        db.commit()
        sign_in(browser, acme.owner.email)
        url = f"/orgs/{acme.org.slug}/security"
        first = browser.get(url, params={"limit": 3})
        assert first.text.count("<time ") == 3
        assert "Older" in first.text and "Newer" not in first.text
        last = browser.get(url, params={"limit": 3, "offset": 3})  # 6 events: 5 + the sign-in
        assert "Newer" in last.text and "Older" not in last.text
        assert browser.get(url, params={"limit": 0}).status_code == 422

    def test_a_non_owner_gets_403_and_a_stranger_404(
        self,
        browser: TestClient,
        acme: Org,
        db: Session,
        make_client,  # type: ignore[no-untyped-def]
    ) -> None:
        reviewer = make_client()
        sign_in(reviewer, acme.reviewer.email)
        refused = reviewer.get(f"/orgs/{acme.org.slug}/security")
        assert refused.status_code == 403
        assert "Only an owner of the organization" in refused.text
        members = reviewer.get(f"/orgs/{acme.org.slug}/members")
        assert members.status_code == 200
        assert f'/orgs/{acme.org.slug}/security"' not in members.text

        stranger = create_user(db, email="s@elsewhere.example", name="S")
        add_member(db, create_org(db, kind=OrgKind.agency), stranger, Role.owner)
        outside = make_client()
        sign_in(outside, stranger.email)
        assert outside.get(f"/orgs/{acme.org.slug}/security").status_code == 404

    def test_the_members_page_links_to_it_for_owners(self, browser: TestClient, acme: Org) -> None:
        sign_in(browser, acme.owner.email)
        page = browser.get(f"/orgs/{acme.org.slug}/members")
        assert f'/orgs/{acme.org.slug}/security"' in page.text

    def test_anonymous_visitors_are_sent_to_sign_in(self, browser: TestClient, acme: Org) -> None:
        response = browser.get(f"/orgs/{acme.org.slug}/security")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in")
