"""Spanish: the catalog covers every message, and pages really come out in Spanish.

The catalog test extracts the messages exactly as ``pybabel extract -F babel.cfg``
does, so a string added to the code or a template without its Spanish fails here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlmodel import Session

from app import i18n, web
from app.accounts import service as accounts
from app.accounts.models import User
from app.config import PROJECT_ROOT
from app.tenancy.models import OrgKind
from tests.conftest import csrf_of
from tests.factories import (
    PASSWORD,
    add_member,
    bearer,
    create_org,
    create_token,
    person_in,
    sign_in,
)

BABEL_CFG = PROJECT_ROOT / "babel.cfg"
SPANISH_PO = PROJECT_ROOT / "app" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
UPDATE_HINT = (
    "run `pybabel extract -F babel.cfg -o messages.pot . && "
    "pybabel update -i messages.pot -d app/translations`, then translate the new entries "
    "in app/translations/es/LC_MESSAGES/messages.po (and remove their fuzzy flag)"
)

SPANISH_BROWSER = {"Accept-Language": "es-ES,es;q=0.9"}
ENGLISH_BROWSER = {"Accept-Language": "en"}

MessageId = str | tuple[str, ...]

# A printf conversion as Python's % operator reads it, named or not (%% included).
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")


def extract(root: Path) -> dict[MessageId, list[str]]:
    """Messages under ``root`` with where they were found, configured by babel.cfg."""
    with BABEL_CFG.open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config, str(BABEL_CFG))
    found: dict[MessageId, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(root), method_map, options_map
    ):
        found.setdefault(message, []).append(f"{Path(filename).as_posix()}:{lineno}")
    return found


def spanish_catalog() -> Catalog:
    with SPANISH_PO.open("rb") as po_file:
        return read_po(po_file, locale="es")


def conversions(text: str) -> list[str]:
    return sorted(_CONVERSION.findall(text))


def stray_percent(text: str) -> bool:
    """A % that is not part of a conversion breaks ``text % params`` at render time."""
    return "%" in _CONVERSION.sub("", text)


def _ids(msgid: MessageId) -> tuple[str, ...]:
    return msgid if isinstance(msgid, tuple) else (msgid,)


def _is_translated(catalog: Catalog, msgid: MessageId, entry: Message | None) -> bool:
    if entry is None or entry.fuzzy or entry.id != msgid:
        return False
    if isinstance(msgid, tuple):
        forms = entry.string
        return (
            isinstance(forms, tuple)
            and len(forms) == catalog.num_plurals
            and all(form.strip() for form in forms)
        )
    return isinstance(entry.string, str) and bool(entry.string.strip())


# --- the catalog --------------------------------------------------------------


class TestExtraction:
    def test_finds_the_messages_of_the_code_and_of_the_templates(self) -> None:
        messages = extract(PROJECT_ROOT)
        places = {place.split("/")[0] for where in messages.values() for place in where}
        assert places == {"app", "templates"}, places
        # One of each kind the project uses: N_ in app code, _() and ngettext() in templates.
        assert "app/errors.py" in {p.rsplit(":", 1)[0] for p in messages["Not found"]}
        assert "Sign in to Brandkeep" in messages
        assert ("You work in %(num)d organization.", "You work in %(num)d organizations.") in (
            messages
        )

    def test_babel_cfg_covers_every_marker_and_only_app_and_templates(self, tmp_path: Path) -> None:
        (tmp_path / "app" / "sub").mkdir(parents=True)
        (tmp_path / "app" / "sub" / "sample.py").write_text(
            "N_('marked with N_')\n"
            "_('marked with _')\n"
            "gettext('marked with gettext')\n"
            "ngettext('%(num)d thing', '%(num)d things', n)\n"
            "gettext_for(language, 'marked with gettext_for', org='x')\n"
            "not_a_marker('not marked')\n",
            encoding="utf-8",
        )
        (tmp_path / "templates" / "sub").mkdir(parents=True)
        (tmp_path / "templates" / "sub" / "page.html").write_text(
            "{% extends 'layout.html' %}{% block main %}\n"
            "{{ _('from a template') }}\n"
            "{{ ngettext('%(num)d apple', '%(num)d apples', count) }}\n"
            "{% if x %}\n  {% trans name=user.name %}Hello {{ name }}{% endtrans %}\n{% endif %}\n"
            "{% endblock %}\n",
            encoding="utf-8",
        )
        for elsewhere in (".venv/lib/site.py", "tests/test_x.py", "migrations/m.py"):
            path = tmp_path / elsewhere
            path.parent.mkdir(parents=True)
            path.write_text(f"_('from {elsewhere}')\n", encoding="utf-8")

        assert set(extract(tmp_path)) == {
            "marked with N_",
            "marked with _",
            "marked with gettext",
            ("%(num)d thing", "%(num)d things"),
            "marked with gettext_for",
            "from a template",
            ("%(num)d apple", "%(num)d apples"),
            "Hello %(name)s",
        }

    def test_template_ids_are_the_ones_pages_look_up(self, tmp_path: Path) -> None:
        """babel.cfg parses templates as the app's Jinja environment does (whitespace too)."""
        source = (
            "<ul>\n  {% if shown %}\n  <li>{% trans name=name %}\n    Hello {{ name }}\n"
            "  {% endtrans %}</li>\n  {% endif %}\n"
            "  <li>{% trans count=n %}\n{{ count }} apple\n{% pluralize %}\n"
            "{{ count }} apples\n{% endtrans %}</li>\n"
            "  <li>{{ _('Hi %(who)s', who=name) }}</li>\n</ul>\n"
        )
        (tmp_path / "templates").mkdir()
        (tmp_path / "templates" / "page.html").write_text(source, encoding="utf-8")
        asked: list[MessageId] = []

        def gettext(message: str) -> str:
            asked.append(message)
            return message

        def ngettext(singular: str, plural: str, n: int) -> str:
            asked.append((singular, plural))
            return singular if n == 1 else plural

        environment = web.build_environment()  # a new one, set up as the app's
        environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
        environment.from_string(source).render(shown=True, name="Ana", n=2)

        assert len(asked) == 3
        assert set(asked) == set(extract(tmp_path))


class TestSpanishCatalog:
    def test_header_declares_spanish_plurals(self) -> None:
        catalog = spanish_catalog()
        assert str(catalog.locale) == "es"
        assert catalog.plural_forms == "nplurals=2; plural=(n != 1);"
        assert catalog.num_plurals == 2

    def test_every_extracted_message_has_a_spanish_translation(self) -> None:
        catalog = spanish_catalog()
        missing: list[str] = []
        for msgid, places in sorted(extract(PROJECT_ROOT).items(), key=lambda item: str(item)):
            entry = catalog.get(msgid[0] if isinstance(msgid, tuple) else msgid)
            if not _is_translated(catalog, msgid, entry):
                state = "fuzzy" if entry is not None and entry.fuzzy else "missing or empty"
                missing.append(f"  {msgid!r} ({state}; {', '.join(places)})")
        assert not missing, (
            f"{len(missing)} message(s) have no Spanish translation:\n"
            + "\n".join(missing)
            + f"\nTo fix: {UPDATE_HINT}."
        )

    def test_the_catalog_has_no_fuzzy_or_empty_entries(self) -> None:
        unfinished = [
            message.id
            for message in spanish_catalog()
            if message.id
            and (
                message.fuzzy
                or not (
                    all(message.string) if isinstance(message.string, tuple) else message.string
                )
            )
        ]
        assert not unfinished, f"Unfinished Spanish entries: {unfinished}. {UPDATE_HINT}."

    def test_translations_keep_the_placeholders_of_their_message(self) -> None:
        problems: list[str] = []
        for message in spanish_catalog():
            if not message.id or not message.string:
                continue
            if isinstance(message.id, tuple):
                # Each plural form may use any placeholder of the singular or the plural.
                expected = sorted(set(conversions(message.id[0]) + conversions(message.id[1])))
                forms = list(message.string)
                if sorted({c for form in forms for c in conversions(form)}) != expected:
                    problems.append(f"{message.id!r}: {forms!r} should use {expected}")
            else:
                expected = conversions(message.id)
                forms = [message.string]
                if conversions(message.string) != expected:
                    problems.append(f"{message.id!r}: {message.string!r} should use {expected}")
            if not any(stray_percent(text) for text in _ids(message.id)):
                problems += [
                    f"{message.id!r}: stray % in {form!r} (write %% for a literal %)"
                    for form in forms
                    if stray_percent(form)
                ]
        assert not problems, "Placeholders differ from the English:\n" + "\n".join(problems)

    def test_the_app_reads_the_catalog(self) -> None:
        assert i18n.gettext_for("es", "Members of %(org)s", org="Acme") == "Miembros de Acme"
        assert i18n.gettext_for("en", "Members of %(org)s", org="Acme") == "Members of Acme"
        spanish = i18n.translations("es")
        assert spanish.ngettext("%(num)d person", "%(num)d people", 1) == "%(num)d persona"
        assert spanish.ngettext("%(num)d person", "%(num)d people", 2) == "%(num)d personas"
        assert spanish.ngettext("%(num)d person", "%(num)d people", 0) == "%(num)d personas"


# --- language negotiation and formatting ----------------------------------------


class TestAcceptLanguage:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("en;q=0.5, es-MX, fr;q=0.8", ["es-MX", "fr", "en"]),
            ("es, en", ["es", "en"]),  # equal quality: the header's order
            ("da, en-GB;q=0.8, en;q=0.7", ["da", "en-GB", "en"]),
            ("es_AR", ["es-AR"]),
            ("fr;q=0, es;q=0.1, *;q=0.5", ["es"]),  # q=0 means "not this"; * names none
            ("en;q=abc, es", ["es"]),
            (" , ;q=1", []),
            ("", []),
            (None, []),
        ],
    )
    def test_parse_orders_by_quality(self, header: str | None, expected: list[str]) -> None:
        assert i18n.parse_accept_language(header) == expected

    @pytest.mark.parametrize(
        ("header", "default", "expected"),
        [
            ("es", "en", "es"),
            ("es-MX", "en", "es"),
            ("es-419,es;q=0.9", "en", "es"),
            ("en-GB", "es", "en"),
            ("fr", "en", "en"),
            ("fr", "es", "es"),
            ("fr, es;q=0.5, en;q=0.4", "en", "es"),
            ("en;q=0.3, es;q=0.7", "en", "es"),
            ("es;q=0", "en", "en"),
            ("*", "es", "es"),
            (None, "es", "es"),
            ("", "en", "en"),
        ],
    )
    def test_negotiate_falls_back_to_the_default(
        self, header: str | None, default: str, expected: str
    ) -> None:
        assert i18n.negotiate_language(header, default) == expected


def _spaces(text: str) -> str:
    # CLDR puts no-break and narrow no-break spaces in formats; compare the words.
    return text.replace("\xa0", " ").replace("\u202f", " ")


class TestFormatting:
    def test_money(self) -> None:
        assert _spaces(i18n.format_money(1234567, "EUR", "es")) == "12.345,67 €"
        assert i18n.format_money(1234567, "EUR", "en") == "€12,345.67"
        assert i18n.format_money(123456, "USD", "en") == "$1,234.56"
        assert _spaces(i18n.format_money(-50, "EUR", "es")) == "-0,50 €"
        assert i18n.format_money(1500, "JPY", "en", exponent=0) == "¥1,500"

    def test_dates_in_the_reader_time_zone(self) -> None:
        moment = datetime(2025, 3, 5, 14, 30, tzinfo=UTC)
        assert i18n.format_datetime(moment, "es", "Europe/Madrid") == "5 mar 2025, 15:30:00"
        assert _spaces(i18n.format_datetime(moment, "en", "Europe/Madrid")) == (
            "Mar 5, 2025, 3:30:00 PM"
        )
        assert _spaces(i18n.format_datetime(moment, "en", "America/New_York")) == (
            "Mar 5, 2025, 9:30:00 AM"
        )
        assert i18n.format_datetime(None, "es", "UTC") == "—"

    def test_numbers(self) -> None:
        assert i18n.format_number(1234567.5, "es") == "1.234.567,5"
        assert i18n.format_number(1234567.5, "en") == "1,234,567.5"


# --- pages and API answers in Spanish ---------------------------------------------


def _assert_spanish_page(response: httpx.Response) -> None:
    assert response.headers["content-language"] == "es"
    assert '<html lang="es">' in response.text


class TestPagesInSpanish:
    def test_sign_in_page_follows_the_browser(self, client: TestClient) -> None:
        spanish = client.get("/sign-in", headers=SPANISH_BROWSER)
        assert spanish.status_code == 200
        _assert_spanish_page(spanish)
        assert "Inicia sesión en Brandkeep" in spanish.text
        assert "Contraseña" in spanish.text
        assert "Sign in to Brandkeep" not in spanish.text

        english = client.get("/sign-in", headers=ENGLISH_BROWSER)
        assert english.headers["content-language"] == "en"
        assert '<html lang="en">' in english.text
        assert "Sign in to Brandkeep" in english.text
        assert "Inicia sesión" not in english.text

    def test_wrong_password_is_explained_in_spanish(self, client: TestClient, db: Session) -> None:
        org = create_org(db)
        user = person_in(db, org, "owner")
        page = client.get("/sign-in", headers=SPANISH_BROWSER)
        response = client.post(
            "/sign-in",
            data={
                "email": user.email,
                "password": PASSWORD + "-wrong",
                "csrf_token": csrf_of(page.text),
                "next": "/home",
            },
            headers=SPANISH_BROWSER,
        )
        assert response.status_code == 422
        _assert_spanish_page(response)
        assert "Correo electrónico o contraseña incorrectos." in response.text
        assert "Wrong e-mail or password" not in response.text

    def test_htmx_form_error_is_in_spanish_too(self, client: TestClient) -> None:
        page = client.get("/sign-up", headers=SPANISH_BROWSER)
        response = client.post(
            "/sign-up",
            data={"name": "", "email": "x", "password": "", "org_name": "", "org_kind": "brand"},
            headers={
                **SPANISH_BROWSER,
                "HX-Request": "true",
                "HX-Target": "sign-up-form",
                "X-CSRF-Token": csrf_of(page.text),
            },
        )
        assert response.status_code == 422
        assert response.headers["content-language"] == "es"
        assert "<html" not in response.text
        assert "Escribe una dirección de correo electrónico válida." in response.text
        assert "Dinos tu nombre." in response.text
        assert "Ponle un nombre a la organización." in response.text

    def test_chosen_language_beats_the_browser(self, client: TestClient, db: Session) -> None:
        brand = create_org(db, name="Cumbre Coffee")
        agency = create_org(db, kind=OrgKind.agency, name="Northwind Social")
        user = person_in(db, brand, "owner")
        add_member(db, agency, user, "manager")
        csrf = sign_in(client, user.email)

        before = client.get("/home", headers=ENGLISH_BROWSER)
        assert "You work in 2 organizations." in before.text

        chosen = client.post(
            "/language",
            data={"language": "es", "next": "/home", "csrf_token": csrf},
            headers=ENGLISH_BROWSER,
        )
        assert chosen.status_code == 303
        assert chosen.headers["location"] == "/home"
        stored = db.get(User, user.id)
        assert stored is not None
        db.refresh(stored)
        assert stored.language == "es"

        home = client.get("/home", headers=ENGLISH_BROWSER)
        assert home.status_code == 200
        _assert_spanish_page(home)
        assert "Hola, Pat Example" in home.text
        assert "Trabajas en 2 organizaciones." in home.text
        # Role names are labels translated when read in the template.
        assert "<strong>Propietario</strong>" in home.text
        assert "<strong>Gestor</strong>" in home.text
        assert "Cerrar sesión" in home.text
        assert "Sign out" not in home.text

        back = client.post(
            "/language",
            data={"language": "en", "next": "/home", "csrf_token": csrf},
            headers=SPANISH_BROWSER,
        )
        assert back.status_code == 303
        english = client.get("/home", headers=SPANISH_BROWSER)
        assert english.headers["content-language"] == "en"
        assert "Hello, Pat Example" in english.text

    def test_members_page_in_spanish(self, client: TestClient, db: Session) -> None:
        brand = create_org(db, name="Cumbre Coffee")
        user = person_in(db, brand, "owner")
        person_in(db, brand, "reviewer")
        sign_in(client, user.email)

        response = client.get(f"/orgs/{brand.slug}/members", headers=SPANISH_BROWSER)
        assert response.status_code == 200
        _assert_spanish_page(response)
        assert "Miembros de Cumbre Coffee" in response.text
        assert "2 personas" in response.text
        assert "Qué puede hacer cada rol" in response.text
        assert "Revisa publicaciones, acepta entregables" in response.text  # reviewer's help
        assert ">Responsable de cuenta</option>" in response.text

    def test_csrf_refusal_page_is_in_spanish(self, client: TestClient) -> None:
        client.get("/sign-in", headers=SPANISH_BROWSER)
        response = client.post(
            "/sign-in",
            data={"email": "a@example.com", "password": "x", "csrf_token": "forged"},
            headers=SPANISH_BROWSER,
        )
        assert response.status_code == 403
        _assert_spanish_page(response)
        assert "Este formulario expiró o no viene de Brandkeep." in response.text
        assert "No permitido" in response.text


class TestApiInSpanish:
    def test_anonymous_caller_gets_the_browser_language(self, client: TestClient) -> None:
        spanish = client.get("/api/v1/me", headers=SPANISH_BROWSER)
        assert spanish.status_code == 401
        assert spanish.headers["content-type"].startswith("application/problem+json")
        assert spanish.json()["title"] == "Inicia sesión para continuar"
        assert spanish.json()["detail"] == "Envía un token de API: Authorization: Bearer <token>."

        english = client.get("/api/v1/me", headers=ENGLISH_BROWSER)
        assert english.json()["title"] == "Sign in to continue"

    def test_token_user_gets_their_own_language(self, client: TestClient, db: Session) -> None:
        org = create_org(db)
        user = person_in(db, org, "viewer")
        raw = create_token(db, user, org, scope="read")
        accounts.set_language(db, user=user, language="es")
        db.commit()

        missing = client.get(
            "/api/v1/orgs/no-such-org/members", headers={**bearer(raw), **ENGLISH_BROWSER}
        )
        assert missing.status_code == 404
        assert missing.json()["title"] == "No encontrado"
        assert missing.json()["detail"] == "Aquí no hay ninguna organización, o no es tuya."

    def test_read_only_refusal_is_in_the_token_user_language(
        self, client: TestClient, db: Session
    ) -> None:
        org = create_org(db)
        user = person_in(db, org, "viewer")
        raw = create_token(db, user, org, scope="read")
        accounts.set_language(db, user=user, language="es")
        db.commit()

        read_only = client.post(
            f"/api/v1/orgs/{org.slug}/members",
            json={"email": user.email, "role": "viewer"},
            headers={**bearer(raw), **ENGLISH_BROWSER},
        )
        assert read_only.status_code == 403
        assert read_only.json()["detail"] == (
            "Este token es de solo lectura; crea un token con alcance de escritura."
        )
        assert read_only.json()["title"] == "No puedes hacer esto"
