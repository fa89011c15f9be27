"""Posts through the JSON API, and the approval policies they are reviewed by."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session

from app.accounts.models import User
from app.engagements import service as engagements
from app.engagements.schemas import PolicyIn, PolicyStepIn
from tests.engagement_factories import grant
from tests.factories import bearer

API = "/api/v1"


def set_policy(db: Session, lead: User, engagement_id: uuid.UUID, *steps: PolicyStepIn) -> None:
    granted = grant(db, lead, engagement_id)
    engagements.set_policy(
        db,
        granted,
        expected_version=granted.engagement.version,
        data=PolicyIn(steps=list(steps)),
    )
    db.commit()


def draft(
    client: TestClient, token: str, engagement_id: uuid.UUID, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Spring launch teaser",
        "body": "Our spring collection lands on Friday.",
        "link": "https://brand.example/spring",
        "channels": ["instagram"],
        "planned_at": "2027-03-01T09:00:00+01:00",
        "timezone": "Europe/Madrid",
        "campaign": "Spring launch",
        "content_category": "product",
        "funnel_stage": "awareness",
    }
    body.update(fields)
    response = client.post(
        f"{API}/engagements/{engagement_id}/posts", json=body, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def edit(client: TestClient, token: str, post: dict[str, Any], **fields: Any) -> Response:
    return client.patch(
        f"{API}/posts/{post['id']}",
        json=fields,
        headers={**bearer(token), "If-Match": f'"{post["version"]}"'},
    )


def submit(client: TestClient, token: str, post_id: str) -> dict[str, Any]:
    response = client.post(f"{API}/posts/{post_id}/submit", headers=bearer(token))
    assert response.status_code == 200, response.text
    submitted: dict[str, Any] = response.json()
    return submitted


def decide(
    client: TestClient,
    token: str,
    post: dict[str, Any],
    decision: str = "approve",
    comment: str = "",
    version_hash: str | None = None,
) -> Response:
    return client.post(
        f"{API}/posts/{post['id']}/decisions",
        json={
            "decision": decision,
            "version_hash": version_hash or post["current"]["content_hash"],
            "comment": comment,
        },
        headers=bearer(token),
    )


def read(client: TestClient, token: str, post_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/posts/{post_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{response.json()["version"]}"'
    found: dict[str, Any] = response.json()
    return found
