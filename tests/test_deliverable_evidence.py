"""Evidence files (issue #6): a delivery may hand over files, typed by their bytes,
bounded in size, stored by content hash, kept per delivery round, on the audit
record, and served only to the engagement's two sides.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.audit.models import AuditEntry
from app.config import Settings, get_settings
from app.db import Database
from app.deliverables import evidence
from app.deliverables.models import Deliverable, DeliverableStatus, EvidenceFile
from app.engagements import service as engagements
from app.engagements.models import Engagement
from app.engagements.schemas import ScopeLineIn
from app.main import create_app
from app.storage import uploads
from tests.engagement_factories import Parties, accepted_engagement, grant, make_parties
from tests.factories import bearer, create_token, sign_in

API = "/api/v1"
FIXTURES = Path(__file__).parent / "fixtures"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CSV = b"date,impressions,clicks\n2026-03-01,1200,34\n2026-03-02,980,21\n"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def office_package(main_part: str, part_name: str) -> bytes:
    """The smallest Office Open XML package: what tells DOCX and PPTX from a ZIP."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
            'openxmlformats.org/package/2006/content-types"><Override PartName="/'
            f'{part_name}" ContentType="{main_part}"/></Types>',
        )
        package.writestr(part_name, "<document/>")
    return buffer.getvalue()


DOCX = office_package(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "word/document.xml",
)
PPTX = office_package(
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    "ppt/presentation.xml",
)
DOCM = office_package("application/vnd.ms-word.document.macroEnabled.main+xml", "word/document.xml")


# --- arranging -------------------------------------------------------------------


@pytest.fixture
def parties(db: Session) -> Parties:
    return make_parties(db, signs_in=True)


@pytest.fixture
def engagement(db: Session, parties: Parties) -> Engagement:
    return accepted_engagement(db, parties)


@pytest.fixture
def target(db: Session, parties: Parties, engagement: Engagement) -> Deliverable:
    """A planned deliverable of the engagement (a monthly report)."""
    engagements.add_scope_line(
        db,
        grant(db, parties.lead, engagement.id),
        ScopeLineIn(kind="monthly_report", quantity=1, cadence="monthly", due_day=0),
    )
    db.commit()
    row = db.exec(
        select(Deliverable)
        .where(Deliverable.engagement_id == engagement.id)
        .order_by(col(Deliverable.period_start).desc())
    ).first()
    assert row is not None
    return row


@pytest.fixture
def tokens(db: Session, parties: Parties) -> dict[str, str]:
    return {
        "manager": create_token(db, parties.manager, parties.agency),
        "reviewer": create_token(db, parties.reviewer, parties.brand),
    }


def deliver_files(
    client: TestClient,
    token: str,
    deliverable_id: uuid.UUID,
    files: list[tuple[str, bytes, str]],
    **fields: Any,
) -> Any:
    return client.post(
        f"{API}/deliverables/{deliverable_id}/deliver",
        data=fields,
        files=[("files", file) for file in files],
        headers=bearer(token),
    )


def file_rows(db: Session, deliverable_id: uuid.UUID) -> list[EvidenceFile]:
    db.expire_all()
    return list(
        db.exec(
            select(EvidenceFile)
            .where(EvidenceFile.deliverable_id == deliverable_id)
            .order_by(col(EvidenceFile.round), col(EvidenceFile.original_name))
        ).all()
    )


def stored_blobs(settings: Settings) -> list[Path]:
    root = settings.data_dir / "media"
    if not root.exists():
        return []
    return [path for path in root.rglob("*") if path.is_file() and path.parent.name != "tmp"]


def status_of(db: Session, deliverable_id: uuid.UUID) -> str:
    db.expire_all()
    row = db.get(Deliverable, deliverable_id)
    assert row is not None
    return str(row.status)


# --- what counts as evidence, by content ------------------------------------------


class TestTypesByContent:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (PDF, uploads.PDF),
            (fixture("media/square.png"), uploads.PNG),
            (fixture("media/square.jpg"), uploads.JPEG),
            (fixture("media/square.gif"), uploads.GIF),
            (fixture("media/square.webp"), uploads.WEBP),
            (CSV, uploads.CSV),
            (fixture("exports/meta_facebook_legacy_unicode.txt"), uploads.CSV),  # UTF-16
            ("Informe de marzo: niño, café\n".encode("cp1252"), uploads.TEXT),
            (fixture("media/notes.txt"), uploads.TEXT),
            (fixture("exports/linkedin_content_es.xlsx"), uploads.XLSX),
            (fixture("exports/linkedin_content.xls"), uploads.XLS),
            (DOCX, uploads.DOCX),
            (PPTX, uploads.PPTX),
            (fixture("exports/tiktok_studio_export.zip"), uploads.ZIP),
            (DOCM, uploads.ZIP),  # macro-enabled: kept as the archive it is, not a document
        ],
        ids=[
            "pdf", "png", "jpeg", "gif", "webp", "csv", "utf16-csv", "cp1252-text", "text",
            "xlsx", "xls", "docx", "pptx", "zip", "docm-as-zip",
        ],
    )  # fmt: skip
    def test_each_accepted_type_is_recognised_by_its_bytes(
        self, data: bytes, expected: str
    ) -> None:
        assert uploads.recognise(io.BytesIO(data)) == expected
        assert expected in evidence.ACCEPTED_TYPES

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00",
            b"PK\x03\x04" + bytes(60),
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
            fixture("media/clip.mp4"),
        ],
        ids=["empty", "html", "svg", "exe", "broken-zip", "ole-not-a-workbook", "video"],
    )
    def test_other_bytes_are_not_evidence(self, data: bytes) -> None:
        assert uploads.recognise(io.BytesIO(data)) not in evidence.ACCEPTED_TYPES


# --- delivering with files -----------------------------------------------------------


class TestDeliveringFiles:
    def test_files_are_stored_listed_and_served_to_both_sides_only(
        self, client: TestClient, db: Session, parties: Parties, engagement: Engagement,
        target: Deliverable, tokens: dict[str, str], settings: Settings,
    ) -> None:  # fmt: skip
        xlsx = fixture("exports/linkedin_content_es.xlsx")
        answer = deliver_files(
            client,
            tokens["manager"],
            target.id,
            [
                ("March report.pdf", PDF, "application/pdf"),
                ("métricas.xlsx", xlsx, "application/octet-stream"),
            ],
            links="https://drive.example/march",
            note="Report and raw numbers.",
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "delivered" and body["delivery_note"] == "Report and raw numbers."
        files = [item for item in body["evidence"] if item["type"] == "file"]
        assert [(f["label"], f["sha256"], f["size"]) for f in files] == [
            ("March report.pdf", sha(PDF), len(PDF)),
            ("métricas.xlsx", sha(xlsx), len(xlsx)),
        ]
        assert [item["type"] for item in body["evidence"]] == ["link", "file", "file"]
        rows = file_rows(db, target.id)
        assert {(r.round, r.content_type, r.sha256) for r in rows} == {
            (1, uploads.PDF, sha(PDF)),
            (1, uploads.XLSX, sha(xlsx)),
        }
        assert sorted(path.name for path in stored_blobs(settings)) == sorted([sha(PDF), sha(xlsx)])

        listed = client.get(
            f"{API}/deliverables/{target.id}/evidence", headers=bearer(tokens["reviewer"])
        )
        assert listed.status_code == 200
        assert {item["sha256"] for item in listed.json()} == {sha(PDF), sha(xlsx)}
        pdf_id = next(f["file_id"] for f in files if f["sha256"] == sha(PDF))
        url = f"{API}/deliverables/{target.id}/evidence/{pdf_id}"
        for token in (tokens["reviewer"], tokens["manager"]):
            served = client.get(url, headers=bearer(token))
            assert served.status_code == 200, served.text
            assert served.content == PDF
            assert served.headers["content-type"] == "application/pdf"
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-disposition"].startswith(
                'attachment; filename="March report.pdf"'
            )

        stranger = make_parties(db)
        for outsider in (
            create_token(db, stranger.lead, stranger.brand),
            create_token(db, stranger.manager, stranger.agency),
        ):
            assert client.get(url, headers=bearer(outsider)).status_code == 404
            listing = client.get(
                f"{API}/deliverables/{target.id}/evidence", headers=bearer(outsider)
            )
            assert listing.status_code == 404
        # An id that is not a file of this deliverable is 404 too, whoever asks.
        assert (
            client.get(
                f"{API}/deliverables/{target.id}/evidence/{uuid.uuid4()}",
                headers=bearer(tokens["reviewer"]),
            ).status_code
            == 404
        )

    def test_the_name_served_follows_the_bytes_not_the_upload(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str]
    ) -> None:
        answer = deliver_files(
            client, tokens["manager"], target.id, [("numbers.exe", CSV, "application/x-msdos")]
        )
        assert answer.status_code == 200, answer.text
        [row] = file_rows(db, target.id)
        served = client.get(
            f"{API}/deliverables/{target.id}/evidence/{row.id}", headers=bearer(tokens["reviewer"])
        )
        assert served.headers["content-type"].startswith("text/csv")
        assert served.headers["content-disposition"].startswith(
            'attachment; filename="numbers.csv"'
        )

    def test_files_alone_are_evidence_enough(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str]
    ) -> None:
        answer = deliver_files(
            client, tokens["manager"], target.id, [("deck.pptx", PPTX, "application/zip")]
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "delivered"
        assert [item["type"] for item in answer.json()["evidence"]] == ["file"]

    def test_a_multipart_delivery_without_any_evidence_is_422(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str]
    ) -> None:
        empty = client.post(
            f"{API}/deliverables/{target.id}/deliver",
            data={"note": "nothing attached"},
            files=[("files", ("", b"", "application/octet-stream"))],
            headers=bearer(tokens["manager"]),
        )
        assert empty.status_code == 422, empty.text
        assert empty.json()["errors"][0]["field"] == "links"
        assert status_of(db, target.id) == DeliverableStatus.planned

    def test_json_deliveries_still_work(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str]
    ) -> None:
        answer = client.post(
            f"{API}/deliverables/{target.id}/deliver",
            json={"links": [{"url": "https://drive.example/march", "label": "Folder"}]},
            headers=bearer(tokens["manager"]),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["evidence"][0]["label"] == "Folder"
        assert file_rows(db, target.id) == []

    def test_a_file_of_another_type_is_415_and_nothing_is_kept(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str],
        settings: Settings,
    ) -> None:  # fmt: skip
        html = b"<!DOCTYPE html><html><body><script>steal()</script></body></html>"
        answer = deliver_files(
            client,
            tokens["manager"],
            target.id,
            # A good file first: it is not kept either, the delivery is refused whole.
            [("report.pdf", PDF, "application/pdf"), ("report2.pdf", html, "application/pdf")],
        )
        assert answer.status_code == 415, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "report2.pdf" in answer.json()["detail"]
        assert file_rows(db, target.id) == []
        assert stored_blobs(settings) == []
        assert status_of(db, target.id) == DeliverableStatus.planned

    def test_too_many_files_are_422_and_nothing_is_kept(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str],
        settings: Settings,
    ) -> None:  # fmt: skip
        files = [
            (f"part{n}.csv", CSV + str(n).encode(), "text/csv")
            for n in range(evidence.MAX_FILES + 1)
        ]
        answer = deliver_files(client, tokens["manager"], target.id, files)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "files"
        assert stored_blobs(settings) == [] and file_rows(db, target.id) == []

    def test_a_file_over_the_limit_is_413_and_nothing_is_kept(
        self, db: Session, target: Deliverable, tokens: dict[str, str], settings: Settings,
        monkeypatch: pytest.MonkeyPatch, database: Database,
    ) -> None:  # fmt: skip
        monkeypatch.setenv("BRANDKEEP_MAX_UPLOAD_MB", "1")
        get_settings.cache_clear()
        small: FastAPI = create_app(get_settings(), database)
        big = PDF + bytes(1024 * 1024)  # a real PDF head, 1 MiB too long
        with TestClient(small) as client:
            answer = deliver_files(
                client,
                tokens["manager"],
                target.id,
                [("small.pdf", PDF, "application/pdf"), ("big.pdf", big, "application/pdf")],
            )
            assert answer.status_code == 413, answer.text
            assert "1 MB" in answer.json()["detail"]
            # Declared far over the limit: refused on the header, before the body is read.
            declared = client.post(
                f"{API}/deliverables/{target.id}/deliver",
                content=b"--x--\r\n",
                headers={
                    **bearer(tokens["manager"]),
                    "Content-Type": "multipart/form-data; boundary=x",
                    "Content-Length": str(evidence.max_request_bytes(get_settings()) + 1),
                },
            )
            assert declared.status_code == 413
        assert file_rows(db, target.id) == []
        assert stored_blobs(get_settings()) == []
        assert status_of(db, target.id) == DeliverableStatus.planned

    def test_the_audit_entry_lists_the_files_sha256(
        self, client: TestClient, db: Session, engagement: Engagement, target: Deliverable,
        tokens: dict[str, str],
    ) -> None:  # fmt: skip
        deliver_files(
            client,
            tokens["manager"],
            target.id,
            [("a.pdf", PDF, "application/pdf"), ("b.csv", CSV, "text/csv")],
        )
        entry = db.exec(
            select(AuditEntry).where(
                AuditEntry.subject_id == str(target.id),
                AuditEntry.kind == "deliverable_delivered",
            )
        ).one()
        listed = [item["sha256"] for item in entry.data["evidence"] if item["type"] == "file"]
        assert listed == [sha(PDF), sha(CSV)]
        assert audit.verify_chain(db, engagement.id).ok

    def test_each_delivery_round_keeps_its_own_files(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str]
    ) -> None:
        first = deliver_files(client, tokens["manager"], target.id, [("v1.pdf", PDF, "")])
        assert first.status_code == 200
        returned = client.post(
            f"{API}/deliverables/{target.id}/return",
            json={"reason": "The CSV is missing."},
            headers=bearer(tokens["reviewer"]),
        )
        assert returned.status_code == 200
        # The same PDF again with the CSV: each round has its own row for the PDF.
        second = deliver_files(
            client, tokens["manager"], target.id, [("v2.pdf", PDF, ""), ("data.csv", CSV, "")]
        )
        assert second.status_code == 200, second.text
        assert [item["label"] for item in second.json()["evidence"]] == ["v2.pdf", "data.csv"]
        rows = file_rows(db, target.id)
        assert [(r.round, r.original_name) for r in rows] == [
            (1, "v1.pdf"),
            (2, "data.csv"),
            (2, "v2.pdf"),
        ]
        listed = client.get(
            f"{API}/deliverables/{target.id}/evidence", headers=bearer(tokens["reviewer"])
        ).json()
        assert (listed[0]["round"], listed[0]["original_name"]) == (1, "v1.pdf")
        # The first round's file is still served.
        old = client.get(listed[0]["url"], headers=bearer(tokens["reviewer"]))
        assert old.status_code == 200 and old.content == PDF

    def test_the_wrong_side_is_refused_before_the_upload_is_read(
        self, client: TestClient, db: Session, target: Deliverable, tokens: dict[str, str],
        settings: Settings,
    ) -> None:  # fmt: skip
        answer = deliver_files(client, tokens["reviewer"], target.id, [("a.pdf", PDF, "")])
        assert answer.status_code == 403
        stale = client.post(
            f"{API}/deliverables/{target.id}/deliver",
            files=[("files", ("a.pdf", PDF, ""))],
            headers={**bearer(tokens["manager"]), "If-Match": '"99"'},
        )
        assert stale.status_code == 412
        assert stored_blobs(settings) == [] and file_rows(db, target.id) == []


# --- the board ---------------------------------------------------------------------


class TestOnTheBoard:
    def test_the_agency_delivers_files_from_the_board_and_the_brand_downloads_them(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement,
        target: Deliverable, settings: Settings,
    ) -> None:  # fmt: skip
        agency: TestClient = make_client()
        csrf = sign_in(agency, parties.manager.email)
        board = f"/engagements/{engagement.id}/deliverables"
        page = agency.get(board)
        assert page.status_code == 200
        assert 'enctype="multipart/form-data"' in page.text
        assert 'hx-encoding="multipart/form-data"' in page.text
        assert 'type="file" multiple' in page.text

        # Without JavaScript: the CSRF token in the form, a redirect back to the board.
        plain = agency.post(
            f"/deliverables/{target.id}/deliver",
            data={"csrf_token": csrf, "version": str(target.version), "links": ""},
            files=[("files", ("Informe marzo.pdf", PDF, "application/pdf"))],
        )
        assert plain.status_code == 303, plain.text
        assert status_of(db, target.id) == DeliverableStatus.delivered
        [row] = file_rows(db, target.id)

        brand: TestClient = make_client()
        sign_in(brand, parties.reviewer.email)
        shown = brand.get(board)
        link = f"/deliverables/{target.id}/evidence/{row.id}"
        assert link in shown.text and "Informe marzo.pdf" in shown.text
        assert f"({round(len(PDF) / 1024, 1)} KB)" in shown.text
        served = brand.get(link)
        assert served.status_code == 200 and served.content == PDF
        assert served.headers["content-disposition"].startswith("attachment;")
        assert served.headers["x-content-type-options"] == "nosniff"
        stranger = make_parties(db, signs_in=True)
        outsider: TestClient = make_client()
        sign_in(outsider, stranger.lead.email)
        assert outsider.get(link).status_code == 404

    def test_with_htmx_the_board_comes_back_and_a_refusal_shows_on_the_row(
        self, make_client: Any, db: Session, parties: Parties, engagement: Engagement,
        target: Deliverable, settings: Settings,
    ) -> None:  # fmt: skip
        agency: TestClient = make_client()
        csrf = sign_in(agency, parties.manager.email)
        htmx = {"HX-Request": "true", "HX-Target": "deliverable-board", "X-CSRF-Token": csrf}
        refused = agency.post(
            f"/deliverables/{target.id}/deliver",
            data={"version": str(target.version)},
            files=[("files", ("photo.png", b"<html><body>hi</body></html>", "image/png"))],
            headers=htmx,
        )
        assert refused.status_code == 415
        assert "photo.png cannot be evidence" in refused.text and "<html" not in refused.text
        assert stored_blobs(settings) == []
        delivered = agency.post(
            f"/deliverables/{target.id}/deliver",
            data={"version": str(target.version)},
            files=[("files", ("numbers.csv", CSV, "text/csv"))],
            headers=htmx,
        )
        assert delivered.status_code == 200, delivered.text
        assert "<html" not in delivered.text and "numbers.csv" in delivered.text

    def test_without_csrf_a_delivery_with_files_is_refused_and_nothing_kept(
        self, make_client: Any, db: Session, parties: Parties, target: Deliverable,
        settings: Settings,
    ) -> None:  # fmt: skip
        agency: TestClient = make_client()
        sign_in(agency, parties.manager.email)
        forged = agency.post(
            f"/deliverables/{target.id}/deliver",
            data={"csrf_token": "forged", "version": str(target.version)},
            files=[("files", ("a.pdf", PDF, "application/pdf"))],
        )
        assert forged.status_code == 403
        assert stored_blobs(settings) == [] and file_rows(db, target.id) == []

    def test_earlier_rounds_files_stay_on_the_board(
        self, client: TestClient, make_client: Any, db: Session, parties: Parties,
        engagement: Engagement, target: Deliverable, tokens: dict[str, str],
    ) -> None:  # fmt: skip
        deliver_files(client, tokens["manager"], target.id, [("first.pdf", PDF, "")])
        client.post(
            f"{API}/deliverables/{target.id}/return",
            json={"reason": "Add the numbers."},
            headers=bearer(tokens["reviewer"]),
        )
        deliver_files(client, tokens["manager"], target.id, [("numbers.csv", CSV, "")])
        brand: TestClient = make_client()
        sign_in(brand, parties.reviewer.email)
        page = brand.get(f"/engagements/{engagement.id}/deliverables").text
        assert "1 file from earlier deliveries" in page
        assert "Delivery 1:" in page and "first.pdf" in page and "numbers.csv" in page
