"""Where webhook requests may go: http(s) URLs only, no redirect followed, and no private,
loopback, link-local or reserved address (checked after resolving, every address) unless
WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError

from sessions_app.services import webhooks
from sessions_app.webhook_models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from sessions_project import outbound

from .webhook_receiver import DRIP, NUL

pytestmark = pytest.mark.django_db


def register(url: str) -> WebhookEndpoint:
    return webhooks.endpoint_register(endpoint=WebhookEndpoint(url=url))


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver, host, make_session):
    receiver.answer(302)
    register(receiver.url())
    make_session(host)

    webhooks.worker_pass()

    assert [r.path for r in receiver.received] == ["/hook"]  # never /elsewhere
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == "answered 302: redirects are not followed (Location: /elsewhere)"


def test_an_answer_trickling_in_is_cut_off_when_the_whole_exchange_takes_too_long(receiver, settings):
    settings.WEBHOOK_CONNECT_TIMEOUT = 0.2
    settings.WEBHOOK_READ_TIMEOUT = 0.3  # each byte comes well within it: only the total cuts it
    receiver.answer(DRIP)

    with pytest.raises(outbound.RequestFailed, match=r"^timed out \(the whole answer took too long\)$"):
        outbound.post(receiver.url(), b"{}", {})


def test_an_answer_with_nul_characters_is_recorded(receiver, host, make_session):
    """PostgreSQL text cannot hold NUL: the excerpt keeps a replacement character instead."""
    receiver.answer(NUL)
    register(receiver.url())
    make_session(host)

    webhooks.worker_pass()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempt_rows.get().answer_excerpt == "ok\ufffd\ufffd"


@pytest.mark.parametrize("host_name", ["127.0.0.1", "localhost"])
def test_a_loopback_address_is_refused_when_private_addresses_are_not_allowed(
    receiver, settings, host, make_session, host_name
):
    register(receiver.url(host=host_name))  # allowed while registering (the receiver fixture allows it)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    make_session(host)

    webhooks.worker_pass()

    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith(f"refused: {host_name} resolves to ")
    assert "a loopback address (WEBHOOK_ALLOW_PRIVATE_ADDRESSES is off)" in delivery.last_error


def test_a_name_resolving_to_a_private_address_among_public_ones_is_refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 443)) for ip in ("93.184.215.14", "10.1.2.3")]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)

    with pytest.raises(outbound.AddressRefused, match="10.1.2.3, a private address"):
        outbound.resolve_checked("rebind.example", 443)


def test_the_connection_goes_to_the_address_that_was_checked(receiver, monkeypatch):
    """DNS rebinding: a name that answers the receiver's address to the check and another one
    afterwards is resolved once; the request goes to the checked address, under its name."""
    real = socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.test":
            return real(host, *args, **kwargs)  # numeric addresses: no DNS
        lookups.append(host)
        ip = "127.0.0.1" if len(lookups) == 1 else "192.0.2.1"  # then an address that goes nowhere
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, args[0]))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    answer = outbound.post(receiver.url(host="rebind.test"), b"{}", {"Content-Type": "application/json"})

    assert answer.status == 200
    assert lookups == ["rebind.test"]
    assert receiver.received[0].headers["Host"] == f"rebind.test:{receiver.port}"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "private"),
        ("192.168.1.10", "private"),
        ("172.16.0.1", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not global"),
        ("fd00::1", "private"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_which_addresses_are_refused(address, reason):
    assert outbound.refused_reason(address) == reason


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://hooks.example.com/x", "url_scheme"),
        ("hooks.example.com/x", "url_scheme"),
        ("http:///x", "url_invalid"),
        ("https://user:pw@hooks.example.com/x", "url_credentials"),
        ("https://hooks.example.com/x#part", "url_invalid"),
        ("https://hooks.example.com:99999/x", "url_invalid"),
        ("https://hooks.example.com/a b", "url_invalid"),
        ("http://10.0.0.8/x", "url_private_address"),
        ("http://[::1]:8000/x", "url_private_address"),
        ("http://169.254.169.254/latest/meta-data", "url_private_address"),
    ],
)
def test_registration_refuses_urls_it_may_not_use(settings, url, code):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(ValidationError) as refused:
        outbound.validate_webhook_url(url)

    assert refused.value.code == code


def test_registration_accepts_public_urls_and_private_ones_when_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    outbound.validate_webhook_url("https://hooks.example.com/session-events?source=1")
    outbound.validate_webhook_url("http://93.184.215.14:8080/")
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    outbound.validate_webhook_url("http://10.0.0.8/x")


def test_https_only_refuses_plain_http(settings):
    settings.WEBHOOK_HTTPS_ONLY = True

    with pytest.raises(ValidationError) as refused:
        outbound.validate_webhook_url("http://hooks.example.com/x")

    assert refused.value.code == "url_scheme"
    outbound.validate_webhook_url("https://hooks.example.com/x")
