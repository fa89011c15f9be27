"""Link tracking (issue #5): UTM parameters from the engagement's tracking set-up, on the
post's link, through the API and the post's page, so results can be matched to the post.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.content.models import Post
from app.content.utm import post_id_from_utm_content, slug, utm_content_for, with_parameters
from app.engagements.models import Engagement
from app.errors import InvalidInput
from tests.engagement_factories import Parties, accepted_engagement, make_parties, update
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import API, draft, read

HX = {"HX-Request": "true", "HX-Target": "post-edit"}


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    lead: str
    creator: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True)
    engagement = accepted_engagement(db, parties)
    engagement = update(
        db,
        parties,
        engagement.id,
        utm_source="brandkeep",
        utm_medium="organic-social",
        utm_campaign="spring-2027",
    )
    return World(
        parties=parties,
        engagement=engagement,
        lead=create_token(db, parties.lead, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def query_of(link: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(link).query, keep_blank_values=True)


class TestBuildingTheLink:
    def test_keeps_other_parameters_and_the_fragment_and_never_repeats_a_utm_key(self) -> None:
        link = "https://brand.example/spring?ref=nav&utm_source=old&empty=#shop"
        tracked = with_parameters(link, {"utm_source": "social", "utm_content": "teaser-1"})
        assert query_of(tracked) == [
            ("ref", "nav"),
            ("empty", ""),
            ("utm_source", "social"),
            ("utm_content", "teaser-1"),
        ]
        assert tracked.endswith("#shop")
        assert with_parameters(tracked, {"utm_source": "social", "utm_content": "teaser-1"}) == (
            tracked
        )

    @pytest.mark.parametrize("link", ["mailto:hi@brand.example", "javascript:alert(1)", "/spring"])
    def test_only_web_links_get_tracking(self, link: str) -> None:
        with pytest.raises(InvalidInput):
            with_parameters(link, {"utm_source": "x"})

    def test_utm_content_names_the_post_and_gives_it_back(self) -> None:
        post = Post(
            title="¡Primavera: 20 % en botas!", brand_id=uuid.uuid4(), engagement_id=uuid.uuid4()
        )
        value = utm_content_for(post)
        assert value.startswith("primavera-20-en-botas-")
        assert post_id_from_utm_content(value) == post.id
        assert post_id_from_utm_content(value.upper()) == post.id
        assert post_id_from_utm_content("spring-teaser") is None
        assert slug("   ") == ""


class TestThroughTheApi:
    def test_the_engagement_s_set_up_fills_the_link_and_saves_a_version(
        self, client: TestClient, world: World
    ) -> None:
        post = draft(
            client, world.creator, world.engagement.id, link="https://brand.example/s?ref=ig"
        )
        preview = client.get(f"{API}/posts/{post['id']}/link-tracking", headers=bearer(world.lead))
        assert preview.status_code == 200, preview.text
        parameters = preview.json()["parameters"]
        assert parameters["utm_source"] == "brandkeep"
        assert parameters["utm_medium"] == "organic-social"
        assert parameters["utm_campaign"] == "spring-2027"
        assert post_id_from_utm_content(parameters["utm_content"]) == uuid.UUID(post["id"])
        assert read(client, world.creator, post["id"])["current"]["number"] == 1  # nothing saved
        saved = client.post(
            f"{API}/posts/{post['id']}/link-tracking",
            headers={**bearer(world.creator), "If-Match": f'"{post["version"]}"'},
        )
        assert saved.status_code == 200, saved.text
        current = saved.json()["current"]
        assert current["number"] == 2
        assert current["link"] == preview.json()["tracked_link"]
        assert query_of(current["link"])[0] == ("ref", "ig")
        assert current["content_hash"] != post["current"]["content_hash"]
        again = client.post(
            f"{API}/posts/{post['id']}/link-tracking",
            headers={**bearer(world.creator), "If-Match": f'"{saved.json()["version"]}"'},
        )
        assert again.status_code == 200
        assert again.json()["current"]["number"] == 2  # already tracked: no new version

    def test_gaps_in_the_set_up_fall_back_to_the_channel_and_the_post_s_campaign(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        update(
            db, world.parties, world.engagement.id, utm_source="", utm_medium="", utm_campaign=""
        )
        post = draft(client, world.creator, world.engagement.id, channels=["linkedin"])
        parameters = client.get(
            f"{API}/posts/{post['id']}/link-tracking", headers=bearer(world.creator)
        ).json()["parameters"]
        assert parameters["utm_source"] == "linkedin"
        assert parameters["utm_medium"] == "social"
        assert parameters["utm_campaign"] == "spring-launch"

    def test_refusals(self, client: TestClient, db: Session, world: World) -> None:
        post = draft(client, world.creator, world.engagement.id, link=None)
        url = f"{API}/posts/{post['id']}/link-tracking"
        no_link = client.get(url, headers=bearer(world.creator))
        assert no_link.status_code == 422
        assert no_link.json()["errors"][0]["field"] == "link"
        assert client.post(url, headers=bearer(world.creator)).status_code == 428
        linked = draft(client, world.creator, world.engagement.id)
        by_brand = client.post(
            f"{API}/posts/{linked['id']}/link-tracking",
            headers={**bearer(world.lead), "If-Match": f'"{linked["version"]}"'},
        )
        assert by_brand.status_code == 403
        stranger = make_parties(db)
        outsider = create_token(db, stranger.lead, stranger.brand)
        assert (
            client.get(
                f"{API}/posts/{linked['id']}/link-tracking", headers=bearer(outsider)
            ).status_code
            == 404
        )


class TestOnThePage:
    def test_add_tracking_fills_the_link_in_place_and_saving_keeps_it(
        self, make_client: Any, world: World
    ) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = draft(api, world.creator, world.engagement.id, link="https://brand.example/spring")
        csrf = sign_in(browser, world.parties.creator.email)
        page = browser.get(f"/posts/{post['id']}")
        assert "Add tracking" in page.text
        form = {
            "csrf_token": csrf,
            "version": str(post["version"]),
            "title": post["title"],
            "body": "Our spring collection lands on Friday.",
            "link": "https://brand.example/spring?ref=bio",
            "channels": ["instagram"],
            "timezone": "Europe/Madrid",
            "planned_at": "2027-03-01T09:00",
        }
        filled = browser.post(f"/posts/{post['id']}/tracking", data=form, headers=HX)
        assert filled.status_code == 200, filled.text
        assert "<html" not in filled.text
        assert "utm_source=brandkeep" in filled.text and "ref=bio" in filled.text
        assert read(api, world.creator, post["id"])["current"]["number"] == 1
        tracked = filled.text.split('id="link" name="link" type="url" maxlength="2000" value="')[1]
        form["link"] = tracked.split('"', 1)[0].replace("&amp;", "&")
        saved = browser.post(f"/posts/{post['id']}/edit", data=form)
        assert saved.status_code == 303
        current = read(api, world.creator, post["id"])["current"]
        assert current["number"] == 2
        assert dict(query_of(current["link"]))["utm_campaign"] == "spring-2027"
        assert current["planned_at"].startswith("2027-03-01T08:00:00")  # 09:00 in Madrid
