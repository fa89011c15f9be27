"""An organization's members, managed by its owners: on pages (plain and HTMX) and in the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.tenancy.models import Membership, Organization, OrgKind, Role
from tests.factories import add_member, bearer, create_org, create_token, create_user, sign_in

ONLY_OWNERS = "Only an owner of the organization can manage its members."
LAST_OWNER = "An organization needs at least one owner: make someone else owner first."
NO_SUCH_ROLE = "This role does not exist in this organization."


@dataclass
class Brand:
    org: Organization
    owner: User
    reviewer: User
    owner_email: str
    owner_membership_id: uuid.UUID
    reviewer_email: str
    reviewer_membership_id: uuid.UUID
    outsider_email: str  # has an account, belongs to no organization yet


@pytest.fixture
def brand(db: Session) -> Brand:
    org = create_org(db, kind=OrgKind.brand, name="Cumbre Coffee")
    owner = create_user(db, email="owner@cumbre.example", name="Olga Owner")
    reviewer = create_user(db, email="reviewer@cumbre.example", name="Rita Reviewer")
    outsider = create_user(db, email="new.person@example.com", name="Nuria New")
    owner_membership = add_member(db, org, owner, Role.owner)
    reviewer_membership = add_member(db, org, reviewer, Role.reviewer)
    return Brand(
        org=org,
        owner=owner,
        reviewer=reviewer,
        owner_email=owner.email,
        owner_membership_id=owner_membership.id,
        reviewer_email=reviewer.email,
        reviewer_membership_id=reviewer_membership.id,
        outsider_email=outsider.email,
    )


def membership(db: Session, membership_id: uuid.UUID) -> Membership | None:
    db.expire_all()
    return db.get(Membership, membership_id)


def memberships_of(db: Session, org: Organization) -> dict[str, tuple[str, int]]:
    """E-mail → (role, version) of every member, read fresh from the database."""
    db.expire_all()
    rows = db.exec(
        select(User.email, Membership.role, Membership.version)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.organization_id == org.id)
    ).all()
    return {email: (role, version) for email, role, version in rows}


# --- pages ------------------------------------------------------------------

Post = Callable[..., Response]


@pytest.fixture(params=[False, True], ids=["page", "htmx"])
def htmx(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def page_poster(client: TestClient, csrf: str, htmx: bool) -> Post:
    """Posts a form as the browser would: a full form post, or HTMX swapping the member list."""

    def post(url: str, data: dict[str, object]) -> Response:
        if htmx:
            headers = {"HX-Request": "true", "HX-Target": "member-list", "X-CSRF-Token": csrf}
            return client.post(url, data=data, headers=headers)
        return client.post(url, data={**data, "csrf_token": csrf})

    return post


def assert_member_list(response: Response, htmx: bool) -> None:
    """HTMX gets only the member-list block; a plain post gets the whole page."""
    assert response.headers["content-type"].startswith("text/html")
    assert "<table" in response.text
    if htmx:
        assert "<html" not in response.text
        assert "<h1" not in response.text
        assert 'id="member-list"' not in response.text  # the block, not its container
    else:
        assert response.text.lstrip().startswith("<!doctype html>")
        assert 'id="member-list"' in response.text
        assert "<h1>Members of Cumbre Coffee</h1>" in response.text


@pytest.fixture
def owner_post(client: TestClient, brand: Brand, htmx: bool) -> Post:
    return page_poster(client, sign_in(client, brand.owner_email), htmx)


def members_url(brand: Brand, membership_id: uuid.UUID | None = None, action: str = "") -> str:
    url = f"/orgs/{brand.org.slug}/members"
    return f"{url}/{membership_id}/{action}" if membership_id else url


class TestOwnerOnPages:
    def test_sees_members_and_the_forms_to_manage_them(
        self, client: TestClient, brand: Brand
    ) -> None:
        sign_in(client, brand.owner_email)
        response = client.get(members_url(brand))
        assert response.status_code == 200
        assert "Olga Owner" in response.text and "reviewer@cumbre.example" in response.text
        assert "Add a member" in response.text
        assert f'{members_url(brand, brand.reviewer_membership_id, "remove")}"' in response.text

    def test_adds_an_existing_account_by_email_with_a_role(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool
    ) -> None:
        response = owner_post(
            members_url(brand), {"email": "New.Person@Example.com", "role": "lead"}
        )
        assert response.status_code == 200
        assert_member_list(response, htmx)
        assert "Nuria New" in response.text
        assert memberships_of(db, brand.org)["new.person@example.com"] == ("lead", 1)

    def test_an_email_without_an_account_is_refused_beside_the_field(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool
    ) -> None:
        response = owner_post(members_url(brand), {"email": "nobody@example.com", "role": "lead"})
        assert response.status_code == 422
        assert_member_list(response, htmx)
        assert "Nobody has a Brandkeep account with this e-mail yet" in response.text
        assert 'value="nobody@example.com"' in response.text  # what was typed is kept
        assert len(memberships_of(db, brand.org)) == 2

    def test_someone_already_in_is_not_added_twice(
        self, owner_post: Post, brand: Brand, db: Session
    ) -> None:
        response = owner_post(members_url(brand), {"email": brand.reviewer_email, "role": "lead"})
        assert response.status_code == 422
        assert "reviewer@cumbre.example is already a member." in response.text
        assert memberships_of(db, brand.org)[brand.reviewer_email] == ("reviewer", 1)

    def test_changes_a_role(self, owner_post: Post, brand: Brand, db: Session, htmx: bool) -> None:
        url = members_url(brand, brand.reviewer_membership_id, "role")
        response = owner_post(url, {"role": "viewer", "version": 1})
        assert response.status_code == 200
        assert_member_list(response, htmx)
        assert memberships_of(db, brand.org)[brand.reviewer_email] == ("viewer", 2)
        # The form now carries the new version, ready for the next change.
        assert 'name="version" value="2"' in response.text

    def test_a_stale_version_changes_nothing_and_says_why(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool
    ) -> None:
        url = members_url(brand, brand.reviewer_membership_id, "role")
        assert owner_post(url, {"role": "viewer", "version": 1}).status_code == 200
        response = owner_post(url, {"role": "lead", "version": 1})  # another tab, loaded earlier
        assert response.status_code == 412
        assert_member_list(response, htmx)
        assert "changed by someone else since you loaded it" in response.text
        assert memberships_of(db, brand.org)[brand.reviewer_email] == ("viewer", 2)

    def test_removes_a_member(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool
    ) -> None:
        url = members_url(brand, brand.reviewer_membership_id, "remove")
        response = owner_post(url, {"version": 1})
        assert response.status_code == 200
        assert_member_list(response, htmx)
        assert "reviewer@cumbre.example" not in response.text
        assert membership(db, brand.reviewer_membership_id) is None

    def test_the_last_owner_cannot_be_demoted(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool
    ) -> None:
        url = members_url(brand, brand.owner_membership_id, "role")
        response = owner_post(url, {"role": "lead", "version": 1})
        assert response.status_code == 409
        assert_member_list(response, htmx)
        assert LAST_OWNER in response.text
        assert memberships_of(db, brand.org)[brand.owner_email] == ("owner", 1)

    def test_the_last_owner_cannot_be_removed(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool
    ) -> None:
        response = owner_post(
            members_url(brand, brand.owner_membership_id, "remove"), {"version": 1}
        )
        assert response.status_code == 409
        assert_member_list(response, htmx)
        assert LAST_OWNER in response.text
        assert membership(db, brand.owner_membership_id) is not None

    def test_an_owner_who_is_not_the_last_can_step_down(
        self, owner_post: Post, brand: Brand, db: Session
    ) -> None:
        url = members_url(brand, brand.reviewer_membership_id, "role")
        assert owner_post(url, {"role": "owner", "version": 1}).status_code == 200
        url = members_url(brand, brand.owner_membership_id, "role")
        assert owner_post(url, {"role": "lead", "version": 1}).status_code == 200
        assert memberships_of(db, brand.org) == {
            brand.owner_email: ("lead", 2),
            brand.reviewer_email: ("owner", 2),
        }

    @pytest.mark.parametrize("role", ["manager", "creator", "superuser", ""])
    def test_a_role_that_a_brand_does_not_have_is_refused(
        self, owner_post: Post, brand: Brand, db: Session, htmx: bool, role: str
    ) -> None:
        response = owner_post(members_url(brand), {"email": brand.outsider_email, "role": role})
        assert response.status_code == 422
        assert_member_list(response, htmx)
        assert NO_SUCH_ROLE in response.text
        url = members_url(brand, brand.reviewer_membership_id, "role")
        response = owner_post(url, {"role": role, "version": 1})
        assert response.status_code == 422
        assert NO_SUCH_ROLE in response.text
        assert memberships_of(db, brand.org) == {
            brand.owner_email: ("owner", 1),
            brand.reviewer_email: ("reviewer", 1),
        }

    def test_a_role_that_an_agency_does_not_have_is_refused(
        self, client: TestClient, db: Session, htmx: bool
    ) -> None:
        agency = create_org(db, kind=OrgKind.agency, name="Northwind Social")
        owner = create_user(db, email="owner@northwind.example")
        add_member(db, agency, owner, Role.owner)
        create_user(db, email="maybe@northwind.example")
        post = page_poster(client, sign_in(client, owner.email), htmx)
        url = f"/orgs/{agency.slug}/members"
        for role in ("reviewer", "lead", "viewer"):
            response = post(url, {"email": "maybe@northwind.example", "role": role})
            assert response.status_code == 422, role
            assert NO_SUCH_ROLE in response.text
        assert post(url, {"email": "maybe@northwind.example", "role": "creator"}).status_code == 200
        assert memberships_of(db, agency)["maybe@northwind.example"] == ("creator", 1)


class TestNonOwnerOnPages:
    def test_a_reviewer_sees_the_members_but_not_the_forms(
        self, client: TestClient, brand: Brand
    ) -> None:
        sign_in(client, brand.reviewer_email)
        response = client.get(members_url(brand))
        assert response.status_code == 200
        assert "Olga Owner" in response.text and "Rita Reviewer" in response.text
        assert "Add a member" not in response.text
        assert "/remove" not in response.text and 'name="role"' not in response.text

    def test_a_reviewer_may_not_add_change_or_remove_and_is_told_why(
        self, client: TestClient, brand: Brand, db: Session, htmx: bool
    ) -> None:
        post = page_poster(client, sign_in(client, brand.reviewer_email), htmx)
        attempts = [
            (members_url(brand), {"email": brand.outsider_email, "role": "viewer"}),
            (
                members_url(brand, brand.owner_membership_id, "role"),
                {"role": "viewer", "version": 1},
            ),
            (
                members_url(brand, brand.reviewer_membership_id, "role"),
                {"role": "owner", "version": 1},
            ),
            (members_url(brand, brand.owner_membership_id, "remove"), {"version": 1}),
        ]
        for url, data in attempts:
            response = post(url, data)
            assert response.status_code == 403, url
            assert ONLY_OWNERS in response.text
            if htmx:  # shown as a notice, leaving the member list as it was
                assert response.headers["HX-Retarget"] == "#notices"
                assert "<html" not in response.text and "<table" not in response.text
            else:
                assert "<html" in response.text
        assert memberships_of(db, brand.org) == {
            brand.owner_email: ("owner", 1),
            brand.reviewer_email: ("reviewer", 1),
        }

    def test_someone_from_another_organization_finds_nothing(
        self, client: TestClient, brand: Brand, db: Session, htmx: bool
    ) -> None:
        agency = create_org(db, kind=OrgKind.agency, name="Bluepeak Media")
        stranger = create_user(db, email="owner@bluepeak.example")
        add_member(db, agency, stranger, Role.owner)
        csrf = sign_in(client, stranger.email)
        response = client.get(members_url(brand))
        assert response.status_code == 404
        assert "Olga Owner" not in response.text
        post = page_poster(client, csrf, htmx)
        attempts = [
            (members_url(brand), {"email": stranger.email, "role": "owner"}),
            (
                members_url(brand, brand.owner_membership_id, "role"),
                {"role": "viewer", "version": 1},
            ),
            (members_url(brand, brand.reviewer_membership_id, "remove"), {"version": 1}),
            # Their own organization in the address, a member of the brand's: still nothing.
            (
                f"/orgs/{agency.slug}/members/{brand.reviewer_membership_id}/remove",
                {"version": 1},
            ),
        ]
        for url, data in attempts:
            response = post(url, data)
            assert response.status_code == 404, url
            assert "Rita Reviewer" not in response.text
        assert memberships_of(db, brand.org) == {
            brand.owner_email: ("owner", 1),
            brand.reviewer_email: ("reviewer", 1),
        }


# --- API --------------------------------------------------------------------


def assert_problem(response: Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


class TestMembersApi:
    def test_owner_adds_changes_and_removes_a_member(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        auth = bearer(create_token(db, brand.owner, brand.org))
        url = f"/api/v1/orgs/{brand.org.slug}/members"

        created = client.post(
            url, json={"email": "New.Person@example.com", "role": "lead"}, headers=auth
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["email"], body["role"], body["version"]) == (
            "new.person@example.com",
            "lead",
            1,
        )
        assert created.headers["ETag"] == '"1"'

        changed = client.patch(
            f"{url}/{body['id']}", json={"role": "viewer"}, headers={**auth, "If-Match": '"1"'}
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["role"], changed.json()["version"]) == ("viewer", 2)
        assert memberships_of(db, brand.org)["new.person@example.com"] == ("viewer", 2)

        removed = client.delete(f"{url}/{body['id']}", headers={**auth, "If-Match": '"2"'})
        assert removed.status_code == 204
        assert "new.person@example.com" not in memberships_of(db, brand.org)

    def test_rules_hold_in_the_api_too(self, client: TestClient, brand: Brand, db: Session) -> None:
        auth = bearer(create_token(db, brand.owner, brand.org))
        url = f"/api/v1/orgs/{brand.org.slug}/members"
        own = f"{url}/{brand.owner_membership_id}"

        demote = client.patch(own, json={"role": "lead"}, headers={**auth, "If-Match": '"1"'})
        assert assert_problem(demote, 409)["detail"] == LAST_OWNER
        remove = client.delete(own, headers={**auth, "If-Match": '"1"'})
        assert assert_problem(remove, 409)["detail"] == LAST_OWNER

        wrong_role = client.post(
            url, json={"email": brand.outsider_email, "role": "creator"}, headers=auth
        )
        assert assert_problem(wrong_role, 422)["errors"] == [
            {"field": "role", "message": NO_SUCH_ROLE}
        ]
        twice = client.post(url, json={"email": brand.reviewer_email, "role": "lead"}, headers=auth)
        assert (
            assert_problem(twice, 409)["detail"] == "reviewer@cumbre.example is already a member."
        )
        unknown = client.post(
            url, json={"email": "nobody@example.com", "role": "lead"}, headers=auth
        )
        errors = assert_problem(unknown, 422)["errors"]
        assert [error["field"] for error in errors] == ["email"]  # type: ignore[index,union-attr]

        assert memberships_of(db, brand.org) == {
            brand.owner_email: ("owner", 1),
            brand.reviewer_email: ("reviewer", 1),
        }

    def test_a_reviewer_reads_members_but_may_not_manage_them(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        auth = bearer(create_token(db, brand.reviewer, brand.org))
        url = f"/api/v1/orgs/{brand.org.slug}/members"
        listed = client.get(url, headers=auth)
        assert listed.status_code == 200 and listed.json()["total"] == 2
        attempts = [
            client.post(url, json={"email": brand.outsider_email, "role": "viewer"}, headers=auth),
            client.patch(
                f"{url}/{brand.reviewer_membership_id}",
                json={"role": "owner"},
                headers={**auth, "If-Match": '"1"'},
            ),
            client.delete(
                f"{url}/{brand.owner_membership_id}", headers={**auth, "If-Match": '"1"'}
            ),
        ]
        for response in attempts:
            assert assert_problem(response, 403)["detail"] == ONLY_OWNERS
        assert memberships_of(db, brand.org) == {
            brand.owner_email: ("owner", 1),
            brand.reviewer_email: ("reviewer", 1),
        }

    def test_another_organizations_token_finds_nothing(
        self, client: TestClient, brand: Brand, db: Session
    ) -> None:
        agency = create_org(db, kind=OrgKind.agency)
        stranger = create_user(db)
        add_member(db, agency, stranger, Role.owner)
        auth = bearer(create_token(db, stranger, agency))
        url = f"/api/v1/orgs/{brand.org.slug}/members"
        for response in (
            client.get(url, headers=auth),
            client.get(f"{url}/{brand.owner_membership_id}", headers=auth),
            client.post(url, json={"email": stranger.email, "role": "owner"}, headers=auth),
            client.patch(
                f"{url}/{brand.owner_membership_id}",
                json={"role": "viewer"},
                headers={**auth, "If-Match": '"1"'},
            ),
            client.delete(
                f"{url}/{brand.reviewer_membership_id}", headers={**auth, "If-Match": '"1"'}
            ),
        ):
            assert_problem(response, 404)
        assert db.exec(select(func.count()).select_from(Membership)).one() == 3
