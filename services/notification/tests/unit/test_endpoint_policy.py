from __future__ import annotations

from collections.abc import Callable

import pytest

from rastro_notification.domain.endpoint_policy import (
    EndpointRejected,
    validate_address,
    validate_endpoint_url,
)

pytestmark = pytest.mark.unit


def check(
    url: str,
    *,
    allow_private: bool = False,
    require_https: bool = False,
    resolve: Callable[[str], list[str]] | None = None,
) -> str:
    return validate_endpoint_url(
        url, allow_private=allow_private, require_https=require_https, resolve=resolve
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/rastro",
        "http://hooks.example.com:8080/in?x=1",
        "https://93.184.216.34/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        "https://bücher.example/hook",
        "https://hooks.example.com./hook",
        "https://my_hooks.example.com/",
    ],
)
def test_public_urls_are_accepted_unchanged(url: str) -> None:
    assert check(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("hooks.example.com/path", "http or https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://user@hooks.example.com/", "credentials"),
        ("https://@hooks.example.com/", "credentials"),
        ("https:///path", "no host"),
        ("https://hooks.example.com:99999/", "malformed"),
        ("https://hooks.example.com:x/", "malformed"),
        ("https://[::1/", "malformed"),
        ("https://hooks.example.com/a b", "whitespace"),
        ("https://hooks.example.com\t/", "whitespace"),
        ("https://evil.example\\@93.184.216.34/", "backslash"),
        ("https://hooks%2eexample.com/", "not a valid domain"),
        ("https://-bad-.example.com/", "not a valid domain"),
        ("https://" + "a" * 2100 + ".com/", "longer than"),
    ],
)
def test_malformed_urls_are_refused_even_in_development(url: str, reason: str) -> None:
    with pytest.raises(EndpointRejected, match=reason):
        check(url, allow_private=True)


def test_https_is_required_when_configured() -> None:
    assert check("https://hooks.example.com/", require_https=True)
    with pytest.raises(EndpointRejected, match="must be https"):
        check("http://hooks.example.com/", require_https=True)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.255.0.9:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.1/", "private"),
        ("http://172.31.255.255/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fd00:ec2::254]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://100.100.100.200/", "non-global"),
        ("http://192.0.2.10/", "private"),
        ("http://255.255.255.255/", "private"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[64:ff9b::10.0.0.1]/", "private"),
        ("http://[2002:a9fe:a9fe::]/", "link-local"),
        ("http://[::127.0.0.1]/", "non-global"),
    ],
)
def test_internal_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(EndpointRejected, match=kind):
        check(url)
    assert check(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "meant"),
    [
        ("http://2130706433/", "127.0.0.1, a loopback"),
        ("http://0x7f000001/", "127.0.0.1, a loopback"),
        ("http://0x7f.1/", "127.0.0.1, a loopback"),
        ("http://0177.0.0.1/", "127.0.0.1, a loopback"),
        ("http://127.1/", "127.0.0.1, a loopback"),
        ("http://2852039166/", "169.254.169.254, a link-local"),
        ("http://0xA9.0xFE.0xA9.0xFE/", "169.254.169.254, a link-local"),
        ("http://012.0.0.1/", "10.0.0.1, a private"),
        ("http://1249763898/", "(74.125.226.58)"),
    ],
)
def test_integer_hex_and_octal_ipv4_forms_are_refused(url: str, meant: str) -> None:
    with pytest.raises(EndpointRejected, match="non-dotted-decimal") as raised:
        check(url)
    assert meant in raised.value.reason


@pytest.mark.parametrize(
    "url", ["http://1.2.3.999/", "http://1.2.3.4.5/", "http://hooks.123/", "http://09.1.1.1/"]
)
def test_numeric_hosts_that_are_no_address_are_refused(url: str) -> None:
    with pytest.raises(EndpointRejected, match="not a valid IPv4"):
        check(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://LOCALHOST:8000/",
        "http://localhost./",
        "http://api.localhost/",
        "http://ｌocalhost/",
        "http://printer.local/",
        "http://metadata.google.internal/",
        "http://intranet/",
    ],
)
def test_internal_names_are_refused(url: str) -> None:
    with pytest.raises(EndpointRejected, match=r"internal name|fully qualified"):
        check(url)
    assert check(url, allow_private=True) == url


def test_fullwidth_digits_are_read_as_the_address_they_spell() -> None:
    with pytest.raises(EndpointRejected, match="loopback"):
        check("http://１２７.０.０.１/")


def test_every_resolved_address_is_checked() -> None:
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(EndpointRejected, match=r"'rebind.example.com' resolves to 10.0.0.7, a private"):
        check("https://Rebind.Example.com./hook", resolve=resolve)
    assert asked == ["rebind.example.com"]


def test_a_name_resolving_only_to_public_addresses_is_accepted() -> None:
    def resolve(host: str) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    assert check("https://hooks.example.com/", resolve=resolve) == "https://hooks.example.com/"


def test_idn_hosts_are_resolved_in_their_ascii_form() -> None:
    asked: list[str] = []

    def resolve(host: str) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    check("https://bücher.example/", resolve=resolve)
    assert asked == ["xn--bcher-kva.example"]


def test_a_name_that_resolves_to_nothing_is_refused() -> None:
    with pytest.raises(EndpointRejected, match="does not resolve"):
        check("https://hooks.example.com/", resolve=lambda host: [])


def test_resolution_is_skipped_for_literals_and_in_development() -> None:
    def resolve(host: str) -> list[str]:
        raise AssertionError("must not resolve")

    check("https://93.184.216.34/", resolve=resolve)
    check("http://anything.example/", allow_private=True, resolve=resolve)


def test_an_unparseable_resolved_address_is_refused() -> None:
    with pytest.raises(EndpointRejected, match="not an IP address"):
        validate_address("not-an-ip")


def test_a_resolved_ipv6_address_with_a_zone_is_judged_by_its_address() -> None:
    with pytest.raises(EndpointRejected, match="link-local"):
        validate_address("fe80::1%eth0")
    validate_address("2606:2800:220:1:248:1893:25c8:1946")
