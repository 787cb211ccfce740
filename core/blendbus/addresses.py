"""Which addresses a server answers: loopback names, the Host headers it accepts (against DNS
rebinding), the origins of its own pages."""

from __future__ import annotations

import ipaddress
import socket


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def allowed_hosts(host: str, extra: list[str]) -> list[str]:
    """Host header patterns the server answers: loopback names, the bound host, `extra`; and, on a
    wildcard bind (0.0.0.0, ::), this machine's name and addresses. A name without a port allows
    any port. Anything else (a rebinding domain) is refused."""
    names = {*LOOPBACK_NAMES, *extra}
    if host in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname(), socket.getfqdn()}
        try:
            names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
        except OSError:
            pass
    elif host:
        names.add(host)
    return sorted({_host_pattern(n) for n in names})


def _host_pattern(name: str) -> str:
    """'example.com' -> 'example.com:*' (any port); 'example.com:8765' stays; IPv6 gets its brackets."""
    if name.startswith("["):
        return name if "]:" in name else f"{name}:*"
    if name.count(":") > 1:  # a bare IPv6 address
        return f"[{name}]:*"
    return name if ":" in name else f"{name}:*"


def own_origins(hosts: list[str], port: int | None) -> list[str]:
    """The origins of this server's own pages (its status page): every Host it answers (`allowed_hosts`),
    on its own port. A page from anywhere else, another local port included, stays refused."""
    if port is None:
        return []
    return sorted({f"http://{name.rpartition(':')[0]}:{port}" for name in hosts
                   if name.rpartition(":")[2] in ("*", str(port))})
