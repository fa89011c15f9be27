"""Invitations: by e-mail, single-use, expiring, revocable; accepted only by the invited address."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.db import utcnow
from app.engagements.models import Engagement
from app.tenancy.models import Invitation, Membership, Organization, OrgKind, Role
from tests.conftest import csrf_of
from tests.engagement_factories import make_parties
from tests.engagement_factories import open_engagement as open_engagement_for
from tests.factories import add_member, bearer, create_org, create_token, create_user
from tests.factories import sign_in as sign_in_as
from tests.smtp import SmtpServer

NEW_PASSWORD = "quiet river lantern maple"


@pytest.fixture
def brand(db: Session) -> Organization:
    org = create_org(db, kind=OrgKind.brand, name="Cumbre Coffee")
    owner = create_user(db, email="owner@cumbre.example", name="Olga Owner")
    add_member(db, org, owner, Role.owner)
    return org


@pytest.fixture
def owner(mail_client: TestClient, brand: Organization) -> Iterator[TestClient]:
    """The brand owner's browser, signed in."""
    mail_client.headers["X-CSRF-Token"] = sign_in_as(mail_client, "owner@cumbre.example")
    yield mail_client


def invite(client: TestClient, org: Organization, email: str, role: str = "reviewer", **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/orgs/{org.slug}/invitations", data={"email": email, "role": role, **extra}
    )


def invitation_of(db: Session, email: str) -> Invitation:
    db.expire_all()
    return db.exec(
        select(Invitation)
        .where(Invitation.email == email)
        .order_by(col(Invitation.created_at).desc())
    ).first()  # type: ignore[return-value]


def new_browser(mail_app) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(mail_app, follow_redirects=False)


def accept_with_sign_up(browser: TestClient, path: str, **fields: str):  # type: ignore[no-untyped-def]
    page = browser.get(path)
    assert page.status_code == 200, page.text
    data = {"name": "Rita Reviewer", "password": NEW_PASSWORD, "csrf_token": csrf_of(page.text)}
    data.update(fields)
    return browser.post(path, data=data)


class TestInvitingAMember:
    def test_the_mail_arrives_with_a_link_that_signs_the_new_person_up_into_the_role(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        response = invite(owner, brand, "Rita@Cumbre.Example")
        assert response.status_code == 200, response.text
        assert "Invitation sent to rita@cumbre.example" in response.text
        [mail] = smtp.inbox.wait_for(1)
        assert mail.recipients == ["rita@cumbre.example"]
        assert mail.subject == "Olga Owner invites you to Cumbre Coffee on Brandkeep"
        assert "join Cumbre Coffee on Brandkeep as Reviewer" in mail.part("plain")
        path = mail.link("/invitations/")
        assert f"http://testserver{path}" in mail.part("html")
        # Only the hash of the token is stored.
        token = path.rsplit("/", 1)[1]
        stored = invitation_of(db, "rita@cumbre.example")
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        stored_rows = db.execute(sa.text("SELECT * FROM invitation")).all()
        assert token not in str(stored_rows)

        rita = new_browser(mail_app)
        page = rita.get(path)
        assert "Olga Owner invites you to Cumbre Coffee as Reviewer." in page.text
        response = accept_with_sign_up(rita, path)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/orgs/{brand.slug}/members"
        members = rita.get(f"/orgs/{brand.slug}/members")
        assert members.status_code == 200 and "Welcome to Cumbre Coffee." in members.text
        user = db.exec(select(User).where(User.email == "rita@cumbre.example")).one()
        membership = db.exec(select(Membership).where(Membership.user_id == user.id)).one()
        assert (membership.organization_id, membership.role) == (brand.id, "reviewer")
        assert invitation_of(db, "rita@cumbre.example").accepted_by_id == user.id

    def test_the_link_works_only_once(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "once@cumbre.example")
        path = smtp.inbox.wait_for(1)[0].link("/invitations/")
        assert accept_with_sign_up(new_browser(mail_app), path).status_code == 303
        again = new_browser(mail_app)
        page = again.get(path)
        assert page.status_code == 410
        assert "already been accepted" in page.text
        assert "Ask Olga Owner at Cumbre Coffee to send you a new invitation." in page.text
        # Posting it again signs nobody in and adds nobody.
        response = again.post(path, data={"name": "X", "password": NEW_PASSWORD, "csrf_token": "x"})
        assert response.status_code in (403, 410)
        assert again.get("/home").status_code == 303
        assert db.exec(select(func.count()).select_from(Membership)).one() == 2

    def test_an_existing_account_signs_in_first_and_then_gets_the_membership(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        other_org = create_org(db, kind=OrgKind.brand, name="Elsewhere")
        add_member(db, other_org, create_user(db, email="pat@cumbre.example", name="Pat"), "viewer")
        invite(owner, brand, "pat@cumbre.example", role="lead")
        path = smtp.inbox.wait_for(1)[0].link("/invitations/")
        pat = new_browser(mail_app)
        page = pat.get(path)
        assert "Sign in to accept" in page.text
        # Signing up again with the same address is refused: no silent sign-in.
        refused = pat.post(
            path, data={"name": "Pat", "password": NEW_PASSWORD, "csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 422 and "already exists; sign in instead" in refused.text
        assert pat.get("/home").status_code == 303
        csrf = sign_in_as(pat, "pat@cumbre.example")
        assert "You are signed in as pat@cumbre.example" in pat.get(path).text
        accepted = pat.post(path, data={"csrf_token": csrf})
        assert accepted.status_code == 303
        user = db.exec(select(User).where(User.email == "pat@cumbre.example")).one()
        roles = db.exec(
            select(Membership.role).where(
                Membership.user_id == user.id, Membership.organization_id == brand.id
            )
        ).all()
        assert roles == ["lead"]

    def test_someone_signed_in_with_another_address_cannot_accept_it(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "meant@cumbre.example")
        path = smtp.inbox.wait_for(1)[0].link("/invitations/")
        create_user(db, email="intruder@example.com", name="Ivan")
        intruder = new_browser(mail_app)
        csrf = sign_in_as(intruder, "intruder@example.com")
        assert "and you are signed in as intruder@example.com" in intruder.get(path).text
        response = intruder.post(path, data={"csrf_token": csrf})
        assert response.status_code == 403
        assert "This invitation is for meant@cumbre.example" in response.text
        assert invitation_of(db, "meant@cumbre.example").accepted_at is None
        assert (
            db.exec(
                select(func.count())
                .select_from(Membership)
                .where(Membership.organization_id == brand.id)
            ).one()
            == 1
        )

    def test_with_the_domain_allowed_a_colleague_at_that_domain_may_accept(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "team@cumbre.example", allow_domain="yes")
        path = smtp.inbox.wait_for(1)[0].link("/invitations/")
        elsewhere = accept_with_sign_up(new_browser(mail_app), path, email="eve@example.org")
        assert elsewhere.status_code == 422
        assert "another one at cumbre.example" in elsewhere.text
        colleague = accept_with_sign_up(new_browser(mail_app), path, email="ana@cumbre.example")
        assert colleague.status_code == 303
        assert db.exec(select(User).where(User.email == "ana@cumbre.example")).one()

    def test_weak_passwords_are_refused_on_the_invitation_sign_up_too(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "weak@cumbre.example")
        path = smtp.inbox.wait_for(1)[0].link("/invitations/")
        response = accept_with_sign_up(new_browser(mail_app), path, password="password1234")
        assert response.status_code == 422
        assert "most common ones or too easy to guess" in response.text
        assert invitation_of(db, "weak@cumbre.example").accepted_at is None

    def test_bad_input_comes_back_beside_the_fields(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer
    ) -> None:
        response = invite(owner, brand, "not an address", role="manager")
        assert response.status_code == 422
        assert "Enter a valid e-mail address." in response.text
        assert "This role does not exist in this organization." in response.text
        invite(owner, brand, "twice@cumbre.example")
        again = invite(owner, brand, "twice@cumbre.example")
        assert again.status_code == 422 and "already has an open invitation" in again.text
        member = invite(owner, brand, "owner@cumbre.example")
        assert "owner@cumbre.example is already a member." in member.text
        assert len(smtp.inbox.wait_for(1)) == 1


class TestBadLinks:
    def test_expired_revoked_and_forged_links_say_so_and_whom_to_ask(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "late@cumbre.example")
        invite(owner, brand, "withdrawn@cumbre.example")
        mails = smtp.inbox.wait_for(2)
        links = {mail.recipients[0]: mail.link("/invitations/") for mail in mails}
        late = invitation_of(db, "late@cumbre.example")
        late.expires_at = utcnow() - timedelta(minutes=1)
        db.add(late)
        db.commit()
        withdrawn = invitation_of(db, "withdrawn@cumbre.example")
        revoke = owner.post(f"/orgs/{brand.slug}/invitations/{withdrawn.id}/revoke")
        assert revoke.status_code == 200 and "was withdrawn" in revoke.text

        visitor = new_browser(mail_app)
        expired = visitor.get(links["late@cumbre.example"])
        assert expired.status_code == 410 and "This invitation has expired." in expired.text
        assert "Ask Olga Owner at Cumbre Coffee" in expired.text
        revoked = visitor.get(links["withdrawn@cumbre.example"])
        assert revoked.status_code == 410 and "This invitation was withdrawn." in revoked.text
        for forged in (
            "/invitations/" + secrets.token_urlsafe(32),
            "/invitations/x",
            "/invitations/" + "a" * 500,
        ):
            page = visitor.get(forged)
            assert page.status_code == 404, forged
            assert "This invitation link is not valid" in page.text
            assert "Cumbre" not in page.text
        # Accepting any of them signs nobody up or in.
        csrf = csrf_of(visitor.get("/sign-in").text)
        for path in (*links.values(), "/invitations/" + secrets.token_urlsafe(32)):
            response = visitor.post(
                path, data={"name": "Mallory", "password": NEW_PASSWORD, "csrf_token": csrf}
            )
            assert response.status_code in (404, 410), path
        assert visitor.get("/home").status_code == 303
        assert db.exec(select(func.count()).select_from(User)).one() == 1

    def test_re_sending_makes_a_new_link_and_the_old_one_stops_working(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "again@cumbre.example")
        first = smtp.inbox.wait_for(1)[0].link("/invitations/")
        invitation = invitation_of(db, "again@cumbre.example")
        invitation.expires_at = utcnow() - timedelta(days=1)
        db.add(invitation)
        db.commit()
        listed = owner.get(f"/orgs/{brand.slug}/invitations")
        assert "again@cumbre.example" in listed.text and "expired" in listed.text
        resent = owner.post(f"/orgs/{brand.slug}/invitations/{invitation.id}/resend")
        assert resent.status_code == 200 and "the old link no longer works" in resent.text
        second = smtp.inbox.wait_for(2)[1].link("/invitations/")
        assert second != first
        visitor = new_browser(mail_app)
        assert visitor.get(first).status_code == 404
        assert accept_with_sign_up(visitor, second).status_code == 303


class TestPages:
    def test_the_members_page_loads_pending_invitations_and_the_form_for_owners_only(
        self, owner: TestClient, brand: Organization, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        invite(owner, brand, "pending@cumbre.example")
        members = owner.get(f"/orgs/{brand.slug}/members")
        assert f'hx-get="http://testserver/orgs/{brand.slug}/invitations"' in members.text
        block = owner.get(
            f"/orgs/{brand.slug}/invitations",
            headers={"HX-Request": "true", "HX-Target": "pending-invitations"},
        )
        assert block.status_code == 200
        assert "<html" not in block.text
        assert "pending@cumbre.example" in block.text and "Send invitation" in block.text
        # A reviewer sees neither.
        reviewer = create_user(db, email="rev@cumbre.example", name="Rev")
        add_member(db, brand, reviewer, "reviewer")
        browser = new_browser(mail_app)
        sign_in_as(browser, "rev@cumbre.example")
        assert "pending-invitations" not in browser.get(f"/orgs/{brand.slug}/members").text
        assert browser.get(f"/orgs/{brand.slug}/invitations").status_code == 403

    def test_the_engagements_page_offers_to_invite_an_agency_to_owners_and_leads(
        self, owner: TestClient
    ) -> None:
        page = owner.get("/engagements")
        assert "Invite an agency that is not on Brandkeep" in page.text
        assert owner.get("/agency-invitations/new").status_code == 200


class TestInvitingAnAgency:
    def test_accepting_creates_the_agency_with_its_owner_and_opens_the_proposed_engagement(
        self, mail_client: TestClient, smtp: SmtpServer, db: Session, mail_app
    ) -> None:
        # The demo's situation: a brand that already works with another agency.
        brand = create_org(db, kind=OrgKind.brand, name="Acme Outdoor")
        northwind = create_org(db, kind=OrgKind.agency, name="Northwind Social")
        parties = make_parties(db, brand=brand, agency=northwind, signs_in=True)
        lead = parties.lead
        rival = open_engagement_for(db, parties, name="Northwind secret plan")
        lead_browser = mail_client
        lead_browser.headers["X-CSRF-Token"] = sign_in_as(lead_browser, lead.email)
        response = lead_browser.post(
            "/agency-invitations",
            data={
                "org_slug": brand.slug,
                "agency_name": "Bluepeak Media",
                "email": "boss@bluepeak.example",
                "engagement_name": "Social media 2027",
                "start_date": "2027-01-01",
                "budget": "48000.50",
                "currency": "eur",
            },
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/orgs/{brand.slug}/invitations"
        [mail] = smtp.inbox.wait_for(1)
        assert mail.subject == "Acme Outdoor invites Bluepeak Media to work together on Brandkeep"
        assert "Social media 2027" in mail.part("plain") and "€48,000.50" in mail.part("plain")
        invitation = invitation_of(db, "boss@bluepeak.example")
        assert invitation.engagement_proposal == {
            "name": "Social media 2027",
            "start_date": "2027-01-01",
            "budget_minor": 4800050,
            "currency": "EUR",
        }

        boss = new_browser(mail_app)
        path = mail.link("/invitations/")
        assert "Bluepeak Media" in boss.get(path).text
        accepted = accept_with_sign_up(boss, path, name="Bo Boss")
        assert accepted.status_code == 303, accepted.text
        agency = db.exec(select(Organization).where(Organization.name == "Bluepeak Media")).one()
        assert agency.kind == "agency"
        boss_user = db.exec(select(User).where(User.email == "boss@bluepeak.example")).one()
        owner_membership = db.exec(
            select(Membership).where(Membership.organization_id == agency.id)
        ).one()
        assert (owner_membership.user_id, owner_membership.role) == (boss_user.id, "owner")
        engagement = db.exec(select(Engagement).where(Engagement.agency_id == agency.id)).one()
        assert (engagement.brand_id, engagement.status, engagement.name) == (
            brand.id,
            "proposed",
            "Social media 2027",
        )
        assert engagement.budget_minor == 4800050 and engagement.currency == "EUR"
        assert accepted.headers["location"] == f"/engagements/{engagement.id}"
        page = boss.get(accepted.headers["location"])
        assert page.status_code == 200 and "Social media 2027" in page.text
        # The new agency sees nothing of the brand's work with another agency.
        assert "Northwind" not in boss.get("/engagements").text
        assert boss.get(f"/engagements/{rival.id}").status_code == 404

    def test_an_agency_or_a_reviewer_cannot_invite_agencies(
        self, mail_client: TestClient, db: Session
    ) -> None:
        brand = create_org(db, kind=OrgKind.brand, name="Acme")
        agency = create_org(db, kind=OrgKind.agency, name="Some Agency")
        person = create_user(db, email="both@example.com", name="Both")
        add_member(db, brand, person, "reviewer")
        add_member(db, agency, person, "owner")
        mail_client.headers["X-CSRF-Token"] = sign_in_as(mail_client, "both@example.com")
        assert "Only owners and account leads" in mail_client.get("/agency-invitations/new").text
        for org in (brand, agency):
            response = mail_client.post(
                "/agency-invitations",
                data={"org_slug": org.slug, "agency_name": "X", "email": "x@example.com"},
            )
            assert response.status_code == 403, org.kind
        assert db.exec(select(func.count()).select_from(Invitation)).one() == 0


class TestApi:
    def test_invite_list_resend_and_withdraw(
        self, mail_client: TestClient, brand: Organization, smtp: SmtpServer, db: Session
    ) -> None:
        owner = db.exec(select(User).where(User.email == "owner@cumbre.example")).one()
        auth = bearer(create_token(db, owner, brand))
        url = f"/api/v1/orgs/{brand.slug}/invitations"
        created = mail_client.post(
            url,
            json={"email": "api@cumbre.example", "role": "viewer"},
            headers={**auth, "Idempotency-Key": "invite-1"},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["email"], body["role"], body["kind"]) == (
            "api@cumbre.example",
            "viewer",
            "member",
        )
        replay = mail_client.post(
            url,
            json={"email": "api@cumbre.example", "role": "viewer"},
            headers={**auth, "Idempotency-Key": "invite-1"},
        )
        assert replay.json() == body
        listed = mail_client.get(url, headers=auth).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
        assert "token" not in str(listed)
        resent = mail_client.post(f"{url}/{body['id']}/resend", headers=auth)
        assert resent.status_code == 200
        assert len(smtp.inbox.wait_for(2)) == 2
        assert mail_client.delete(f"{url}/{body['id']}", headers=auth).status_code == 204
        assert mail_client.get(url, headers=auth).json()["total"] == 0
        bad = mail_client.post(url, json={"email": "nope", "role": "viewer"}, headers=auth)
        assert bad.status_code == 422
        agency = mail_client.post(
            f"/api/v1/orgs/{brand.slug}/agency-invitations",
            json={
                "email": "agency@example.com",
                "agency_name": "New Agency",
                "proposal": {"name": "Launch", "start_date": "2027-02-01", "currency": "XYZ"},
            },
            headers=auth,
        )
        assert agency.status_code == 422
        assert agency.json()["errors"][0]["field"] == "currency"
