"""Each call as the phone's socket saw it: the INVITE, its 200 OK, and every RTP packet both ways
with whether it carried audible sound. Calls are told apart by their SIP Call-ID; a call's RTP is
the flow to and from the port its INVITE's SDP offered."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from agent.audio.g711 import alaw_decode, ulaw_decode
from agent.bench.pcap import Datagram

AUDIBLE_RMS: Final = 300.0
"""A 20 ms frame louder than this (int16 RMS) is audible sound (the tests' SPEECH_RMS)."""
RTP_VERSION: Final = 2
_DECODERS: Final = {0: ulaw_decode, 8: alaw_decode}

_CALL_ID = re.compile(r"^(?:Call-ID|i)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_CSEQ = re.compile(r"^CSeq\s*:\s*\d+\s+(\w+)", re.IGNORECASE | re.MULTILINE)
_MEDIA = re.compile(r"^m=audio (\d+) ", re.MULTILINE)
_CONN = re.compile(r"^c=IN IP4 (\S+)", re.MULTILINE)


@dataclass
class WireCall:
    call_id: str
    invite_at: float
    """The phone's first INVITE (before any digest challenge), capture clock."""
    ok_at: float | None = None
    """The 200 OK to the INVITE."""
    rtp: tuple[str, int] | None = None
    """The phone's RTP address, from its SDP offer."""
    heard: list[tuple[float, bool]] = field(default_factory=list)
    """RTP packets arriving at the phone: (capture time, audible)."""
    said: list[tuple[float, bool]] = field(default_factory=list)
    """RTP packets the phone sent: (capture time, audible)."""


def sip_calls(datagrams: Iterable[Datagram]) -> dict[str, WireCall]:
    """The calls in a capture, with their RTP both ways, by SIP Call-ID."""
    calls: dict[str, WireCall] = {}
    by_rtp: dict[tuple[str, int], WireCall] = {}
    for d in datagrams:
        p = d.payload
        if p[:7] == b"INVITE " or p[:8] == b"SIP/2.0 ":
            _sip(d, calls, by_rtp)
            continue
        if len(p) < 12 or p[0] >> 6 != RTP_VERSION:
            continue
        if d.dst in by_rtp:
            by_rtp[d.dst].heard.append((d.at, _audible(p)))
        elif d.src in by_rtp:
            by_rtp[d.src].said.append((d.at, _audible(p)))
    return calls


def _sip(d: Datagram, calls: dict[str, WireCall], by_rtp: dict[tuple[str, int], WireCall]) -> None:
    text = d.payload.decode("utf-8", errors="replace")
    m = _CALL_ID.search(text)
    if m is None:
        return
    cid = m.group(1)
    if text.startswith("INVITE "):
        call = calls.get(cid)
        if call is None:
            call = calls[cid] = WireCall(cid, d.at)
        media, conn = _MEDIA.search(text), _CONN.search(text)
        if media and call.rtp is None:
            call.rtp = (conn.group(1) if conn else d.src[0], int(media.group(1)))
            by_rtp[call.rtp] = call
        return
    cseq = _CSEQ.search(text)
    call = calls.get(cid)
    if call is not None and call.ok_at is None and text.startswith("SIP/2.0 200") and cseq \
            and cseq.group(1).upper() == "INVITE":
        call.ok_at = d.at


def _audible(packet: bytes) -> bool:
    pt = packet[1] & 0x7F
    decode = _DECODERS.get(pt)
    if decode is None:
        return False  # comfort noise, DTMF events
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= start + 4:  # header extension
        start += 4 + 4 * int.from_bytes(packet[start + 2:start + 4], "big")
    payload = packet[start:]
    if packet[0] & 0x20 and payload:  # padding
        payload = payload[: len(payload) - payload[-1]]
    if not payload:
        return False
    samples = decode(payload).astype(np.float64)
    return bool(np.sqrt((samples ** 2).mean()) > AUDIBLE_RMS)
