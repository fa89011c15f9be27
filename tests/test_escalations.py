"""Escalations: conversations handed to the brand on a clock; the brand keeps its own notes."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.db import Database, utcnow
from app.engagements import service as engagements
from app.engagements.models import Engagement, RouteKind, Stage
from app.escalations import measures
from app.escalations.models import Escalation, EscalationNote
from tests.engagement_factories import (
    ESCALATION,
    HANDOFF,
    Parties,
    accepted_engagement,
    checklist_of,
    grant,
    make_parties,
    set_up_fully,
    statuses,
)
from tests.factories import bearer, create_token, sign_in
from tests.smtp import SmtpServer
from tests.test_row_level_security import _as, app_role_url, runtime  # noqa: F401 - fixtures

API = "/api/v1"
SECRET_NOTE = "Customer is a journalist: legal reviews every reply."


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    engagement = accepted_engagement(db, parties)
    lead = grant(db, parties.lead, engagement.id)
    engagements.set_route(db, lead, RouteKind.escalation, ESCALATION)
    engagements.set_route(db, lead, RouteKind.handoff, HANDOFF)
    db.commit()
    return engagement


@pytest.fixture
def tokens(db: Session, parties: Parties) -> dict[str, str]:
    return {
        "manager": create_token(db, parties.manager, parties.agency),
        "creator": create_token(db, parties.creator, parties.agency),
        "reviewer": create_token(db, parties.reviewer, parties.brand),
        "lead": create_token(db, parties.lead, parties.brand),
    }


def open_one(
    client: TestClient, token: str, engagement_id: uuid.UUID, kind: str = "complaint", **extra: Any
) -> Any:
    body = {
        "kind": kind,
        "conversation_url": "https://www.instagram.com/p/Cx1/comments/42",
        "summary": "Sole came off after two weeks; wants a refund.",
        "channel": "instagram",
        "customer": "@trailmarta",
        **extra,
    }
    return client.post(
        f"{API}/engagements/{engagement_id}/escalations", json=body, headers=bearer(token)
    )


def backdate(db: Session, escalation_id: str | uuid.UUID, hours: int) -> None:
    """Move an escalation's opening (and so its SLA deadline) into the past."""
    db.expire_all()
    row = db.get(Escalation, uuid.UUID(str(escalation_id)))
    assert row is not None
    row.opened_at -= timedelta(hours=hours)
    row.sla_due_at -= timedelta(hours=hours)
    db.add(row)
    db.commit()


# --- opening and routing -------------------------------------------------------------------


class TestOpening:
    def test_a_complaint_goes_to_customer_service_by_e_mail_with_the_clock_running(
        self, mail_client: TestClient, smtp: SmtpServer, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        response = open_one(mail_client, tokens["manager"], engagement.id)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "open" and body["sla"] == "pending"
        assert body["route_contact_email"] == ESCALATION.contact_email
        assert body["sla_hours"] == ESCALATION.sla_hours
        opened = body["opened_at"]
        assert body["sla_due_at"] > opened
        [mail] = smtp.inbox.wait_for(1)
        assert mail.recipients == [ESCALATION.contact_email]
        assert "Complaint" in mail.subject and "4 h" in mail.subject
        assert "Sole came off" in mail.part("plain")
        assert mail.link("/escalations/") == f"/escalations/{body['id']}"
        assert "Sole came off" in mail.part("html")

    def test_a_sales_lead_goes_to_sales_and_a_crisis_to_the_brand_lead(
        self, client: TestClient, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        lead = open_one(client, tokens["manager"], engagement.id, kind="sales_lead")
        assert lead.json()["route_contact_email"] == HANDOFF.contact_email
        assert lead.json()["sla_hours"] == HANDOFF.sla_hours
        crisis = open_one(client, tokens["manager"], engagement.id, kind="crisis")
        assert crisis.json()["route_contact_email"] == parties.lead.email
        assert crisis.json()["sla_hours"] == ESCALATION.sla_hours

    def test_without_a_route_the_agency_is_told_to_ask_the_brand(
        self, client: TestClient, db: Session, parties: Parties, tokens: dict[str, str]
    ) -> None:
        bare = accepted_engagement(db, parties)
        response = open_one(client, tokens["manager"], bare.id, kind="sales_lead")
        assert response.status_code == 409
        assert "hand-off route" in response.json()["detail"]
        assert not db.exec(select(Escalation).where(Escalation.engagement_id == bare.id)).all()

    def test_bad_input_gets_field_errors(
        self, client: TestClient, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        response = open_one(
            client, tokens["manager"], engagement.id, conversation_url="javascript:alert(1)",
            summary="",
        )  # fmt: skip
        assert response.status_code == 422
        assert {error["field"] for error in response.json()["errors"]} == {
            "conversation_url",
            "summary",
        }

    def test_the_brand_and_a_creator_may_not_open_one(
        self, client: TestClient, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        for who in ("lead", "creator"):
            response = open_one(client, tokens[who], engagement.id)
            assert response.status_code == 403
            assert "agency's owners and managers" in response.json()["detail"]

    def test_an_idempotency_key_opens_it_once(
        self, client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        body = {
            "kind": "complaint",
            "conversation_url": "https://x.example/thread/9",
            "summary": "Late parcel",
        }
        headers = {**bearer(tokens["manager"]), "Idempotency-Key": "esc-9"}
        url = f"{API}/engagements/{engagement.id}/escalations"
        first = client.post(url, json=body, headers=headers)
        again = client.post(url, json=body, headers=headers)
        assert first.json()["id"] == again.json()["id"]
        assert (
            len(db.exec(select(Escalation).where(Escalation.engagement_id == engagement.id)).all())
            == 1
        )


# --- handling --------------------------------------------------------------------------------


class TestHandling:
    def test_acknowledged_then_a_won_lead_resolved_with_attributed_revenue(
        self, client: TestClient, db: Session, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        opened = open_one(client, tokens["manager"], engagement.id, kind="sales_lead").json()
        url = f"{API}/escalations/{opened['id']}"
        ack = client.post(
            f"{url}/acknowledge",
            json={"note": "Diego calls them today."},
            headers={**bearer(tokens["reviewer"]), "If-Match": f'"{opened["version"]}"'},
        )
        assert ack.status_code == 200, ack.text
        assert ack.json()["status"] == "acknowledged" and ack.json()["sla"] == "met"
        no_revenue = client.post(
            f"{url}/resolve", json={"outcome": "won"}, headers=bearer(tokens["reviewer"])
        )
        assert no_revenue.status_code == 422
        assert no_revenue.json()["errors"][0]["field"] == "revenue_minor"
        wrong_outcome = client.post(
            f"{url}/resolve", json={"outcome": "resolved"}, headers=bearer(tokens["reviewer"])
        )
        assert wrong_outcome.status_code == 422
        won = client.post(
            f"{url}/resolve",
            json={"outcome": "won", "revenue_minor": 184_000},
            headers=bearer(tokens["reviewer"]),
        )
        assert won.status_code == 200, won.text
        assert won.json()["revenue_minor"] == 184_000 and won.json()["currency"] == "EUR"
        now = utcnow()
        revenue = measures.attributed_revenue(
            db, engagement, now - timedelta(days=1), now + timedelta(minutes=1)
        )
        assert (revenue.minor_units, revenue.currency, revenue.won) == (184_000, "EUR", 1)

    def test_the_agency_sees_the_outcome_but_never_acts_on_it(
        self, client: TestClient, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        opened = open_one(client, tokens["manager"], engagement.id).json()
        response = client.post(
            f"{API}/escalations/{opened['id']}/acknowledge", headers=bearer(tokens["manager"])
        )
        assert response.status_code == 403
        assert "brand handles" in response.json()["detail"]
        client.post(
            f"{API}/escalations/{opened['id']}/resolve",
            json={"outcome": "resolved"},
            headers=bearer(tokens["lead"]),
        )
        seen = client.get(f"{API}/escalations/{opened['id']}", headers=bearer(tokens["manager"]))
        assert seen.json()["status"] == "resolved" and seen.json()["outcome"] == "resolved"

    def test_a_transition_from_the_wrong_state_is_409_and_a_stale_version_412(
        self, client: TestClient, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        opened = open_one(client, tokens["manager"], engagement.id).json()
        url = f"{API}/escalations/{opened['id']}"
        client.post(f"{url}/acknowledge", headers=bearer(tokens["reviewer"]))
        again = client.post(f"{url}/acknowledge", headers=bearer(tokens["reviewer"]))
        assert again.status_code == 409
        stale = client.post(
            f"{url}/resolve",
            json={"outcome": "resolved"},
            headers={**bearer(tokens["reviewer"]), "If-Match": f'"{opened["version"]}"'},
        )
        assert stale.status_code == 412
        client.post(
            f"{url}/resolve", json={"outcome": "resolved"}, headers=bearer(tokens["reviewer"])
        )
        twice = client.post(
            f"{url}/resolve", json={"outcome": "unresolved"}, headers=bearer(tokens["reviewer"])
        )
        assert twice.status_code == 409

    def test_every_transition_is_on_the_audit_chain_but_never_a_note_s_words(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        opened = open_one(client, tokens["manager"], engagement.id).json()
        url = f"{API}/escalations/{opened['id']}"
        client.post(
            f"{url}/acknowledge", json={"note": SECRET_NOTE}, headers=bearer(tokens["reviewer"])
        )
        client.post(
            f"{url}/resolve", json={"outcome": "resolved"}, headers=bearer(tokens["reviewer"])
        )
        entries = db.exec(
            select(AuditEntry)
            .where(AuditEntry.engagement_id == engagement.id, AuditEntry.subject_id == opened["id"])
            .order_by(col(AuditEntry.seq))
        ).all()
        assert [(e.kind, e.actor_id) for e in entries] == [
            ("escalation_opened", parties.manager.id),
            ("escalation_acknowledged", parties.reviewer.id),
            ("escalation_note_added", parties.reviewer.id),
            ("escalation_resolved", parties.reviewer.id),
        ]
        assert all(SECRET_NOTE not in str(entry.data) for entry in entries)
        assert audit.verify_chain(db, engagement.id).ok


# --- the SLA ------------------------------------------------------------------------------


class TestSla:
    def test_a_breach_is_computed_and_shown(
        self, client: TestClient, make_client: Any, db: Session, parties: Parties,
        engagement: Engagement, tokens: dict[str, str],
    ) -> None:  # fmt: skip
        late = open_one(client, tokens["manager"], engagement.id).json()
        backdate(db, late["id"], hours=ESCALATION.sla_hours + 1)
        untouched = client.get(f"{API}/escalations/{late['id']}", headers=bearer(tokens["manager"]))
        assert untouched.json()["sla"] == "breached"
        client.post(f"{API}/escalations/{late['id']}/acknowledge", headers=bearer(tokens["lead"]))
        taken_late = client.get(f"{API}/escalations/{late['id']}", headers=bearer(tokens["lead"]))
        assert taken_late.json()["sla"] == "breached"  # taken up after the deadline
        on_time = open_one(client, tokens["manager"], engagement.id).json()
        client.post(
            f"{API}/escalations/{on_time['id']}/acknowledge", headers=bearer(tokens["lead"])
        )
        pending = open_one(client, tokens["manager"], engagement.id).json()
        now = utcnow()
        counts = measures.escalation_counts(
            db, engagement, now - timedelta(days=2), now + timedelta(minutes=1)
        )
        assert (counts.total, counts.decided, counts.within_sla, counts.breached) == (3, 2, 1, 1)
        assert counts.pending == 1 and pending["sla"] == "pending"
        brand = make_client()
        sign_in(brand, parties.lead.email)
        page = brand.get("/escalations")
        assert 'class="flag flag-error">SLA breached' in page.text

    def test_the_maturity_checklist_reads_the_sla_from_the_escalations(
        self, client: TestClient, db: Session, parties: Parties, tokens: dict[str, str]
    ) -> None:
        engagement = accepted_engagement(db, parties)
        set_up_fully(db, parties, engagement.id)

        def item() -> str:
            result = checklist_of(db, parties.lead, engagement.id, Stage.development)
            return statuses(result)["escalations_in_sla"]

        assert item() == "holds"  # the route is in place and nothing was due
        late = open_one(client, tokens["manager"], engagement.id).json()
        backdate(db, late["id"], hours=ESCALATION.sla_hours + 2)
        assert item() == "missing"
        backdate(db, late["id"], hours=24 * 31)  # out of the last 30 days
        on_time = open_one(client, tokens["manager"], engagement.id).json()
        client.post(
            f"{API}/escalations/{on_time['id']}/acknowledge", headers=bearer(tokens["lead"])
        )
        assert item() == "holds"


class TestSlaRules:
    """The SLA states on escalations that exist only in memory (pure)."""

    def _escalation(self, **moments: Any) -> Escalation:
        opened = utcnow() - timedelta(hours=10)
        values: dict[str, Any] = {
            "brand_id": uuid.uuid4(),
            "engagement_id": uuid.uuid4(),
            "kind": "complaint",
            "conversation_url": "https://x.example",
            "summary": "s",
            "route_team": "Care",
            "route_contact_name": "Care",
            "route_contact_email": "care@example.com",
            "sla_hours": 4,
            "opened_at": opened,
            "sla_due_at": opened + timedelta(hours=4),
            "opened_by_name": "Agency",
        }
        values.update(moments)
        return Escalation(**values)

    def test_the_clock_stops_at_the_first_of_acknowledged_and_resolved(self) -> None:
        row = self._escalation()
        due = row.sla_due_at
        assert measures.sla_state(row, due - timedelta(minutes=1)) is measures.SlaState.pending
        assert measures.sla_state(row, due + timedelta(minutes=1)) is measures.SlaState.breached
        row.resolved_at = due - timedelta(minutes=5)  # resolved without acknowledging first
        assert measures.sla_state(row) is measures.SlaState.met
        row.acknowledged_at = due + timedelta(hours=1)
        assert measures.sla_state(row) is measures.SlaState.met  # the earlier moment counts
        late = self._escalation()
        late.acknowledged_at = late.sla_due_at + timedelta(hours=1)
        assert measures.sla_state(late) is measures.SlaState.breached

    def test_pending_ones_count_neither_way(self) -> None:
        now = utcnow()
        fresh = self._escalation(opened_at=now, sla_due_at=now + timedelta(hours=4))
        counts = measures.count([fresh, self._escalation()], now)
        assert (counts.total, counts.decided, counts.pending, counts.breached) == (2, 1, 1, 1)
        assert counts.within_sla_rate == 0


# --- the brand's notes: a tenant wall ------------------------------------------------------


class TestNotesWall:
    def test_the_agency_never_reads_the_brand_s_notes_through_the_api(
        self, client: TestClient, engagement: Engagement, tokens: dict[str, str]
    ) -> None:
        opened = open_one(client, tokens["manager"], engagement.id).json()
        url = f"{API}/escalations/{opened['id']}"
        added = client.post(
            f"{url}/notes", json={"body": SECRET_NOTE}, headers=bearer(tokens["reviewer"])
        )
        assert added.status_code == 201
        brand_view = client.get(url, headers=bearer(tokens["reviewer"])).json()
        assert [note["body"] for note in brand_view["notes"]] == [SECRET_NOTE]
        agency_view = client.get(url, headers=bearer(tokens["manager"]))
        assert agency_view.json()["notes"] is None
        assert SECRET_NOTE not in agency_view.text
        listed = client.get(
            f"{API}/engagements/{engagement.id}/escalations", headers=bearer(tokens["manager"])
        )
        assert SECRET_NOTE not in listed.text
        notes = client.get(f"{url}/notes", headers=bearer(tokens["manager"]))
        assert notes.status_code == 403 and SECRET_NOTE not in notes.text
        write = client.post(f"{url}/notes", json={"body": "x"}, headers=bearer(tokens["manager"]))
        assert write.status_code == 403

    def test_the_agency_never_reads_the_brand_s_notes_on_the_pages(
        self, client: TestClient, make_client: Any, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        opened = open_one(client, tokens["manager"], engagement.id).json()
        brand = make_client()
        csrf = sign_in(brand, parties.reviewer.email)
        added = brand.post(
            f"/escalations/{opened['id']}/notes",
            data={"body": SECRET_NOTE},
            headers={"HX-Request": "true", "HX-Target": "escalation-main", "X-CSRF-Token": csrf},
        )
        assert added.status_code == 200 and SECRET_NOTE in added.text
        agency = make_client()
        sign_in(agency, parties.manager.email)
        for path in (
            f"/escalations/{opened['id']}",
            "/escalations",
            f"/engagements/{engagement.id}/escalations",
        ):
            page = agency.get(path)
            assert page.status_code == 200, path
            assert SECRET_NOTE not in page.text, path
        assert "Internal notes" not in agency.get(f"/escalations/{opened['id']}").text

    @pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"), reason="row-level security is PostgreSQL's"
    )
    def test_row_level_security_hides_the_notes_from_the_agency(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        tokens: dict[str, str], runtime: Database,  # noqa: F811 - the fixture imported above
    ) -> None:  # fmt: skip
        opened = open_one(client, tokens["manager"], engagement.id).json()
        client.post(
            f"{API}/escalations/{opened['id']}/notes",
            json={"body": SECRET_NOTE},
            headers=bearer(tokens["reviewer"]),
        )
        query = sa.text("SELECT body FROM escalation_note")
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[parties.agency])
            assert connection.execute(query).scalars().all() == []
            # The escalation itself is shared: the agency sees it, status and all.
            assert connection.execute(sa.text("SELECT count(*) FROM escalation")).scalar() == 1
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[parties.brand])
            assert connection.execute(query).scalars().all() == [SECRET_NOTE]
        with runtime.engine.begin() as connection:
            _as(connection, orgs=[parties.agency])
            row = db.exec(select(EscalationNote)).first()
            assert row is not None
            refused = connection.execute(
                sa.text("UPDATE escalation_note SET body = 'agency was here' WHERE id = :id"),
                {"id": row.id},
            )
            assert refused.rowcount == 0


class TestTenancy:
    def test_a_foreign_escalation_is_404_and_a_rival_s_boxes_are_empty(
        self, client: TestClient, make_client: Any, db: Session, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        opened = open_one(client, tokens["manager"], engagement.id).json()
        rival = make_parties(db, signs_in=True)
        token = create_token(db, rival.manager, rival.agency)
        url = f"{API}/escalations/{opened['id']}"
        assert client.get(url, headers=bearer(token)).status_code == 404
        for path in ("acknowledge", "resolve", "notes"):
            assert (
                client.post(f"{url}/{path}", json={"x": 1}, headers=bearer(token)).status_code
                == 404
            )
        browser = make_client()
        sign_in(browser, rival.manager.email)
        assert browser.get(f"/escalations/{opened['id']}").status_code == 404
        assert opened["summary"] not in browser.get("/escalations").text

    def test_the_inbox_and_the_outbox(
        self, client: TestClient, make_client: Any, parties: Parties, engagement: Engagement,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        open_one(
            client,
            tokens["manager"],
            engagement.id,
            summary="Wholesale order for 40 pairs",
            kind="sales_lead",
        )
        brand = make_client()
        sign_in(brand, parties.reviewer.email)
        inbox = brand.get("/escalations").text
        assert (
            "Inbox" in inbox and "Wholesale order for 40 pairs" in inbox and "Outbox" not in inbox
        )
        agency = make_client()
        sign_in(agency, parties.manager.email)
        outbox = agency.get("/escalations").text
        assert (
            "Outbox" in outbox
            and "Wholesale order for 40 pairs" in outbox
            and "Inbox:" not in outbox
        )


class TestPages:
    def test_the_agency_hands_over_and_the_brand_resolves_on_the_pages(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement
    ) -> None:
        agency = make_client()
        csrf = sign_in(agency, parties.manager.email)
        page = agency.get(f"/engagements/{engagement.id}/escalations")
        assert page.status_code == 200 and "Hand a conversation to the brand" in page.text
        opened = agency.post(
            f"/engagements/{engagement.id}/escalations",
            data={
                "csrf_token": csrf,
                "kind": "sales_lead",
                "conversation_url": "https://forum.runners.example/t/team-order",
                "summary": "Running club wants 25 pairs.",
                "channel": "forums",
            },
        )
        assert opened.status_code == 303
        detail_url = opened.headers["location"]
        brand = make_client()
        brand_csrf = sign_in(brand, parties.reviewer.email)
        detail = brand.get(detail_url)
        assert "Running club wants 25 pairs." in detail.text
        resolved = brand.post(
            detail_url.replace("http://testserver", "") + "/resolve",
            data={
                "csrf_token": brand_csrf,
                "outcome": "won",
                "revenue": "2375,50",
                "note": SECRET_NOTE,
            },
            headers={"HX-Request": "true", "HX-Target": "escalation-main"},
        )
        assert resolved.status_code == 200, resolved.text
        row = db.exec(select(Escalation).where(Escalation.engagement_id == engagement.id)).one()
        assert row.revenue_minor == 237_550 and row.outcome == "won"
        assert SECRET_NOTE not in agency.get(detail_url).text

    def test_navigation_and_the_engagement_page_link_to_escalations(
        self, make_client: Any, parties: Parties, engagement: Engagement
    ) -> None:
        brand = make_client()
        sign_in(brand, parties.lead.email)
        page = brand.get(f"/engagements/{engagement.id}").text
        assert f'href="http://testserver/engagements/{engagement.id}/escalations"' in page
        assert 'href="http://testserver/escalations"' in page
