"""Single sign-on, end to end, against a real OpenID Connect provider on 127.0.0.1.

The provider is ``oidc-provider-mock`` (a Flask app built on Authlib's server side)
in a thread. The app runs under ``TestClient``; the browser's side of the dance
with the provider goes over real HTTP: our redirect to the provider's authorize
page, its form submitted with the chosen subject, its redirect back to our
callback with a code and a state. Nothing of Authlib is mocked: the app fetches
the discovery document, the keys and the tokens from the provider itself.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import werkzeug.serving
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_provider_mock import app as provider_app
from oidc_provider_mock import run_server_in_thread
from sqlmodel import Session, col, select

from app.accounts.models import SecurityEvent, User, UserIdentity
from app.config import Settings
from app.db import Database, utcnow
from app.main import create_app
from app.tenancy.models import Invitation, InvitationKind, Membership, Organization, OrgKind, Role
from tests.conftest import csrf_of
from tests.factories import PASSWORD, add_member, create_org, person_in, sign_in
from tests.test_row_level_security import app_role_url, runtime  # noqa: F401 - fixtures

APP = "http://testserver"
CLIENT_ID = "brandkeep-tests"
CLIENT_SECRET = "not-a-real-secret"
NOT_STARTED_HERE = "not started in this browser"
FAILED_CHECKS = "did not pass our checks"


# --- the provider, and the browser's side of the dance ---------------------------


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    """A real OpenID Connect provider; its issuer is its address."""
    with run_server_in_thread(require_nonce=True) as server:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        yield f"http://127.0.0.1:{port}"


@contextmanager
def impostor_provider(rewrite_host_of: str) -> Iterator[str]:
    """The same provider, except that one endpoint takes itself for another issuer.

    The app knows the provider as http://127.0.0.1:<port>. Rewriting the Host header
    of the token endpoint to localhost:<port> makes the provider sign ID tokens (with
    its real key) whose ``iss`` is http://localhost:<port>; rewriting it for the
    discovery document makes that document name http://localhost:<port> as issuer.
    """
    wsgi = provider_app(require_nonce=True)
    port: list[int] = []

    def rewriting(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == rewrite_host_of:
            environ["HTTP_HOST"] = f"localhost:{port[0]}"
        return wsgi(environ, start_response)

    server = werkzeug.serving.make_server("127.0.0.1", 0, rewriting, threaded=True)
    port.append(server.server_port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def browser_http() -> Iterator[httpx.Client]:
    """The browser talking to the provider (its own cookies, real HTTP)."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


def seed(issuer: str, sub: str, **claims: Any) -> None:
    """What the provider will say about ``sub`` (through its own /users endpoint)."""
    response = httpx.put(f"{issuer}/users/{sub}", json=claims, timeout=10)
    assert response.status_code == 204, response.text


def new_subject() -> str:
    return "sub-" + secrets.token_hex(6)


def start(client: TestClient, issuer: str, path: str = "/sso/start", **params: str) -> str:
    """Our redirect to the provider: the authorize URL the browser is sent to."""
    response = client.get(path, params=params)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(issuer + "/oauth2/authorize?"), location
    return location


def authorize(
    http: httpx.Client, authorize_url: str, sub: str | None, *, deny: bool = False
) -> str:
    """At the provider: open its page, submit its form; returns where it sends us back."""
    page = http.get(authorize_url)
    assert page.status_code == 200, page.text
    assert "Authorize" in page.text
    response = http.post(authorize_url, data={"action": "deny"} if deny else {"sub": sub})
    assert response.status_code == 302, response.text
    return response.headers["location"]


def callback(client: TestClient, url: str) -> httpx.Response:
    assert url.startswith(APP + "/sso/callback/"), url
    return client.get(url.removeprefix(APP))


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {**query_of(url), **changes}
    kept = {key: value for key, value in query.items() if value is not None}
    return urlunsplit(parts._replace(query=urlencode(kept)))


def sso_sign_in(
    client: TestClient, http: httpx.Client, issuer: str, sub: str, **params: str
) -> httpx.Response:
    return callback(client, authorize(http, start(client, issuer, **params), sub))


def events(db: Session, kind: str) -> list[SecurityEvent]:
    db.expire_all()
    query = select(SecurityEvent).where(SecurityEvent.kind == kind)
    return list(db.exec(query.order_by(col(SecurityEvent.at))))


def identity_of(db: Session, issuer: str, sub: str) -> UserIdentity | None:
    db.expire_all()
    query = select(UserIdentity).where(UserIdentity.issuer == issuer, UserIdentity.subject == sub)
    return db.exec(query).first()


def assert_signed_out(client: TestClient) -> None:
    assert client.get("/home").status_code == 303


def with_provider(settings: Settings, issuer: str) -> Settings:
    return settings.model_copy(
        update={
            "oidc_issuer": issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
        }
    )


@pytest.fixture
def app(settings: Settings, database: Database, idp: str) -> FastAPI:
    """The app with the global provider configured (BRANDKEEP_OIDC_*)."""
    return create_app(with_provider(settings, idp), database)


# --- the global provider ----------------------------------------------------------


class TestGlobalProvider:
    def test_links_a_verified_email_to_the_existing_account_and_rotates_the_session(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        org = create_org(db, name="Cumbre Coffee")
        ana = person_in(db, org, Role.owner, email="ana@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="Ana@Cumbre.example", email_verified=True, name="Ana O.")
        sign_in_page = client.get("/sign-in")
        assert "Sign in with single sign-on" in sign_in_page.text
        anonymous_cookie = client.cookies["bk_session"]

        authorize_url = start(client, idp)
        request = query_of(authorize_url)
        assert request["code_challenge_method"] == "S256" and request["code_challenge"]
        assert request["nonce"] and request["state"] and request["client_id"] == CLIENT_ID
        assert request["redirect_uri"] == APP + "/sso/callback/global"
        assert set(request["scope"].split()) == {"openid", "email", "profile"}
        # The flow's state lives in its own short cookie, only for /sso.
        state_cookie = next(cookie for cookie in client.cookies.jar if cookie.name == "bk_oidc")
        assert state_cookie.path == "/sso"

        response = callback(client, authorize(browser_http, authorize_url, sub))

        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/home"
        assert client.cookies["bk_session"] != anonymous_cookie
        home = client.get("/home")
        assert home.status_code == 200 and "Cumbre Coffee" in home.text
        identity = identity_of(db, idp, sub)
        assert identity is not None and identity.user_id == ana.id
        assert identity.email == "ana@cumbre.example"
        (event,) = events(db, "sign_in")
        assert event.user_id == ana.id and event.detail["method"] == "sso"
        assert event.detail["linked"] is True
        # The pre-sign-in session id is dead; the state cookie is spent.
        stale = TestClient(
            client.app, follow_redirects=False, cookies={"bk_session": anonymous_cookie}
        )
        assert_signed_out(stale)
        assert not [cookie for cookie in client.cookies.jar if cookie.name == "bk_oidc"]

    def test_a_second_sign_in_matches_the_subject_even_when_the_email_changed(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
    ) -> None:
        org = create_org(db, name="Cumbre Coffee")
        ana = person_in(db, org, Role.owner, email="ana2@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="ana2@cumbre.example", email_verified=True)
        assert sso_sign_in(client, browser_http, idp, sub).status_code == 303

        seed(idp, sub, email="ana.ortega@elsewhere.example", email_verified=True)
        laptop = make_client()
        response = sso_sign_in(laptop, browser_http, idp, sub)

        assert response.status_code == 303, response.text
        assert laptop.get("/home").status_code == 200
        db.expire_all()
        assert db.get(User, ana.id).email == "ana2@cumbre.example"  # type: ignore[union-attr]
        identity = identity_of(db, idp, sub)
        assert identity is not None and identity.user_id == ana.id
        assert identity.email == "ana.ortega@elsewhere.example"
        assert identity.last_used_at is not None
        assert len(db.exec(select(UserIdentity)).all()) == 1

    def test_an_unverified_email_signs_nobody_in(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        org = create_org(db)
        person_in(db, org, Role.owner, email="unverified@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="unverified@cumbre.example", email_verified=False)

        response = sso_sign_in(client, browser_http, idp, sub)

        assert response.status_code == 403
        assert "has not verified your e-mail address" in response.text
        assert_signed_out(client)
        assert identity_of(db, idp, sub) is None
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"] == "email_unverified"
        assert event.detail["issuer"] == idp

    def test_an_email_without_the_verified_claim_signs_nobody_in(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        org = create_org(db)
        person_in(db, org, Role.owner, email="noclaim@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="noclaim@cumbre.example")

        response = sso_sign_in(client, browser_http, idp, sub)

        assert response.status_code == 403
        assert_signed_out(client)

    def test_a_person_without_an_account_must_be_invited_first(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        sub = new_subject()
        seed(idp, sub, email="stranger@example.com", email_verified=True)

        response = sso_sign_in(client, browser_http, idp, sub)

        assert response.status_code == 403
        assert "must be invited first" in response.text
        assert_signed_out(client)
        assert db.exec(select(User)).all() == []
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"] == "not_invited"
        assert event.email == "stranger@example.com"

    def test_denied_consent_is_a_page_and_an_event(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        back = authorize(browser_http, start(client, idp), None, deny=True)
        assert query_of(back)["error"] == "access_denied"

        response = callback(client, back)

        assert response.status_code == 403
        assert "You did not allow the sign-in" in response.text
        assert_signed_out(client)
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"] == "access_denied"

    def test_a_tampered_or_missing_state_is_refused(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        org = create_org(db)
        person_in(db, org, Role.owner, email="state@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="state@cumbre.example", email_verified=True)
        back = authorize(browser_http, start(client, idp), sub)

        tampered = callback(client, with_query(back, state=query_of(back)["state"] + "x"))
        missing = callback(client, with_query(back, state=None))

        # A forged state cookie is no cookie at all: its signature does not hold.
        forged = TestClient(client.app, follow_redirects=False)
        forged.cookies.set("bk_oidc", "eyJmb3JnZWQiOiB0cnVlfQ==.junk.junk", path="/sso")
        forged_cookie = callback(forged, back)

        for response in (tampered, missing, forged_cookie):
            assert response.status_code == 400, response.text
            assert NOT_STARTED_HERE in response.text
        assert_signed_out(client)
        reasons = [event.detail["reason"] for event in events(db, "sso_sign_in_refused")]
        assert reasons == ["state_mismatch"] * 3
        assert identity_of(db, idp, sub) is None

    def test_a_callback_from_another_browsers_flow_is_refused(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
    ) -> None:
        """Login CSRF: the victim's browser is sent the attacker's code and state."""
        org = create_org(db)
        person_in(db, org, Role.owner, email="attacker@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="attacker@cumbre.example", email_verified=True)
        attackers_back = authorize(browser_http, start(client, idp), sub)
        victim = make_client()
        start(victim, idp)  # the victim has a flow of their own going, too

        response = callback(victim, attackers_back)

        assert response.status_code == 400
        assert NOT_STARTED_HERE in response.text
        assert_signed_out(victim)

    def test_a_wrong_nonce_in_the_id_token_is_refused(
        self, client: TestClient, browser_http: httpx.Client, db: Session, idp: str
    ) -> None:
        org = create_org(db)
        person_in(db, org, Role.owner, email="nonce@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="nonce@cumbre.example", email_verified=True)
        authorize_url = start(client, idp)
        # The provider puts whatever nonce it was asked for into the ID token it signs.
        other_nonce = with_query(authorize_url, nonce=secrets.token_urlsafe(16))

        response = callback(client, authorize(browser_http, other_nonce, sub))

        assert response.status_code == 400, response.text
        assert FAILED_CHECKS in response.text
        assert_signed_out(client)
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"].startswith("id_token_invalid:")
        assert "nonce" in event.detail["reason"]

    def test_a_used_authorization_code_is_refused_by_the_provider(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
    ) -> None:
        org = create_org(db)
        person_in(db, org, Role.owner, email="code@cumbre.example")
        sub = new_subject()
        seed(idp, sub, email="code@cumbre.example", email_verified=True)
        first_back = authorize(browser_http, start(client, idp), sub)
        assert callback(client, first_back).status_code == 303
        used_code = query_of(first_back)["code"]

        # The same callback again: its state is spent.
        replay = callback(client, first_back)
        assert replay.status_code == 400 and NOT_STARTED_HERE in replay.text

        # The used code with a fresh, valid state: the provider's token endpoint says no.
        other = make_client()
        fresh_state = query_of(start(other, idp))["state"]
        response = other.get(
            "/sso/callback/global", params={"code": used_code, "state": fresh_state}
        )

        assert response.status_code == 400, response.text
        assert "refused this sign-in" in response.text
        assert_signed_out(other)
        reasons = [event.detail["reason"] for event in events(db, "sso_sign_in_refused")]
        assert reasons == ["state_mismatch", "provider_refused:invalid_grant"]

    def test_an_unknown_provider_is_404(self, client: TestClient) -> None:
        for path in ("/sso/callback/nope", "/sso/callback/org.no-such-org", "/sso/start?org=nope"):
            assert client.get(path).status_code == 404, path


class TestTheProvidersAnswers:
    def test_an_id_token_from_another_issuer_is_refused(
        self,
        settings: Settings,
        database: Database,
        browser_http: httpx.Client,
        db: Session,
    ) -> None:
        with impostor_provider(rewrite_host_of="/oauth2/token") as issuer:
            org = create_org(db)
            person_in(db, org, Role.owner, email="iss@cumbre.example")
            sub = new_subject()
            seed(issuer, sub, email="iss@cumbre.example", email_verified=True)
            with TestClient(
                create_app(with_provider(settings, issuer), database), follow_redirects=False
            ) as client:
                response = sso_sign_in(client, browser_http, issuer, sub)

                assert response.status_code == 400, response.text
                assert FAILED_CHECKS in response.text
                assert_signed_out(client)
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"] == "id_token_invalid:invalid_claim:iss"

    def test_a_discovery_document_naming_another_issuer_is_refused_before_any_redirect(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        with (
            impostor_provider(rewrite_host_of="/.well-known/openid-configuration") as issuer,
            TestClient(
                create_app(with_provider(settings, issuer), database), follow_redirects=False
            ) as client,
        ):
            response = client.get("/sso/start")

        assert response.status_code == 400
        assert "different issuer" in response.text
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"] == "issuer_mismatch"

    def test_an_unreachable_provider_is_a_page_not_a_crash(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        nobody_listens = "http://127.0.0.1:9"  # the discard port: connection refused
        app = create_app(with_provider(settings, nobody_listens), database)
        with TestClient(app, follow_redirects=False) as client:
            response = client.get("/sso/start")

        assert response.status_code == 502
        assert "could not be reached" in response.text
        (event,) = events(db, "sso_sign_in_refused")
        assert event.detail["reason"] == "discovery_failed"

    def test_the_state_cookie_is_short_lived_secure_and_only_for_sso(
        self, settings: Settings, database: Database, idp: str
    ) -> None:
        production = with_provider(settings, idp).model_copy(update={"env": "production"})
        with TestClient(create_app(production, database), follow_redirects=False) as client:
            response = client.get("/sso/start")

        assert response.status_code == 302
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("__secure-bk_oidc=")
        for attribute in ("path=/sso;", "max-age=600;", "httponly", "samesite=lax", "secure"):
            assert attribute in cookie, attribute


# --- an organization's own provider --------------------------------------------------


def configure(
    client: TestClient, org_slug: str, issuer: str, *, require: bool = False, **overrides: str
) -> httpx.Response:
    page = client.get(f"/orgs/{org_slug}/sso")
    assert page.status_code == 200, page.text
    version = page.text.split('name="version" value="', 1)[1].split('"', 1)[0]
    data = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "version": version,
        "csrf_token": csrf_of(page.text),
        **overrides,
    }
    if require:
        data["require_sso"] = "on"
    return client.post(f"/orgs/{org_slug}/sso", data=data)


def password_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    )


class TestOrganizationProvider:
    @pytest.fixture
    def brand(self, db: Session) -> Organization:
        return create_org(db, kind=OrgKind.brand, name="Acme Outdoor")

    def test_the_owner_sets_it_up_and_a_member_signs_in_through_it(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
        brand: Organization,
    ) -> None:
        person_in(db, brand, Role.owner, email="owner@acme.example")
        reviewer = person_in(db, brand, Role.reviewer, email="rita@acme.example")
        sign_in(client, "owner@acme.example")
        members = client.get(f"/orgs/{brand.slug}/members")
        assert f'/orgs/{brand.slug}/sso"' in members.text

        saved = configure(client, brand.slug, idp)

        assert saved.status_code == 303, saved.text
        page = client.get(f"/orgs/{brand.slug}/sso")
        assert f"{APP}/sso/callback/org.{brand.slug}" in page.text
        assert idp in page.text and CLIENT_ID in page.text
        assert CLIENT_SECRET not in page.text  # never shown back, only "set"
        assert "Set. It is never shown" in page.text
        (changed,) = events(db, "sso_settings_changed")
        assert changed.organization_id == brand.id and CLIENT_SECRET not in str(changed.detail)

        sub = new_subject()
        seed(idp, sub, email="rita@acme.example", email_verified=True, name="Rita")
        browser = make_client()
        found = browser.get("/sso/find", params={"org": brand.slug})
        assert found.status_code == 200
        start_path = f"/sso/start?org={brand.slug}"
        assert found.headers["refresh"] == f"0; url={start_path}"
        authorize_url = start(browser, idp, "/sso/start", org=brand.slug)
        assert query_of(authorize_url)["redirect_uri"] == f"{APP}/sso/callback/org.{brand.slug}"
        response = callback(browser, authorize(browser_http, authorize_url, sub))

        assert response.status_code == 303, response.text
        assert browser.get("/home").status_code == 200
        identity = identity_of(db, idp, sub)
        assert identity is not None and identity.user_id == reviewer.id

    def test_an_unknown_short_name_says_so(self, client: TestClient, brand: Organization) -> None:
        response = client.get("/sso/find", params={"org": brand.slug})  # no SSO set up
        assert response.status_code == 404
        assert "No organization with this short name" in response.text

    def test_an_invited_person_gets_an_account_through_it(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
        brand: Organization,
    ) -> None:
        person_in(db, brand, Role.owner, email="owner@acme.example")
        sign_in(client, "owner@acme.example")
        assert configure(client, brand.slug, idp).status_code == 303
        invitation = Invitation(
            organization_id=brand.id,
            kind=InvitationKind.member,
            email="new.reviewer@acme.example",
            role=Role.reviewer,
            token_hash=secrets.token_hex(32),
            expires_at=utcnow() + timedelta(days=7),
        )
        db.add(invitation)
        db.commit()
        sub = new_subject()
        seed(idp, sub, email="New.Reviewer@acme.example", email_verified=True, name="Nico New")

        browser = make_client()
        response = sso_sign_in(browser, browser_http, idp, sub, org=brand.slug)

        assert response.status_code == 303, response.text
        assert browser.get("/home").status_code == 200
        db.expire_all()
        user = db.exec(select(User).where(User.email == "new.reviewer@acme.example")).one()
        assert user.name == "Nico New" and user.password_hash is None
        membership = db.exec(select(Membership).where(Membership.user_id == user.id)).one()
        assert (membership.organization_id, membership.role) == (brand.id, Role.reviewer)
        accepted = db.get(Invitation, invitation.id)
        assert accepted is not None and accepted.accepted_by_id == user.id
        assert accepted.accepted_at is not None

    def test_it_cannot_take_over_an_account_that_belongs_elsewhere_too(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
        brand: Organization,
    ) -> None:
        """An organization's owner runs its provider: it may not vouch for other people."""
        person_in(db, brand, Role.owner, email="owner@acme.example")
        agency = create_org(db, kind=OrgKind.agency, name="Northwind Social")
        manager = person_in(db, agency, Role.manager, email="maria@northwind.example")
        add_member(db, brand, manager, Role.viewer)
        sign_in(client, "owner@acme.example")
        assert configure(client, brand.slug, idp).status_code == 303
        sub = new_subject()
        seed(idp, sub, email="maria@northwind.example", email_verified=True)

        browser = make_client()
        response = sso_sign_in(browser, browser_http, idp, sub, org=brand.slug)

        assert response.status_code == 403
        assert "also belongs to other organizations" in response.text
        assert_signed_out(browser)
        assert identity_of(db, idp, sub) is None

        # Signed in with her password, she links the identity herself.
        sign_in(browser, "maria@northwind.example")
        assert sso_sign_in(browser, browser_http, idp, sub, org=brand.slug).status_code == 303
        identity = identity_of(db, idp, sub)
        assert identity is not None and identity.user_id == manager.id

    def test_it_does_not_sign_in_people_who_are_not_members(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
        brand: Organization,
    ) -> None:
        person_in(db, brand, Role.owner, email="owner@acme.example")
        other = create_org(db, name="Other Brand")
        person_in(db, other, Role.owner, email="olly@other.example")
        sign_in(client, "owner@acme.example")
        assert configure(client, brand.slug, idp).status_code == 303
        sub = new_subject()
        seed(idp, sub, email="olly@other.example", email_verified=True)

        response = sso_sign_in(make_client(), browser_http, idp, sub, org=brand.slug)

        assert response.status_code == 403
        assert "only lets its members in" in response.text
        (event,) = events(db, "sso_sign_in_refused")
        assert event.organization_id == brand.id and event.detail["reason"] == "not_a_member"

    def test_requiring_it_refuses_passwords_of_members_only(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        browser_http: httpx.Client,
        db: Session,
        idp: str,
        brand: Organization,
    ) -> None:
        person_in(db, brand, Role.owner, email="owner@acme.example")
        person_in(db, brand, Role.reviewer, email="rita@acme.example")
        other = create_org(db, name="Other Brand")
        person_in(db, other, Role.owner, email="olly@other.example")
        sign_in(client, "owner@acme.example")

        # Not before the owner has used it: nobody gets locked out by a wrong setting.
        refused = configure(client, brand.slug, idp, require=True)
        assert refused.status_code == 422
        assert "Sign in once with this single sign-on yourself" in refused.text
        assert configure(client, brand.slug, idp).status_code == 303
        sub = new_subject()
        seed(idp, sub, email="owner@acme.example", email_verified=True)
        assert sso_sign_in(client, browser_http, idp, sub, org=brand.slug).status_code == 303
        assert configure(client, brand.slug, idp, require=True, client_secret="").status_code == 303

        member = password_sign_in(make_client(), "rita@acme.example")
        assert member.status_code == 422
        assert "Your organization requires single sign-on" in member.text
        assert "Sign in with your organization" in member.text
        # A wrong password still gets the answer an unknown address gets.
        wrong = password_sign_in(make_client(), "rita@acme.example", "not the password at all")
        assert "Wrong e-mail or password." in wrong.text and "requires" not in wrong.text
        # Someone who is not a member signs in with a password as before.
        assert password_sign_in(make_client(), "olly@other.example").status_code == 303
        # And the owner, through the provider.
        again = make_client()
        assert sso_sign_in(again, browser_http, idp, sub, org=brand.slug).status_code == 303
        assert again.get("/home").status_code == 200

    def test_the_page_is_for_owners_and_checks_its_input(
        self,
        client: TestClient,
        make_client: Callable[[], TestClient],
        db: Session,
        brand: Organization,
    ) -> None:
        person_in(db, brand, Role.owner, email="owner@acme.example")
        person_in(db, brand, Role.reviewer, email="rita@acme.example")
        reviewer = make_client()
        sign_in(reviewer, "rita@acme.example")
        assert reviewer.get(f"/orgs/{brand.slug}/sso").status_code == 403
        members = reviewer.get(f"/orgs/{brand.slug}/members")
        assert f'/orgs/{brand.slug}/sso"' not in members.text

        sign_in(client, "owner@acme.example")
        bad = configure(
            client, brand.slug, "ftp://idp.example/?x=1", client_id="", client_secret=""
        )
        assert bad.status_code == 422
        assert "Enter the issuer URL" in bad.text
        assert "Enter the client ID" in bad.text
        assert "Enter the client secret" in bad.text
        assert events(db, "sso_settings_changed") == []


# --- as production's runtime role (PostgreSQL row-level security) -------------------


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run this)",
)
def test_everything_works_under_row_level_security(
    settings: Settings,
    runtime: Database,  # noqa: F811 - the fixture imported above
    browser_http: httpx.Client,
    db: Session,
    idp: str,
) -> None:
    """The public sign-in reads tenant rows before anyone is signed in: the policies allow
    exactly what it needs (the organization's provider, the person's memberships, the
    organization's invitations), as the runtime role that does not bypass them."""
    brand = create_org(db, kind=OrgKind.brand, name="Acme Outdoor")
    person_in(db, brand, Role.owner, email="owner@acme.example")
    person_in(db, brand, Role.reviewer, email="rita@acme.example")
    invitation = Invitation(
        organization_id=brand.id,
        kind=InvitationKind.member,
        email="nico@acme.example",
        role=Role.viewer,
        token_hash=secrets.token_hex(32),
        expires_at=utcnow() + timedelta(days=7),
    )
    db.add(invitation)
    db.commit()
    owner_sub, nico_sub = new_subject(), new_subject()
    seed(idp, owner_sub, email="owner@acme.example", email_verified=True)
    seed(idp, nico_sub, email="nico@acme.example", email_verified=True, name="Nico")
    app = create_app(with_provider(settings, idp), runtime)

    def browser() -> TestClient:
        return TestClient(app, follow_redirects=False)

    with browser() as owner, browser() as rita, browser() as nico:
        sign_in(owner, "owner@acme.example")
        assert configure(owner, brand.slug, idp).status_code == 303
        assert sso_sign_in(owner, browser_http, idp, owner_sub, org=brand.slug).status_code == 303
        saved = configure(owner, brand.slug, idp, require=True, client_secret="")
        assert saved.status_code == 303, saved.text

        refused = password_sign_in(rita, "rita@acme.example")
        assert refused.status_code == 422
        assert "Your organization requires single sign-on" in refused.text

        joined = sso_sign_in(nico, browser_http, idp, nico_sub, org=brand.slug)
        assert joined.status_code == 303, joined.text
        assert nico.get("/home").status_code == 200
    db.expire_all()
    accepted = db.get(Invitation, invitation.id)
    assert accepted is not None and accepted.accepted_at is not None
