"""Which destinations the outbound client may connect to: the block-list and the allow-list.

Pure and I/O-free: `OutboundPolicy.check` is handed a host and one address it resolved to, by
the network backend (`activities.http.outbound.backend`), and refuses it or not.

Blocked by default (see `blocked_reason`): loopback, private (RFC 1918, IPv6 unique local
fc00::/7), link-local (169.254.0.0/16, fe80::/10), carrier-grade NAT 100.64.0.0/10, multicast,
unspecified, broadcast and other reserved ranges, and IPv6 forms that embed an IPv4 address
(IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4) when the embedded address is blocked.

The allow-list (``OUTBOUND_ALLOW``, ``Settings.outbound_allow``) opens holes for deployments
that must call internal services. `parse_allow_list` reads it strictly when the settings load,
so a bad entry stops the worker at start instead of silently meaning something else. Each
entry is one of

* an IP address or CIDR network (``10.0.0.5``, ``10.1.0.0/16``, ``::1``, ``fd00::/8``): an
  address inside it is allowed whatever name led to it. A network must not have host bits set:
  ``10.0.0.5/0`` is refused, not read as ``0.0.0.0/0``;
* a host name (``billing.internal``), matched exactly and case-insensitively against the URL's
  host (a trailing dot is ignored): every address that name resolves to is then allowed. Labels
  are letters, digits, hyphens and underscores (internationalized names are taken in their
  ``xn--`` form); a name whose last label is a number (``127.1``, ``2130706433``) spells an IP
  address and is refused;
* ``*.suffix`` (``*.svc.cluster.local``): every host name that ends in ``.suffix``, at any
  depth, but not ``suffix`` itself;

each optionally followed by ``:port`` (``billing.internal:8443``, ``10.0.0.0/8:8080``,
``[::1]:8080``; an IPv6 address or network takes a port only inside brackets), which opens the
hole on that port only. Anything else raises `ValueError` naming the entry and what is wrong.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import idna

from kernel.errors import ErrorType, WorkflowStationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundBlocked(WorkflowStationError):
    """A destination the outbound guard refused to connect to.

    Attributes:
        host: The host name (or IP literal) from the URL.
        address: The resolved address that was refused, or None when no address was involved.
        reason: Why, e.g. ``"link-local address"``.
    """

    error_type = ErrorType.OUTBOUND_BLOCKED

    def __init__(self, host: str, address: str | None, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        if address is None:
            message = f"refused {host}: {reason}"
        elif address == host:
            message = f"refused {address}: {reason}"
        else:
            message = f"refused {address} for {host}: {reason}"
        super().__init__(message)


# Order matters: the first network that contains an address names the reason.
_BLOCKED_V4: list[tuple[ipaddress.IPv4Network, str]] = [
    (ipaddress.IPv4Network(net), reason)
    for net, reason in [
        ("0.0.0.0/32", "unspecified address"),
        ("0.0.0.0/8", "'this network' address"),
        ("10.0.0.0/8", "private address"),
        ("100.64.0.0/10", "carrier-grade NAT shared address"),
        ("127.0.0.0/8", "loopback address"),
        ("169.254.0.0/16", "link-local address"),
        ("172.16.0.0/12", "private address"),
        ("192.0.0.0/24", "reserved address (IETF protocol assignments)"),
        ("192.0.2.0/24", "documentation address"),
        ("192.88.99.0/24", "reserved address (6to4 relay anycast)"),
        ("192.168.0.0/16", "private address"),
        ("198.18.0.0/15", "benchmarking address"),
        ("198.51.100.0/24", "documentation address"),
        ("203.0.113.0/24", "documentation address"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address"),
    ]
]

_BLOCKED_V6: list[tuple[ipaddress.IPv6Network, str]] = [
    (ipaddress.IPv6Network(net), reason)
    for net, reason in [
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("2001::/32", "Teredo tunnelling address"),
        ("2001:2::/48", "benchmarking address"),
        ("2001:db8::/32", "documentation address"),
        ("fc00::/7", "private address (unique local)"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address"),
        ("ff00::/8", "multicast address"),
    ]
]

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the name of that form, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    # :: and ::1 are in ::/96 too, but they are themselves, not IPv4 0.0.0.0 / 0.0.0.1.
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    return None


def parse_ip(value: str) -> IPAddress | None:
    """`value` as an IP address, or None when it is not one (a host name)."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why `address` is refused by default, or None if it is a public address.

    Args:
        address: An IPv4 or IPv6 address.

    Returns:
        A short reason such as ``"loopback address"``, or None.

    Raises:
        ValueError: `address` is not an IP address.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv4Address):
        return next((reason for net, reason in _BLOCKED_V4 if ip in net), None)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        v4, form = embedded
        inner = blocked_reason(v4)
        return None if inner is None else f"{inner} {v4} in {form} IPv6 form"
    reason = next((reason for net, reason in _BLOCKED_V6 if ip in net), None)
    if reason is None and ip not in _GLOBAL_UNICAST_V6:
        reason = "reserved address (outside global unicast 2000::/3)"
    return reason


def _normalize_host(host: str) -> str:
    return host.lower().rstrip(".")


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


@dataclass(frozen=True)
class AllowEntry:
    """One parsed ``OUTBOUND_ALLOW`` entry; exactly one of `network`, `host`, `suffix` is set.

    Attributes:
        text: The entry as written.
        network: The addresses it opens, for an IP address or CIDR entry.
        host: The host name it opens (lower case, ASCII, no trailing dot).
        suffix: For a ``*.suffix`` entry, the suffix (``svc.cluster.local``).
        port: The only port it opens, or None for every port.
    """

    text: str
    network: IPNetwork | None = None
    host: str | None = None
    suffix: str | None = None
    port: int | None = None

    def allows(self, host: str, address: IPAddress, port: int | None) -> bool:
        """Whether this entry opens a connection to `address` on `port` for the URL host `host`.

        Args:
            host: The URL's host, normalized (`_normalize_host`).
            address: The address the connection would go to.
            port: The port it would go to; None (unknown) never matches a port-bound entry.
        """
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return address in self.network
        if self.host is not None:
            return host == self.host
        return self.suffix is not None and host.endswith("." + self.suffix)


def _allow_port(text: str) -> int:
    if _PORT.fullmatch(text) is None or int(text) > 65535:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _allow_network(text: str) -> IPNetwork:
    if "%" in text:
        raise ValueError("IPv6 zone identifiers (%…) are not supported")
    # strict: '10.0.0.5/0' is a typo for something, not a wish to open 0.0.0.0/0.
    return ipaddress.ip_network(text, strict=True)


def _allow_host_name(text: str) -> str:
    """The lower-case ASCII form of a host name, or ValueError saying what is wrong with it."""
    name = text.lower()
    if not name.isascii():
        try:
            # The form httpx sends and hands to the backend, so the two compare equal.
            name = idna.encode(name).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"not a valid internationalized host name ({exc})") from None
    name = name.removesuffix(".")
    if not name:
        raise ValueError("expected a host name, an IP address or a CIDR network")
    if len(name) > 253:
        raise ValueError("a host name is at most 253 characters long")
    labels = name.split(".")
    for label in labels:
        if _LABEL.fullmatch(label) is None:
            raise ValueError(
                f"{label!r} is not a DNS label (1 to 63 letters, digits, hyphens or"
                " underscores, not starting or ending with a hyphen)"
            )
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        raise ValueError(
            "a host name cannot end in a number: this spells an IP address; write IPv4"
            " addresses as four decimal numbers (10.0.0.1) and networks as CIDR (10.0.0.0/8)"
        )
    return name


def _parse_allow_entry(entry: str) -> AllowEntry:
    if not entry:
        raise ValueError("the entry is empty")
    if "://" in entry:
        raise ValueError("expected a host, not a URL: leave out the scheme and path")
    if entry.startswith("["):
        inside, closed, rest = entry[1:].partition("]")
        if not closed:
            raise ValueError("'[' without a closing ']'")
        if rest and not rest.startswith(":"):
            raise ValueError("only ':port' may follow ']'")
        network = _allow_network(inside)
        if network.version != 6:
            raise ValueError("brackets are for IPv6 addresses and networks only")
        return AllowEntry(entry, network=network, port=_allow_port(rest[1:]) if rest else None)
    if entry.count(":") > 1:
        try:
            return AllowEntry(entry, network=_allow_network(entry))
        except ValueError as exc:
            raise ValueError(f"{exc} (an IPv6 address takes a port as [address]:port)") from None
    name, has_port, port_text = entry.partition(":")
    port = _allow_port(port_text) if has_port else None
    if "/" in name or parse_ip(name) is not None:
        return AllowEntry(entry, network=_allow_network(name), port=port)
    if name.startswith("*."):
        return AllowEntry(entry, suffix=_allow_host_name(name[2:]), port=port)
    if "*" in name:
        raise ValueError("'*' may only stand alone as the first label, as in *.example.com")
    return AllowEntry(entry, host=_allow_host_name(name), port=port)


def parse_allow_entry(text: str) -> AllowEntry:
    """Parse one ``OUTBOUND_ALLOW`` entry strictly (the syntax is in this module's docstring).

    Args:
        text: The entry; surrounding whitespace is ignored.

    Returns:
        The parsed entry.

    Raises:
        ValueError: The entry is not one of the accepted forms; the message quotes it and
            says why (``invalid outbound allow entry '10.0.0.5/0': 10.0.0.5/0 has host bits
            set``).
    """
    try:
        return _parse_allow_entry(text.strip())
    except ValueError as exc:
        raise ValueError(f"invalid outbound allow entry {text!r}: {exc}") from None


def parse_allow_list(entries: Iterable[str]) -> tuple[AllowEntry, ...]:
    """Parse every entry of an allow-list, skipping blank ones; see `parse_allow_entry`.

    Raises:
        ValueError: An entry is invalid (the first one found).
    """
    return tuple(parse_allow_entry(entry) for entry in entries if entry.strip())


class OutboundPolicy:
    """The default block-list plus the deployment's allow-list; pure, no I/O.

    Args:
        allow: ``OUTBOUND_ALLOW`` entries: IP addresses, CIDR networks, host names and
            ``*.suffix`` wildcards, each optionally with ``:port``. They open destinations
            that are in a blocked range.

    Raises:
        ValueError: An allow entry is invalid (see `parse_allow_entry`).
    """

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.entries: tuple[AllowEntry, ...] = parse_allow_list(allow)

    def check(self, host: str, address: str, port: int | None = None) -> None:
        """Refuse connecting to `address` on behalf of `host` unless it is allowed.

        Args:
            host: The host name or IP literal from the URL.
            address: One address `host` resolved to (or the literal itself).
            port: The port to connect to; None when unknown, which no port-bound allow
                entry matches.

        Raises:
            OutboundBlocked: The address is in a blocked range and no allow entry opens it
                (by host name, wildcard or network, on this port), or `address` is not an IP
                address.
        """
        ip = parse_ip(address)
        if ip is None:
            raise OutboundBlocked(host, address, "resolver returned something that is not an IP")
        name = _normalize_host(host)
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (embedded := _embedded_ipv4(ip)):
            candidates.append(embedded[0])

        def opened(entry: AllowEntry, on_port: int | None) -> bool:
            return any(entry.allows(name, candidate, on_port) for candidate in candidates)

        if any(opened(entry, port) for entry in self.entries):
            return
        reason = blocked_reason(ip)
        if reason is None:
            return
        # Say so when the address is open on another port: the likeliest mistake.
        ports = sorted({e.port for e in self.entries if e.port is not None and opened(e, e.port)})
        if ports:
            listed = ", ".join(str(p) for p in ports)
            reason = f"{reason} (OUTBOUND_ALLOW opens it on port {listed} only)"
        raise OutboundBlocked(host, address, reason)
