"""The review page's two reading aids (issue #5): the post as each channel will carry it,
counted as the platform counts and flagged over its limit (refused at approval only when the
engagement's policy says so), and a word-level diff between any two versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.content import channels
from app.content.diff import Piece, render, word_diff
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.engagements.schemas import PolicyIn, PolicyStepIn
from tests.engagement_factories import Parties, accepted_engagement, grant, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import API, decide, draft, edit, read, submit

HX = {"HX-Request": "true", "HX-Target": "post-main"}


class TestCounting:
    def test_x_counts_urls_as_23_and_heavy_characters_as_two(self) -> None:
        assert channels.x_weighted_length("a" * 280) == 280
        long_url = "https://brand.example/" + "x" * 200
        assert channels.x_weighted_length(f"New in {long_url}") == len("New in ") + 23
        assert channels.x_weighted_length("春") == 2
        assert channels.x_weighted_length("café") == 4  # é is Latin-1: light
        # One emoji sequence (family, skin tone, flag) weighs 2 as a whole.
        assert channels.x_weighted_length("👨‍👩‍👧") == 2
        assert channels.x_weighted_length("👍🏽🇪🇸") == 4

    def test_other_channels_count_what_people_see_as_one_character(self) -> None:
        assert channels.graphemes("👨‍👩‍👧 e\u0301") == 3
        assert channels.count("instagram", "🇪🇸" * 10) == 10

    def test_a_link_outside_the_text_is_appended_on_x_and_a_card_elsewhere(self) -> None:
        body, link = "Spring is here.", "https://brand.example/spring?utm_source=x"
        x, linkedin = channels.previews(body, link, ["x", "linkedin"])
        assert x.text.endswith(link) and not x.link_card
        assert x.length == len(body) + 1 + 23
        assert linkedin.text == body and linkedin.link_card
        written_in = channels.previews(f"Read {link}", link, ["x"])[0]
        assert written_in.text == f"Read {link}"

    @pytest.mark.parametrize(
        ("channel", "limit"),
        [
            ("x", 280),
            ("instagram", 2200),
            ("facebook", 63206),
            ("linkedin", 3000),
            ("tiktok", 2200),
        ],
    )
    def test_limits_are_flagged_one_character_past_them(self, channel: str, limit: int) -> None:
        assert channels.over_limit("a" * limit, None, [channel]) == []
        [over] = channels.over_limit("a" * (limit + 1), None, [channel])
        assert (over.channel, over.length, over.limit, over.over) == (channel, limit + 1, limit, 1)

    def test_channels_without_a_limit_never_flag(self) -> None:
        assert channels.over_limit("a" * 100_000, None, ["blog", "forums", "other"]) == []


class TestWordDiff:
    def test_a_changed_word_shows_as_that_word_keeping_spacing_and_line_breaks(self) -> None:
        pieces = word_diff(
            "Our spring\ncollection lands  on Friday.", "Our summer\ncollection lands  on Friday."
        )
        assert pieces == [
            Piece("same", "Our "),
            Piece("deleted", "spring"),
            Piece("inserted", "summer"),
            Piece("same", "\ncollection lands  on Friday."),
        ]

    def test_the_html_marks_changes_with_tags_and_escapes_the_text(self) -> None:
        html = str(render(word_diff("Hi <b>all</b>", "Hi <b>all</b> & welcome")))
        assert html == "Hi &lt;b&gt;all&lt;/b&gt;<ins> &amp; welcome</ins>"

    def test_joined_back_the_pieces_give_both_texts(self) -> None:
        old, new = "one two three four", "zero one three four five"
        pieces = word_diff(old, new)
        assert "".join(p.text for p in pieces if p.kind != "inserted") == old
        assert "".join(p.text for p in pieces if p.kind != "deleted") == new


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    lead: str
    creator: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db, signs_in=True, with_reviewer=False)
    return World(
        parties=parties,
        engagement=accepted_engagement(db, parties),
        lead=create_token(db, parties.lead, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def enforce_limits(db: Session, world: World, enforce: bool) -> None:
    granted = grant(db, world.parties.lead, world.engagement.id)
    engagements.set_policy(
        db,
        granted,
        expected_version=granted.engagement.version,
        data=PolicyIn(
            steps=[PolicyStepIn(name="Brand review", roles=["owner", "lead", "reviewer"])],
            enforce_channel_limits=enforce,
        ),
    )
    db.commit()


TOO_LONG_FOR_X = "Spring is here. " * 20  # 320 characters


class TestLimitsAtApproval:
    def test_over_a_limit_is_only_a_warning_unless_the_policy_refuses_it(
        self, make_client: Any, db: Session, world: World
    ) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = submit(
            api,
            world.creator,
            draft(
                api,
                world.creator,
                world.engagement.id,
                body=TOO_LONG_FOR_X,
                channels=["x", "instagram"],
                link=None,
            )["id"],
        )
        sign_in(browser, world.parties.lead.email)
        page = browser.get(f"/posts/{post['id']}")
        assert page.status_code == 200, page.text
        assert "Too long: 320 of 280 characters, 40 over the limit." in page.text
        assert "320 of 2,200 characters." in page.text
        enforce_limits(db, world, True)
        refused = decide(api, world.lead, post)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert "too long for X (320 characters, the limit is 280)" in problem["detail"]
        assert problem["over_limit"] == [{"channel": "x", "length": 320, "limit": 280}]
        assert read(api, world.lead, post["id"])["status"] == "in_review"
        # Asking for changes is still possible: only approving is refused.
        asked = decide(api, world.lead, post, "request_changes", comment="Shorten it for X.")
        assert asked.status_code == 201

    def test_without_the_policy_flag_the_long_post_is_approved(
        self, client: TestClient, world: World
    ) -> None:
        post = submit(
            client,
            world.creator,
            draft(
                client,
                world.creator,
                world.engagement.id,
                body=TOO_LONG_FOR_X,
                channels=["x"],
                link=None,
            )["id"],
        )
        assert decide(client, world.lead, post).status_code == 201
        assert read(client, world.lead, post["id"])["status"] == "approved"


class TestDiffOnTheReviewPage:
    def test_by_default_it_compares_the_version_last_decided_on_with_the_current_one(
        self, make_client: Any, world: World
    ) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = submit(api, world.creator, draft(api, world.creator, world.engagement.id)["id"])
        asked = decide(api, world.lead, post, "request_changes", comment="Say which Friday.")
        assert asked.status_code == 201
        post = read(api, world.creator, post["id"])
        second = edit(
            api, world.creator, post, body="Our spring collection lands on Friday 6 March."
        )
        third = edit(api, world.creator, second.json(), title="Spring teaser, dated")
        assert third.status_code == 200
        sign_in(browser, world.parties.lead.email)
        page = browser.get(f"/posts/{post['id']}")
        assert page.status_code == 200
        assert '<option value="1" selected>1</option>' in page.text
        assert '<option value="3" selected>3' in page.text
        assert "<del>Friday.</del><ins>Friday 6 March.</ins>" in page.text
        # Any two versions, in place: 2 against 3 publish the same content.
        chosen = browser.get(
            f"/posts/{post['id']}?from=2&to=3",
            headers={"HX-Request": "true", "HX-Target": "version-diff"},
        )
        assert chosen.status_code == 200
        assert "<html" not in chosen.text and "<h1>" not in chosen.text
        assert "These two versions publish exactly the same content." in chosen.text
        backwards = browser.get(f"/posts/{post['id']}?from=3&to=1")
        assert "<del>Friday 6 March.</del><ins>Friday.</ins>" in backwards.text
        nonsense = browser.get(f"/posts/{post['id']}?from=9&to=0")
        assert nonsense.status_code == 422

    def test_a_post_with_one_version_says_so(self, make_client: Any, world: World) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = draft(api, world.creator, world.engagement.id)
        sign_in(browser, world.parties.creator.email)
        assert "Only one version so far." in browser.get(f"/posts/{post['id']}").text


class TestDecisionButtons:
    def test_they_post_in_place_with_htmx_and_the_page_answers_with_the_block(
        self, make_client: Any, world: World
    ) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = submit(api, world.creator, draft(api, world.creator, world.engagement.id)["id"])
        csrf = sign_in(browser, world.parties.lead.email)
        page = browser.get(f"/posts/{post['id']}").text
        form = page[page.index('<form method="post" action="http://testserver/posts/') :]
        form = form[: form.index("</form>")]
        assert 'hx-target="#post-main"' in form and "hx-post=" in form
        answer = browser.post(
            f"/posts/{post['id']}/decisions",
            data={
                "csrf_token": csrf,
                "decision": "reject",
                "version_hash": post["current"]["content_hash"],
            },
            headers=HX,
        )
        assert answer.status_code == 422
        assert "<html" not in answer.text and "Give the reason." in answer.text


class TestEditingFromThePages:
    def test_the_agency_drafts_from_the_posts_page_and_edits_on_the_post_s_page(
        self, make_client: Any, world: World
    ) -> None:
        browser: TestClient = make_client()
        api: TestClient = make_client()
        csrf = sign_in(browser, world.parties.creator.email)
        listing = browser.get(f"/engagements/{world.engagement.id}/posts")
        assert "Draft a post" in listing.text
        missing = browser.post(
            f"/engagements/{world.engagement.id}/posts", data={"csrf_token": csrf, "title": ""}
        )
        assert missing.status_code == 422
        created = browser.post(
            f"/engagements/{world.engagement.id}/posts",
            data={
                "csrf_token": csrf,
                "title": "Autumn teaser",
                "body": "Leaves and boots.",
                "channels": ["instagram", "x"],
                "timezone": "Europe/Madrid",
            },
        )
        assert created.status_code == 303, created.text
        post_id = created.headers["location"].rsplit("/", 1)[1]
        post = read(api, world.creator, post_id)
        assert post["current"]["channels"] == ["instagram", "x"]
        stale = browser.post(
            f"/posts/{post_id}/edit",
            data={"csrf_token": csrf, "version": "99", "title": "Autumn", "body": "Changed."},
            headers=HX,
        )
        assert stale.status_code == 412
        assert read(api, world.creator, post_id)["current"]["number"] == 1
        saved = browser.post(
            f"/posts/{post_id}/edit",
            data={
                "csrf_token": csrf,
                "version": str(post["version"]),
                "title": "Autumn teaser",
                "body": "Leaves, boots and a scarf.",
                "channels": ["instagram"],
                "timezone": "Europe/Madrid",
            },
            headers=HX,
        )
        assert saved.status_code == 200, saved.text
        assert "<ins>, boots and a scarf.</ins>" in saved.text or "<ins>" in saved.text
        assert read(api, world.creator, post_id)["current"]["body"] == "Leaves, boots and a scarf."

    def test_the_brand_sees_no_edit_form(self, make_client: Any, world: World) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = draft(api, world.creator, world.engagement.id)
        sign_in(browser, world.parties.lead.email)
        page = browser.get(f"/posts/{post['id']}").text
        assert "Edit the post" not in page and "Attach an image" not in page
        listing = browser.get(f"/engagements/{world.engagement.id}/posts").text
        assert "Draft a post" not in listing
        assert api.get(f"{API}/posts/{post['id']}", headers=bearer(world.lead)).status_code == 200
