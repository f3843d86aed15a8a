"""The throttles of sign-in and registration (counted as sessions_project.throttling says).

Failed sign-ins are counted per username and per client address together: the API's token
route and admin's login page share the counts, so neither gives a guesser more tries."""

from __future__ import annotations

from sessions_project.throttling import Attempt, Throttle, address_key, hashed

LOGIN_FAILURES = Throttle(
    "login",
    "LOGIN_FAILURE_RATE",
    code="login_throttled",
    detail="Too many failed sign-ins for this account or from this address.",
)
REGISTRATIONS = Throttle(
    "register",
    "REGISTRATION_RATE",
    code="registration_throttled",
    detail="Too many registrations from this address.",
)


def login_attempt(*, username: object, address: str) -> Attempt:
    """A sign-in attempt: call `.count()` on it when the credentials are refused."""
    keys = [f"addr:{address_key(address)}"]
    if isinstance(username, str) and username:
        # Case-folded: HOST and host are one account to a guesser (registration refuses both).
        keys.append(f"user:{hashed(username.casefold())}")
    return LOGIN_FAILURES.attempt(keys)


def registration_attempt(*, address: str) -> Attempt:
    """A registration attempt: every one counts, whatever its outcome."""
    attempt = REGISTRATIONS.attempt([f"addr:{address_key(address)}"])
    attempt.count()
    return attempt
