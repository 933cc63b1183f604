"""One bench phone process: `python -m agent.bench.phone SPEC.json OUT.json`.

A pjsua2 endpoint places a few calls at set times (the wheel allows 4 calls per process, so the
bench runs several of these), and each caller speaks its turns as a person would: after the
receptionist has spoken and gone quiet. What each call did is written as JSON: its SIP Call-ID
(to find it in the packet capture) and when each turn was played, on time.monotonic() (one clock
for every process of the machine).

SPEC: {"server": "127.0.0.1:5060", "user": ..., "password": ..., "uri": "sip:...",
       "record_dir": ..., "quiet_s": 1.0, "timeout_s": 120,
       "calls": [{"number": "+33610000001", "start_at": <monotonic s>, "turns": ["turn-0.wav", ...]}]}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.devtools.phones import PhoneCall, Phones
from agent.devtools.speech import CLOCK_RATE_HZ, SPEECH_RMS

CHECK_EVERY_S = 0.1
"""How often a caller looks at what its phone heard (the recording's new bytes)."""


class Listener:
    """Reads a call's recording as it grows: the level of each 20 ms frame, without rereading."""

    FRAME_BYTES = CLOCK_RATE_HZ // 50 * 2

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 44  # pjmedia's WAV header
        self.loud: list[bool] = []

    def update(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        whole = len(data) - len(data) % self.FRAME_BYTES
        if not whole:
            return
        self.offset += whole
        frames = np.frombuffer(data[:whole], dtype="<i2").astype(np.float64).reshape(-1, self.FRAME_BYTES // 2)
        self.loud += list(np.sqrt((frames ** 2).mean(axis=1)) > SPEECH_RMS)

    def quiet_since(self, since_frame: int, quiet_frames: int) -> bool:
        """Sound was heard after frame `since_frame`, followed by `quiet_frames` silent ones."""
        tail = self.loud[since_frame:]
        voiced = [i for i, v in enumerate(tail) if v]
        return bool(voiced) and len(tail) - 1 - voiced[-1] >= quiet_frames


class Caller:
    def __init__(self, phones: Phones, account: Any, spec: dict[str, Any], uri: str, record_dir: Path,
                 quiet_s: float, timeout_s: float) -> None:
        self.phones = phones
        self.account = account
        self.spec = spec
        self.uri = uri
        self.record = record_dir / f"heard-{spec['number'].lstrip('+')}.wav"
        self.turns = [Path(t) for t in spec["turns"]]
        self.quiet_frames = int(quiet_s * 50)
        self.deadline = spec["start_at"] + timeout_s
        self.call: PhoneCall | None = None
        self.listener = Listener(self.record)
        self.next_turn = 0
        self.speaking_until = 0.0
        self.since_frame = 0
        self.checked_at = 0.0
        self.sip_call_id = ""

    @property
    def done(self) -> bool:
        return self.call is not None and self.call.ended

    def step(self, now: float) -> None:
        if self.call is None:
            if now >= self.spec["start_at"]:
                self.call = self.phones.call(self.account, self.uri, self.record, caller_number=self.spec["number"])
                self.sip_call_id = self.call.getInfo().callIdString
            return
        call = self.call
        if call.ended or call.media_active_at is None:
            return
        if now > self.deadline:
            call.hang_up()
            return
        hold = self.spec.get("hang_up_after_s")
        if hold is not None and now - call.media_active_at >= hold:
            call.hang_up()  # a call placed only to time its answer
            return
        if now < self.speaking_until or now - self.checked_at < CHECK_EVERY_S or not self.turns:
            return
        self.checked_at = now
        self.listener.update()
        if self.listener.quiet_since(self.since_frame, self.quiet_frames):
            if self.next_turn >= len(self.turns):
                call.hang_up()  # the last reply was heard: the caller has said all it had to say
                return
            end = call.say(self.turns[self.next_turn])
            self.next_turn += 1
            self.speaking_until = end
            self.since_frame = int((end - call.media_active_at) * 50)

    def result(self) -> dict[str, Any]:
        call = self.call
        return {"number": self.spec["number"], "sip_call_id": self.sip_call_id,
                "confirmed": bool(call and call.confirmed), "status": call.status if call else 0,
                "ended_by_remote": bool(call and call.ended_by_remote),
                "media_active_at": call.media_active_at if call else None,
                "spoken": call.spoken if call else [], "turns_planned": len(self.turns)}


def run(spec: dict[str, Any]) -> list[dict[str, Any]]:
    phones = Phones()
    account = phones.account(spec["server"], spec["user"], spec["password"])
    record_dir = Path(spec["record_dir"])
    callers = [Caller(phones, account, c, spec["uri"], record_dir, spec.get("quiet_s", 1.0),
                      spec.get("timeout_s", 120.0)) for c in spec["calls"]]
    try:
        while not all(c.done for c in callers):
            now = time.monotonic()
            for c in callers:
                c.step(now)
            if all(c.call is not None and c.deadline + 5 < now for c in callers):
                break
            phones._handle()
        return [c.result() for c in callers]
    finally:
        phones.close()


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
