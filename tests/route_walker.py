"""The tenancy guard: walk every route the app registers and try to break in.

``walk(app, db)`` finds every route of the app (including routes added long after
this file was written), and for each method of each route checks that:

1. **Anonymous** callers are turned away: API routes (``/api/v1/…``) answer 401
   problem details with ``WWW-Authenticate: Bearer``; pages answer a 303 redirect
   to ``/sign-in``. Unsafe methods are sent with a valid anonymous CSRF token, so it
   is the sign-in check, not CSRF, that is tested. Routes in ``PUBLIC_ROUTES`` are exempt.
2. **A user of an unrelated organization** (the *attacker*: owner of an agency,
   signed in, with a write token) gets **404** on anything that names the *victim*'s
   data (a brand with an owner, another member and an API token). Every path
   parameter, and every query or form field whose name is in ``PARAMETERS``, is
   filled from ``PARAMETERS``; every mix of victim and attacker values that has at
   least one victim value is tried, so that "my organization, your member" is
   caught as well as "your organization, your member".
3. **The 404s mean something**: for safe methods the victim, asking for their own
   values, and the attacker, asking for theirs, do not get 404 (otherwise a wrong
   URL or registry value would make every check pass).
4. **Nothing leaks sideways**: no response to the attacker on a safe method, with or
   without parameters, contains the victim's organization name, people's names or
   e-mails (this catches an unscoped list).

A new route needs nothing here unless it has a path parameter of a new name: then
the walk fails and says which entry to add to ``PARAMETERS`` (and, if the object
does not exist yet, what to create in ``make_party``).

Not covered: identifiers inside JSON request bodies (the walk sends ``{}``, which a
route validates before it reads the body's ids); test those beside the route.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session, select
from starlette.datastructures import UploadFile

from app.accounts import service as accounts
from app.accounts.models import ApiToken, User
from app.accounts.service import secret_hash
from app.config import get_settings
from app.content import media
from app.content import service as content
from app.content.schemas import PostCreate
from app.db import utcnow
from app.deliverables import service as deliverables
from app.deliverables.schemas import DeliverIn
from app.engagements import service as engagements
from app.engagements.models import RouteKind
from app.engagements.schemas import (
    AttestationIn,
    CampaignIn,
    EngagementCreate,
    FeeIn,
    KpiIn,
    ObjectiveIn,
    RouteIn,
    ScopeLineIn,
)
from app.escalations import service as escalations
from app.escalations.models import EscalationKind
from app.escalations.schemas import EscalationCreate
from app.invitations import service as invitations
from app.main import API_PREFIX
from app.results import service as results
from app.results.models import ImportState, ResultImport, ResultRow
from app.storage import store_for
from app.tenancy import service as tenancy
from app.tenancy.models import Organization, OrgKind, Role
from app.tenancy.service import actor_for
from tests.conftest import csrf_of
from tests.factories import PASSWORD, add_member, bearer, create_org, create_token, sign_in

# Routes anyone may call without signing in (all their methods).
PUBLIC_ROUTES = frozenset(
    {"/", "/sign-in", "/sign-up", "/sign-out", "/language", "/healthz", "/readyz", "/docs"}
    # Single sign-on: the way in, before anyone is signed in.
    | {"/sso/start", "/sso/find", "/sso/callback/{provider}"}
    # Links from e-mails (the token is the credential) and the development outbox.
    | {"/invitations/{token}", "/password-reset", "/password-reset/{token}", "/dev/outbox"}
    # A guest review link (tests/test_guest_review.py): the token is the credential.
    | {"/guest-review/{token}", "/guest-review/{token}/media/{sha256}"}
)
# Development tools that show every tenant's data by design, and answer 404 outside
# development (tests/test_mail_and_jobs.py shows it): not checked for leaks.
DEVELOPMENT_ONLY = frozenset({"/dev/outbox"})
# Not application routes: the schema and the static files.
NOT_WALKED = frozenset({"/openapi.json", "/static"})

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# --- the two worlds ---------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """One organization and the things in it that routes can name.

    Plain values only, so the walk never reloads a row that a bad route deleted.
    When a route names a new kind of object, create one here (for both parties)
    and add its parameter to ``PARAMETERS``.
    """

    org_slug: str
    org_name: str
    owner_email: str
    owner_name: str
    member_email: str
    member_name: str
    owner_membership_id: uuid.UUID
    member_membership_id: uuid.UUID
    token_id: uuid.UUID  # the owner's API token
    raw_token: str
    # An engagement with a partner organization (an agency for a brand, a brand for an
    # agency), accepted, with one of each thing in it that routes name.
    engagement_id: uuid.UUID
    engagement_name: str
    objective_id: uuid.UUID
    kpi_id: uuid.UUID
    campaign_id: uuid.UUID
    fee_id: uuid.UUID
    line_id: uuid.UUID
    attestation_id: uuid.UUID
    post_id: uuid.UUID  # drafted by the agency's side
    deliverable_id: uuid.UUID  # planned from the scope line
    file_id: uuid.UUID  # an evidence file the agency delivered the deliverable with
    escalation_id: uuid.UUID  # opened by the agency's side
    result_id: uuid.UUID  # a result row reported by the agency's side
    import_id: uuid.UUID  # a results import of the engagement
    # A pending invitation sent by the owner, to an address nobody else may see.
    invitation_id: uuid.UUID
    invitee_email: str

    @property
    def shown_to_nobody_else(self) -> tuple[str, ...]:
        """Text that must never appear in an answer to someone outside the organization."""
        return (
            self.org_name,
            self.owner_email,
            self.owner_name,
            self.member_email,
            self.member_name,
            self.engagement_name,
            self.invitee_email,
        )


def make_party(db: Session, *, label: str, kind: OrgKind, can_sign_in: bool = True) -> Party:
    """An organization with an owner (who has a write token), one other member, and an
    engagement with a partner organization made for it."""
    tag = secrets.token_hex(4)
    org = create_org(db, kind=kind, name=f"{label} Org {tag}")
    owner = _person(db, label, "owner", tag, can_sign_in=can_sign_in)
    member = _person(db, label, "member", tag, can_sign_in=False)
    owner_membership = add_member(db, org, owner, Role.owner)
    member_role = Role.reviewer if kind == OrgKind.brand else Role.creator
    member_membership = add_member(db, org, member, member_role)
    raw_token = create_token(db, owner, org, scope="write")
    token = db.exec(select(ApiToken).where(ApiToken.token_hash == secret_hash(raw_token))).one()

    partner_kind = OrgKind.agency if kind == OrgKind.brand else OrgKind.brand
    partner = create_org(db, kind=partner_kind, name=f"{label} Partner {tag}")
    partner_owner = _person(db, label, "partner", tag, can_sign_in=False)
    add_member(db, partner, partner_owner, Role.owner)
    brand, brand_owner, agency, agency_owner = (
        (org, owner, partner, partner_owner)
        if kind == OrgKind.brand
        else (partner, partner_owner, org, owner)
    )
    engagement = _engagement(
        db, f"{label} Engagement {tag}", brand, brand_owner, agency.slug, agency_owner
    )
    return Party(
        org_slug=org.slug,
        org_name=org.name,
        owner_email=owner.email,
        owner_name=owner.name,
        member_email=member.email,
        member_name=member.name,
        owner_membership_id=owner_membership.id,
        member_membership_id=member_membership.id,
        token_id=token.id,
        raw_token=raw_token,
        **engagement,
        **_invitation(db, org, owner, f"{label.lower()}-invitee-{tag}@example.com"),
    )


def _invitation(db: Session, org: Organization, owner: User, email: str) -> dict[str, Any]:
    access = tenancy.org_access(db, actor_for(db, owner), org.slug)
    role = Role.viewer if org.kind == OrgKind.brand else Role.creator
    invitation = invitations.invite_member(
        db, get_settings(), access, owner, email=email, role=role
    )
    db.commit()
    return {"invitation_id": invitation.id, "invitee_email": invitation.email}


def _person(db: Session, label: str, who: str, tag: str, *, can_sign_in: bool) -> User:
    user = accounts.create_user(
        db,
        email=f"{label.lower()}-{who}-{tag}@example.com",
        name=f"{label} {who.title()} {tag}",
        password=PASSWORD if can_sign_in else None,  # hashing is slow: only when needed
    )
    db.commit()
    return user


def _engagement(
    db: Session,
    name: str,
    brand: Organization,
    brand_owner: User,
    agency_slug: str,
    agency_owner: User,
) -> dict[str, Any]:
    today = utcnow().date()
    engagement = engagements.open_engagement(
        db,
        actor_for(db, brand_owner),
        brand_slug=brand.slug,
        data=EngagementCreate(
            name=name,
            agency=agency_slug,
            start_date=today - timedelta(days=10),
            end_date=today + timedelta(days=355),
            budget_minor=100_000,
            currency="EUR",
        ),
    )
    db.commit()
    engagements.respond(
        db, engagements.access(db, actor_for(db, agency_owner), engagement.id), accept=True
    )
    db.commit()
    granted = engagements.access(db, actor_for(db, brand_owner), engagement.id)
    objective = engagements.add_objective(db, granted, ObjectiveIn(text="Sell more online"))
    kpi = engagements.add_kpi(
        db, granted, KpiIn(metric="revenue", target=Decimal(2000), objective_id=objective.id)
    )
    campaign = engagements.add_campaign(db, granted, CampaignIn(name="Spring", kpi_id=kpi.id))
    fee = engagements.add_fee(db, granted, FeeIn(kind="monthly", amount_minor=100_000))
    line = engagements.add_scope_line(db, granted, ScopeLineIn(kind="posts", quantity=12))
    attestation = engagements.attest(db, granted, AttestationIn(item="usage_policy", note="v1"))
    db.commit()
    post = content.create_post(
        db,
        engagements.access(db, actor_for(db, agency_owner), engagement.id),
        PostCreate(title="Launch teaser", body="Coming soon."),
    )
    db.commit()
    with WALKER_IMAGE.open("rb") as image:  # every party's post carries the same file
        media.attach(
            db,
            content.access(db, actor_for(db, agency_owner), post.id),
            expected_version=post.version,
            upload=UploadFile(image, filename="walker.png"),
            store=store_for(get_settings()),
            settings=get_settings(),
        )
    db.commit()
    engagements.set_route(
        db,
        engagements.access(db, actor_for(db, brand_owner), engagement.id),
        RouteKind.escalation,
        RouteIn(
            team="Care", sla_hours=4, contact_name="Care desk", contact_email="care@example.com"
        ),
    )
    deliverable = deliverables.list_deliverables(db, granted)[0]
    with WALKER_IMAGE.open("rb") as image:  # delivered with a file: the evidence routes
        deliverables.deliver(
            db,
            deliverables.access(db, actor_for(db, agency_owner), deliverable.id),
            DeliverIn(),
            files=[UploadFile(image, filename="walker.png")],
            store=store_for(get_settings()),
            settings=get_settings(),
        )
    db.commit()
    [evidence_file] = deliverables.evidence_files_of(
        db, deliverables.access(db, actor_for(db, agency_owner), deliverable.id)
    )
    escalation = escalations.open_escalation(
        db,
        get_settings(),
        engagements.access(db, actor_for(db, agency_owner), engagement.id),
        EscalationCreate(
            kind=EscalationKind.complaint,
            conversation_url="https://social.example/thread/1",
            summary="Parcel arrived damaged.",
        ),
    )
    db.commit()
    result_id, import_id = _results(db, engagement.id, agency_owner)
    return {
        "result_id": result_id,
        "import_id": import_id,
        "engagement_id": engagement.id,
        "engagement_name": name,
        "objective_id": objective.id,
        "kpi_id": kpi.id,
        "campaign_id": campaign.id,
        "fee_id": fee.id,
        "line_id": line.id,
        "attestation_id": attestation.id,
        "post_id": post.id,
        "deliverable_id": deliverable.id,
        "file_id": evidence_file.id,
        "escalation_id": escalation.id,
    }


WALKER_IMAGE = Path(__file__).parent / "fixtures" / "media" / "square.png"


def _results(
    db: Session, engagement_id: uuid.UUID, agency_owner: User
) -> tuple[uuid.UUID, uuid.UUID]:
    """One result row (through the API's service) and one finished import record."""
    month = utcnow().date().replace(day=1)
    # In a transaction, as the app writes: the observer session autocommits, and the bulk
    # path's staging table lives only as long as its transaction (ON COMMIT DROP).
    engine = db.get_bind().engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="READ COMMITTED")
    with Session(engine) as tx:
        results.report(
            tx,
            engagements.access(tx, actor_for(tx, agency_owner), engagement_id),
            [results.ApiRow(channel="", metric="impressions", period_start=month,
                            period_end=month, value=Decimal(1000))],
            source="api",
        )  # fmt: skip
        tx.commit()
    granted = engagements.access(db, actor_for(db, agency_owner), engagement_id)
    record = ResultImport(
        brand_id=granted.engagement.brand_id,
        engagement_id=engagement_id,
        file_name="walker.csv",
        sha256=hashlib.sha256(str(engagement_id).encode()).hexdigest(),
        state=ImportState.done,
    )
    db.add(record)
    db.commit()
    row = db.exec(select(ResultRow).where(ResultRow.engagement_id == engagement_id)).one()
    return row.id, record.id


# --- THE REGISTRY: one entry per parameter name -----------------------------

PARAMETERS: dict[str, Callable[[Party], object]] = {
    "org_slug": lambda party: party.org_slug,
    "membership_id": lambda party: party.member_membership_id,
    "token_id": lambda party: party.token_id,
    "engagement_id": lambda party: party.engagement_id,
    "objective_id": lambda party: party.objective_id,
    "kpi_id": lambda party: party.kpi_id,
    "campaign_id": lambda party: party.campaign_id,
    "fee_id": lambda party: party.fee_id,
    "line_id": lambda party: party.line_id,
    "attestation_id": lambda party: party.attestation_id,
    "post_id": lambda party: party.post_id,
    "deliverable_id": lambda party: party.deliverable_id,
    "file_id": lambda party: party.file_id,
    "escalation_id": lambda party: party.escalation_id,
    "result_id": lambda party: party.result_id,
    "import_id": lambda party: party.import_id,
    "invitation_id": lambda party: party.invitation_id,
}
"""How to name a party's object, by route parameter name.

Every path parameter of every route must be here (or in ``UNSCOPED_PARAMETERS``),
or the walk fails. Query and form fields whose names are here are filled too.
Each entry takes a ``Party`` (the victim's or the attacker's) and returns the value
that names that party's object, e.g. ``"engagement_id": lambda p: p.engagement_id``
after adding ``engagement_id`` to ``Party`` and creating the engagement in
``make_party``.
"""

UNSCOPED_PARAMETERS: dict[str, str] = {
    "route_kind": "escalation",  # a fixed list of kinds (RouteKind), not data
    "provider": "global",  # an identity provider's callback; shows nobody's data
    # A secret from an e-mail (invitation, password reset): a wrong one names nothing;
    # bad tokens have their own tests (tests/test_invitations.py, test_password_reset.py).
    "token": "no-such-token",
    # A version's number within a post: the post_id beside it is what is scoped.
    "number": "1",
    # A file of a post, named by its SHA-256: the post_id beside it is what is scoped
    # (every party's post carries this same file, see make_party).
    "sha256": hashlib.sha256(WALKER_IMAGE.read_bytes()).hexdigest(),
    # A guest link's id within a post: the post_id beside it is what is scoped.
    "link_id": "00000000-0000-4000-8000-000000000000",
}
"""Path parameters that name nothing belonging to a tenant (a language code, a help
topic), with one value that works. Only add one after checking that the route shows
nobody's data; a route whose parameters are all here is not checked for 404."""


# --- the walk ---------------------------------------------------------------


@dataclass
class WalkReport:
    problems: list[str] = field(default_factory=list)
    anonymous: set[tuple[str, str]] = field(default_factory=set)  # (method, path) checked
    foreign: set[tuple[str, str]] = field(default_factory=set)  # checked with victim values


@dataclass
class Caller:
    client: TestClient
    csrf: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    route: APIRoute

    @property
    def is_api(self) -> bool:
        return self.path == API_PREFIX or self.path.startswith(API_PREFIX + "/")

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


_PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


def walk(app: FastAPI, db: Session) -> WalkReport:
    """Check every route of ``app``; ``db`` arranges the two worlds (and must commit).

    Safe methods are walked first, against one victim. Each unsafe route then gets a
    fresh victim of its own, so that a route that wrongly deletes the victim's data
    cannot hide what the routes after it do.
    """
    report = WalkReport()
    victim = make_party(db, label="Victim", kind=OrgKind.brand)
    attacker = make_party(db, label="Attacker", kind=OrgKind.agency)
    with ExitStack() as stack:

        def new_client() -> TestClient:
            # A crash is reported as the 500 it answers, and the walk goes on.
            client = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
            return stack.enter_context(client)

        walker = _Walker(
            db=db,
            report=report,
            anonymous=Caller(new_client()),
            victim=Caller(new_client(), token=victim.raw_token),
            attacker=Caller(new_client(), token=attacker.raw_token),
            victim_party=victim,
            attacker_party=attacker,
            victims=[victim],
        )
        walker.victim.csrf = sign_in(walker.victim.client, victim.owner_email)
        walker.attacker.csrf = sign_in(walker.attacker.client, attacker.owner_email)
        for case in _route_cases(app, report):
            walker.walk_route(case)
    return report


def _route_cases(app: FastAPI, report: WalkReport) -> list[RouteCase]:
    cases = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or ""
        if path in NOT_WALKED:
            continue
        if not isinstance(route, APIRoute):
            report.problems.append(
                f"{type(route).__name__} {path or route!r}: the route walker only knows FastAPI "
                "routes (APIRoute); register it on an APIRouter, or teach tests/route_walker.py "
                "how to check it"
            )
            continue
        for method in sorted(context.methods or ()):
            cases.append(RouteCase(method=method, path=path, route=route))
    return sorted(cases, key=lambda case: (case.method not in SAFE_METHODS, case.path, case.method))


def _field_names(dependant: Dependant) -> tuple[set[str], set[str]]:
    """The query and form field names of a route, through all its dependencies."""
    query: set[str] = set()
    form: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        query.update(param.alias for param in current.query_params)
        form.update(
            param.alias
            for param in current.body_params
            if isinstance(param.field_info, params.Form)
        )
        stack.extend(current.dependencies)
    return query, form


@dataclass
class _Walker:
    db: Session
    report: WalkReport
    anonymous: Caller
    victim: Caller
    attacker: Caller
    victim_party: Party
    attacker_party: Party
    victims: list[Party] = field(default_factory=list)

    def walk_route(self, case: RouteCase) -> None:
        path_names = _PATH_PARAMETER.findall(case.path)
        missing = [
            name
            for name in path_names
            if name not in PARAMETERS and name not in UNSCOPED_PARAMETERS
        ]
        if missing:
            names = " and ".join(repr(name) for name in missing)
            self.report.problems.append(
                f"{case.label}: the route walker does not know the path parameter {names}. "
                f"Add an entry for {names} to PARAMETERS in tests/route_walker.py (and create "
                "that object for both parties in make_party), so that this route is checked "
                "for leaks between organizations."
            )
        if missing:
            return
        query_names, form_names = _field_names(case.route.dependant)
        scoped = [name for name in path_names if name in PARAMETERS]
        scoped += sorted(
            name for name in (query_names | form_names) - set(path_names) if name in PARAMETERS
        )
        safe = case.method in SAFE_METHODS
        victim = self.victim_party
        if scoped and not safe:
            victim = make_party(self.db, label="Victim", kind=OrgKind.brand, can_sign_in=False)
            self.victims.append(victim)

        def values_for(sides: tuple[str, ...]) -> dict[str, str]:
            chosen = {
                name: UNSCOPED_PARAMETERS[name] for name in path_names if name not in PARAMETERS
            }
            for name, side in zip(scoped, sides, strict=True):
                party = victim if side == "victim" else self.attacker_party
                chosen[name] = str(PARAMETERS[name](party))
            return chosen

        crashed: list[Response] = []

        def call(caller: Caller | None, values: dict[str, str]) -> Response:
            response = _send(
                case,
                caller or self.anonymous,
                values,
                query_names,
                form_names,
                signed_in=caller is not None,
            )
            if response.status_code >= 500 and not crashed:
                crashed.append(response)
                self.problem(case, "", "the app crashed (see the log)", response)
            return response

        # 1. Anonymous callers are turned away.
        if case.path not in PUBLIC_ROUTES:
            self.report.anonymous.add((case.method, case.path))
            response = call(None, values_for(("victim",) * len(scoped)))
            if case.is_api:
                if (
                    response.status_code != 401
                    or not _is_problem(response)
                    or not response.headers.get("www-authenticate", "").startswith("Bearer")
                ):
                    self.problem(
                        case,
                        "anonymous",
                        "expected 401 problem details with WWW-Authenticate: Bearer",
                        response,
                    )
            elif response.status_code != 303 or not response.headers.get("location", "").startswith(
                "/sign-in"
            ):
                self.problem(case, "anonymous", "expected a 303 redirect to /sign-in", response)

        # 3. Controls: each side's own values lead to something (safe methods only: no writes).
        if safe and scoped:
            for who, caller, side in (
                ("the victim", self.victim, "victim"),
                ("the attacker", self.attacker, "attacker"),
            ):
                values = values_for((side,) * len(scoped))
                response = call(caller, values)
                if response.status_code == 404:
                    shown = ", ".join(f"{name}={value}" for name, value in values.items())
                    self.report.problems.append(
                        f"{case.label} as {who} with their own {shown}: got 404, so the "
                        "attacker's 404 would prove nothing. Make PARAMETERS/make_party in "
                        "tests/route_walker.py name an object that exists."
                    )

        # 4. What the attacker sees of their own shows nothing of the victim.
        if safe and not scoped and case.path not in DEVELOPMENT_ONLY:
            self.check_no_leak(case, call(self.attacker, values_for(())), "as the attacker")

        # 2. The victim's values, alone or mixed with the attacker's own, give nothing away.
        if not scoped:
            return
        self.report.foreign.add((case.method, case.path))
        for sides in itertools.product(("victim", "attacker"), repeat=len(scoped)):
            if "victim" not in sides:
                continue
            values = values_for(sides)
            response = call(self.attacker, values)
            where = "as the attacker with " + ", ".join(
                f"{name}=<{side}'s>" for name, side in zip(scoped, sides, strict=True)
            )
            if "attacker" not in sides:
                # Nothing in the request is theirs: 404, never 403 (no existence leaks).
                refused = response.status_code == 404
                if not refused:
                    self.problem(case, where, "expected 404", response)
            else:
                # Their own object with the victim's inside it (their organization, the
                # victim's member): must answer exactly as for an id that does not exist.
                # (It may be a 403 if they may not do this even to their own.)
                unknown = {
                    name: _nonexistent(value) if side == "victim" else value
                    for (name, value), side in zip(
                        ((name, values[name]) for name in scoped), sides, strict=True
                    )
                }
                baseline = call(self.attacker, {**values, **unknown})
                refused = 400 <= response.status_code == baseline.status_code
                if not refused:
                    self.problem(
                        case,
                        where,
                        f"expected the answer for an id that does not exist "
                        f"({baseline.status_code})",
                        response,
                    )
            if refused and case.is_api and not _is_problem(response):
                self.report.problems.append(
                    f"{case.label} {where}: the {response.status_code} is not problem details"
                )
            self.check_no_leak(case, response, where)

    def problem(self, case: RouteCase, where: str, expected: str, response: Response) -> None:
        where = f" {where}" if where else ""
        self.report.problems.append(f"{case.label}{where}: {expected}, got {_describe(response)}")

    def check_no_leak(self, case: RouteCase, response: Response, where: str) -> None:
        body = response.text
        leaked = sorted(
            {text for party in self.victims for text in party.shown_to_nobody_else if text in body}
        )
        if leaked:
            self.report.problems.append(
                f"{case.label} {where}: the answer ({response.status_code}) shows the victim's "
                f"{', '.join(repr(text) for text in leaked)}"
            )


def _send(
    case: RouteCase,
    caller: Caller,
    values: dict[str, str],
    query_names: set[str],
    form_names: set[str],
    *,
    signed_in: bool,
) -> Response:
    url = _PATH_PARAMETER.sub(lambda match: quote(values[match.group(1)], safe=""), case.path)
    query = {name: values[name] for name in query_names if name in values}
    form = {name: values[name] for name in form_names if name in values}
    headers: dict[str, str] = {}
    kwargs: dict[str, Any] = {}
    unsafe = case.method not in SAFE_METHODS
    if case.is_api:
        if signed_in and caller.token:
            headers.update(bearer(caller.token))
        if signed_in:
            headers["If-Match"] = '"1"'
        if case.route.body_field is not None:
            kwargs["json"] = {}
    else:
        csrf = caller.csrf
        if not signed_in and unsafe:
            # A valid anonymous session and its token: what is tested is sign-in, not CSRF.
            csrf = csrf_of(caller.client.get("/sign-in").text)
        if csrf:
            headers["X-CSRF-Token"] = csrf
        if signed_in:
            headers["If-Match"] = '"1"'
        if unsafe:
            kwargs["data"] = {**form, "csrf_token": csrf or ""}
    return caller.client.request(case.method, url, params=query, headers=headers, **kwargs)


def _nonexistent(value: str) -> str:
    """A value of the same shape that names nothing."""
    try:
        uuid.UUID(value)
    except ValueError:
        return f"no-such-{secrets.token_hex(4)}"
    return str(uuid.uuid4())


def _is_problem(response: Response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    body = response.json()
    return isinstance(body, dict) and body.get("status") == response.status_code and "title" in body


def _describe(response: Response) -> str:
    where = response.headers.get("location")
    text = response.text[:200].replace("\n", " ")
    return (
        f"{response.status_code}"
        + (f" to {where}" if where else "")
        + (f": {text}" if text else "")
    )
