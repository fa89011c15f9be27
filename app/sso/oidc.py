"""The OpenID Connect relying party: Authlib's Starlette client, one per provider.

What protects a sign-in, and where it is checked:

- **state**: made by Authlib and kept, with the PKCE verifier and the nonce, in
  ``request.session``: a short-lived signed cookie of its own (``bk_oidc``, path
  ``/sso``, HttpOnly, SameSite=Lax, Secure outside development). It binds the
  callback to the browser that started the flow, and Authlib pops it on use, so
  a callback works once. No shared ``cache=`` is given to Authlib: with one, state
  lived outside the browser and any browser could finish another's flow
  (CVE-2026-41425, fixed in Authlib 1.6.11; we require 1.9.0 or newer).
- **PKCE** (S256): the verifier never leaves the state cookie and our token request.
- **nonce** and the **ID token**: ``authorize_access_token`` checks the signature
  (the provider's JWKS), the nonce, ``exp``/``iat``; we pin ``iss`` to the issuer
  the provider was configured with and ``aud`` to our client id (Authlib alone
  would take the issuer from the discovery document and not check ``aud``).
- **discovery**: the document's ``issuer`` must be exactly the configured issuer
  (OpenID Connect Discovery §4.3), at the start and at the callback.

Each provider has its own callback URL (``/sso/callback/<provider id>``) and its
own Authlib client name, under which its state is kept: a response meant for one
provider cannot complete a flow started with another (mix-up).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import FastAPI, Request
from fastapi.responses import Response
from joserfc.errors import JoseError
from starlette.middleware.sessions import SessionMiddleware

from app.config import Settings
from app.errors import N_, BrandkeepError

log = logging.getLogger("brandkeep.sso")

SCOPE = "openid email profile"
# Long enough to sign in at the provider, short enough that a stale flow dies.
STATE_COOKIE_MAX_AGE = 600
# Re-read discovery documents (and signing keys) at least this often.
CLIENT_MAX_AGE_SECONDS = 3600
MAX_CLIENTS = 256
HTTP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Provider:
    """One identity provider as configured: globally (settings) or by an organization."""

    id: str  # "global", or "org.<slug>": the last part of its callback URL
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    organization_id: uuid.UUID | None = None
    organization_name: str | None = None

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def client_name(self) -> str:
        """Authlib's name for this configuration; a changed secret or issuer is a new client."""
        material = "\n".join((self.id, self.issuer, self.client_id, self.client_secret))
        return f"{self.id}#{hashlib.sha256(material.encode()).hexdigest()[:16]}"


class SignInFailed(BrandkeepError):
    """The provider's answer did not sign anyone in; ``reason`` goes to the security log."""

    status_code = 400
    title = N_("Single sign-on did not work")

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status_code: int | None = None,
        params: dict[str, Any] | None = None,
        email: str | None = None,
    ) -> None:
        super().__init__(message, params=params)
        self.reason = reason[:100]
        self.email = email
        if status_code is not None:
            self.status_code = status_code


def unavailable(reason: str) -> SignInFailed:
    return SignInFailed(
        reason,
        N_(
            "Your identity provider could not be reached or answered something we cannot use. "
            "Try again in a moment; if it keeps happening, tell your organization's owner."
        ),
        status_code=502,
    )


# --- the state cookie -------------------------------------------------------


def state_cookie_name(settings: Settings) -> str:
    # __Secure- (not __Host-): the cookie is limited to the /sso path.
    return "bk_oidc" if settings.is_development else "__Secure-bk_oidc"


def install_state_cookie(app: FastAPI, settings: Settings) -> None:
    """Starlette's signed-cookie session, used only for the state of sign-ins in progress.

    Our real sessions are server-side (``app.deps``); this cookie lives ten minutes,
    is sent only to ``/sso`` and holds nothing but Authlib's state, nonce and PKCE
    verifier. Its key is derived from the app's secret key, for this use only.
    """
    key = hashlib.sha256(b"brandkeep oidc state\n" + settings.secret_key.encode()).hexdigest()
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie=state_cookie_name(settings),
        max_age=STATE_COOKIE_MAX_AGE,
        path="/sso",
        same_site="lax",
        https_only=not settings.is_development,
    )


# --- the clients -------------------------------------------------------------


class ProviderClients:
    """Authlib clients, registered lazily, one per provider configuration, per process.

    Nothing here is shared between browsers: a flow's state is in its own cookie, so
    any process can finish a flow another one started.
    """

    def __init__(self) -> None:
        self._clients: dict[str, tuple[Any, float]] = {}

    def client_for(self, provider: Provider) -> Any:
        name = provider.client_name
        now = time.monotonic()
        known = self._clients.get(name)
        if known is not None and now - known[1] < CLIENT_MAX_AGE_SECONDS:
            return known[0]
        if len(self._clients) >= MAX_CLIENTS:
            oldest = min(self._clients, key=lambda key: self._clients[key][1])
            del self._clients[oldest]
        # No cache=: the state stays in the browser's own cookie (see the module docstring).
        client = OAuth().register(
            name=name,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.metadata_url,
            client_kwargs={
                "scope": SCOPE,
                "code_challenge_method": "S256",
                "timeout": HTTP_TIMEOUT_SECONDS,
            },
        )
        self._clients[name] = (client, now)
        return client

    def forget(self, provider: Provider) -> None:
        self._clients.pop(provider.client_name, None)


clients = ProviderClients()


async def _checked_metadata(provider: Provider, client: Any) -> Mapping[str, Any]:
    try:
        metadata: Mapping[str, Any] = await client.load_server_metadata()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("discovery failed for %s: %s", provider.issuer, exc)
        clients.forget(provider)
        raise unavailable("discovery_failed") from None
    if metadata.get("issuer") != provider.issuer:
        log.warning(
            "discovery document of %s names issuer %r", provider.issuer, metadata.get("issuer")
        )
        clients.forget(provider)
        raise SignInFailed(
            "issuer_mismatch",
            N_(
                "Your identity provider says it is a different issuer than the one configured. "
                "Nobody was signed in; tell your organization's owner."
            ),
        )
    return metadata


async def redirect_to_provider(request: Request, provider: Provider, redirect_uri: str) -> Response:
    """The redirect to the provider's sign-in page; the flow's state goes into the cookie."""
    client = clients.client_for(provider)
    await _checked_metadata(provider, client)
    try:
        response: Response = await client.authorize_redirect(request, redirect_uri)
    except (httpx.HTTPError, RuntimeError) as exc:
        log.warning("could not start sign-in at %s: %s", provider.issuer, exc)
        raise unavailable("authorization_url_failed") from None
    return response


def _claims_options(provider: Provider) -> dict[str, Any]:
    return {
        "iss": {"essential": True, "value": provider.issuer},
        "aud": {"essential": True, "value": provider.client_id},
        "sub": {"essential": True},
    }


def forget_flows(request: Request, provider: Provider) -> None:
    """Drop whatever state this browser keeps for the provider (after a failure)."""
    prefix = f"_state_{provider.client_name}_"
    for key in [key for key in request.session if key.startswith(prefix)]:
        request.session.pop(key, None)


async def verified_claims(request: Request, provider: Provider) -> dict[str, Any]:
    """Finish the flow at the callback: the ID token's claims, every check passed.

    Raises ``SignInFailed`` with a reason for the security log and a message for
    the person; never anything that would become a 500.
    """
    client = clients.client_for(provider)
    try:
        token = await client.authorize_access_token(
            request, claims_options=_claims_options(provider)
        )
        # Authlib validates an ID token only when one came: without one, nobody signs in.
        claims = token.get("userinfo")
        if not claims:
            raise SignInFailed(
                "no_id_token",
                N_("Your identity provider did not say who you are. Nobody was signed in."),
            )
        await _checked_metadata(provider, client)
        if "email" not in claims:
            claims = await _with_userinfo(client, token, dict(claims))
    except MismatchingStateError:
        forget_flows(request, provider)
        raise SignInFailed(
            "state_mismatch",
            N_(
                "This sign-in was not started in this browser, was already used, or took too "
                "long. Start again from the sign-in page."
            ),
        ) from None
    except OAuthError as exc:
        forget_flows(request, provider)
        if exc.error == "access_denied":
            raise SignInFailed(
                "access_denied",
                N_(
                    "You did not allow the sign-in at your identity provider. Nobody was signed in."
                ),
                status_code=403,
            ) from None
        raise SignInFailed(
            f"provider_refused:{exc.error}",
            N_(
                "Your identity provider refused this sign-in (the link may have been used "
                "already or revoked). Start again from the sign-in page."
            ),
        ) from None
    except JoseError as exc:
        forget_flows(request, provider)
        log.warning("ID token from %s refused: %s", provider.issuer, exc)
        raise SignInFailed(
            f"id_token_invalid:{exc.error}:{getattr(exc, 'claim', '') or ''}",
            N_(
                "The answer from your identity provider did not pass our checks (issuer, "
                "audience, nonce, signature or expiry). Nobody was signed in; start again."
            ),
        ) from None
    except (httpx.HTTPError, ValueError, RuntimeError) as exc:
        forget_flows(request, provider)
        log.warning("sign-in at %s failed: %s", provider.issuer, exc)
        raise unavailable("provider_unreachable") from None
    return dict(claims)


async def _with_userinfo(client: Any, token: Mapping[str, Any], claims: dict[str, Any]) -> Any:
    """Some providers put the e-mail only in their userinfo answer: add it, same subject only."""
    info = await client.userinfo(token=token)
    if info.get("sub") != claims.get("sub"):
        raise SignInFailed(
            "userinfo_subject_mismatch",
            N_("Your identity provider gave two different answers about who you are."),
        )
    for name in ("email", "email_verified", "name"):
        if name in info and name not in claims:
            claims[name] = info[name]
    return claims
