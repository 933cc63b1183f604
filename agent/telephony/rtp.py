"""RTP (RFC 3550) for the ExternalMedia leg: parsing, a small reordering jitter buffer, one socket.

Only what Asterisk's chan_rtp sends is accepted: version 2, the negotiated static payload type,
from the one address Asterisk gave for this call. Anything else is dropped and counted, never
raised: a stray or hostile packet must not disturb the call.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, cast

log = logging.getLogger(__name__)

RTP_HEADER: Final = struct.Struct("!BBHII")
JITTER_DEPTH: Final = 3
"""Packets held to put reordered ones back in order; a missing one is declared lost after this many
later ones have arrived (3 x 20 ms = 60 ms of added delay at most)."""
MAX_SEQ_JUMP: Final = 200
"""A sequence jump larger than this (4 s of audio) is a new stream, not loss: resynchronise."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes

    def encode(self) -> bytes:
        head = RTP_HEADER.pack(0x80, (0x80 if self.marker else 0) | self.payload_type,
                               self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        return head + self.payload


class MalformedPacket(ValueError):
    pass


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < RTP_HEADER.size:
        raise MalformedPacket("shorter than an RTP header")
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    if b0 >> 6 != 2:
        raise MalformedPacket("not RTP version 2")
    offset = RTP_HEADER.size + 4 * (b0 & 0x0F)  # CSRC list
    if b0 & 0x10:  # header extension
        if len(data) < offset + 4:
            raise MalformedPacket("truncated header extension")
        ext_words = struct.unpack_from("!H", data, offset + 2)[0]
        offset += 4 + 4 * ext_words
    end = len(data)
    if b0 & 0x20:  # padding: last byte says how much
        if end <= offset:
            raise MalformedPacket("padding without payload")
        end -= data[-1]
    if end <= offset:
        raise MalformedPacket("no payload")
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), bytes(data[offset:end]))


@dataclass
class RtpStats:
    received: int = 0
    delivered: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    dropped_malformed: int = 0
    dropped_foreign: int = 0
    dropped_payload_type: int = 0
    resyncs: int = 0
    sent: int = 0
    send_errors: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_malformed + self.dropped_foreign + self.dropped_payload_type


def _seq_diff(a: int, b: int) -> int:
    """a - b in 16-bit sequence space, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


@dataclass
class JitterBuffer:
    """Reorders packets by sequence number and reports gaps. Bounded: never more than `depth` held."""

    depth: int = JITTER_DEPTH
    stats: RtpStats = field(default_factory=RtpStats)
    _next: int | None = None
    _held: dict[int, RtpPacket] = field(default_factory=dict)

    def push(self, pkt: RtpPacket) -> list[RtpPacket | None]:
        """Returns what can be played now, in order; None stands for one lost packet."""
        if self._next is None:
            self._next = pkt.sequence
        diff = _seq_diff(pkt.sequence, self._next)
        if abs(diff) > MAX_SEQ_JUMP:
            self.stats.resyncs += 1
            base = self._next
            out: list[RtpPacket | None] = [self._held[s] for s in sorted(self._held, key=lambda s: _seq_diff(s, base))]
            self._held.clear()
            self._next = pkt.sequence
            diff = 0
            out += self._drain()
        else:
            out = []
        if diff < 0:
            self.stats.late += 1
            return out
        if pkt.sequence in self._held:
            self.stats.duplicate += 1
            return out
        self._held[pkt.sequence] = pkt
        out += self._drain()
        while len(self._held) > self.depth:
            # The next one is not coming in time: count it lost and move on.
            self.stats.lost += 1
            out.append(None)
            self._next = (self._next + 1) & 0xFFFF
            out += self._drain()
        return out

    def _drain(self) -> list[RtpPacket | None]:
        out: list[RtpPacket | None] = []
        while self._next is not None and self._next in self._held:
            out.append(self._held.pop(self._next))
            self._next = (self._next + 1) & 0xFFFF
        return out

    def __len__(self) -> int:
        return len(self._held)


class RtpSocket(asyncio.DatagramProtocol):
    """One UDP socket per call: receives from Asterisk's address only, sends back to it."""

    def __init__(self, payload_type: int, on_payload: Callable[[bytes | None, float], None],
                 stats: RtpStats | None = None) -> None:
        self.payload_type = payload_type
        self.on_payload = on_payload
        """Called with each payload in order (None for a lost packet) and its arrival time."""
        self.stats = stats or RtpStats()
        self.jitter = JitterBuffer(stats=self.stats)
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._talkspurt = True

    @classmethod
    async def open(cls, host: str, payload_type: int, on_payload: Callable[[bytes | None, float], None],
                   stats: RtpStats | None = None) -> RtpSocket:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(lambda: cls(payload_type, on_payload, stats),
                                                       local_addr=(host, 0))
        return proto

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        if self.remote is None or (addr[0], addr[1]) != self.remote:
            self.stats.dropped_foreign += 1
            return
        try:
            pkt = parse_rtp(data)
        except MalformedPacket:
            self.stats.dropped_malformed += 1
            return
        if pkt.payload_type != self.payload_type:
            self.stats.dropped_payload_type += 1
            return
        self.stats.received += 1
        for item in self.jitter.push(pkt):
            self.stats.delivered += item is not None
            self.on_payload(item.payload if item is not None else None, now)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: Asterisk's side went away; the call notices by ARI.
        self.stats.send_errors += 1

    def send(self, payload: bytes, samples: int, *, talkspurt_start: bool = False) -> None:
        """Send one frame's payload; `samples` advances the RTP timestamp."""
        if self.transport is None or self.remote is None or self.transport.is_closing():
            return
        pkt = RtpPacket(self.payload_type, self._seq, self._ts, self._ssrc,
                        talkspurt_start or self._talkspurt, payload)
        self._talkspurt = False
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + samples) & 0xFFFFFFFF
        self.transport.sendto(pkt.encode(), self.remote)
        self.stats.sent += 1

    @property
    def closed(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


PORTS_PER_CALLER: Final = 6
"""RTP ports one caller may hold in Asterisk: an RTP instance takes two (RTP, RTCP) for the caller's
channel, two for our media leg, two for the artisan's leg while it rings."""


def max_callers(rtp_start: int, rtp_end: int) -> int:
    """Asterisk's `maxcalls` for an RTP range. It counts the channels running the dialplan (the
    callers; not our media legs nor the artisan's), refused past it; at PORTS_PER_CALLER each, the
    range can never run out (it did: "couldn't allocate a port for RTP", then 488s, once a crash)."""
    return (rtp_end - rtp_start + 1) // PORTS_PER_CALLER
