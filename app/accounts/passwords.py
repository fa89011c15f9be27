"""Password hashing (argon2id, through argon2-cffi) and password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

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
    """Length over complexity: why a new password is refused, or None.

    At least 12 characters and at most 256 (NIST SP 800-63B: no maximum below 64; we
    allow long passphrases). No rules about character classes; instead the most common
    passwords are refused: those on zxcvbn's list of passwords seen most often in
    breaches, and anything zxcvbn estimates at under a million guesses (keyboard walks,
    repeats, a common word with digits). zxcvbn is a maintained library (Dropbox's
    estimator); its frequency lists are the data, not a hand-typed list.
    """
    if len(password) < MIN_LENGTH:
        return N_("Use at least 12 characters; a few plain words make a strong password.")
    if len(password) > MAX_LENGTH:
        return N_("Use at most 256 characters.")
    if password.strip().lower() in _COMMON_PASSWORDS or _too_guessable(password):
        return N_(
            "This password is one of the most common ones or too easy to guess; "
            "a few unrelated words work well."
        )
    return None


# zxcvbn's own list of the 30,000 passwords seen most often (ranked, lower-cased).
_COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])
# zxcvbn estimates at most this many characters (its own limit); a longer password's
# start is estimated, which still catches one that only repeats a weak pattern.
_ESTIMATE_LENGTH = 72


def _too_guessable(password: str) -> bool:
    # Score 0-1 means under 10^6 guesses: "too guessable" / "very guessable" in zxcvbn's terms.
    # user_inputs stays empty: zxcvbn stores them in a module-level dict, not thread-safe.
    return int(zxcvbn(password[:_ESTIMATE_LENGTH])["score"]) < 2
