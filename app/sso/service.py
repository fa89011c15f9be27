"""Rules of single sign-on: which provider, whom a verified identity signs in, who must use it.

Whom a provider may sign in (``sign_in``), in order:

1. An identity already linked, keyed on (issuer, subject): its account, whatever
   e-mail the provider now sends. An organization's provider signs in only that
   organization's members.
2. Otherwise an account with the provider's **verified** e-mail, to which the
   identity is then linked. An organization's own provider is run by that
   organization's owner, so it may vouch only for accounts that belong to that
   organization alone: otherwise the owner of any organization could set up a
   provider that asserts someone else's address and take over their account.
   A person who also belongs elsewhere links their identity while signed in.
3. Otherwise, for an organization's provider, a pending invitation of that
   organization for the address: accepted, which creates the account.
4. Otherwise nobody: the person must be invited first.

An unverified e-mail never signs anyone in.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.accounts import security_events
from app.accounts import service as accounts
from app.accounts.models import User, UserIdentity
from app.accounts.security_events import SecurityEventKind
from app.config import Settings
from app.db import set_tenant_context, utcnow
from app.errors import (
    N_,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
)
from app.sso import repository
from app.sso.oidc import Provider, SignInFailed
from app.tenancy import service as tenancy
from app.tenancy.models import Role, SsoSettings
from app.tenancy.service import OrgAccess

GLOBAL_PROVIDER_ID = "global"
ORG_PROVIDER_PREFIX = "org."  # slugs have no dots, so "global" can never be an organization's

NO_PROVIDER = N_("No single sign-on is set up here.")


class SsoRequired(Unauthenticated):
    """Password sign-in refused: the person's organization signs its members in through SSO."""

    title = N_(
        "Your organization requires single sign-on. Use “Sign in with your organization's "
        "SSO” below, with your organization's short name."
    )


# --- providers ------------------------------------------------------------------


def global_provider(settings: Settings) -> Provider | None:
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    return Provider(
        id=GLOBAL_PROVIDER_ID,
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
    )


def org_provider_id(org_slug: str) -> str:
    return ORG_PROVIDER_PREFIX + org_slug


def provider_for_org(session: Session, org_slug: str) -> Provider:
    """For the public sign-in: an organization's provider, looked up by its short name.

    Row-level security lets this anonymous request read that one organization's
    SSO row, for that one query only.
    """
    org = repository.get_organization_by_slug_unscoped(session, org_slug.strip().lower())
    if org is None:
        raise NotFound(NO_PROVIDER)
    set_tenant_context(session, org_ids=[org.id])
    try:
        sso = repository.get_settings_unscoped(session, org.id)
    finally:
        set_tenant_context(session, org_ids=[])
    if sso is None:
        raise NotFound(NO_PROVIDER)
    return Provider(
        id=org_provider_id(org.slug),
        issuer=sso.issuer,
        client_id=sso.client_id,
        client_secret=sso.client_secret,
        organization_id=org.id,
        organization_name=org.name,
    )


def provider_by_id(session: Session, settings: Settings, provider_id: str) -> Provider:
    """The provider a callback URL names: 404 for one that is not (or no longer) set up."""
    if provider_id == GLOBAL_PROVIDER_ID:
        provider = global_provider(settings)
        if provider is None:
            raise NotFound(NO_PROVIDER)
        return provider
    if provider_id.startswith(ORG_PROVIDER_PREFIX):
        return provider_for_org(session, provider_id.removeprefix(ORG_PROVIDER_PREFIX))
    raise NotFound(NO_PROVIDER)


def callback_url(settings: Settings, provider_id: str) -> str:
    # From the configured base URL, never from the request's Host header.
    return f"{settings.base_url.rstrip('/')}/sso/callback/{provider_id}"


# --- signing in -------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    user: User
    linked: bool  # the identity was linked to the account just now
    invitation_id: uuid.UUID | None = None


def _is_true(value: object) -> bool:
    # Some providers send the JSON string "true" rather than the boolean.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _refuse(reason: str, message: str, *, email: str | None = None, **params: Any) -> SignInFailed:
    """A refusal; ``email`` is whom the provider named, for the security log."""
    if email is not None:
        params["email"] = email
    return SignInFailed(reason, message, status_code=403, params=params or None, email=email)


def sign_in(
    session: Session,
    provider: Provider,
    claims: Mapping[str, Any],
    *,
    signed_in: User | None,
) -> SignedIn:
    """Whom these verified ID-token claims sign in (see the module docstring), and log it."""
    subject = str(claims["sub"])
    raw_email = claims.get("email")
    email_claim = raw_email.strip().lower() if isinstance(raw_email, str) else None
    verified = _is_true(claims.get("email_verified")) and bool(email_claim)
    now = utcnow()
    identity = repository.get_identity(session, provider.issuer, subject)
    if identity is not None:
        result = _sign_in_linked(session, provider, identity, signed_in)
        identity.last_used_at = now
        if verified and email_claim and identity.email != email_claim:
            identity.email = email_claim[:254]
        session.add(identity)
    else:
        if not verified or email_claim is None:
            raise _refuse(
                "email_unverified",
                N_(
                    "Your identity provider has not verified your e-mail address, so we cannot "
                    "tell which Brandkeep account is yours. Nobody was signed in."
                ),
                email=email_claim,
            )
        try:
            email = accounts.normalize_email(email_claim)
        except InvalidInput:
            raise _refuse(
                "email_invalid",
                N_("Your identity provider sent an e-mail address we cannot use."),
                email=email_claim,
            ) from None
        result = _link_or_accept(session, provider, subject, email, claims, signed_in, now)
    security_events.record(
        session,
        SecurityEventKind.sign_in,
        user=result.user,
        detail={
            "method": "sso",
            "provider": provider.id,
            "issuer": provider.issuer,
            "linked": result.linked,
            **({"invitation": str(result.invitation_id)} if result.invitation_id else {}),
        },
    )
    return result


def _sign_in_linked(
    session: Session, provider: Provider, identity: UserIdentity, signed_in: User | None
) -> SignedIn:
    user = repository.get_user(session, identity.user_id)
    if user is None or not user.is_active:
        raise _refuse(
            "account_closed", N_("This Brandkeep account is closed."), email=identity.email
        )
    if signed_in is not None and signed_in.id != user.id:
        raise _refuse(
            "identity_taken",
            N_(
                "This identity already signs in another Brandkeep account. Sign out, then "
                "sign in again."
            ),
        )
    _require_member(session, provider, user)
    return SignedIn(user=user, linked=False)


def _organizations_of(session: Session, user: User) -> frozenset[uuid.UUID]:
    # Row-level security: the person the provider vouched for may read their own memberships.
    set_tenant_context(session, user_id=user.id)
    return repository.organization_ids_of(session, user.id)


def _require_member(session: Session, provider: Provider, user: User) -> None:
    if provider.organization_id is None:
        return
    if provider.organization_id not in _organizations_of(session, user):
        raise _refuse(
            "not_a_member",
            N_(
                "Your organization's sign-in only lets its members in, and this account is "
                "not one of them. Ask an owner of the organization."
            ),
            email=user.email,
        )


def _link_or_accept(
    session: Session,
    provider: Provider,
    subject: str,
    email: str,
    claims: Mapping[str, Any],
    signed_in: User | None,
    now: datetime,
) -> SignedIn:
    user = repository.get_user_by_email(session, email)
    if signed_in is not None and (user is None or user.id != signed_in.id):
        raise _refuse(
            "email_mismatch",
            N_(
                "Your identity provider signed you in as %(email)s, which is not the e-mail of "
                "the account you are signed in to. Nothing was linked."
            ),
            email=email,
        )
    if user is not None:
        if not user.is_active:
            raise _refuse("account_closed", N_("This Brandkeep account is closed."))
        if provider.organization_id is not None:
            _require_member(session, provider, user)
            elsewhere = _organizations_of(session, user) - {provider.organization_id}
            if elsewhere and signed_in is None:
                raise _refuse(
                    "member_elsewhere",
                    N_(
                        "This account also belongs to other organizations, so your "
                        "organization's sign-in cannot take it over on its own. Sign in with "
                        "your password, then use your organization's single sign-on once to "
                        "link the two."
                    ),
                    email=user.email,
                )
        _link(session, provider, user, subject, email)
        return SignedIn(user=user, linked=True)
    if provider.organization_id is not None:
        return _accept_invitation(session, provider, subject, email, claims, now)
    raise _refuse(
        "not_invited",
        N_(
            "No Brandkeep account uses %(email)s. The account must be invited first: ask your "
            "organization for an invitation."
        ),
        email=email,
    )


def _accept_invitation(
    session: Session,
    provider: Provider,
    subject: str,
    email: str,
    claims: Mapping[str, Any],
    now: datetime,
) -> SignedIn:
    assert provider.organization_id is not None
    # Row-level security: the organization's provider vouched for an address it invited.
    set_tenant_context(session, org_ids=[provider.organization_id])
    domain = email.rpartition("@")[2]
    invitations = repository.pending_member_invitations(
        session, provider.organization_id, email, domain, now
    )
    organization = repository.get_organization_unscoped(session, provider.organization_id)
    if not invitations or organization is None:
        raise _refuse(
            "not_invited",
            N_(
                "No Brandkeep account uses %(email)s. The account must be invited first: ask "
                "your organization for an invitation."
            ),
            email=email,
        )
    # An invitation for exactly this address wins over one for the whole domain.
    invitation = next((i for i in invitations if i.email.lower() == email), invitations[0])
    user = accounts.create_user(session, email=email, name=_name_from(claims, email), password=None)
    if not repository.mark_invitation_accepted(session, invitation, user_id=user.id, now=now):
        raise SignInFailed(
            "invitation_race",
            N_("This invitation was used or withdrawn a moment ago. Start again."),
            status_code=409,
        )
    tenancy.add_membership(
        session, organization=organization, user=user, role=Role(invitation.role)
    )
    _link(session, provider, user, subject, email)
    return SignedIn(user=user, linked=True, invitation_id=invitation.id)


def _name_from(claims: Mapping[str, Any], email: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(part for part in parts if isinstance(part, str) and part.strip())
    return (name or email.partition("@")[0]).strip()[:120]


def _link(session: Session, provider: Provider, user: User, subject: str, email: str) -> None:
    identity = UserIdentity(
        user_id=user.id, issuer=provider.issuer, subject=subject[:255], email=email[:254]
    )
    identity.last_used_at = utcnow()
    try:
        # The same identity linked twice at once: the unique key refuses the second.
        with session.begin_nested():
            session.add(identity)
            session.flush()
    except IntegrityError:
        raise SignInFailed(
            "identity_race",
            N_("This sign-in was being linked at the same moment elsewhere. Start again."),
            status_code=409,
        ) from None


def record_failure(
    session: Session, provider: Provider, failure: SignInFailed, *, user: User | None
) -> None:
    """A refused sign-in, for the security log (and the organization's owners, for its IdP)."""
    security_events.record(
        session,
        SecurityEventKind.sso_sign_in_refused,
        user=user,
        organization_id=provider.organization_id,
        email=failure.email or (failure.params or {}).get("email"),
        detail={"reason": failure.reason, "provider": provider.id, "issuer": provider.issuer},
    )


def refuse_password_if_sso_required(session: Session, user: User) -> None:
    """Called only after the password verified, so the refusal tells nothing to a guesser."""
    actor = tenancy.actor_for(session, user)  # the password was right: this is who is asking
    if repository.organizations_requiring_sso(session, actor.org_ids):
        raise SsoRequired()


# --- the owner's settings page ----------------------------------------------------------


def settings_for(session: Session, access: OrgAccess) -> SsoSettings | None:
    access.require("org.settings")
    return repository.get_settings(session, access.org_id)


def _check_issuer(issuer: str, *, allow_http: bool) -> str:
    issuer = issuer.strip()
    message = N_(
        "Enter the issuer URL of your identity provider, e.g. https://login.example.com "
        "(https, without ?query or #fragment)."
    )
    try:
        parts = urlsplit(issuer)
        host = parts.hostname or ""
    except ValueError:
        raise InvalidInput(field_errors=[FieldError("issuer", message)]) from None
    scheme_ok = parts.scheme == "https" or (allow_http and parts.scheme == "http")
    if not scheme_ok or not host or parts.query or parts.fragment or len(issuer) > 500:
        raise InvalidInput(field_errors=[FieldError("issuer", message)])
    if not allow_http and _is_internal_host(host):
        # The server fetches the provider's documents: no pointing it at its own network.
        raise InvalidInput(
            field_errors=[FieldError("issuer", N_("The issuer must be a public address."))]
        )
    return issuer


def _is_internal_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def save_settings(
    session: Session,
    access: OrgAccess,
    *,
    actor: User,
    issuer: str,
    client_id: str,
    client_secret: str,
    require_sso: bool,
    expected_version: int,
    allow_http: bool,
) -> SsoSettings:
    """Create or change the organization's provider. The secret is kept when left blank."""
    access.require("org.settings")
    current = repository.get_settings(session, access.org_id)
    errors: list[FieldError] = []
    try:
        issuer = _check_issuer(issuer, allow_http=allow_http)
    except InvalidInput as exc:
        errors += exc.field_errors
    client_id = client_id.strip()
    if not client_id or len(client_id) > 255:
        errors.append(FieldError("client_id", N_("Enter the client ID your provider gave you.")))
    client_secret = client_secret.strip()
    if len(client_secret) > 500:
        errors.append(FieldError("client_secret", N_("This secret is too long.")))
    elif not client_secret and current is None:
        errors.append(
            FieldError("client_secret", N_("Enter the client secret your provider gave you."))
        )
    if errors:
        raise InvalidInput(field_errors=errors)
    already_required = current is not None and current.require_sso and current.issuer == issuer
    if (
        require_sso
        and not already_required
        and not repository.has_identity_at(session, actor.id, issuer)
    ):
        raise InvalidInput(
            field_errors=[
                FieldError(
                    "require_sso",
                    N_(
                        "Sign in once with this single sign-on yourself before you require it, "
                        "so that nobody is locked out by a wrong setting."
                    ),
                )
            ]
        )
    values: dict[str, object] = {
        "issuer": issuer,
        "client_id": client_id,
        "require_sso": require_sso,
        "updated_at": utcnow(),
    }
    if client_secret:
        values["client_secret"] = client_secret
    if current is None:
        current = SsoSettings(
            organization_id=access.organization.id,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
            require_sso=require_sso,
        )
        try:
            # Two owners setting it up at once: the unique key refuses the second.
            with session.begin_nested():
                session.add(current)
                session.flush()
        except IntegrityError:
            raise PreconditionFailed() from None
    else:
        if current.version != expected_version or not repository.update_settings_if_version(
            session, current.id, expected_version=expected_version, values=values
        ):
            raise PreconditionFailed()
        session.refresh(current)
    security_events.record(
        session,
        SecurityEventKind.sso_settings_changed,
        actor=actor,
        organization_id=access.organization.id,
        detail={
            "issuer": issuer,
            "client_id": client_id,
            "require_sso": require_sso,
            "secret_changed": bool(client_secret),
        },
    )
    return current
