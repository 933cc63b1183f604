"""A transfer's `dial` refused because the new leg is not in Stasis yet is asked again (a loaded CI
run failed a transfer as unreachable on "409 Channel not in Stasis application")."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.telephony import dialout
from agent.telephony.ari import AriError


@dataclass
class FakeAri:
    """Answers `dial` with the given statuses in turn (None: accepted); the real ARI stands in the
    live transfer tests, where the race cannot be produced on demand."""

    statuses: list[int | None]
    asked: list[str] = field(default_factory=list)

    async def request(self, method: str, path: str, **_: Any) -> None:
        self.asked.append(path)
        status = self.statuses.pop(0)
        if status is not None:
            raise AriError(f"{method} {path}: HTTP {status}", status=status)


@dataclass
class FakeCall:
    ari: FakeAri
    channel_id: str = "caller"


def test_dial_is_asked_again_while_the_leg_is_not_in_stasis() -> None:
    call = FakeCall(FakeAri([409, 409, None]))
    asyncio.run(dialout._dial(call, "leg", 5.0))  # type: ignore[arg-type]
    assert call.ari.asked == ["/channels/leg/dial"] * 3


def test_dial_gives_up_after_its_retries_and_on_any_other_error() -> None:
    call = FakeCall(FakeAri([409] * (dialout.DIAL_RETRIES + 1)))
    with pytest.raises(AriError):
        asyncio.run(dialout._dial(call, "leg", 5.0))  # type: ignore[arg-type]
    assert len(call.ari.asked) == dialout.DIAL_RETRIES + 1
    other = FakeCall(FakeAri([404]))
    with pytest.raises(AriError):
        asyncio.run(dialout._dial(other, "leg", 5.0))  # type: ignore[arg-type]
    assert len(other.ari.asked) == 1
