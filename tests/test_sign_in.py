"""Sign-up, sign-in, sessions that really end, and CSRF on every unsafe request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.accounts.models import User, UserSession
from app.accounts.passwords import verify_password
from app.tenancy.models import Membership, Organization
from tests.conftest import csrf_of
from tests.factories import PASSWORD, create_org, person_in, sign_in


def _sign_up(client: TestClient, **overrides: str):  # type: ignore[no-untyped-def]
    page = client.get("/sign-up")
    data = {
        "name": "Ana Ortega",
        "email": "ana@brand.example",
        "password": PASSWORD,
        "org_name": "Cumbre Coffee",
        "org_kind": "brand",
        "csrf_token": csrf_of(page.text),
    }
    data.update(overrides)
    return client.post("/sign-up", data=data)


class TestSignUp:
    def test_creates_the_organization_with_its_first_owner(
        self, client: TestClient, db: Session
    ) -> None:
        response = _sign_up(client, email="Ana@Brand.Example")
        assert response.status_code == 303
        assert response.headers["location"] == "/home"
        user = db.exec(select(User)).one()
        assert user.email == "ana@brand.example"  # stored lower-cased
        assert user.password_hash and user.password_hash.startswith("$argon2id$")
        org = db.exec(select(Organization)).one()
        assert (org.name, org.kind, org.slug) == ("Cumbre Coffee", "brand", "cumbre-coffee")
        membership = db.exec(select(Membership)).one()
        assert membership.role == "owner" and membership.user_id == user.id
        home = client.get("/home")
        assert "Cumbre Coffee" in home.text

    def test_duplicate_email_is_refused_beside_the_field_and_writes_nothing(
        self, client: TestClient, db: Session, make_client
    ) -> None:
        assert _sign_up(client).status_code == 303
        other = make_client()
        response = _sign_up(other, email="ANA@brand.example", org_name="Another brand")
        assert response.status_code == 422
        assert "already exists" in response.text
        assert db.exec(select(func.count()).select_from(Organization)).one() == 1

    def test_short_password_and_missing_fields_come_back_beside_the_fields(
        self, client: TestClient, db: Session
    ) -> None:
        response = _sign_up(client, password="short", org_name="", name="")
        assert response.status_code == 422
        assert "at least 12 characters" in response.text
        assert "Give the organization a name" in response.text
        assert "Tell us your name" in response.text
        assert db.exec(select(func.count()).select_from(User)).one() == 0

    def test_htmx_error_renders_only_the_form(self, client: TestClient) -> None:
        page = client.get("/sign-up")
        response = client.post(
            "/sign-up",
            data={"name": "", "email": "x", "password": "", "org_name": "", "org_kind": "brand"},
            headers={
                "HX-Request": "true",
                "HX-Target": "sign-up-form",
                "X-CSRF-Token": csrf_of(page.text),
            },
        )
        assert response.status_code == 422
        assert "<html" not in response.text and "<form" in response.text
        assert "Enter a valid e-mail address" in response.text


class TestSignIn:
    def test_wrong_password_and_unknown_email_get_the_same_answer(
        self, client: TestClient, db: Session
    ) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="known@example.com")
        answers = []
        for email, password in (
            ("known@example.com", "wrong password!!"),
            ("nobody@example.com", PASSWORD),
        ):
            page = client.get("/sign-in")
            response = client.post(
                "/sign-in",
                data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
            )
            answers.append((response.status_code, response.text.replace(email, "")))
        assert answers[0][0] == answers[1][0] == 422
        assert "Wrong e-mail or password." in answers[0][1]
        assert answers[0][1] == answers[1][1]

    def test_session_cookie_is_httponly_lax_and_rotated_at_sign_in(
        self, client: TestClient, db: Session
    ) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="rota@example.com")
        page = client.get("/sign-in")
        anonymous_cookie = client.cookies["bk_session"]
        set_cookie = page.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "path=/" in set_cookie
        response = client.post(
            "/sign-in",
            data={
                "email": "rota@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert response.status_code == 303
        assert client.cookies["bk_session"] != anonymous_cookie
        # The pre-sign-in session id is dead: planting it gets nobody in.
        stale = TestClient(
            client.app, follow_redirects=False, cookies={"bk_session": anonymous_cookie}
        )
        assert stale.get("/home").status_code == 303

    def test_next_only_goes_to_this_site(self, client: TestClient, db: Session) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="next@example.com")
        page = client.get("/sign-in")
        response = client.post(
            "/sign-in",
            data={
                "email": "next@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
                "next": "//evil.example/x",
            },
        )
        assert response.headers["location"] == "/home"

    def test_pages_redirect_anonymous_visitors_to_sign_in_and_back(
        self, client: TestClient
    ) -> None:
        response = client.get("/account")
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?next=%2Faccount"
        htmx = client.get("/account", headers={"HX-Request": "true"})
        assert htmx.headers["HX-Redirect"].startswith("/sign-in")


class TestSignOut:
    def test_sign_out_revokes_the_server_side_session(
        self, client: TestClient, db: Session
    ) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="out@example.com")
        csrf = sign_in(client, "out@example.com")
        cookie = client.cookies["bk_session"]
        response = client.post("/sign-out", data={"csrf_token": csrf})
        assert response.status_code == 303
        # Replaying the old cookie after sign-out does not work: the record is revoked.
        replay = TestClient(client.app, follow_redirects=False, cookies={"bk_session": cookie})
        assert replay.get("/home").status_code == 303
        assert (
            db.exec(select(UserSession).where(UserSession.revoked_at.is_not(None))).first()
            is not None
        )  # type: ignore[union-attr]

    def test_sign_out_everywhere_ends_every_browser(
        self, client: TestClient, db: Session, make_client
    ) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="every@example.com")
        laptop, phone = client, make_client()
        csrf = sign_in(laptop, "every@example.com")
        sign_in(phone, "every@example.com")
        assert phone.get("/home").status_code == 200
        assert (
            laptop.post("/account/sign-out-everywhere", data={"csrf_token": csrf}).status_code
            == 303
        )
        assert phone.get("/home").status_code == 303
        assert laptop.get("/home").status_code == 303

    def test_changing_password_signs_out_other_sessions_only(
        self, client: TestClient, db: Session, make_client
    ) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="pw@example.com")
        other = make_client()
        csrf = sign_in(client, "pw@example.com")
        sign_in(other, "pw@example.com")
        new = "a much longer new passphrase"
        response = client.post(
            "/account/password",
            data={"current_password": PASSWORD, "new_password": new, "csrf_token": csrf},
        )
        assert response.status_code == 303
        assert client.get("/home").status_code == 200
        assert other.get("/home").status_code == 303
        db.expire_all()
        user = db.exec(select(User).where(User.email == "pw@example.com")).one()
        assert verify_password(user.password_hash, new)

    def test_wrong_current_password_changes_nothing(self, client: TestClient, db: Session) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="pw2@example.com")
        csrf = sign_in(client, "pw2@example.com")
        response = client.post(
            "/account/password",
            data={
                "current_password": "not it at all",
                "new_password": "another long passphrase",
                "csrf_token": csrf,
            },
        )
        assert response.status_code == 422
        assert "not your current password" in response.text
        db.expire_all()
        user = db.exec(select(User).where(User.email == "pw2@example.com")).one()
        assert verify_password(user.password_hash, PASSWORD)


class TestCsrf:
    def _signed_in(self, client: TestClient, db: Session) -> str:
        org = create_org(db)
        person_in(db, org, "owner", email="csrf@example.com")
        return sign_in(client, "csrf@example.com")

    def test_missing_token_is_403_with_a_message(self, client: TestClient, db: Session) -> None:
        self._signed_in(client, db)
        response = client.post("/account/sign-out-everywhere", data={})
        assert response.status_code == 403
        assert "Reload the page" in response.text
        assert client.get("/home").status_code == 200  # nothing happened

    def test_token_of_another_session_is_refused(
        self, client: TestClient, db: Session, make_client
    ) -> None:
        self._signed_in(client, db)
        other_token = csrf_of(make_client().get("/sign-in").text)
        response = client.post("/account/sign-out-everywhere", data={"csrf_token": other_token})
        assert response.status_code == 403

    def test_htmx_sends_the_token_as_a_header(self, client: TestClient, db: Session) -> None:
        csrf = self._signed_in(client, db)
        response = client.post(
            "/account/tokens",
            data={"name": "reporting", "scope": "read", "org_slug": "nope"},
            headers={"HX-Request": "true", "HX-Target": "tokens"},
        )
        assert response.status_code == 403
        response = client.post(
            "/account/tokens",
            data={"name": "reporting", "scope": "read", "org_slug": "nope"},
            headers={"HX-Request": "true", "HX-Target": "tokens", "X-CSRF-Token": csrf},
        )
        assert response.status_code == 404  # past CSRF; that organization is not theirs

    def test_cross_site_requests_are_refused_even_with_a_token(
        self, client: TestClient, db: Session
    ) -> None:
        csrf = self._signed_in(client, db)
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            response = client.post(
                "/account/sign-out-everywhere", data={"csrf_token": csrf}, headers=headers
            )
            assert response.status_code == 403
        assert client.get("/home").status_code == 200

    def test_sign_in_form_needs_its_token_too(self, client: TestClient, db: Session) -> None:
        org = create_org(db)
        person_in(db, org, "owner", email="login-csrf@example.com")
        response = client.post(
            "/sign-in", data={"email": "login-csrf@example.com", "password": PASSWORD}
        )
        assert response.status_code == 403
