"""Settings for the test suite: only what tests need differs.

The real settings refuse to start without a real SECRET_KEY unless DEBUG=1; the suite runs
with debug off and a key of its own, set here before they are read (and put back afterwards,
so that processes the tests start see the developer's environment, not these)."""

import os

_TEST_ENVIRONMENT = {
    "DEBUG": "0",
    "SECRET_KEY": "test-suite-only-key-7c1f0e9a4b2d8e6f3a5c7b9d1e3f5a7c9b2d4f6e8a0c",
}
_saved = {name: os.environ.get(name) for name in _TEST_ENVIRONMENT}
os.environ.update(_TEST_ENVIRONMENT)
try:
    from .settings import *  # noqa: F403
finally:
    for _name, _value in _saved.items():
        if _value is None:
            os.environ.pop(_name, None)
        else:
            os.environ[_name] = _value

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
JOIN_PASSWORD_ITERATIONS = 1
