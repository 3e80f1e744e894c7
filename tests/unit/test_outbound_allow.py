"""The OUTBOUND_ALLOW syntax: what each entry opens, and every malformed entry refused at start."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from activities.http.outbound.policy import (
    AllowEntry,
    OutboundBlocked,
    OutboundPolicy,
    blocked_reason,
    parse_allow_entry,
    parse_allow_list,
)
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def allowed(policy: OutboundPolicy, host: str, address: str, port: int | None = 80) -> bool:
    try:
        policy.check(host, address, port)
    except OutboundBlocked:
        return False
    return True


# --- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/8", AllowEntry("10.0.0.0/8", network=ipaddress.ip_network("10.0.0.0/8"))),
        ("10.0.0.5", AllowEntry("10.0.0.5", network=ipaddress.ip_network("10.0.0.5/32"))),
        (
            "10.0.0.0/8:8080",
            AllowEntry("10.0.0.0/8:8080", network=ipaddress.ip_network("10.0.0.0/8"), port=8080),
        ),
        ("::1", AllowEntry("::1", network=ipaddress.ip_network("::1/128"))),
        ("[::1]", AllowEntry("[::1]", network=ipaddress.ip_network("::1/128"))),
        ("[::1]:8080", AllowEntry("[::1]:8080", network=ipaddress.ip_network("::1"), port=8080)),
        ("fd00::/8", AllowEntry("fd00::/8", network=ipaddress.ip_network("fd00::/8"))),
        (
            "[fd00::/8]:443",
            AllowEntry("[fd00::/8]:443", network=ipaddress.ip_network("fd00::/8"), port=443),
        ),
        ("billing.internal", AllowEntry("billing.internal", host="billing.internal")),
        ("Billing.Internal.", AllowEntry("Billing.Internal.", host="billing.internal")),
        (
            "billing.internal:8443",
            AllowEntry("billing.internal:8443", host="billing.internal", port=8443),
        ),
        ("localhost", AllowEntry("localhost", host="localhost")),
        ("redis_cache", AllowEntry("redis_cache", host="redis_cache")),
        ("bücher.example", AllowEntry("bücher.example", host="xn--bcher-kva.example")),
        ("*.internal", AllowEntry("*.internal", suffix="internal")),
        (
            "*.svc.cluster.local:8080",
            AllowEntry("*.svc.cluster.local:8080", suffix="svc.cluster.local", port=8080),
        ),
    ],
)
def test_accepted_entries(text: str, expected: AllowEntry) -> None:
    assert parse_allow_entry(f"  {text} ") == AllowEntry(**{**vars(expected), "text": text})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10.0.0.5/0", "has host bits set"),
        ("192.168.1.1/24", "has host bits set"),
        ("fd00::1/8", "has host bits set"),
        ("10.0.0.0/33", "does not appear to be an IPv4 or IPv6 network"),
        ("*", "'*' may only stand alone as the first label"),
        ("*.", "expected a host name"),
        ("a.*.b", "'*' may only stand alone as the first label"),
        ("**.internal", "'*' may only stand alone as the first label"),
        ("*internal", "'*' may only stand alone as the first label"),
        ("*.10.0.0.1", "cannot end in a number"),
        ("127.1", "cannot end in a number"),
        ("2130706433", "cannot end in a number"),
        ("0x7f.0x1", "cannot end in a number"),
        ("010.0.0.1", "cannot end in a number"),
        ("host:0", "port '0' is not a number from 1 to 65535"),
        ("host:65536", "port '65536' is not a number from 1 to 65535"),
        ("host:080", "port '080' is not a number from 1 to 65535"),
        ("host:http", "port 'http' is not a number"),
        ("host:", "port '' is not a number"),
        ("host:80:81", "an IPv6 address takes a port as [address]:port"),
        ("[10.0.0.1]:80", "brackets are for IPv6"),
        ("[::1]x", "only ':port' may follow ']'"),
        ("[::1", "without a closing ']'"),
        ("fe80::1%eth0", "zone identifiers"),
        ("http://internal.example", "not a URL"),
        ("user@internal.example", "'user@internal' is not a DNS label"),
        ("a b", "'a b' is not a DNS label"),
        ("-bad.example", "'-bad' is not a DNS label"),
        ("a..b", "'' is not a DNS label"),
        ("x" * 64 + ".example", "is not a DNS label"),
        (".".join(["a" * 60] * 5), "at most 253 characters"),
        ("", "the entry is empty"),
    ],
)
def test_refused_entries_name_the_entry_and_why(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_allow_entry(text)
    message = str(caught.value)
    assert message.startswith(f"invalid outbound allow entry {text!r}: ")
    assert why in message


def test_blank_entries_are_skipped() -> None:
    assert parse_allow_list(["", "  ", "localhost"]) == (AllowEntry("localhost", host="localhost"),)


def test_a_port_entry_opens_that_port_only() -> None:
    policy = OutboundPolicy(["10.0.0.0/8:8080", "[::1]:9000", "billing.internal:8443"])

    assert allowed(policy, "10.1.2.3", "10.1.2.3", 8080)
    assert not allowed(policy, "10.1.2.3", "10.1.2.3", 8081)
    assert not allowed(policy, "10.1.2.3", "10.1.2.3", None)
    assert allowed(policy, "::1", "::1", 9000)
    assert allowed(policy, "billing.internal", "192.168.0.9", 8443)
    assert not allowed(policy, "billing.internal", "192.168.0.9", 443)


def test_the_metadata_address_stays_blocked_behind_a_typo() -> None:
    with pytest.raises(ValueError, match="has host bits set"):
        OutboundPolicy(["10.0.0.5/0"])
    assert not allowed(OutboundPolicy(["10.0.0.0/8"]), "169.254.169.254", "169.254.169.254")


def test_a_wildcard_does_not_open_the_bare_suffix() -> None:
    policy = OutboundPolicy(["*.internal"])

    assert allowed(policy, "billing.internal", "10.0.0.1")
    assert allowed(policy, "A.B.Internal.", "10.0.0.1")
    assert not allowed(policy, "internal", "10.0.0.1")
    assert not allowed(policy, "notinternal", "10.0.0.1")
    assert not allowed(policy, "internal.evil.example", "10.0.0.1")


# --- settings and the worker -------------------------------------------------------------------


def test_settings_refuse_a_bad_entry_naming_it() -> None:
    with pytest.raises(ValidationError, match=re.escape("invalid outbound allow entry '*'")):
        Settings(_env_file=None, outbound_allow="localhost, *")  # type: ignore[call-arg]
    settings = Settings(_env_file=None, outbound_allow="*.internal:8443, [::1]:80")  # type: ignore[call-arg]
    assert settings.outbound_allow == ["*.internal:8443", "[::1]:80"]


def test_settings_read_the_sensitive_headers_as_a_list() -> None:
    settings = Settings(_env_file=None, outbound_sensitive_headers="X-Tenant-Key, X-Other")  # type: ignore[call-arg]
    assert settings.outbound_sensitive_headers == ["X-Tenant-Key", "X-Other"]
    assert "X-API-Key" in Settings(_env_file=None).outbound_sensitive_headers  # type: ignore[call-arg]


def test_the_worker_stops_at_start_on_a_bad_entry() -> None:
    env = {**os.environ, "OUTBOUND_ALLOW": "10.0.0.0/8,10.0.0.5/0"}
    done = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "invalid outbound allow entry '10.0.0.5/0': 10.0.0.5/0 has host bits set" in done.stderr


# --- properties --------------------------------------------------------------------------------


def _bracketed(network: IPNetwork | str) -> str:
    text = str(network)
    return f"[{text}]" if ":" in text else text


@st.composite
def networks(draw: st.DrawFn, version: int | None = None) -> IPNetwork:
    address = draw(st.ip_addresses(v=version))
    prefix = draw(st.integers(0, address.max_prefixlen))
    return ipaddress.ip_network(f"{address}/{prefix}", strict=False)


@given(address=st.ip_addresses(), data=st.data())
def test_any_cidr_with_host_bits_set_is_refused(address: IPAddress, data: st.DataObject) -> None:
    prefix = data.draw(st.integers(0, address.max_prefixlen - 1))
    assume(int(address) & int(ipaddress.ip_network(f"{address}/{prefix}", strict=False).hostmask))
    text = f"{address}/{prefix}"
    for entry in (text, _bracketed(text)):
        with pytest.raises(ValueError, match=re.escape(f"{entry!r}") + ".*has host bits set"):
            parse_allow_entry(entry)


@given(network=networks(), port=st.none() | st.integers(1, 65535))
def test_an_accepted_network_is_exactly_the_network_written(
    network: IPNetwork, port: int | None
) -> None:
    text = str(network) if port is None else f"{_bracketed(network)}:{port}"
    assert parse_allow_entry(text) == AllowEntry(text, network=network, port=port)


@given(data=st.data(), network=networks())
def test_an_accepted_network_opens_no_address_outside_it(
    data: st.DataObject, network: IPNetwork
) -> None:
    inside = st.integers(int(network.network_address), int(network.broadcast_address)).map(
        lambda n: ipaddress.ip_address(n) if network.version == 4 else ipaddress.IPv6Address(n)
    )
    address = data.draw(inside | st.ip_addresses(v=network.version))
    policy = OutboundPolicy([str(network)])
    expected = address in network or blocked_reason(address) is None
    assert allowed(policy, "service.test", str(address)) is expected


LABELS = st.sampled_from(["a", "b", "internal", "corp", "x-1", "svc"])


@given(
    suffix=st.lists(LABELS, min_size=1, max_size=3),
    host=st.lists(LABELS, min_size=1, max_size=5),
    upper=st.booleans(),
)
def test_a_wildcard_matches_exactly_the_hosts_under_its_suffix(
    suffix: list[str], host: list[str], upper: bool
) -> None:
    suffix_text, host_text = ".".join(suffix), ".".join(host)
    policy = OutboundPolicy([f"*.{suffix_text}"])
    under = host_text.endswith("." + suffix_text)
    asked = host_text.upper() if upper else host_text
    assert allowed(policy, asked, "10.0.0.1") is under


@given(entry_port=st.integers(1, 65535), port=st.integers(1, 65535))
def test_a_port_bound_entry_matches_only_its_port(entry_port: int, port: int) -> None:
    policy = OutboundPolicy([f"service.test:{entry_port}", f"[fd00::/8]:{entry_port}"])
    assert allowed(policy, "service.test", "10.0.0.1", port) is (port == entry_port)
    assert allowed(policy, "other.test", "fd00::1", port) is (port == entry_port)


ENTRY_CHARACTERS = "0123456789abcdefx.:/[]*-_%@ "


@given(st.text(max_size=40) | st.text(alphabet=ENTRY_CHARACTERS, max_size=40))
def test_any_text_either_parses_or_is_refused_by_name(text: str) -> None:
    try:
        entry = parse_allow_entry(text)
    except ValueError as exc:
        assert str(exc).startswith(f"invalid outbound allow entry {text!r}: ")
    else:
        assert [entry.network, entry.host, entry.suffix].count(None) == 2
