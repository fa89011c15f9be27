"""The real ``brandkeep`` console script, run as a separate process.

Every process gets an environment that points at the suite's migrated test
database (or, for serve and demo, at a fresh data directory) and binds only to
127.0.0.1. Servers are always terminated, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import migrate
from app.accounts.models import User
from app.cli import build_parser
from app.demo import ACCOUNTS, DEMO_PASSWORD
from tests.conftest import csrf_of, make_fresh_database_url
from tests.factories import bearer

BRANDKEEP = Path(sys.executable).parent / "brandkeep"
COMMAND_TIMEOUT = 60
SERVER_START_TIMEOUT = 180  # the demo loads six months of data first; a bound, not a goal


def _environment(database_url: str | None, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDKEEP_")}
    env["BRANDKEEP_DATA_DIR"] = str(data_dir)
    env["BRANDKEEP_ENV"] = "development"
    if database_url is not None:
        env["BRANDKEEP_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return _environment(database_url, tmp_path / "data")


def run(
    args: Sequence[str], env: dict[str, str], *, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BRANDKEEP), *args],
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        cwd=cwd,
        check=False,
    )


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    """Every command path the parser accepts: (), ("demo",), ("db", "upgrade"), ..."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from _commands(subparser, (*prefix, name))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- arguments --------------------------------------------------------------


def test_help_of_every_command(cli_env: dict[str, str], tmp_path: Path) -> None:
    commands = list(_commands(build_parser()))
    expected = {
        (),
        ("demo",),
        ("serve",),
        ("db",),
        ("db", "upgrade"),
        ("db", "downgrade"),
        ("db", "current"),
        ("orgs", "create"),
        ("users", "create"),
        ("tokens", "create"),
    }
    assert expected <= set(commands)
    # All at once: each is a separate interpreter start.
    processes = [
        subprocess.Popen(
            [str(BRANDKEEP), *command, "--help"],
            env=cli_env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    for command, process in zip(commands, processes, strict=True):
        try:
            stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)
        assert process.returncode == 0, (command, stderr)
        assert stdout.startswith(f"usage: {' '.join(['brandkeep', *command])}"), (command, stdout)
        assert stderr == ""
    # --help does nothing else: no data directory, no database file.
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: command"),
        (["orgs", "create", "--name", "Shop", "--kind", "shop"], "invalid choice: 'shop'"),
        (["orgs", "create", "--kind", "brand"], "--name"),
        (["db"], "required: db_command"),
        (["serve", "--port", "eighty"], "invalid int value"),
        (["tokens", "create", "--email", "a@b.example", "--org", "x", "--name", "t", "--scope",
          "admin"], "invalid choice: 'admin'"),
    ],
)  # fmt: skip
def test_a_wrong_argument_is_one_line_and_status_2(
    cli_env: dict[str, str], args: list[str], mentions: str
) -> None:
    result = run(args, cli_env)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert mentions in lines[0]
    assert lines[0].startswith("brandkeep") and "--help" in lines[0]


def test_a_bad_configuration_is_refused_with_a_clear_message(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "BRANDKEEP_ENV": "production", "BRANDKEEP_SECRET_KEY": "changeme"}
    result = run(["db", "current"], env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "BRANDKEEP_SECRET_KEY" in result.stderr and "token_urlsafe" in result.stderr


# --- administration ---------------------------------------------------------


def test_org_user_and_token_from_the_command_line_work_against_the_api(
    cli_env: dict[str, str], client: TestClient
) -> None:
    created = run(["orgs", "create", "--name", "Cumbre Coffee", "--kind", "brand"], cli_env)
    assert created.returncode == 0, created.stderr
    assert "cumbre-coffee" in created.stdout

    person = run(
        [
            "users", "create", "--email", "Ana@Cumbre.Example", "--name", "Ana Ortega",
            "--org", "cumbre-coffee", "--role", "lead",
        ],
        cli_env,
        stdin="a long enough password\n",
    )  # fmt: skip
    assert person.returncode == 0, person.stderr
    assert "ana@cumbre.example is now lead of cumbre-coffee" in person.stdout

    token = run(
        [
            "tokens", "create", "--email", "ana@cumbre.example", "--org", "cumbre-coffee",
            "--name", "ci", "--scope", "write",
        ],
        cli_env,
    )  # fmt: skip
    assert token.returncode == 0, token.stderr
    raw = token.stdout.strip()
    assert raw and len(token.stdout.splitlines()) == 1, token.stdout  # only the token
    assert "shown only this once" in token.stderr and raw not in token.stderr

    me = client.get("/api/v1/me", headers=bearer(raw))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["email"] == "ana@cumbre.example"
    assert body["token_organization"] == "cumbre-coffee"
    assert body["token_scope"] == "write"
    assert [(m["organization_slug"], m["role"]) for m in body["memberships"]] == [
        ("cumbre-coffee", "lead")
    ]
    assert client.get("/api/v1/me", headers=bearer(raw + "x")).status_code == 401

    # The password read from stdin is the one that signs in.
    page = client.get("/sign-in")
    signed_in = client.post(
        "/sign-in",
        data={
            "email": "ana@cumbre.example",
            "password": "a long enough password",
            "csrf_token": csrf_of(page.text),
            "next": "/home",
        },
    )
    assert signed_in.status_code == 303, signed_in.text


def test_users_create_for_an_unknown_org_fails_clearly(
    cli_env: dict[str, str], db: Session
) -> None:
    result = run(
        [
            "users", "create", "--email", "x@example.com", "--name", "X",
            "--org", "no-such-org", "--role", "owner",
        ],
        cli_env,
        stdin="a long enough password\n",
    )  # fmt: skip
    assert result.returncode != 0
    assert result.returncode != 2  # not an argument error
    assert "Traceback" not in result.stderr
    assert "no organization with slug 'no-such-org'" in result.stderr
    assert db.exec(select(User).where(User.email == "x@example.com")).first() is None


def test_tokens_create_for_an_unknown_account_fails_clearly(cli_env: dict[str, str]) -> None:
    result = run(
        ["tokens", "create", "--email", "nobody@example.com", "--org", "x", "--name", "t"],
        cli_env,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no account with e-mail 'nobody@example.com'" in result.stderr


def test_db_current_prints_the_head_revision(cli_env: dict[str, str]) -> None:
    result = run(["db", "current"], cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.head_revision()


# --- serving ----------------------------------------------------------------


@contextmanager
def serving(args: Sequence[str], env: dict[str, str], logs: Path) -> Iterator[tuple[str, Path]]:
    """Starts ``brandkeep`` as a server; yields its address once /healthz answers."""
    port = _free_port()
    logs.mkdir(parents=True, exist_ok=True)
    out_path = logs / "stdout.txt"
    with (
        out_path.open("w") as out,
        (logs / "stderr.txt").open("w") as err,
    ):
        process = subprocess.Popen(
            [str(BRANDKEEP), *args, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"brandkeep {' '.join(args)} exited with {process.returncode}:\n"
                        + (logs / "stderr.txt").read_text()
                    )
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"brandkeep {' '.join(args)} did not answer /healthz within "
                        f"{SERVER_START_TIMEOUT}s:\n" + (logs / "stderr.txt").read_text()
                    )
                time.sleep(0.1)
            yield base, out_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)
def test_serve_refuses_a_postgresql_database_that_is_not_at_head(tmp_path: Path) -> None:
    url, drop = make_fresh_database_url(tmp_path, "serve")
    try:
        result = run(["serve", "--port", str(_free_port())], _environment(url, tmp_path / "data"))
    finally:
        drop()  # type: ignore[operator]
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert "brandkeep db upgrade" in result.stderr
    assert str(migrate.head_revision()) in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["tokens", "create", "--email", "a@b.example", "--org", "x", "--name", "t"],
        ["orgs", "create", "--name", "Acme", "--kind", "brand"],
        ["audit", "verify"],
    ],
    ids=["tokens", "orgs", "audit"],
)
def test_admin_commands_on_a_database_never_migrated_say_what_to_do(
    tmp_path: Path, args: list[str]
) -> None:
    url, drop = make_fresh_database_url(tmp_path, "admin")
    try:
        result = run(args, _environment(url, tmp_path / "data"))
    finally:
        drop()  # type: ignore[operator]
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert "run `brandkeep db upgrade` first" in result.stderr


def test_serve_on_sqlite_migrates_a_fresh_data_dir_and_serves(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    env = _environment(None, data_dir)
    with serving(["serve", "--host", "127.0.0.1"], env, tmp_path / "logs") as (base, _):
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["schema"] == migrate.head_revision()
    assert (data_dir / "brandkeep.sqlite3").is_file()


def _count_users(database_path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{database_path}", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text('SELECT count(*) FROM "user"')).scalar_one()
    finally:
        engine.dispose()


def test_demo_serves_its_sign_ins_and_loads_idempotently(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    env = _environment(None, data_dir)
    # Whatever the caller's environment says, the demo uses its own SQLite file.
    env["BRANDKEEP_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"

    with (
        serving(["demo"], env, tmp_path / "first") as (base, _),
        httpx.Client(base_url=base, timeout=10, follow_redirects=False) as browser,
    ):
        page = browser.get("/sign-in")
        assert page.status_code == 200
        response = browser.post(
            "/sign-in",
            data={
                "email": "lead@acme.example",
                "password": DEMO_PASSWORD,
                "csrf_token": csrf_of(page.text),
                "next": "/home",
            },
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/home"
        home = browser.get("/home")
        assert home.status_code == 200
        assert "Acme Outdoor" in home.text
    printed = (tmp_path / "first" / "stdout.txt").read_text()
    assert DEMO_PASSWORD in printed
    for account in ACCOUNTS:
        assert account.email in printed
    database_path = data_dir / "demo.sqlite3"
    assert _count_users(database_path) == len(ACCOUNTS) == 6

    with serving(["demo"], env, tmp_path / "second") as (base, _):
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
    assert "Traceback" not in (tmp_path / "second" / "stderr.txt").read_text()
    assert _count_users(database_path) == 6
