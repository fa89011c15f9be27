"""The ``brandkeep`` command."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from app.config import Settings, get_settings

if TYPE_CHECKING:
    from sqlmodel import Session

    from app.db import Database


class _Parser(argparse.ArgumentParser):
    """A wrong argument gives one clear line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        _fail(f"configuration: {exc}")


def _fail(message: str, status: int = 1) -> NoReturn:
    print(f"brandkeep: {message}", file=sys.stderr)
    sys.exit(status)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="brandkeep",
        description="Brandkeep: the portal where brands and their social media agencies work.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="run the demo: SQLite, demo data, 127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--reset", action="store_true", help="start again from fresh demo data")

    serve = commands.add_parser("serve", help="serve the configured database")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    db = commands.add_parser("db", help="database schema migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser("upgrade", help="apply every pending migration")
    downgrade = db_commands.add_parser("downgrade", help="go back to revision REV")
    downgrade.add_argument("revision", metavar="REV")
    db_commands.add_parser("current", help="print the schema revision of the database")

    orgs = commands.add_parser("orgs", help="organizations")
    orgs_commands = orgs.add_subparsers(dest="orgs_command", required=True, parser_class=_Parser)
    org_create = orgs_commands.add_parser("create", help="create a brand or an agency")
    org_create.add_argument("--name", required=True)
    org_create.add_argument("--kind", required=True, choices=["brand", "agency"])
    org_create.add_argument("--slug", help="short name used in addresses (default: from the name)")

    users = commands.add_parser("users", help="people")
    users_commands = users.add_subparsers(dest="users_command", required=True, parser_class=_Parser)
    user_create = users_commands.add_parser(
        "create", help="create a person in an organization (password from stdin or prompted)"
    )
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--name", required=True)
    user_create.add_argument("--org", required=True, metavar="SLUG")
    user_create.add_argument(
        "--role",
        required=True,
        choices=["owner", "lead", "reviewer", "viewer", "manager", "creator"],
    )

    tokens = commands.add_parser("tokens", help="API tokens")
    tokens_commands = tokens.add_subparsers(
        dest="tokens_command", required=True, parser_class=_Parser
    )
    token_create = tokens_commands.add_parser("create", help="create an API token (printed once)")
    token_create.add_argument("--email", required=True)
    token_create.add_argument("--org", required=True, metavar="SLUG")
    token_create.add_argument("--name", required=True)
    token_create.add_argument("--scope", choices=["read", "write"], default="read")

    commands.add_parser(
        "worker",
        help="run background jobs (e-mail, ...) until stopped: from Redis when "
        "BRANDKEEP_REDIS_URL is set, else by polling the outbox table",
    )

    audit_parser = commands.add_parser("audit", help="the tamper-evident audit record")
    audit_commands = audit_parser.add_subparsers(
        dest="audit_command", required=True, parser_class=_Parser
    )
    verify = audit_commands.add_parser(
        "verify", help="re-compute the chains; exit 1 naming the first broken entry"
    )
    which = verify.add_mutually_exclusive_group()
    which.add_argument("--engagement", metavar="ID", help="only this engagement's chain")
    which.add_argument(
        "--organization", metavar="SLUG", help="only this organization's security chain"
    )
    verify.add_argument(
        "--checkpoint", metavar="FILE", help="also check the chain still contains this checkpoint"
    )
    export = audit_commands.add_parser(
        "checkpoint", help="print a signed checkpoint (length and head) of a chain"
    )
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--engagement", metavar="ID")
    which.add_argument("--organization", metavar="SLUG")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handlers = {
        "demo": _demo,
        "serve": _serve,
        "db": _db,
        "orgs": _orgs,
        "users": _users,
        "tokens": _tokens,
        "worker": _worker,
        "audit": _audit,
    }
    handlers[args.command](args)


# --- serving ----------------------------------------------------------------


def _demo(args: argparse.Namespace) -> None:
    data_dir = Path(os.environ.get("BRANDKEEP_DATA_DIR", ".brandkeep")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    database_path = data_dir / "demo.sqlite3"
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database_path}{suffix}").unlink(missing_ok=True)
    # The demo is always the embedded default: SQLite in the data dir, development mode.
    os.environ["BRANDKEEP_DATABASE_URL"] = f"sqlite:///{database_path}"
    os.environ["BRANDKEEP_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("BRANDKEEP_ENV", "development")
    os.environ.setdefault("BRANDKEEP_BASE_URL", f"http://127.0.0.1:{args.port}")
    get_settings.cache_clear()
    settings = _settings()

    from app import demo, migrate
    from app.db import Database

    migrate.upgrade(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    with database.session_scope() as session:
        demo.load(session)
    database.dispose()

    print(f"Brandkeep demo: http://127.0.0.1:{args.port}  (data in {database_path})")
    print(f"Demo sign-ins, all with the password {demo.DEMO_PASSWORD!r} (demo only):")
    for account in demo.ACCOUNTS:
        print(f"  {account.email:<28} {account.role.value} of {account.org_slug}")
    _run_server("127.0.0.1", args.port, workers=1)


def _serve(args: argparse.Namespace) -> None:
    settings = _settings()
    from app import migrate
    from app.db import Database, is_sqlite

    if args.workers < 1:
        _fail("--workers must be at least 1", 2)
    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(url)
    else:
        database = Database(url)
        try:
            _require_current_schema(database)
        finally:
            database.dispose()
    _run_server(args.host, args.port, workers=args.workers)


def _require_current_schema(database: Database) -> None:
    """Stop with a sentence, not a traceback, when the schema is missing or behind."""
    from app import migrate

    try:
        current = migrate.current_revision(database.engine)
    except Exception as exc:
        _fail(f"cannot reach the database: {exc.__class__.__name__}: {exc}")
    if current != migrate.head_revision():
        _fail(
            f"the database schema is at {current or 'nothing'}, this release needs "
            f"{migrate.head_revision()}: run `brandkeep db upgrade` first"
        )


def _run_server(host: str, port: int, *, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
    )


def _worker(args: argparse.Namespace) -> None:
    settings = _settings()
    import logging

    from app.db import Database
    from app.jobs.runner import JobRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    source = "Redis" if settings.redis_url else "the outbox table (polled every minute)"
    print(f"brandkeep worker: running jobs from {source}; stop with Ctrl+C", file=sys.stderr)
    database = Database(settings.resolved_database_url)
    try:
        JobRunner(settings, database).run_worker()
    finally:
        database.dispose()


# --- database ---------------------------------------------------------------


def _db(args: argparse.Namespace) -> None:
    settings = _settings()
    from app import migrate
    from app.db import Database, is_sqlite

    url = settings.resolved_database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.db_command == "upgrade":
        migrate.upgrade(url)
    elif args.db_command == "downgrade":
        migrate.downgrade(url, args.revision)
    else:
        database = Database(url)
        print(migrate.current_revision(database.engine) or "(empty database)")
        database.dispose()


# --- administration ---------------------------------------------------------


@contextmanager
def _admin_session() -> Iterator[Session]:
    from app.db import Database

    database = Database(_settings().resolved_database_url)
    try:
        _require_current_schema(database)
        with database.session_scope() as session:
            yield session
    finally:
        database.dispose()


def _orgs(args: argparse.Namespace) -> None:
    from app.errors import BrandkeepError
    from app.tenancy import service as tenancy
    from app.tenancy.models import OrgKind

    try:
        with _admin_session() as session:
            org = tenancy.create_organization(
                session, name=args.name, kind=OrgKind(args.kind), slug=args.slug
            )
            print(f"created {org.kind} {org.name!r} with slug {org.slug}")
    except BrandkeepError as exc:
        _fail(_describe(exc))


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            _fail("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def _users(args: argparse.Namespace) -> None:
    from app.accounts import repository as accounts_repository
    from app.accounts import service as accounts
    from app.errors import BrandkeepError
    from app.tenancy import repository as tenancy_repository
    from app.tenancy import service as tenancy
    from app.tenancy.models import Role

    password = _read_password()
    try:
        with _admin_session() as session:
            org = tenancy_repository.get_org_by_slug_unscoped(session, args.org)
            if org is None:
                _fail(f"no organization with slug {args.org!r}")
            user = accounts_repository.get_user_by_email(session, args.email)
            if user is None:
                user = accounts.create_user(
                    session, email=args.email, name=args.name, password=password
                )
            tenancy.add_membership(session, organization=org, user=user, role=Role(args.role))
            print(f"{user.email} is now {args.role} of {org.slug}")
    except BrandkeepError as exc:
        _fail(_describe(exc))


def _tokens(args: argparse.Namespace) -> None:
    from app.accounts import repository as accounts_repository
    from app.accounts import service as accounts
    from app.errors import BrandkeepError
    from app.tenancy.service import actor_for

    try:
        with _admin_session() as session:
            user = accounts_repository.get_user_by_email(session, args.email)
            if user is None:
                _fail(f"no account with e-mail {args.email!r}")
            actor = actor_for(session, user)
            token, raw = accounts.create_api_token(
                session, actor, org_slug=args.org, name=args.name, scope=args.scope
            )
            print(raw)
            print(
                f"token {token.prefix}… for {user.email} in {args.org} ({args.scope}); "
                "it is shown only this once",
                file=sys.stderr,
            )
    except BrandkeepError as exc:
        _fail(_describe(exc))


def _audit(args: argparse.Namespace) -> None:
    import json
    import uuid

    from app.audit import service as audit
    from app.tenancy import repository as tenancy_repository

    settings = _settings()
    try:
        chain_ids = [uuid.UUID(args.engagement)] if args.engagement else None
    except ValueError:
        _fail(f"not an engagement id: {args.engagement!r}", 2)
    broken = False
    with _admin_session() as session:
        if args.organization:
            org = tenancy_repository.get_org_by_slug_unscoped(
                session, args.organization.strip().lower()
            )
            if org is None:
                _fail(f"no organization with the slug {args.organization!r}", 2)
            chain_ids = [org.id]
        if args.audit_command == "checkpoint":
            assert chain_ids is not None
            result = audit.verify_chain(session, chain_ids[0])
            if not result.ok:
                _fail(f"chain {result.chain_id} is broken at entry {result.broken_at}")
            print(json.dumps(audit.checkpoint(result, settings.secret_key), indent=2))
            return
        for chain_id in chain_ids or audit.all_chain_ids(session):
            result = audit.verify_chain(session, chain_id)
            if result.ok:
                print(f"ok      {chain_id}  {result.length} entries  head {result.head_hash[:16]}…")
            else:
                broken = True
                print(f"BROKEN  {chain_id}  entry {result.broken_at}: {result.reason}")
        if args.checkpoint:
            try:
                saved = json.loads(Path(args.checkpoint).read_text())
            except (OSError, ValueError) as exc:
                _fail(f"cannot read the checkpoint: {exc}", 2)
            problem = audit.check_checkpoint(session, saved, settings.secret_key)
            if problem:
                broken = True
                print(f"BROKEN  checkpoint of {saved.get('chain_id')}: {problem}")
            else:
                print(
                    f"ok      checkpoint of {saved.get('chain_id')} ({saved.get('length')} entries)"
                )
    if broken:
        sys.exit(1)


def _describe(exc: Exception) -> str:
    from app.errors import BrandkeepError

    if isinstance(exc, BrandkeepError) and exc.field_errors:
        return "; ".join(
            f"{error.field}: {error.message % error.params if error.params else error.message}"
            for error in exc.field_errors
        )
    return str(exc)


if __name__ == "__main__":
    main()
