"""Typed ARI events: the few the controller acts on, and a generic one for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    """Asterisk channel state: Down, Ring, Ringing, Up, ..."""
    caller_number: str
    dialplan_app: str
    """Application the channel is in (e.g. "Stasis"), empty if none."""
    dialplan_app_data: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        caller = _mapping(data.get("caller"))
        dialplan = _mapping(data.get("dialplan"))
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            dialplan_app=str(dialplan.get("app_name", "")),
            dialplan_app_data=str(dialplan.get("app_data", "")),
        )

    def in_app(self, app: str) -> bool:
        """True when the channel sits in Stasis for `app` (not yet left for the dialplan)."""
        if self.dialplan_app != "Stasis":
            return False
        return self.dialplan_app_data.split(",", 1)[0] == app


@dataclass(frozen=True)
class Event:
    """Any ARI event; `data` is the raw JSON."""

    type: str
    data: dict[str, Any] = field(repr=False)

    @property
    def channel_ids(self) -> tuple[str, ...]:
        """Channels this event is about (used to route it to the call that owns them)."""
        ids = []
        for key in ("channel", "peer", "replace_channel"):
            chan = self.data.get(key)
            if isinstance(chan, dict) and chan.get("id"):
                ids.append(str(chan["id"]))
        return tuple(ids)


@dataclass(frozen=True)
class StasisStart(Event):
    channel: Channel = field(default=None)  # type: ignore[assignment]
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class StasisEnd(Event):
    channel: Channel = field(default=None)  # type: ignore[assignment]


@dataclass(frozen=True)
class ChannelGone(Event):
    """ChannelDestroyed or ChannelHangupRequest: the caller is gone or going."""

    channel: Channel = field(default=None)  # type: ignore[assignment]
    cause: int = 0


@dataclass(frozen=True)
class PlaybackEvent(Event):
    """PlaybackStarted / PlaybackContinuing / PlaybackFinished."""

    playback_id: str = ""
    state: str = ""
    target_uri: str = ""

    @property
    def channel_ids(self) -> tuple[str, ...]:
        if self.target_uri.startswith("channel:"):
            return (self.target_uri.removeprefix("channel:"),)
        return ()


@dataclass(frozen=True)
class Dial(Event):
    """Progress of a dial we started: `peer` is the dialled channel; `status` is empty while it
    rings, then ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL (or PROGRESS, RINGING)."""

    peer_id: str = ""
    status: str = ""

    @property
    def channel_ids(self) -> tuple[str, ...]:
        return (self.peer_id,) if self.peer_id else ()


@dataclass(frozen=True)
class DtmfReceived(Event):
    channel: Channel = field(default=None)  # type: ignore[assignment]
    digit: str = ""


@dataclass(frozen=True)
class StateChanged(Event):
    """ChannelStateChange: e.g. the dialled artisan's channel going Up when they answer."""

    channel: Channel = field(default=None)  # type: ignore[assignment]


@dataclass(frozen=True)
class Connected(Event):
    """Synthetic: the events websocket is (re)connected; anything may have happened meanwhile."""


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _integer(value: object) -> int:
    """A hangup cause as Asterisk sends it (an int); 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 6 else 0


def parse_event(data: dict[str, Any]) -> Event:
    """A typed event for the kinds the controller acts on; a generic Event for anything else, and for
    frames of the right kind with fields missing or of the wrong type (never an exception)."""
    kind = str(data.get("type", ""))
    chan = data.get("channel")
    channel = Channel.from_json(chan) if isinstance(chan, dict) else None
    if kind == "StasisStart" and channel:
        args = data.get("args")
        return StasisStart(kind, data, channel=channel,
                           args=tuple(str(a) for a in args) if isinstance(args, list) else ())
    if kind == "StasisEnd" and channel:
        return StasisEnd(kind, data, channel=channel)
    if kind in ("ChannelDestroyed", "ChannelHangupRequest") and channel:
        return ChannelGone(kind, data, channel=channel, cause=_integer(data.get("cause")))
    if kind == "Dial" and isinstance(data.get("peer"), dict):
        return Dial(kind, data, peer_id=str(data["peer"].get("id", "")), status=str(data.get("dialstatus", "")))
    if kind == "ChannelDtmfReceived" and channel:
        return DtmfReceived(kind, data, channel=channel, digit=str(data.get("digit", "")))
    if kind == "ChannelStateChange" and channel:
        return StateChanged(kind, data, channel=channel)
    if kind.startswith("Playback") and isinstance(data.get("playback"), dict):
        pb = data["playback"]
        return PlaybackEvent(kind, data, playback_id=str(pb.get("id", "")),
                             state=str(pb.get("state", "")), target_uri=str(pb.get("target_uri", "")))
    return Event(kind, data)
