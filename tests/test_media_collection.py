"""Orphan bytes: an upload that fails after its bytes were stored leaves nothing for good.

The store is content-addressed (two posts may share bytes), so bytes are not removed
at the rollback but by the daily collection (``app/storage/tasks.py``): a blob goes
once no row names it and nobody has put it for the grace period. Times are passed
in (``now``) rather than waited for.
"""

from __future__ import annotations

import io
import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from starlette.datastructures import UploadFile

from app.config import Settings
from app.content import media, service
from app.content.models import PostMedia
from app.db import Database, utcnow
from app.errors import PreconditionFailed
from app.jobs.runner import JobRunner
from app.storage import FileSystemBlobStore, store_for, tasks
from app.tenancy.service import actor_for
from tests.factories import bearer
from tests.post_factories import draft, edit, read
from tests.test_media import World, sample, sha, upload, world  # noqa: F401 - fixture
from tests.test_row_level_security import app_role_url, runtime  # noqa: F401 - fixtures

LATER = tasks.GRACE + timedelta(minutes=1)


@pytest.fixture
def store(settings: Settings) -> FileSystemBlobStore:
    made = store_for(settings)
    assert isinstance(made, FileSystemBlobStore)
    return made


def age(store: FileSystemBlobStore, sha256: str, by: timedelta) -> None:
    """Make a blob look as if it was last put ``by`` ago."""
    then = (utcnow() - by).timestamp()
    os.utime(store.path_of(sha256), (then, then))


def lose_a_race(
    database: Database, client: TestClient, arranged: World, post: dict[str, Any], data: bytes
) -> None:
    """Attach ``data`` from a view of the post that someone else's save has overtaken.

    As in a request: the post is read, then (while the file arrives) the creator saves
    from another tab; the upload's own save loses and its transaction rolls back.
    """
    session = database.session_factory()
    try:
        user = session.get(type(arranged.parties.creator), arranged.parties.creator.id)
        assert user is not None
        found = service.access(session, actor_for(session, user), uuid.UUID(post["id"]))
        session.commit()  # the read is done; the other tab saves now
        assert (
            edit(client, arranged.creator, post, body="Saved from another tab.").status_code == 200
        )
        with pytest.raises(PreconditionFailed):
            media.attach(
                session,
                found,
                expected_version=post["version"],
                upload=UploadFile(io.BytesIO(data), filename="late.png"),
                store=store_for(client.app.state.settings),  # type: ignore[attr-defined]
                settings=client.app.state.settings,  # type: ignore[attr-defined]
            )
        session.rollback()
    finally:
        session.close()


@pytest.fixture
def drafted(client: TestClient, world: World) -> dict[str, Any]:  # noqa: F811
    return draft(client, world.creator, world.engagement.id)


class TestOrphansAreCollected:
    def test_a_lost_race_leaves_no_orphan_after_the_collection(
        self,
        db: Session,
        database: Database,
        client: TestClient,
        store: FileSystemBlobStore,
        world: World,  # noqa: F811
        drafted: dict[str, Any],
    ) -> None:
        png = sample("square.png")
        lose_a_race(database, client, world, drafted, png)
        # The bytes were stored, and nothing names them.
        assert store.exists(sha(png))
        assert db.exec(select(PostMedia).where(PostMedia.sha256 == sha(png))).all() == []
        # Within the grace period they stay (the request might still be on its way) ...
        assert tasks.collect(database, store).removed == []
        assert store.exists(sha(png))
        # ... after it, they go.
        report = tasks.collect(database, store, now=utcnow() + LATER)
        assert report.removed == [sha(png)]
        assert not store.exists(sha(png))

    def test_a_blob_a_post_names_is_never_removed(
        self,
        database: Database,
        client: TestClient,
        store: FileSystemBlobStore,
        world: World,  # noqa: F811
        drafted: dict[str, Any],
    ) -> None:
        png, gif = sample("square.png"), sample("square.gif")
        assert upload(client, world.creator, drafted, png, "a.png").status_code == 200
        after = read(client, world.creator, drafted["id"])
        assert upload(client, world.creator, after, gif, "b.gif").status_code == 200
        # The later version drops the PNG; the first version still names it.
        after = read(client, world.creator, drafted["id"])
        removed = client.delete(
            f"/api/v1/posts/{drafted['id']}/media/{sha(png)}",
            headers={**bearer(world.creator), "If-Match": f'"{after["version"]}"'},
        )
        assert removed.status_code == 200, removed.text
        report = tasks.collect(database, store, now=utcnow() + timedelta(days=400))
        assert report.removed == []
        assert report.kept_referenced == 2
        assert store.exists(sha(png)) and store.exists(sha(gif))
        served = client.get(
            f"/api/v1/posts/{drafted['id']}/media/{sha(png)}",
            headers=bearer(world.creator),
        )
        assert served.status_code == 200 and served.content == png

    def test_bytes_shared_by_a_lost_race_and_a_post_stay(
        self,
        database: Database,
        client: TestClient,
        store: FileSystemBlobStore,
        world: World,  # noqa: F811
        drafted: dict[str, Any],
    ) -> None:
        png = sample("square.png")
        other = draft(client, world.creator, world.engagement.id, title="Another post")
        assert upload(client, world.creator, other, png, "a.png").status_code == 200
        lose_a_race(database, client, world, drafted, png)
        assert tasks.collect(database, store, now=utcnow() + LATER).removed == []
        assert store.exists(sha(png))


class TestInFlightUploadsKeepTheirBytes:
    def test_a_blob_younger_than_the_grace_period_is_never_removed(
        self, database: Database, store: FileSystemBlobStore
    ) -> None:
        png = sample("square.png")
        store.put(sha(png), io.BytesIO(png))  # a request stored it and has not committed yet
        report = tasks.collect(database, store, now=utcnow() + tasks.GRACE - timedelta(minutes=1))
        assert report.removed == [] and report.kept_recent == 1
        assert store.exists(sha(png))

    def test_putting_old_orphan_bytes_again_keeps_them_for_the_request(
        self, database: Database, store: FileSystemBlobStore
    ) -> None:
        png = sample("square.png")
        store.put(sha(png), io.BytesIO(png))
        age(store, sha(png), timedelta(days=3))  # an orphan from an old failed upload
        # A new request uploads the same bytes: nothing is written, but they count as just put.
        store.put(sha(png), io.BytesIO(png))
        assert tasks.collect(database, store).removed == []
        assert store.exists(sha(png))

    def test_a_put_between_listing_and_removal_puts_the_blob_back(
        self, store: FileSystemBlobStore
    ) -> None:
        png = sample("square.png")
        store.put(sha(png), io.BytesIO(png))
        cutoff = utcnow() - tasks.GRACE
        # Listed as old, then put by a request just before the removal: it stays.
        assert not store.delete_unless_put_since(sha(png), cutoff)
        assert store.exists(sha(png)) and store.open(sha(png)).read() == png
        age(store, sha(png), timedelta(days=2))
        assert store.delete_unless_put_since(sha(png), cutoff)
        assert not store.exists(sha(png))
        # A put after the removal writes the bytes anew.
        store.put(sha(png), io.BytesIO(png))
        assert store.open(sha(png)).read() == png

    def test_temporaries_of_interrupted_puts_go_after_the_grace_period(
        self, database: Database, store: FileSystemBlobStore
    ) -> None:
        store.tmp.mkdir(parents=True, exist_ok=True)
        left = store.tmp / "put-interrupted"
        left.write_bytes(b"half a file")
        assert tasks.collect(database, store).temporaries == 0
        assert tasks.collect(database, store, now=utcnow() + LATER).temporaries == 1
        assert not left.exists()


class TestWhatNamesABlob:
    def test_every_table_with_a_sha256_column_counts(self) -> None:
        names = {item.table.name for item in tasks.blob_tables()}
        assert "post_media" in names
        assert all(item.tenant_key in (None, "brand_id") for item in tasks.blob_tables())

    def test_the_job_runner_collects_daily(self, settings: Settings, database: Database) -> None:
        runner = JobRunner(settings, database)
        names = {task.__name__ for task in runner.huey._registry._periodic_tasks}
        assert tasks.COLLECT_TASK in names


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level security is PostgreSQL's (set TEST_DATABASE_URL to run these)",
)
def test_the_collection_works_as_the_runtime_role(
    database: Database,
    runtime: Database,  # noqa: F811
    client: TestClient,
    store: FileSystemBlobStore,
    world: World,  # noqa: F811
    drafted: dict[str, Any],
) -> None:
    png, gif = sample("square.png"), sample("square.gif")
    assert upload(client, world.creator, drafted, png, "a.png").status_code == 200
    lose_a_race(database, client, world, read(client, world.creator, drafted["id"]), gif)
    report = tasks.collect(runtime, store, now=utcnow() + LATER)
    # The runtime role sees each brand's rows in its scope: the named blob stays.
    assert report.removed == [sha(gif)]
    assert store.exists(sha(png)) and not store.exists(sha(gif))
