"""The sockets a process has open, read from /proc (no ss/psutil needed): what it listens on."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Sock:
    proto: str
    address: str
    port: int
    connected: bool

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback

    def __str__(self) -> str:
        return f"{self.proto} {self.address}:{self.port}{' (connected)' if self.connected else ''}"


def _addr(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    # /proc/net writes each 32-bit word in host (little-endian) order.
    ordered = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(ordered)), int(port, 16)


def listening(pid: int) -> list[Sock]:
    """The process's listening TCP sockets and its UDP sockets (bound, connected or not)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            f = line.split()
            if f[9] not in inodes or (proto.startswith("tcp") and f[3] != TCP_LISTEN):
                continue
            address, port = _addr(f[1])
            _, remote_port = _addr(f[2])
            out.append(Sock(proto, address, port, remote_port != 0))
    return out
