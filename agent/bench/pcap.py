"""What tcpdump captured on the loopback, as UDP datagrams with their kernel timestamps.

`make bench` times calls at the phones from a packet capture: the moment a datagram crossed the
loopback is what the phone's socket saw, whatever the phone's own jitter buffer does after. The
classic pcap format (what `tcpdump -w` writes) is read here; only IPv4 UDP is kept.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LINKTYPE_ETHERNET: Final = 1
"""`tcpdump -i lo`: a 14-byte Ethernet header with zero addresses."""
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_LINUX_SLL2: Final = 276
"""`tcpdump -i any`: Linux cooked captures, v1 and v2."""
ETHERTYPE_IPV4: Final = 0x0800
IPPROTO_UDP: Final = 17

_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}


class PcapError(ValueError):
    pass


@dataclass(frozen=True)
class Datagram:
    at: float
    """Capture time, unix seconds (the kernel's CLOCK_REALTIME)."""
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_pcap(path: Path) -> Iterator[Datagram]:
    """Every IPv4 UDP datagram in a classic pcap file, in capture order. A file cut short (tcpdump
    stopped mid-write) ends at the last whole record."""
    data = path.read_bytes()
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise PcapError(f"{path}: not a pcap file (pcapng is not read: use tcpdump -w)")
    endian, unit = _MAGIC[data[:4]]
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    header = struct.Struct(endian + "IIII")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = header.unpack_from(data, pos)
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < incl:
            break
        udp = _udp(_ipv4(frame, linktype))
        if udp is not None:
            src, dst, payload = udp
            yield Datagram(sec + frac * unit, src, dst, payload)


def _ipv4(frame: bytes, linktype: int) -> bytes | None:
    if linktype == LINKTYPE_ETHERNET:
        proto, start = int.from_bytes(frame[12:14], "big"), 14
    elif linktype == LINKTYPE_LINUX_SLL:
        proto, start = int.from_bytes(frame[14:16], "big"), 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        proto, start = int.from_bytes(frame[0:2], "big"), 20
    else:
        raise PcapError(f"link type {linktype} is not read (capture with tcpdump -i lo or -i any)")
    return frame[start:] if proto == ETHERTYPE_IPV4 else None


def _udp(ip: bytes | None) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    if ip is None or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != IPPROTO_UDP:
        return None
    if int.from_bytes(ip[6:8], "big") & 0x3FFF:
        return None  # a fragment: SIP and RTP on the loopback never are
    ihl = (ip[0] & 0x0F) * 4
    udp = ip[ihl:]
    if len(udp) < 8:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    src = ".".join(str(b) for b in ip[12:16])
    dst = ".".join(str(b) for b in ip[16:20])
    return (src, sport), (dst, dport), udp[8:length]


def write_pcap(path: Path, datagrams: list[Datagram]) -> None:
    """A classic pcap (Ethernet link type) of these datagrams: for the bench's own tests."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for d in datagrams:
        udp = struct.pack("!HHHH", d.src[1], d.dst[1], 8 + len(d.payload), 0) + d.payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, IPPROTO_UDP, 0,
                         bytes(int(x) for x in d.src[0].split(".")), bytes(int(x) for x in d.dst[0].split(".")))
        frame = b"\0" * 12 + ETHERTYPE_IPV4.to_bytes(2, "big") + ip + udp
        sec = int(d.at)
        out.append(struct.pack("<IIII", sec, round((d.at - sec) * 1e6), len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
