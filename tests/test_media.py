"""Attachments (issue #5): typed by their bytes, bounded in size, stored by content hash,
part of the approval hash, and served only to those who may read the post.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.config import Settings, get_settings
from app.content.media import safe_name, sniff
from app.content.models import PostMedia
from app.engagements.models import Engagement
from app.main import create_app
from app.storage import BlobMismatch, FileSystemBlobStore
from tests.engagement_factories import Parties, accepted_engagement, make_parties
from tests.factories import bearer, create_token, sign_in
from tests.post_factories import API, decide, draft, read, submit

FIXTURES = Path(__file__).parent / "fixtures" / "media"


def sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class World:
    parties: Parties
    engagement: Engagement
    lead: str
    creator: str


@pytest.fixture
def world(db: Session) -> World:
    parties = make_parties(db)
    return World(
        parties=parties,
        engagement=accepted_engagement(db, parties),
        lead=create_token(db, parties.lead, parties.brand),
        creator=create_token(db, parties.creator, parties.agency),
    )


def upload(
    client: TestClient,
    token: str,
    post: dict[str, Any],
    data: bytes,
    filename: str,
    content_type: str = "application/octet-stream",
    etag: str | None = None,
) -> Any:
    return client.post(
        f"{API}/posts/{post['id']}/media",
        files={"file": (filename, data, content_type)},
        headers={**bearer(token), "If-Match": etag or f'"{post["version"]}"'},
    )


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "media"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def media_rows(db: Session, post_id: str) -> list[PostMedia]:
    db.expire_all()
    return list(db.exec(select(PostMedia).where(PostMedia.post_id == uuid.UUID(post_id))).all())


class TestTypesByContent:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("square.png", "image/png"),
            ("square.jpg", "image/jpeg"),
            ("square.gif", "image/gif"),
            ("square.webp", "image/webp"),
            ("clip.mp4", "video/mp4"),
            ("clip.mov", "video/quicktime"),
            ("clip.webm", "video/webm"),
        ],
    )
    def test_each_accepted_type_is_recognised_by_its_bytes(self, name: str, expected: str) -> None:
        assert sniff(sample(name)[:8192]) == expected

    @pytest.mark.parametrize(
        "data",
        [b"", b"plain words", b"%PDF-1.7\n", b"PK\x03\x04" + bytes(40), b"<svg xmlns='x'/>"],
        ids=["empty", "text", "pdf", "zip", "svg"],
    )
    def test_other_bytes_are_not_accepted(self, data: bytes) -> None:
        assert sniff(data) is None

    def test_names_lose_folders_and_control_characters(self) -> None:
        assert safe_name("../../etc/pass\x00wd.png") == "passwd.png"
        assert safe_name("C:\\Users\\ana\\Fotos\\playa\u0301.jpg") == "playá.jpg"
        assert safe_name(None) == ""


class TestAttaching:
    def test_a_png_named_mp4_is_attached_as_a_png(
        self, client: TestClient, db: Session, world: World, settings: Settings
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        png = sample("square.png")
        answer = upload(client, world.creator, post, png, "holiday.mp4", "video/mp4")
        assert answer.status_code == 200, answer.text
        saved = answer.json()
        assert saved["current"]["number"] == 2
        assert saved["current"]["media_hashes"] == [sha(png)]
        assert answer.headers["ETag"] == f'"{saved["version"]}"'
        [row] = media_rows(db, post["id"])
        assert (row.content_type, row.size, row.original_name) == (
            "image/png",
            len(png),
            "holiday.mp4",
        )
        [blob] = stored_files(settings)
        assert blob.read_bytes() == png and blob.name == sha(png)
        served = client.get(
            f"{API}/posts/{post['id']}/media/{sha(png)}", headers=bearer(world.lead)
        )
        assert served.status_code == 200
        assert served.content == png
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        # The name shown follows the checked type, not the uploaded name.
        assert served.headers["content-disposition"].startswith('inline; filename="holiday.png"')
        assert "sandbox" in served.headers["content-security-policy"]

    def test_a_text_file_named_jpg_is_415_and_nothing_is_kept(
        self, client: TestClient, db: Session, world: World, settings: Settings
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        answer = upload(client, world.creator, post, sample("notes.txt"), "photo.jpg", "image/jpeg")
        assert answer.status_code == 415, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "JPEG" in answer.json()["detail"]
        assert media_rows(db, post["id"]) == []
        assert stored_files(settings) == []
        assert read(client, world.creator, post["id"])["current"]["number"] == 1

    def test_an_upload_over_the_limit_is_413_and_nothing_is_kept(
        self,
        db: Session,
        world: World,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        database: Any,
    ) -> None:
        monkeypatch.setenv("BRANDKEEP_MAX_UPLOAD_MB", "1")
        get_settings.cache_clear()
        small: FastAPI = create_app(get_settings(), database)
        big = sample("square.png") + bytes(1024 * 1024)  # a real PNG head, 1 MiB too long
        with TestClient(small) as client:
            post = draft(client, world.creator, world.engagement.id)
            answer = upload(client, world.creator, post, big, "big.png", "image/png")
            assert answer.status_code == 413, answer.text
            assert "1 MB" in answer.json()["detail"]
            # Declared far over the limit: refused on the header, before the body is read.
            declared = client.post(
                f"{API}/posts/{post['id']}/media",
                content=b"--x--\r\n",
                headers={
                    **bearer(world.creator),
                    "If-Match": f'"{post["version"]}"',
                    "Content-Type": "multipart/form-data; boundary=x",
                    "Content-Length": str(50 * 1024 * 1024),
                },
            )
            assert declared.status_code == 413
            assert read(client, world.creator, post["id"])["current"]["number"] == 1
        assert media_rows(db, post["id"]) == []
        assert stored_files(get_settings()) == []

    def test_media_change_the_content_hash_and_void_an_approval(
        self, client: TestClient, world: World
    ) -> None:
        post = submit(
            client, world.creator, draft(client, world.creator, world.engagement.id)["id"]
        )
        assert decide(client, world.lead, post).status_code == 201
        approved = read(client, world.lead, post["id"])
        assert approved["status"] == "approved"
        first_hash = approved["current"]["content_hash"]
        with_image = upload(client, world.creator, approved, sample("square.gif"), "a.gif")
        assert with_image.status_code == 200, with_image.text
        changed = with_image.json()
        assert changed["current"]["content_hash"] != first_hash
        assert changed["status"] == "draft" and changed["approved_hash"] is None
        assert changed["voided_reason"]
        other = upload(client, world.creator, changed, sample("square.webp"), "b.webp")
        second = other.json()["current"]
        assert second["media_hashes"] == [sha(sample("square.gif")), sha(sample("square.webp"))]
        assert second["content_hash"] != changed["current"]["content_hash"]
        # Removing the file again gives back the hash of the same words without it.
        removed = client.delete(
            f"{API}/posts/{post['id']}/media/{sha(sample('square.webp'))}",
            headers={**bearer(world.creator), "If-Match": f'"{other.json()["version"]}"'},
        )
        assert removed.status_code == 200, removed.text
        assert removed.json()["current"]["content_hash"] == changed["current"]["content_hash"]
        # The removed file still belongs to the post: version 3 names it.
        still = client.get(
            f"{API}/posts/{post['id']}/media/{sha(sample('square.webp'))}",
            headers=bearer(world.lead),
        )
        assert still.status_code == 200

    def test_the_same_bytes_twice_make_no_new_version(
        self, client: TestClient, world: World, settings: Settings
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        first = upload(client, world.creator, post, sample("clip.mp4"), "clip.mp4").json()
        again = upload(client, world.creator, first, sample("clip.mp4"), "copy.mp4")
        assert again.status_code == 200
        assert again.json()["current"]["number"] == first["current"]["number"] == 2
        assert len(stored_files(settings)) == 1

    def test_uploads_need_the_current_etag_and_the_right_to_edit(
        self, client: TestClient, db: Session, world: World, settings: Settings
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        png = sample("square.png")
        missing = client.post(
            f"{API}/posts/{post['id']}/media",
            files={"file": ("a.png", png, "image/png")},
            headers=bearer(world.creator),
        )
        assert missing.status_code == 428
        assert upload(client, world.creator, post, png, "a.png", etag='"99"').status_code == 412
        assert upload(client, world.lead, post, png, "a.png").status_code == 403
        assert media_rows(db, post["id"]) == [] and stored_files(settings) == []

    def test_a_version_names_only_files_uploaded_to_its_post(
        self, client: TestClient, world: World
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        other = draft(client, world.creator, world.engagement.id, title="Other")
        attached = upload(client, world.creator, other, sample("square.png"), "a.png")
        assert attached.status_code == 200
        borrowed = client.patch(
            f"{API}/posts/{post['id']}",
            json={"media_hashes": [sha(sample("square.png"))]},
            headers={**bearer(world.creator), "If-Match": f'"{post["version"]}"'},
        )
        assert borrowed.status_code == 422
        assert borrowed.json()["errors"][0]["field"] == "media_hashes"


class TestScope:
    def test_a_foreign_post_s_media_is_404_for_every_method(
        self, client: TestClient, db: Session, world: World
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        png = sample("square.png")
        assert upload(client, world.creator, post, png, "a.png").status_code == 200
        stranger = make_parties(db)
        outsider = create_token(db, stranger.lead, stranger.brand)
        url = f"{API}/posts/{post['id']}/media/{sha(png)}"
        assert client.get(url, headers=bearer(outsider)).status_code == 404
        assert (
            client.get(f"{API}/posts/{post['id']}/media", headers=bearer(outsider)).status_code
            == 404
        )
        gone = client.delete(url, headers={**bearer(outsider), "If-Match": '"2"'})
        assert gone.status_code == 404
        assert upload(client, outsider, post, png, "a.png").status_code == 404

    def test_a_hash_uploaded_to_another_post_is_404_through_this_one(
        self, client: TestClient, world: World
    ) -> None:
        post = draft(client, world.creator, world.engagement.id)
        other = draft(client, world.creator, world.engagement.id, title="Other")
        png = sample("square.png")
        assert upload(client, world.creator, other, png, "a.png").status_code == 200
        through = client.get(
            f"{API}/posts/{post['id']}/media/{sha(png)}", headers=bearer(world.lead)
        )
        assert through.status_code == 404
        for junk in ("..%2F..%2Fetc%2Fpasswd", "not-a-hash", sha(png).upper()[:63]):
            answer = client.get(
                f"{API}/posts/{post['id']}/media/{junk}", headers=bearer(world.lead)
            )
            assert answer.status_code == 404, junk

    def test_the_review_page_previews_images_and_videos_for_people_who_may_read_it(
        self, make_client: Any, db: Session, world: World
    ) -> None:
        api: TestClient = make_client()
        post = draft(api, world.creator, world.engagement.id)
        with_image = upload(api, world.creator, post, sample("square.jpg"), "a.jpg").json()
        upload(api, world.creator, with_image, sample("clip.webm"), "clip.webm")
        reviewer = make_parties(
            db, brand=world.parties.brand, agency=world.parties.agency, signs_in=True
        )
        browser: TestClient = make_client()
        sign_in(browser, reviewer.lead.email)
        page = browser.get(f"/posts/{post['id']}")
        assert page.status_code == 200, page.text
        image_url = f"/posts/{post['id']}/media/{sha(sample('square.jpg'))}"
        assert f'{image_url}"' in page.text and "<img src=" in page.text
        assert f"/posts/{post['id']}/media/{sha(sample('clip.webm'))}" in page.text
        assert "<video" in page.text
        shown = browser.get(image_url)
        assert shown.status_code == 200 and shown.content == sample("square.jpg")
        assert shown.headers["x-content-type-options"] == "nosniff"
        stranger = make_parties(db, signs_in=True)
        outsider: TestClient = make_client()
        sign_in(outsider, stranger.lead.email)
        assert outsider.get(image_url).status_code == 404


class TestOnThePage:
    def test_the_agency_attaches_and_removes_files_from_the_post_s_page(
        self, make_client: Any, db: Session, world: World, settings: Settings
    ) -> None:
        api: TestClient = make_client()
        browser: TestClient = make_client()
        post = draft(api, world.creator, world.engagement.id)
        creator = make_parties(
            db, brand=world.parties.brand, agency=world.parties.agency, signs_in=True
        )
        csrf = sign_in(browser, creator.creator.email)
        page = browser.get(f"/posts/{post['id']}")
        assert (
            'enctype="multipart/form-data"' in page.text
            and 'hx-encoding="multipart/form-data"' in page.text
        )
        # Without JavaScript: the CSRF token comes in the form, the answer is a redirect.
        plain = browser.post(
            f"/posts/{post['id']}/media",
            data={"csrf_token": csrf, "version": str(post["version"])},
            files={"file": ("beach.png", sample("square.png"), "image/png")},
        )
        assert plain.status_code == 303, plain.text
        # With HTMX: the token in the header, the post's block back in place.
        htmx = browser.post(
            f"/posts/{post['id']}/media",
            data={"version": str(post["version"] + 1)},
            files={"file": ("clip.mov", sample("clip.mov"), "video/quicktime")},
            headers={"HX-Request": "true", "HX-Target": "post-main", "X-CSRF-Token": csrf},
        )
        assert htmx.status_code == 200, htmx.text
        assert "<html" not in htmx.text and "<video" in htmx.text
        assert read(api, world.creator, post["id"])["current"]["media_hashes"] == [
            sha(sample("square.png")),
            sha(sample("clip.mov")),
        ]
        wrong = browser.post(
            f"/posts/{post['id']}/media",
            data={"version": str(post["version"] + 2)},
            files={"file": ("notes.gif", sample("notes.txt"), "image/gif")},
            headers={"HX-Request": "true", "HX-Target": "post-main", "X-CSRF-Token": csrf},
        )
        assert wrong.status_code == 415
        assert "whatever its name says" in wrong.text and "<html" not in wrong.text
        unsigned = browser.post(
            f"/posts/{post['id']}/media",
            data={"csrf_token": "forged", "version": str(post["version"] + 2)},
            files={"file": ("a.gif", sample("square.gif"), "image/gif")},
        )
        assert unsigned.status_code == 403
        assert len(media_rows(db, post["id"])) == 2 and len(stored_files(settings)) == 2
        removed = browser.post(
            f"/posts/{post['id']}/media/{sha(sample('square.png'))}/remove",
            data={"csrf_token": csrf, "version": str(post["version"] + 2)},
            headers={"HX-Request": "true", "HX-Target": "post-main"},
        )
        assert removed.status_code == 200, removed.text
        assert "Attachment removed: beach.png" in removed.text
        current = read(api, world.creator, post["id"])["current"]
        assert current["media_hashes"] == [sha(sample("clip.mov"))]


class TestFileSystemStore:
    def test_put_is_atomic_and_checks_the_name(self, tmp_path: Path) -> None:
        store = FileSystemBlobStore(tmp_path)
        data = sample("square.png")
        with (FIXTURES / "square.png").open("rb") as source:
            store.put(sha(data), source)
        assert store.exists(sha(data)) and store.size(sha(data)) == len(data)
        assert list((tmp_path / "tmp").iterdir()) == []  # no temporary file left behind
        with (FIXTURES / "square.gif").open("rb") as source, pytest.raises(BlobMismatch):
            store.put("0" * 64, source)
        assert not store.exists("0" * 64)
        assert list((tmp_path / "tmp").iterdir()) == []
        with pytest.raises(ValueError):
            store.exists("../../etc/passwd")
        store.delete(sha(data))
        store.delete(sha(data))  # idempotent
        assert not store.exists(sha(data))
