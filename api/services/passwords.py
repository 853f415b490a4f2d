"""Passwords: their argon2id hashes, and their strength.

Hashes: `hash_password` and `verify_password` (argon2id, parameters from `ARGON2_*`; an
unknown user costs the same time as a known one).

Strength: common and trivially weak passwords are refused (OWASP ASVS V2.1.7).

zxcvbn estimates how many guesses a password takes, from frequency lists (common
passwords, names, words), keyboard patterns, repeats, sequences and dates, and from the
account's own username and email. A password scoring below `PASSWORD_MIN_SCORE` (0..4;
the default 2 means over 10^6 guesses, with per-name throttling online and argon2id
offline) is a 422 naming the field, saying why.
Registration, a password change and a password reset all go through `check_strength`.
"""

from __future__ import annotations

from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from zxcvbn import zxcvbn

from api.errors import InvalidFieldError


def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("password_hasher")
    if hasher is None:
        config = current_app.config
        hasher = PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"],
            memory_cost=config["ARGON2_MEMORY_COST"],
            parallelism=config["ARGON2_PARALLELISM"],
        )
        current_app.extensions["password_hasher"] = hasher
    return hasher


def hash_password(password: str) -> str:
    """Argon2id hash of `password`."""
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check `password` (argon2 compares in constant time). With no hash (unknown user)
    spend the same time on a dummy hash, then fail."""
    hasher = _hasher()
    if password_hash is None:
        dummy = current_app.extensions.get("dummy_password_hash")
        if dummy is None:
            dummy = current_app.extensions["dummy_password_hash"] = hasher.hash("equal-timing")
        password_hash = dummy
        known = False
    else:
        known = True
    try:
        return hasher.verify(password_hash, password) and known
    except (VerificationError, InvalidHashError):
        return False


# zxcvbn refuses longer input (its matching cost grows with the length); the first 72
# characters decide, which no weak prefix passes.
JUDGED_LENGTH = 72


def weakness(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why `password` is too weak, or None when it is strong enough."""
    result = zxcvbn(password[:JUDGED_LENGTH], user_inputs=[s for s in user_inputs if s])
    if result["score"] >= current_app.config["PASSWORD_MIN_SCORE"]:
        return None
    feedback = result["feedback"]
    reasons = [feedback["warning"], *feedback["suggestions"]]
    why = " ".join(reason for reason in reasons if reason) or "It is too easy to guess."
    return f"This password is too weak. {why}"


def check_strength(password: str, *user_inputs: str, field: str = "password") -> None:
    """422 naming `field` when `password` is too weak (`user_inputs`: the account's
    username and email, which a password must not lean on)."""
    reason = weakness(password, user_inputs)
    if reason is not None:
        raise InvalidFieldError(field, reason)
