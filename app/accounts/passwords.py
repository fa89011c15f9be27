"""Password hashing (argon2id, through argon2-cffi) and password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import N_

# argon2-cffi's defaults are the RFC 9106 low-memory profile, type argon2id.
_hasher = PasswordHasher()

# Verified against when the e-mail is unknown, so the answer takes as long as for
# a real account and timing does not tell accounts apart.
_DUMMY_HASH = _hasher.hash("brandkeep: no such account")

MIN_LENGTH = 12
MAX_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Length over complexity: why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return N_("Use at least 12 characters; a few plain words make a strong password.")
    if len(password) > MAX_LENGTH:
        return N_("Use at most 256 characters.")
    return None
