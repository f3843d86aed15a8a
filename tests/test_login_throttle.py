"""Throttled sign-in and registration: failed token requests per username and per client
address, registrations per address, admin's login page sharing the sign-in counts, the
client's address behind trusted proxies, and the counters in Redis when REDIS_URL is set."""

from __future__ import annotations

import socket
import uuid

import pytest
from django.test import RequestFactory

from players_app.models import Player
from sessions_project.throttling import address_key, client_address

from .factories import PlayerFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # PlayerFactory's password
TOKEN = "/api/v1/auth/token"


def sign_in(api, username: str, password: str, address: str = "198.51.100.1"):
    return api.post(TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=address)


def fail(api, username: str, times: int, address: str = "198.51.100.1"):
    for _ in range(times):
        response = sign_in(api, username, "wrong-password", address)
        assert response.status_code == 401, response.json()


def assert_throttled(response, code: str = "login_throttled"):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert 1 <= int(response["Retry-After"]) <= 60 * 60
    assert "access" not in response.json()


# --- failed token requests ------------------------------------------------------------------


def test_the_eleventh_failure_in_a_minute_gets_429_with_retry_after(api, host):
    fail(api, "host", 10)

    response = sign_in(api, "host", "wrong-password")

    assert_throttled(response)
    assert int(response["Retry-After"]) <= 60


def test_during_a_lockout_the_right_password_is_refused_too(api, host):
    fail(api, "host", 10)

    assert_throttled(sign_in(api, "host", PASSWORD))


def test_successful_sign_ins_are_not_counted(api, host):
    fail(api, "host", 9)
    for _ in range(5):
        assert sign_in(api, "host", PASSWORD).status_code == 200

    tenth_failure = sign_in(api, "host", "wrong-password")

    assert tenth_failure.status_code == 401
    assert_throttled(sign_in(api, "host", "wrong-password"))


def test_failures_from_one_address_count_across_usernames(api, host):
    for n in range(10):
        fail(api, f"nobody-{n}", 1, address="203.0.113.7")

    from_that_address = sign_in(api, "host", PASSWORD, address="203.0.113.7")
    from_elsewhere = sign_in(api, "host", PASSWORD, address="203.0.113.8")

    assert_throttled(from_that_address)
    assert from_elsewhere.status_code == 200


def test_failures_for_one_username_count_across_addresses_and_letter_case(api, host):
    for n in range(10):
        fail(api, "host" if n % 2 else "HOST", 1, address=f"203.0.113.{n + 1}")

    assert_throttled(sign_in(api, "host", PASSWORD, address="203.0.113.200"))
    assert sign_in(api, "member-not-locked", "x", address="203.0.113.200").status_code == 401


def test_a_malformed_token_request_is_not_a_failure(api, host):
    for _ in range(15):
        assert api.post(TOKEN, {"username": "host"}, format="json").status_code == 400

    assert sign_in(api, "host", PASSWORD).status_code == 200


def test_the_limit_comes_from_login_failure_rate(api, host, settings):
    settings.LOGIN_FAILURE_RATE = "3/hour"
    fail(api, "host", 3)

    response = sign_in(api, "host", PASSWORD)

    assert_throttled(response)
    assert int(response["Retry-After"]) > 60


def test_zero_turns_the_login_throttle_off(api, host, settings):
    settings.LOGIN_FAILURE_RATE = "0"
    fail(api, "host", 25)

    assert sign_in(api, "host", PASSWORD).status_code == 200


# --- registration ---------------------------------------------------------------------------


def register(api, username: str, address: str = "198.51.100.1"):
    body = {"username": username, "password": "a-long-secret-9"}
    return api.post("/api/v1/players", body, format="json", REMOTE_ADDR=address)


def test_registrations_past_the_rate_from_one_address_get_429(api, settings):
    settings.REGISTRATION_RATE = "3/hour"
    assert [register(api, f"newbie{n}").status_code for n in range(3)] == [201, 201, 201]

    refused = register(api, "newbie3")
    elsewhere = register(api, "newbie4", address="198.51.100.2")

    assert_throttled(refused, "registration_throttled")
    assert not Player.objects.filter(username="newbie3").exists()
    assert elsewhere.status_code == 201


def test_refused_registrations_count_too(api, settings, host):
    settings.REGISTRATION_RATE = "3/hour"
    assert [register(api, "host").status_code for _ in range(3)] == [400, 400, 400]  # taken

    assert_throttled(register(api, "newbie"), "registration_throttled")
    assert not Player.objects.filter(username="newbie").exists()


def test_registration_is_limited_to_thirty_an_hour_by_default(api):
    assert all(register(api, f"newbie{n}").status_code == 201 for n in range(30))

    assert_throttled(register(api, "newbie30"), "registration_throttled")
    assert Player.objects.count() == 30


def test_zero_turns_the_registration_throttle_off(api, settings):
    settings.REGISTRATION_RATE = "0"

    assert all(register(api, f"newbie{n}").status_code == 201 for n in range(35))


# --- admin ----------------------------------------------------------------------------------


def admin_sign_in(client, password: str, address: str = "198.51.100.1"):
    return client.post("/admin/login/?next=/admin/", {"username": "boss", "password": password}, REMOTE_ADDR=address)


def test_admin_sign_in_locks_out_after_ten_failures_and_says_so(client):
    PlayerFactory(username="boss", is_staff=True, is_superuser=True)
    for _ in range(10):
        refused = admin_sign_in(client, "wrong-password")
        assert refused.status_code == 200
        assert "Please enter the correct username and password" in refused.content.decode()

    locked = admin_sign_in(client, PASSWORD)

    assert locked.status_code == 200  # the login page again, with the refusal on it
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still signed out


def test_admin_sign_in_works_below_the_limit(client):
    PlayerFactory(username="boss", is_staff=True, is_superuser=True)
    for _ in range(9):
        admin_sign_in(client, "wrong-password")

    signed_in = admin_sign_in(client, PASSWORD)

    assert signed_in.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_admin_and_api_failures_share_one_count(api, client):
    PlayerFactory(username="boss", is_staff=True, is_superuser=True)
    for _ in range(5):
        admin_sign_in(client, "wrong-password", address="203.0.113.1")
    fail(api, "boss", 5, address="203.0.113.2")

    assert_throttled(sign_in(api, "boss", PASSWORD, address="203.0.113.3"))
    assert "Too many failed sign-ins" in admin_sign_in(client, PASSWORD, address="203.0.113.4").content.decode()


# --- the client's address -------------------------------------------------------------------


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_peer_is_the_client_whatever_x_forwarded_for_says(settings):
    settings.TRUSTED_PROXY_NETWORKS = []

    assert client_address(request_from("198.51.100.1", "203.0.113.9")) == "198.51.100.1"


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        # The proxy appended the peer it saw; whatever the client wrote itself is further left.
        ("10.0.0.5", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Two trusted hops (a CDN in front of the load balancer).
        ("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        # A peer that is no trusted proxy forged the header: the peer is the client.
        ("198.51.100.1", "203.0.113.9", "198.51.100.1"),
        # Garbage in the header: the last address a trusted proxy vouched for.
        ("10.0.0.5", "203.0.113.9, not-an-address", "10.0.0.5"),
        # Every hop trusted: the leftmost.
        ("10.0.0.5", "10.0.0.9", "10.0.0.9"),
        # No header from a trusted proxy.
        ("10.0.0.5", None, "10.0.0.5"),
        # Ports and IPv6 brackets as some proxies write them.
        ("10.0.0.5", "[2001:db8::1]:4711", "2001:db8::1"),
        ("10.0.0.5", "203.0.113.9:4711", "203.0.113.9"),
    ],
)
def test_behind_trusted_proxies_x_forwarded_for_is_walked_from_the_right(settings, remote, forwarded, client):
    import ipaddress

    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]

    assert client_address(request_from(remote, forwarded)) == client


def test_clients_behind_a_trusted_proxy_are_counted_apart(api, host, settings):
    import ipaddress

    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("10.0.0.5/32")]
    for n in range(10):
        api.post(
            TOKEN,
            {"username": f"nobody-{n}", "password": "x"},
            format="json",
            REMOTE_ADDR="10.0.0.5",
            HTTP_X_FORWARDED_FOR="203.0.113.66",
        )

    guesser = api.post(TOKEN, {"username": "host", "password": PASSWORD}, format="json", **proxied("203.0.113.66"))
    neighbour = api.post(TOKEN, {"username": "host", "password": PASSWORD}, format="json", **proxied("203.0.113.67"))

    assert_throttled(guesser)
    assert neighbour.status_code == 200


def proxied(address: str) -> dict[str, str]:
    return {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": f"1.1.1.1, {address}"}


def test_ipv6_clients_are_counted_per_64_network():
    assert address_key("2001:db8:0:1::1") == address_key("2001:db8:0:1:ffff::2") == "2001:db8:0:1::/64"
    assert address_key("2001:db8:0:2::1") != address_key("2001:db8:0:1::1")
    assert address_key("::ffff:203.0.113.9") == "203.0.113.9"


# --- Redis ----------------------------------------------------------------------------------


def redis_is_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.redis
@pytest.mark.skipif(not redis_is_up(), reason="needs Redis at 127.0.0.1:6379")
def test_with_redis_the_counts_live_in_redis(api, host, settings):
    import redis

    prefix = f"test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": prefix,
        }
    }
    server = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        fail(api, "host", 10)

        locked = sign_in(api, "host", PASSWORD)
        keys = server.keys(f"{prefix}:*")

        assert_throttled(locked)
        assert len(keys) == 4  # per username and per address, each with its window's end
        from django.db import connection

        tables = connection.introspection.table_names()
        if "cache_entries" in tables:
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM cache_entries")
                assert cursor.fetchone()[0] == 0  # nothing went to the database cache
    finally:
        for key in server.keys(f"{prefix}:*"):
            server.delete(key)


# --- reads are never throttled; sign-ins and registrations only past their limits -------------


def url(session) -> str:
    return f"/api/v1/sessions/{session.uid}"


def test_reads_are_never_throttled_and_sign_ins_and_registrations_only_past_their_limits(api, host, make_session):
    session = make_session(host)

    reads = [api.as_(host).get(url(session)).status_code for _ in range(40)]
    lists = [api.get("/api/v1/sessions").status_code for _ in range(40)]
    api.force_authenticate(user=None)
    wrong_tokens = [
        api.post("/api/v1/auth/token", {"username": "host", "password": "nope"}, format="json").status_code
        for _ in range(9)  # LOGIN_FAILURE_RATE allows 10 a minute (see the tests above)
    ]
    token = api.post("/api/v1/auth/token", {"username": "host", "password": "pass-word-123"}, format="json")
    registrations = [
        api.post(
            "/api/v1/players", {"username": f"newcomer{i}", "password": "a-long-pass-phrase-9"}, format="json"
        ).status_code
        for i in range(15)
    ]

    assert set(reads) == set(lists) == {200}
    assert set(wrong_tokens) == {401}
    assert token.status_code == 200
    assert set(registrations) == {201}
