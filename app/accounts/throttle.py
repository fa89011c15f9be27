"""Throttling of failed sign-ins, and of password-reset and invitation requests.

Counts live in the database (``ThrottleEvent``: a key and a time), so every app
process sees the same ones. A key is an action and a scope — the account (the
normalised e-mail, or whatever the caller names) or the client's IP address —
hashed with the secret key, so the table holds no addresses.

Each key follows a ``Rule``: the first ``free`` attempts in the window pass;
after that each attempt waits 2^(n − free) seconds since the last one (n is the
number of attempts in the window, the wait capped at ``max_delay``); at
``limit`` attempts, nothing passes until the oldest falls out of the window.
Growing delays, never a hard lock-out: an attacker cannot lock a person out for
longer than the window, and a person who mistypes a few times barely notices.

How a route uses it (sign-in does exactly this)::

    keys = throttle.keys_for(request, throttle.SIGN_IN, account=email)
    throttle.check(db, keys)          # raises Throttled (429 + Retry-After) before any work
    ... verify the password ...
    throttle.failed(db, keys)         # on failure: count it
    throttle.succeeded(db, keys)      # on success: forget the account's count (not the IP's)

Requests that always "succeed" from the caller's point of view (a password-reset
request, an invitation) count every request: ``check`` then ``failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from fastapi import Request
from sqlmodel import Session, col, select

from app.accounts.models import ThrottleEvent
from app.db import utcnow
from app.errors import N_, TooManyRequests
from app.web import settings_of

WINDOW = timedelta(minutes=15)

SIGN_IN = "sign_in"
PASSWORD_RESET = "password_reset"  # noqa: S105 - an action name
INVITATION = "invitation"


@dataclass(frozen=True)
class Rule:
    free: int  # attempts in the window that pass without waiting
    limit: int  # at most this many attempts in the window
    window: timedelta = WINDOW
    max_delay: timedelta | None = None  # cap on one wait (below the limit)


@dataclass(frozen=True)
class Key:
    value: str  # what is stored: "<action>:<scope>:<hash>"
    rule: Rule
    per_account: bool


# An IP can be a whole office behind one address: more room, shorter waits.
RULES: dict[tuple[str, str], Rule] = {
    (SIGN_IN, "account"): Rule(free=3, limit=10),
    (SIGN_IN, "ip"): Rule(free=30, limit=100, max_delay=timedelta(seconds=30)),
    (PASSWORD_RESET, "account"): Rule(free=2, limit=5),
    (PASSWORD_RESET, "ip"): Rule(free=10, limit=30, max_delay=timedelta(seconds=30)),
    (INVITATION, "account"): Rule(free=10, limit=30, max_delay=timedelta(seconds=30)),
    (INVITATION, "ip"): Rule(free=30, limit=100, max_delay=timedelta(seconds=30)),
}
_LONGEST_WINDOW = max(rule.window for rule in RULES.values())


class Throttled(TooManyRequests):
    """429 with ``Retry-After`` (whole seconds) and a message that says how long."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            N_("Too many attempts. Try again in %(seconds)s s."),
            params={"seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


# --- who is asking ----------------------------------------------------------


def normalize_account(value: str) -> str:
    """An e-mail as the account table stores it; anything else trimmed and lower-cased."""
    value = value.strip()
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return value.lower()


@lru_cache(maxsize=32)
def _networks(
    entries: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[str]
) -> str | None:
    """The client's address: the direct peer, or — only when the peer is a trusted
    proxy — the nearest address in ``X-Forwarded-For`` that is not a trusted proxy.

    ``X-Forwarded-For`` is read from the right (the entries a trusted proxy added);
    anything left of the first untrusted address was written by the client and
    could be forged. A malformed entry stops the walk at the proxy that passed it.
    """
    networks = _networks(tuple(trusted))
    if peer is None or not networks or not forwarded_for:
        return peer

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in networks)

    peer_ip = _parse_ip(peer)
    if peer_ip is None or not is_trusted(peer_ip):
        return peer
    nearest = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _parse_ip(entry)
        if address is None:
            return nearest
        nearest = str(address)
        if not is_trusted(address):
            return nearest
    return nearest


def client_ip(request: Request) -> str | None:
    """The client's IP for throttling, sessions and security events (see ``client_address``)."""
    peer = request.client.host if request.client else None
    return client_address(
        peer, request.headers.get("x-forwarded-for"), settings_of(request).trusted_proxies
    )


def keys_for(request: Request, action: str, *, account: str | None = None) -> list[Key]:
    """The keys one attempt counts against: the account (if named) and the client's IP.

    ``action`` is ``SIGN_IN``, ``PASSWORD_RESET`` or ``INVITATION``. ``account`` is
    the e-mail typed in (normalised here) — for invitations, the invited address.
    """
    secret = settings_of(request).secret_key.encode()

    def key(scope: str, value: str) -> Key:
        digest = hmac.new(secret, f"{action}:{scope}:{value}".encode(), hashlib.sha256)
        return Key(
            value=f"{action}:{scope}:{digest.hexdigest()[:40]}",
            rule=RULES[(action, scope)],
            per_account=scope == "account",
        )

    keys = []
    if account is not None and account.strip():
        keys.append(key("account", normalize_account(account)))
    ip = client_ip(request)
    if ip:
        keys.append(key("ip", ip))
    return keys


# --- counting ---------------------------------------------------------------


def _wait_until(times: Sequence[datetime], rule: Rule, now: datetime) -> datetime:
    """The earliest moment from ``now`` on when one more attempt may pass."""
    moment = now
    while True:
        live = [at for at in times if at > moment - rule.window]
        n = len(live)
        if n < rule.free:
            return moment
        falls_out = live[0] + rule.window  # the count drops by one then
        if n >= rule.limit:
            moment = max(moment, live[n - rule.limit] + rule.window)
            continue
        delay = timedelta(seconds=2 ** (n - rule.free))
        if rule.max_delay is not None:
            delay = min(delay, rule.max_delay)
        ready = live[-1] + delay
        if ready <= moment:
            return moment
        if ready <= falls_out:
            return ready
        moment = falls_out


def retry_after(session: Session, keys: Iterable[Key], *, now: datetime | None = None) -> int:
    """Seconds to wait before the next attempt passes for all ``keys`` (0: it may go now)."""
    keys = list(keys)
    if not keys:
        return 0
    now = now or utcnow()
    oldest = now - max(key.rule.window for key in keys)
    rows = session.exec(
        select(ThrottleEvent.key, ThrottleEvent.at)
        .where(col(ThrottleEvent.key).in_([key.value for key in keys]), ThrottleEvent.at > oldest)
        .order_by(col(ThrottleEvent.at))
    ).all()
    by_key: dict[str, list[datetime]] = {}
    for value, at in rows:
        by_key.setdefault(value, []).append(at)
    wait = max(_wait_until(by_key.get(key.value, []), key.rule, now) for key in keys) - now
    return max(0, math.ceil(wait.total_seconds()))


def check(session: Session, keys: Iterable[Key], *, now: datetime | None = None) -> None:
    """Raise ``Throttled`` (429, ``Retry-After``) if an attempt must wait; call before any work.

    Call it before verifying anything (the password, the e-mail), so that a
    throttled attempt learns nothing. A refused attempt is not counted.
    """
    seconds = retry_after(session, keys, now=now)
    if seconds > 0:
        raise Throttled(seconds)


def failed(session: Session, keys: Iterable[Key], *, now: datetime | None = None) -> None:
    """Count one attempt against each key (a failed sign-in; any reset or invitation request).

    Written in the request's transaction; the caller must let it commit (answer
    the failure with a page or a response, not an exception that rolls back).
    Events older than the longest window are pruned here, everyone's: failures are
    rare next to other writes and the table only ever holds one window's worth, so
    the delete stays small (and a test can rely on it, unlike a random sample).
    """
    keys = list(keys)
    now = now or utcnow()
    for key in keys:
        session.add(ThrottleEvent(key=key.value, at=now))
    prune(session, now=now)
    session.flush()


def succeeded(session: Session, keys: Iterable[Key]) -> None:
    """Forget the account's count after a success; the IP's count stays, so an
    attacker cannot reset it by signing in to an account of their own."""
    values = [key.value for key in keys if key.per_account]
    if values:
        session.execute(
            sa.delete(ThrottleEvent)
            .where(col(ThrottleEvent.key).in_(values))
            .execution_options(synchronize_session=False)
        )


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Delete every event older than the longest window."""
    result = session.execute(
        sa.delete(ThrottleEvent)
        .where(col(ThrottleEvent.at) <= (now or utcnow()) - _LONGEST_WINDOW)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
