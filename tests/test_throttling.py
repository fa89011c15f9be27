"""Failed sign-ins are throttled per account and per IP, with growing delays, in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from app.accounts import service as accounts_service
from app.accounts import throttle
from app.accounts.models import ThrottleEvent
from app.accounts.passwords import verify_password
from app.config import Settings
from app.db import Database
from app.deps import SessionDep
from app.main import API_PREFIX, create_app
from app.tenancy.models import OrgKind, Role
from tests.conftest import csrf_of
from tests.factories import PASSWORD, create_org, person_in

EMAIL = "target@brand.example"
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    """The throttle's idea of now, moved by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "utcnow", clock)
    return clock


@pytest.fixture
def target(db: Session) -> str:
    person_in(db, create_org(db, kind=OrgKind.brand), Role.owner, email=EMAIL)
    return EMAIL


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the service actually verified."""
    seen: list[str] = []

    def counting(hashed: str | None, password: str) -> bool:
        seen.append(password)
        return verify_password(hashed, password)

    monkeypatch.setattr(accounts_service, "verify_password", counting)
    return seen


def attempt(client: TestClient, email: str, password: str, **headers: str):  # type: ignore[no-untyped-def]
    page = client.get("/sign-in")
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        headers=headers,
    )


class TestSignIn:
    def test_twenty_wrong_passwords_in_a_row_meet_429s(
        self, client: TestClient, target: str, clock: Clock, verifications: list[str]
    ) -> None:
        answers = [attempt(client, target, f"wrong password {n}") for n in range(20)]
        codes = [answer.status_code for answer in answers]
        assert codes == [422] * 3 + [429] * 17
        # Throttled attempts were refused before the password was looked at.
        assert len(verifications) == 3
        fourth = answers[3]
        assert fourth.headers["Retry-After"] == "1"
        assert "Too many attempts. Try again in 1 s." in fourth.text
        assert "<form" in fourth.text  # the sign-in form again, with the message
        # Even the right password waits its turn.
        assert attempt(client, target, PASSWORD).status_code == 429

    def test_delays_grow_and_at_ten_failures_the_oldest_must_fall_out_of_the_window(
        self, client: TestClient, target: str, clock: Clock
    ) -> None:
        waits = []
        for _ in range(10):
            response = attempt(client, target, "wrong password!!")
            while response.status_code == 429:
                waits.append(int(response.headers["Retry-After"]))
                clock.advance(int(response.headers["Retry-After"]))
                response = attempt(client, target, "wrong password!!")
            assert response.status_code == 422
        assert waits == [1, 2, 4, 8, 16, 32, 64]
        refused = attempt(client, target, PASSWORD)
        assert refused.status_code == 429
        # The first failure was 127 s ago: it leaves the 15-minute window in 773 s.
        assert int(refused.headers["Retry-After"]) == 15 * 60 - 127
        clock.advance(15 * 60 - 127)
        assert attempt(client, target, PASSWORD).status_code == 303

    def test_no_more_than_ten_verified_failures_per_fifteen_minutes(
        self, client: TestClient, target: str, clock: Clock, verifications: list[str]
    ) -> None:
        start = clock.now
        while clock.now < start + timedelta(minutes=15):
            response = attempt(client, target, "wrong password!!")
            if response.status_code == 429:
                clock.advance(int(response.headers["Retry-After"]))
        assert len(verifications) == 10

    def test_the_account_is_the_normalised_email(
        self, client: TestClient, target: str, clock: Clock
    ) -> None:
        for email in (EMAIL, EMAIL.upper(), f"  {EMAIL}  "):
            assert attempt(client, email, "wrong password!!").status_code == 422
        assert attempt(client, "TARGET@Brand.Example", "wrong password!!").status_code == 429

    def test_unknown_accounts_are_throttled_the_same_way(
        self, client: TestClient, db: Session, clock: Clock
    ) -> None:
        codes = [attempt(client, "nobody@example.com", "whatever!!").status_code for _ in range(5)]
        assert codes == [422, 422, 422, 429, 429]

    def test_a_success_forgets_the_accounts_failures_but_not_the_ips(
        self, client: TestClient, target: str, db: Session, clock: Clock
    ) -> None:
        for _ in range(3):
            attempt(client, target, "wrong password!!")
        clock.advance(1)
        assert attempt(client, target, PASSWORD).status_code == 303
        keys = {event.key.split(":")[1] for event in db.exec(select(ThrottleEvent))}
        assert keys == {"ip"}
        assert db.exec(select(func.count()).select_from(ThrottleEvent)).one() == 3

    def test_htmx_gets_the_form_with_the_message_and_retry_after(
        self, client: TestClient, target: str, clock: Clock
    ) -> None:
        for _ in range(3):
            attempt(client, target, "wrong password!!")
        page = client.get("/sign-in")
        response = client.post(
            "/sign-in",
            data={"email": target, "password": "x"},
            headers={
                "HX-Request": "true",
                "HX-Target": "sign-in-form",
                "X-CSRF-Token": csrf_of(page.text),
            },
        )
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert "<html" not in response.text and "Too many attempts" in response.text

    def test_counts_are_shared_by_every_app_process(
        self, settings: Settings, database_url: str, target: str, clock: Clock
    ) -> None:
        """Two apps with their own engines (as two processes would be) share one count."""
        databases = [Database(database_url), Database(database_url)]
        clients = [
            TestClient(create_app(settings, database), follow_redirects=False)
            for database in databases
        ]
        try:
            page = clients[0].get("/sign-in")
            cookie = clients[0].cookies["bk_session"]
            token = csrf_of(page.text)
            codes = []
            for n in range(4):
                browser = clients[n % 2]
                browser.cookies.set("bk_session", cookie)
                codes.append(
                    browser.post(
                        "/sign-in",
                        data={"email": target, "password": "wrong!!", "csrf_token": token},
                    ).status_code
                )
            assert codes == [422, 422, 422, 429]
        finally:
            for client in clients:
                client.close()
            for database in databases:
                database.dispose()


class TestPerIP:
    def test_one_address_trying_many_accounts_is_slowed_down(
        self, db: Session, app: FastAPI, clock: Clock
    ) -> None:
        request = fake_request(app, "198.51.100.7")
        for n in range(30):
            keys = throttle.keys_for(request, throttle.SIGN_IN, account=f"user{n}@example.com")
            throttle.check(db, keys)
            throttle.failed(db, keys)
        db.commit()
        fresh_account = throttle.keys_for(request, throttle.SIGN_IN, account="new@example.com")
        with pytest.raises(throttle.Throttled) as refused:
            throttle.check(db, fresh_account)
        assert refused.value.headers == {"Retry-After": "1"}
        elsewhere = throttle.keys_for(
            fake_request(app, "198.51.100.8"), throttle.SIGN_IN, account="new@example.com"
        )
        throttle.check(db, elsewhere)  # another address is not slowed

    def test_a_spoofed_forwarded_for_does_not_escape_the_count_without_trusted_proxies(
        self, app: FastAPI
    ) -> None:
        keys = {
            throttle.keys_for(fake_request(app, "198.51.100.7", forwarded), throttle.SIGN_IN)[
                0
            ].value
            for forwarded in ("1.1.1.1", "2.2.2.2", None)
        }
        assert len(keys) == 1


class TestRules:
    def test_waits_follow_the_rule(self) -> None:
        rule = throttle.RULES[(throttle.SIGN_IN, "account")]
        times = [T0 + timedelta(seconds=n) for n in range(3)]
        last = times[-1]
        assert throttle._wait_until(times[:2], rule, last) == last
        assert throttle._wait_until(times, rule, last) == last + timedelta(seconds=1)
        # Long after, the window has emptied.
        later = T0 + timedelta(hours=1)
        assert throttle._wait_until(times, rule, later) == later

    def test_ip_waits_are_capped(self) -> None:
        rule = throttle.RULES[(throttle.SIGN_IN, "ip")]
        times = [T0 + timedelta(seconds=n) for n in range(60)]
        assert throttle._wait_until(times, rule, times[-1]) == times[-1] + timedelta(seconds=30)

    def test_old_events_are_pruned_when_new_ones_are_written(
        self, db: Session, app: FastAPI, clock: Clock
    ) -> None:
        keys = throttle.keys_for(
            fake_request(app, "198.51.100.9"), throttle.SIGN_IN, account="a@b.c"
        )
        stale = T0 - timedelta(hours=1)
        db.add(ThrottleEvent(key=keys[0].value, at=stale))
        db.add(ThrottleEvent(key="sign_in:ip:someone-else", at=stale))
        db.commit()
        throttle.failed(db, keys)
        db.commit()
        ats = db.exec(select(ThrottleEvent.at).where(ThrottleEvent.key == keys[0].value)).all()
        assert ats == [T0]
        # Everyone's stale events went with the same write, not only this key's.
        assert (
            db.exec(
                select(func.count()).select_from(ThrottleEvent).where(col(ThrottleEvent.at) < T0)
            ).one()
            == 0
        )
        assert throttle.prune(db) == 0

    def test_keys_are_hashed(self, app: FastAPI) -> None:
        keys = throttle.keys_for(fake_request(app, "198.51.100.7"), throttle.SIGN_IN, account=EMAIL)
        assert [key.value.split(":")[:2] for key in keys] == [
            ["sign_in", "account"],
            ["sign_in", "ip"],
        ]
        assert all(EMAIL not in key.value and "198.51" not in key.value for key in keys)


class TestTheApi:
    """Password-reset and invitation endpoints call the same functions; in the API the
    answer is problem details with Retry-After."""

    @pytest.fixture
    def api(self, app: FastAPI) -> Iterator[TestClient]:
        @app.post(f"{API_PREFIX}/throttled-probe")
        def probe(request: Request, db: SessionDep) -> dict[str, str]:
            keys = throttle.keys_for(request, throttle.PASSWORD_RESET, account=EMAIL)
            throttle.check(db, keys)
            throttle.failed(db, keys)
            return {"ok": "yes"}

        with TestClient(app) as client:
            yield client

    def test_429_is_a_problem_with_retry_after(self, api: TestClient, clock: Clock) -> None:
        codes = [api.post(f"{API_PREFIX}/throttled-probe").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        response = api.post(f"{API_PREFIX}/throttled-probe")
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["Retry-After"] == "1"
        body = response.json()
        assert body["status"] == 429
        assert body["detail"] == "Too many attempts. Try again in 1 s."


class TestClientAddress:
    TRUSTED = ("10.0.0.0/8", "2001:db8::/32")

    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            ("203.0.113.5", "1.2.3.4", "203.0.113.5"),  # peer not trusted: header ignored
            ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
            ("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.9", "1.2.3.4"),  # forged left part ignored
            ("10.0.0.2", "not-an-ip, 10.0.0.9", "10.0.0.9"),  # junk: stop at the last proxy
            ("10.0.0.2", "10.0.0.8, 10.0.0.9", "10.0.0.8"),  # all proxies: the farthest
            ("10.0.0.2", "", "10.0.0.2"),
            ("10.0.0.2", None, "10.0.0.2"),
            ("2001:db8::1", " 2001:db8::2 , 2a00::7 ", "2a00::7"),
            ("testclient", "1.2.3.4", "testclient"),  # a peer that is no address at all
        ],
    )
    def test_forwarded_for_is_believed_only_from_trusted_proxies(
        self, peer: str, forwarded: str | None, expected: str
    ) -> None:
        assert throttle.client_address(peer, forwarded, self.TRUSTED) == expected

    def test_without_trusted_proxies_the_peer_is_the_client(self) -> None:
        assert throttle.client_address("10.0.0.2", "1.2.3.4", ()) == "10.0.0.2"

    def test_the_setting_takes_a_comma_separated_list(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("BRANDKEEP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1 ,2001:db8::/32")
        assert Settings().trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]
        monkeypatch.setenv("BRANDKEEP_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal")
        with pytest.raises(ValueError, match=r"proxy\.internal"):
            Settings()
        monkeypatch.delenv("BRANDKEEP_TRUSTED_PROXIES")
        assert Settings().trusted_proxies == []

    def test_sign_in_behind_a_trusted_proxy_counts_the_real_client(
        self, settings: Settings, database: Database, target: str, clock: Clock, db: Session
    ) -> None:
        behind_proxy = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
        app = create_app(behind_proxy, database)
        with TestClient(app, follow_redirects=False, client=("10.0.0.2", 4000)) as client:
            attempt(client, "a@example.com", "wrong!!", **{"X-Forwarded-For": "203.0.113.50"})
        request = fake_request(app, "203.0.113.50")
        ip_key = throttle.keys_for(request, throttle.SIGN_IN)[0].value
        assert db.exec(select(ThrottleEvent).where(ThrottleEvent.key == ip_key)).one()


def fake_request(app: FastAPI, peer: str, forwarded_for: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    scope = {"type": "http", "app": app, "client": (peer, 1234), "headers": headers}
    return Request(scope)
