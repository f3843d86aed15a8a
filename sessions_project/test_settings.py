"""Settings for the test suite: only what tests need differs."""

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
JOIN_PASSWORD_ITERATIONS = 1
