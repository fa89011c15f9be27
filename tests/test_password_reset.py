"""Password reset: the same answer for any address, a single-use link for an hour, every
session signed out; and the password rules that apply wherever a password is chosen."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.accounts.models import PasswordReset, SecurityEvent, User
from app.accounts.passwords import password_problem, verify_password
from app.db import utcnow
from app.jobs.models import OutboxJob
from tests.conftest import csrf_of
from tests.factories import PASSWORD, create_org, person_in
from tests.factories import sign_in as sign_in_as
from tests.smtp import SmtpServer

NEW_PASSWORD = "seven ravens over the quiet harbour"


@pytest.fixture
def ana(db: Session) -> User:
    return person_in(db, create_org(db), "owner", email="ana@example.com")


def ask_for_link(client: TestClient, email: str):  # type: ignore[no-untyped-def]
    page = client.get("/password-reset")
    assert page.status_code == 200
    return client.post("/password-reset", data={"email": email, "csrf_token": csrf_of(page.text)})


def choose(client: TestClient, path: str, password: str):  # type: ignore[no-untyped-def]
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={"password": password, "csrf_token": csrf_of(page.text)})


def password_of(db: Session, email: str) -> str | None:
    db.expire_all()
    return db.exec(select(User).where(User.email == email)).one().password_hash


class TestAsking:
    def test_known_and_unknown_addresses_get_the_same_answer_and_only_one_gets_mail(
        self, mail_client: TestClient, ana: User, smtp: SmtpServer, db: Session
    ) -> None:
        known = ask_for_link(mail_client, "ANA@example.com")
        unknown = ask_for_link(mail_client, "nobody@example.com")
        assert known.status_code == unknown.status_code == 200
        assert known.text == unknown.text
        assert "If there is an account for that address" in known.text
        [mail] = smtp.inbox.wait_for(1)
        smtp.inbox.stays_empty(1.0)  # time for a second mail, if one were wrongly sent
        assert len(smtp.inbox.delivered) == 1
        assert mail.recipients == ["ana@example.com"]
        assert mail.subject == "Reset your Brandkeep password"
        assert "/password-reset/" in mail.part("plain") and "/password-reset/" in mail.part("html")
        assert db.exec(select(func.count()).select_from(PasswordReset)).one() == 1
        assert db.exec(select(func.count()).select_from(OutboxJob)).one() == 1

    def test_a_malformed_address_is_explained_beside_the_field(
        self, mail_client: TestClient
    ) -> None:
        response = ask_for_link(mail_client, "not an address")
        assert response.status_code == 422
        assert "Enter a valid e-mail address." in response.text

    def test_the_sign_in_page_links_to_it(self, client: TestClient) -> None:
        page = client.get("/sign-in")
        assert 'href="http://testserver/password-reset">Forgot your password?' in page.text


class TestTheLink:
    def test_it_sets_the_new_password_ends_every_session_and_signs_in_afresh(
        self,
        mail_client: TestClient,
        mail_app: FastAPI,
        ana: User,
        smtp: SmtpServer,
        db: Session,
    ) -> None:
        laptop = TestClient(mail_app, follow_redirects=False)
        sign_in_as(laptop, "ana@example.com")
        ask_for_link(mail_client, "ana@example.com")
        path = smtp.inbox.wait_for(1)[0].link("/password-reset/")
        token = path.rsplit("/", 1)[1]
        assert token not in str(db.execute(sa.text("SELECT * FROM password_reset")).all())
        assert "For ana@example.com." in mail_client.get(path).text
        response = choose(mail_client, path, NEW_PASSWORD)
        assert response.status_code == 303 and response.headers["location"] == "/home"
        home = mail_client.get("/home")
        assert home.status_code == 200 and "every other session was signed out" in home.text
        assert laptop.get("/home").status_code == 303
        assert verify_password(password_of(db, "ana@example.com"), NEW_PASSWORD)
        events = db.exec(select(SecurityEvent.kind).where(SecurityEvent.user_id == ana.id)).all()
        assert "password_reset" in events
        fresh = TestClient(mail_app, follow_redirects=False)
        sign_in_as(fresh, "ana@example.com", NEW_PASSWORD)

    def test_it_works_once(
        self, mail_client: TestClient, mail_app: FastAPI, ana: User, smtp: SmtpServer, db: Session
    ) -> None:
        ask_for_link(mail_client, "ana@example.com")
        path = smtp.inbox.wait_for(1)[0].link("/password-reset/")
        assert choose(mail_client, path, NEW_PASSWORD).status_code == 303
        again = TestClient(mail_app, follow_redirects=False)
        page = again.get(path)
        assert page.status_code == 410 and "already been used" in page.text
        csrf = csrf_of(again.get("/sign-in").text)
        response = again.post(
            path, data={"password": "another fine passphrase", "csrf_token": csrf}
        )
        assert response.status_code == 410
        assert again.get("/home").status_code == 303
        assert verify_password(password_of(db, "ana@example.com"), NEW_PASSWORD)

    def test_asking_twice_and_using_one_link_spends_the_other(
        self, mail_client: TestClient, mail_app: FastAPI, ana: User, smtp: SmtpServer
    ) -> None:
        ask_for_link(mail_client, "ana@example.com")
        ask_for_link(mail_client, "ana@example.com")
        first, second = (mail.link("/password-reset/") for mail in smtp.inbox.wait_for(2))
        assert choose(mail_client, second, NEW_PASSWORD).status_code == 303
        assert TestClient(mail_app).get(first).status_code == 410

    def test_an_expired_or_forged_link_says_so_and_signs_nobody_in(
        self, mail_client: TestClient, mail_app: FastAPI, ana: User, smtp: SmtpServer, db: Session
    ) -> None:
        ask_for_link(mail_client, "ana@example.com")
        path = smtp.inbox.wait_for(1)[0].link("/password-reset/")
        reset = db.exec(select(PasswordReset)).one()
        assert reset.expires_at - reset.created_at == timedelta(hours=1)
        reset.expires_at = utcnow() - timedelta(seconds=1)
        db.add(reset)
        db.commit()
        visitor = TestClient(mail_app, follow_redirects=False)
        expired = visitor.get(path)
        assert expired.status_code == 410 and "has expired" in expired.text
        assert "Ask for a new link" in expired.text
        csrf = csrf_of(visitor.get("/sign-in").text)
        for bad in (path, "/password-reset/forged-token", "/password-reset/" + "x" * 400):
            response = visitor.post(bad, data={"password": NEW_PASSWORD, "csrf_token": csrf})
            assert response.status_code in (404, 410), bad
            assert "This link cannot be used" in response.text
        assert visitor.get("/password-reset/forged-token").status_code == 404
        assert visitor.get("/home").status_code == 303
        assert verify_password(password_of(db, "ana@example.com"), PASSWORD)

    def test_a_weak_new_password_is_refused_and_the_link_still_works(
        self, mail_client: TestClient, ana: User, smtp: SmtpServer, db: Session
    ) -> None:
        ask_for_link(mail_client, "ana@example.com")
        path = smtp.inbox.wait_for(1)[0].link("/password-reset/")
        for weak, why in (
            ("short", "at least 12 characters"),
            ("qwertyuiopasdfgh", "most common ones or too easy to guess"),
            ("x" * 257, "at most 256 characters"),
        ):
            response = choose(mail_client, path, weak)
            assert response.status_code == 422 and why in response.text, weak
        assert verify_password(password_of(db, "ana@example.com"), PASSWORD)
        assert choose(mail_client, path, NEW_PASSWORD).status_code == 303


class TestPasswordRules:
    @pytest.mark.parametrize(
        "password",
        ["password1234", "123456789012", "qwertyuiopasdfgh", "aaaaaaaaaaaaaaaa", "iloveyou2024"],
    )
    def test_the_most_common_passwords_are_refused(self, password: str) -> None:
        assert password_problem(password) is not None

    @pytest.mark.parametrize(
        "password",
        [PASSWORD, NEW_PASSWORD, "brandkeep-demo", "x7#Kq!zP2@wLm9", "a" + "bcde fghij " * 23],
    )
    def test_length_is_what_counts_up_to_256(self, password: str) -> None:
        assert len(password) <= 256
        assert password_problem(password) is None

    def test_common_passwords_are_refused_at_sign_up_and_when_changing(
        self, client: TestClient, db: Session
    ) -> None:
        page = client.get("/sign-up")
        response = client.post(
            "/sign-up",
            data={
                "name": "Ana",
                "email": "new@example.com",
                "password": "password1234",
                "org_name": "Brand",
                "org_kind": "brand",
                "csrf_token": csrf_of(page.text),
            },
        )
        assert response.status_code == 422 and "too easy to guess" in response.text
        person_in(db, create_org(db), "owner", email="changer@example.com")
        csrf = sign_in_as(client, "changer@example.com")
        response = client.post(
            "/account/password",
            data={"current_password": PASSWORD, "new_password": "123456789012", "csrf_token": csrf},
        )
        assert response.status_code == 422 and "too easy to guess" in response.text
