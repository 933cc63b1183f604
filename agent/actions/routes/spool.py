"""The `spool` route: a file written into a gammu-smsd or smstools outgoing spool directory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.actions.routes.base import Probe, Request, RouteError, RouteType, is_endpoint
from agent.files import write_private
from agent.yamlnode import Node

SPOOL_FORMATS: Final = ("gammu", "smstools")


@dataclass(frozen=True)
class SpoolSettings:
    directory: Path
    format: str = "gammu"


class SpoolRoute:
    """gammu-smsd's files backend (`OUTA_<number>_<key>.txt`, the text alone, UTF-8) or smstools
    (`To:` header, blank line, text).
    Written under a dot name, fsynced, then renamed: the daemon never sees half a file. The key is in
    the name: a message tried again after a crash replaces its own file instead of adding one."""

    name = "spool"

    def __init__(self, settings: SpoolSettings) -> None:
        self.settings = settings

    async def send(self, key: str, to: str, body: str, kind: str = "") -> None:
        if is_endpoint(to):
            raise RouteError("the spool route sends to phone numbers, not to a SIP endpoint", retryable=False)
        safe_key = re.sub(r"[^A-Za-z0-9]", "-", key)
        number = to.lstrip("+")
        d = self.settings.directory
        if self.settings.format == "gammu":
            name, data = f"OUTA_+{number}_{safe_key}.txt", body
        else:
            name, data = f"standardiste-{safe_key}", f"To: {number}\nAlphabet: UTF-8\n\n{body}\n"
        try:  # 0640: the SMS daemon reads it through its group
            write_private(d / name, data, 0o640, durable=True, make_dir=False)
        except OSError as exc:
            raise RouteError(f"spool {d}: {exc.strerror}", retryable=True) from None

    async def close(self) -> None:
        pass


def parse(n: Node) -> SpoolSettings:
    directory = Path(n.text("directory", required=True))
    if not directory.is_dir():
        raise n.error("directory", "an existing spool directory (gammu-smsd OutboxPath, smstools outgoing)",
                      str(directory))
    settings = SpoolSettings(directory, n.choice("format", SpoolSettings.format, SPOOL_FORMATS))
    n.close()
    return settings


async def check(settings: SpoolSettings) -> list[Probe]:
    d = settings.directory
    probe = d / ".standardiste-doctor"
    try:
        probe.write_text("")
        probe.unlink()
        ok = True
    except OSError:
        ok = False
    return [Probe(ok, f"SMS spool {d} " + (
        "writable" if ok else "not writable: give the service user write access (group of gammu-smsd)"))]


def _build(settings: SpoolSettings, _request: Request) -> SpoolRoute:
    return SpoolRoute(settings)


TYPE = RouteType(name="spool", parse=parse, build=_build, check=check, describe=lambda s: str(s.directory))
