"""The API's conventions, the same for every endpoint (README, "API"), shown on members."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, col, func, select

from app.accounts.models import ApiToken, User
from app.accounts.service import secret_hash
from app.db import Database
from app.idempotency import IdempotencyRecord
from app.tenancy.models import Membership, Organization, OrgKind, Role
from tests.factories import add_member, bearer, create_org, create_token, create_user, sign_in

INVALID_TOKEN = 'Bearer error="invalid_token"'  # every 401 says how to authenticate


def assert_problem(response: Response, status: int) -> dict[str, object]:
    """RFC 9457 problem details: the media type, a title, the status again in the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    return body


def field_errors(response: Response) -> dict[str, str]:
    body = assert_problem(response, 422)
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    for error in errors:
        assert set(error) == {"field", "message"} and error["message"]
    return {error["field"]: error["message"] for error in errors}


@dataclass
class Brand:
    org: Organization
    owner: User
    token: str  # the owner's, write scope
    member_id: uuid.UUID  # a reviewer's membership

    @property
    def members_url(self) -> str:
        return f"/api/v1/orgs/{self.org.slug}/members"

    @property
    def member_url(self) -> str:
        return f"{self.members_url}/{self.member_id}"

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


@pytest.fixture
def brand(db: Session) -> Brand:
    org = create_org(db, kind=OrgKind.brand, name="Cumbre Coffee")
    owner = create_user(db, email="owner@cumbre.example", name="Olga Owner")
    add_member(db, org, owner, Role.owner)
    reviewer = create_user(db, email="reviewer@cumbre.example", name="Rita Reviewer")
    membership = add_member(db, org, reviewer, Role.reviewer)
    return Brand(org=org, owner=owner, token=create_token(db, owner, org), member_id=membership.id)


def member_row(db: Session, membership_id: uuid.UUID) -> tuple[str, int] | None:
    db.expire_all()
    row = db.get(Membership, membership_id)
    return (row.role, row.version) if row else None


def count(db: Session, model: type) -> int:
    db.expire_all()
    return db.exec(select(func.count()).select_from(model)).one()


# --- who am I, and tokens -----------------------------------------------------


class TestMe:
    def test_shows_the_user_and_only_the_tokens_organization(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        agency = create_org(db, kind=OrgKind.agency, name="Northwind Social")
        add_member(db, agency, brand.owner, Role.manager)  # the same person, elsewhere too
        response = client.get("/api/v1/me", headers=brand.auth)
        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["email"], body["name"]) == (
            str(brand.owner.id),
            "owner@cumbre.example",
            "Olga Owner",
        )
        assert body["memberships"] == [
            {
                "organization_id": str(brand.org.id),
                "organization_slug": brand.org.slug,
                "organization_name": "Cumbre Coffee",
                "organization_kind": "brand",
                "role": "owner",
            }
        ]
        assert (body["token_organization"], body["token_scope"]) == (brand.org.slug, "write")

        read_token = create_token(db, brand.owner, agency, scope="read")
        body = client.get("/api/v1/me", headers=bearer(read_token)).json()
        assert [m["organization_slug"] for m in body["memberships"]] == [agency.slug]
        assert [m["role"] for m in body["memberships"]] == ["manager"]
        assert (body["token_organization"], body["token_scope"]) == (agency.slug, "read")

    def test_a_token_stops_working_in_an_organization_its_owner_left(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        reviewer_membership = db.get(Membership, brand.member_id)
        assert reviewer_membership is not None
        reviewer = db.get(User, reviewer_membership.user_id)
        assert reviewer is not None
        token = create_token(db, reviewer, brand.org, scope="read")
        assert client.get(brand.members_url, headers=bearer(token)).status_code == 200
        removed = client.delete(brand.member_url, headers={**brand.auth, "If-Match": '"1"'})
        assert removed.status_code == 204
        assert client.get(brand.members_url, headers=bearer(token)).status_code == 404
        assert client.get("/api/v1/me", headers=bearer(token)).json()["memberships"] == []


class TestAuthentication:
    def test_no_token_is_401_and_says_how_to_authenticate(self, client: TestClient) -> None:
        response = client.get("/api/v1/me")
        body = assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer" in str(body["detail"])

    @pytest.mark.parametrize(
        "token",
        ["nonsense", "bk_" + "x" * 43, "bk_" + "x" * 200],
        ids=["garbage", "unknown", "long"],
    )
    def test_a_token_that_is_not_ours_is_401(
        self, client: TestClient, brand: Brand, token: str
    ) -> None:
        for url in ("/api/v1/me", brand.members_url):
            response = client.get(url, headers=bearer(token))
            assert assert_problem(response, 401)["detail"] == "This API token is not valid."
            assert response.headers["WWW-Authenticate"] == INVALID_TOKEN

    def test_a_revoked_token_is_401(self, client: TestClient, brand: Brand, db: Session) -> None:
        assert client.get("/api/v1/me", headers=brand.auth).status_code == 200
        token = db.exec(
            select(ApiToken).where(ApiToken.token_hash == secret_hash(brand.token))
        ).one()
        csrf = sign_in(client, brand.owner.email)
        revoked = client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 200
        for url in ("/api/v1/me", brand.members_url):
            response = client.get(url, headers=brand.auth)
            assert assert_problem(response, 401)["detail"] == "This API token is not valid."
            assert response.headers["WWW-Authenticate"] == INVALID_TOKEN

    def test_a_read_token_may_read_but_not_write(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        read = bearer(create_token(db, brand.owner, brand.org, scope="read"))
        assert client.get(brand.members_url, headers=read).status_code == 200
        outsider = create_user(db, email="new.person@example.com")
        attempts = [
            client.post(
                brand.members_url, json={"email": outsider.email, "role": "viewer"}, headers=read
            ),
            client.patch(
                brand.member_url, json={"role": "viewer"}, headers={**read, "If-Match": '"1"'}
            ),
            client.delete(brand.member_url, headers={**read, "If-Match": '"1"'}),
        ]
        for response in attempts:
            body = assert_problem(response, 403)
            assert "read-only" in str(body["detail"])
        assert count(db, Membership) == 2
        assert member_row(db, brand.member_id) == ("reviewer", 1)


# --- lists --------------------------------------------------------------------


class TestPagination:
    @pytest.fixture
    def seven_members(self, brand: Brand, db: Session) -> list[str]:
        for n in range(5):
            person = create_user(db, email=f"person{n}@example.com", name=f"Person {n}")
            add_member(db, brand.org, person, Role.viewer)
        return sorted(
            db.exec(
                select(User.email)
                .join(Membership, col(Membership.user_id) == User.id)
                .where(Membership.organization_id == brand.org.id)
            ).all()
        )

    def test_limit_and_offset_walk_the_whole_list_once(
        self, client: TestClient, brand: Brand, seven_members: list[str]
    ) -> None:
        seen: list[str] = []
        for offset in (0, 3, 6):
            response = client.get(
                brand.members_url, params={"limit": 3, "offset": offset}, headers=brand.auth
            )
            assert response.status_code == 200
            body = response.json()
            assert (body["total"], body["limit"], body["offset"]) == (7, 3, offset)
            assert len(body["items"]) == (3 if offset < 6 else 1)
            seen += [item["email"] for item in body["items"]]
        assert sorted(seen) == seven_members  # each exactly once
        past_the_end = client.get(brand.members_url, params={"offset": 50}, headers=brand.auth)
        assert past_the_end.json()["items"] == [] and past_the_end.json()["total"] == 7

    def test_defaults(self, client: TestClient, brand: Brand, seven_members: list[str]) -> None:
        body = client.get(brand.members_url, headers=brand.auth).json()
        assert (body["total"], body["limit"], body["offset"], len(body["items"])) == (7, 50, 0, 7)

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": 201}, "limit"),
            ({"limit": 0}, "limit"),
            ({"limit": "many"}, "limit"),
            ({"offset": -1}, "offset"),
        ],
    )
    def test_out_of_range_is_422_naming_the_field(
        self, client: TestClient, brand: Brand, params: dict[str, object], field: str
    ) -> None:
        response = client.get(brand.members_url, params=params, headers=brand.auth)
        assert list(field_errors(response)) == [field]

    def test_the_largest_page_is_200(self, client: TestClient, brand: Brand) -> None:
        response = client.get(brand.members_url, params={"limit": 200}, headers=brand.auth)
        assert response.status_code == 200 and response.json()["limit"] == 200


# --- conditional updates --------------------------------------------------------


class TestIfMatch:
    def test_reading_gives_an_etag(self, client: TestClient, brand: Brand) -> None:
        response = client.get(brand.member_url, headers=brand.auth)
        assert response.status_code == 200
        assert response.headers["ETag"] == '"1"'
        assert response.json()["version"] == 1

    def test_patch_without_if_match_is_428_and_changes_nothing(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        response = client.patch(brand.member_url, json={"role": "viewer"}, headers=brand.auth)
        assert_problem(response, 428)
        assert member_row(db, brand.member_id) == ("reviewer", 1)

    def test_patch_with_a_stale_etag_is_412_and_changes_nothing(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        etag = client.get(brand.member_url, headers=brand.auth).headers["ETag"]
        first = client.patch(
            brand.member_url, json={"role": "viewer"}, headers={**brand.auth, "If-Match": etag}
        )
        assert first.status_code == 200
        second = client.patch(
            brand.member_url, json={"role": "lead"}, headers={**brand.auth, "If-Match": etag}
        )
        assert_problem(second, 412)
        assert member_row(db, brand.member_id) == ("viewer", 2)

    @pytest.mark.parametrize("if_match", ['"7"', '"0"', "junk"])
    def test_an_etag_that_never_matched_is_412(
        self, client: TestClient, brand: Brand, db: Session, if_match: str
    ) -> None:
        response = client.patch(
            brand.member_url, json={"role": "viewer"}, headers={**brand.auth, "If-Match": if_match}
        )
        assert_problem(response, 412)
        assert member_row(db, brand.member_id) == ("reviewer", 1)

    def test_patch_with_the_current_etag_applies_and_gives_the_new_one(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        etag = client.get(brand.member_url, headers=brand.auth).headers["ETag"]
        response = client.patch(
            brand.member_url, json={"role": "viewer"}, headers={**brand.auth, "If-Match": etag}
        )
        assert response.status_code == 200
        assert response.headers["ETag"] == '"2"' != etag
        assert (response.json()["role"], response.json()["version"]) == ("viewer", 2)
        assert member_row(db, brand.member_id) == ("viewer", 2)
        assert client.get(brand.member_url, headers=brand.auth).headers["ETag"] == '"2"'

    def test_delete_needs_the_current_etag_too(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        assert_problem(client.delete(brand.member_url, headers=brand.auth), 428)
        assert_problem(
            client.delete(brand.member_url, headers={**brand.auth, "If-Match": '"2"'}), 412
        )
        assert member_row(db, brand.member_id) == ("reviewer", 1)
        response = client.delete(brand.member_url, headers={**brand.auth, "If-Match": '"1"'})
        assert response.status_code == 204 and response.content == b""
        assert member_row(db, brand.member_id) is None
        assert_problem(client.get(brand.member_url, headers=brand.auth), 404)

    def test_a_422_lists_the_fields(self, client: TestClient, brand: Brand) -> None:
        response = client.patch(
            brand.member_url, json={}, headers={**brand.auth, "If-Match": '"1"'}
        )
        assert list(field_errors(response)) == ["role"]
        response = client.post(
            brand.members_url, json={"email": "not an address", "role": ""}, headers=brand.auth
        )
        assert sorted(field_errors(response)) == ["email", "role"]

    def test_two_writers_with_the_same_etag_one_wins(
        self, make_client, brand: Brand, db: Session, database: Database
    ) -> None:
        skip_unless_postgresql(database)
        # Two owners, each with their own token and browser, edit the same member at once.
        second_owner = create_user(db, email="second.owner@cumbre.example")
        add_member(db, brand.org, second_owner, Role.owner)
        tokens = [brand.auth, bearer(create_token(db, second_owner, brand.org))]
        roles = ["viewer", "lead"]
        responses = at_once(
            [
                lambda client, auth=auth, role=role: client.patch(
                    brand.member_url, json={"role": role}, headers={**auth, "If-Match": '"1"'}
                )
                for auth, role in zip(tokens, roles, strict=True)
            ],
            make_client,
        )
        assert sorted(response.status_code for response in responses) == [200, 412]
        [winner] = [
            role
            for role, response in zip(roles, responses, strict=True)
            if response.status_code == 200
        ]
        assert member_row(db, brand.member_id) == (winner, 2)


def skip_unless_postgresql(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip(
            "SQLite serialises writers (BEGIN IMMEDIATE), so two requests cannot overlap; "
            "run with TEST_DATABASE_URL set to a PostgreSQL server"
        )


def at_once(
    requests: list[Callable[[TestClient], Response]], make_client: Callable[[], TestClient]
) -> list[Response]:
    """Send the requests from separate threads and browsers, released together."""
    clients = [make_client() for _ in requests]
    barrier = threading.Barrier(len(requests))
    responses: list[Response | None] = [None] * len(requests)
    failures: list[BaseException] = []

    def send(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[index] = requests[index](clients[index])
        except BaseException as exc:  # reported in the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert all(response is not None for response in responses)
    return [response for response in responses if response is not None]


# --- idempotent creation --------------------------------------------------------


class TestIdempotencyKey:
    @pytest.fixture
    def outsider(self, db: Session) -> User:
        return create_user(db, email="new.person@example.com", name="Nuria New")

    def test_a_retry_returns_the_first_answer_and_creates_nothing_more(
        self, client: TestClient, brand: Brand, outsider: User, db: Session
    ) -> None:
        headers = {**brand.auth, "Idempotency-Key": "add-nuria-1"}
        payload = {"email": outsider.email, "role": "viewer"}
        first = client.post(brand.members_url, json=payload, headers=headers)
        assert first.status_code == 201
        assert "Idempotent-Replayed" not in first.headers
        retry = client.post(brand.members_url, json=payload, headers=headers)
        assert retry.status_code == 201
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json() == first.json()
        assert count(db, Membership) == 3
        assert count(db, IdempotencyRecord) == 1

    def test_without_a_key_a_second_post_is_a_conflict(
        self, client: TestClient, brand: Brand, outsider: User, db: Session
    ) -> None:
        payload = {"email": outsider.email, "role": "viewer"}
        assert client.post(brand.members_url, json=payload, headers=brand.auth).status_code == 201
        again = client.post(brand.members_url, json=payload, headers=brand.auth)
        assert_problem(again, 409)
        assert count(db, Membership) == 3
        assert count(db, IdempotencyRecord) == 0

    def test_the_same_key_with_another_body_is_422(
        self, client: TestClient, brand: Brand, outsider: User, db: Session
    ) -> None:
        headers = {**brand.auth, "Idempotency-Key": "add-nuria-2"}
        first = client.post(
            brand.members_url, json={"email": outsider.email, "role": "viewer"}, headers=headers
        )
        assert first.status_code == 201
        other = client.post(
            brand.members_url, json={"email": outsider.email, "role": "lead"}, headers=headers
        )
        assert "Idempotency-Key" in field_errors(other)
        assert count(db, Membership) == 3
        assert member_row(db, uuid.UUID(first.json()["id"])) == ("viewer", 1)

    def test_a_refused_request_does_not_use_up_its_key(
        self, client: TestClient, brand: Brand, outsider: User, db: Session
    ) -> None:
        headers = {**brand.auth, "Idempotency-Key": "add-nuria-3"}
        payload = {"email": outsider.email, "role": "viewer"}
        refused = client.post(
            brand.members_url, json={**payload, "role": "manager"}, headers=headers
        )
        assert_problem(refused, 422)
        assert count(db, IdempotencyRecord) == 0
        # Nothing was done, so nothing is replayed: the corrected request runs.
        fixed = client.post(brand.members_url, json=payload, headers=headers)
        assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers

    def test_keys_are_per_user(
        self, client: TestClient, brand: Brand, outsider: User, db: Session
    ) -> None:
        other_owner = create_user(db, email="other.owner@cumbre.example")
        add_member(db, brand.org, other_owner, Role.owner)
        other_auth = bearer(create_token(db, other_owner, brand.org))
        key = {"Idempotency-Key": "same-key"}
        first = client.post(
            brand.members_url,
            json={"email": outsider.email, "role": "viewer"},
            headers={**brand.auth, **key},
        )
        assert first.status_code == 201
        third = create_user(db, email="third@example.com")
        second = client.post(
            brand.members_url,
            json={"email": third.email, "role": "viewer"},
            headers={**other_auth, **key},
        )
        assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
        assert count(db, Membership) == 5

    def test_an_overlong_key_is_422(self, client: TestClient, brand: Brand, outsider: User) -> None:
        response = client.post(
            brand.members_url,
            json={"email": outsider.email, "role": "viewer"},
            headers={**brand.auth, "Idempotency-Key": "k" * 256},
        )
        assert "Idempotency-Key" in field_errors(response)

    def test_two_owners_adding_the_same_person_at_once_get_201_and_409(
        self, make_client, brand: Brand, outsider: User, db: Session, database: Database
    ) -> None:
        skip_unless_postgresql(database)
        second_owner = create_user(db, email="second.owner@cumbre.example")
        add_member(db, brand.org, second_owner, Role.owner)
        tokens = [brand.auth, bearer(create_token(db, second_owner, brand.org))]
        payload = {"email": outsider.email, "role": "viewer"}
        responses = at_once(
            [
                lambda client, auth=auth: client.post(brand.members_url, json=payload, headers=auth)
                for auth in tokens
            ],
            make_client,
        )
        assert sorted(response.status_code for response in responses) == [201, 409]
        conflict = next(response for response in responses if response.status_code == 409)
        assert (
            assert_problem(conflict, 409)["detail"] == "new.person@example.com is already a member."
        )
        assert count(db, Membership) == 4
