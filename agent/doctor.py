"""`standardiste doctor`: the box checked end to end, one line per check, saying what to fix.

    OK    Asterisk reachable, ARI user accepted (Asterisk 22.5.0)
    FAIL  ARI password refused (HTTP 401): set the same password in ari.conf and ari.password_file

The exit code is 1 when any check fails (a WARN does not fail).
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import sqlite3
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final

from agent.actions.routes import REGISTRY
from agent.config import Config
from agent.store.health import integrity, probe_write
from agent.telephony.rtp import max_callers

CONTEXTS: Final = ("standardiste-inbound", "standardiste-answer", "standardiste-transfer")
"""The dialplan contexts asterisk-conf/extensions.conf provides and the service relies on."""
NEEDED_MODULES: Final = ("res_ari", "res_stasis", "res_pjsip", "chan_pjsip", "chan_rtp", "app_stasis",
                         "bridge_simple", "res_ari_channels", "res_ari_bridges", "res_ari_endpoints")
MIN_FREE_BYTES: Final = 1 << 30
"""Less free space than this where the store and the recordings live is a failure (1 GiB)."""


class Verdict(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    line: str

    def __str__(self) -> str:
        return f"{self.verdict.value:<5} {self.line}"


def run_doctor(config: Config, asterisk_cli: str = "asterisk -rx") -> list[Check]:
    checks = asyncio.run(_ari_checks(config))
    ari_up = checks[0].verdict is Verdict.OK
    if ari_up:
        checks += _cli_checks(shlex.split(asterisk_cli))
    checks.append(_models(config))
    checks.append(_store(config.paths.store))
    checks += asyncio.run(_routes(config))
    checks.append(_clock())
    checks.append(_disk(config.paths.store.parent))
    checks.append(_unstored(config.paths.messages))
    return checks


async def _ari_checks(config: Config) -> list[Check]:
    import httpx

    url = config.ari.url + "/ari"
    auth = (config.ari.username, config.ari.password)
    async with httpx.AsyncClient(timeout=5.0, auth=auth) as client:
        try:
            info = await client.get(url + "/asterisk/info")
        except httpx.TransportError:
            return [Check(Verdict.FAIL, f"Asterisk unreachable at {config.ari.url}: start it (systemctl start "
                                        "asterisk) and check http.conf (enabled, bindaddr, bindport)")]
        if info.status_code == 401:
            return [Check(Verdict.FAIL, "ARI password refused (HTTP 401): set the same password in ari.conf "
                                        f"[{config.ari.username}] and in ari.password_file")]
        if info.status_code != 200:
            return [Check(Verdict.FAIL, f"ARI answered HTTP {info.status_code} on /asterisk/info: check ari.conf")]
        version = info.json().get("system", {}).get("version", "?")
        out = [Check(Verdict.OK, f"Asterisk reachable, ARI user accepted (Asterisk {version})")]
        modules = await client.get(url + "/asterisk/modules")
        running = {str(m.get("name", "")).removesuffix(".so") for m in modules.json()
                   if str(m.get("status", "")).lower() == "running"} if modules.status_code == 200 else set()
        missing = [m for m in NEEDED_MODULES if m not in running]
        route = REGISTRY.get(config.sms.route)
        missing += [m for m in (route.asterisk_modules if route is not None else ()) if m not in running]
        out.append(Check(Verdict.FAIL, "modules not loaded: " + ", ".join(missing) + " (modules.conf: load => "
                                       "each, then core restart now)") if missing
                   else Check(Verdict.OK, f"the {len(NEEDED_MODULES)} modules the service needs are running"))
        return out


def _cli(cmd: Sequence[str], command: str) -> str | None:
    try:
        out = subprocess.run([*cmd, command], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _call_limit(cmd: Sequence[str]) -> Check:
    """Asterisk's `maxcalls` against its RTP range: past the range / 6, a burst runs the ports out."""
    settings, rtp = _cli(cmd, "core show settings") or "", _cli(cmd, "rtp show settings") or ""
    limit = re.search(r"Maximum calls:\s+(\d+|Not set)", settings)
    start, end = re.search(r"Port start:\s+(\d+)", rtp), re.search(r"Port end:\s+(\d+)", rtp)
    if limit is None or start is None or end is None:
        return Check(Verdict.WARN, "Asterisk's call limit and RTP range could not be read (core show settings, "
                                   "rtp show settings)")
    most = max_callers(int(start.group(1)), int(end.group(1)))
    advice = (f"set maxcalls = {most} in asterisk.conf [options] (asterisk-conf/asterisk.conf: the RTP range "
              f"{start.group(1)}-{end.group(1)} / 6), then restart Asterisk")
    if not limit.group(1).isdigit():
        return Check(Verdict.FAIL, f"Asterisk has no call limit: a burst of calls can run its RTP ports out; {advice}")
    if int(limit.group(1)) > most:
        return Check(Verdict.FAIL, f"Asterisk's call limit {limit.group(1)} exceeds what its RTP ports hold; {advice}")
    return Check(Verdict.OK, f"Asterisk's call limit {limit.group(1)} fits its RTP range "
                             f"{start.group(1)}-{end.group(1)} (at most {most})")


def _cli_checks(cmd: Sequence[str]) -> list[Check]:
    shown = _cli(cmd, "dialplan show")
    if shown is None:
        return [Check(Verdict.WARN, f"cannot run {' '.join(cmd)}: the dialplan and the trunk were not checked "
                                    "(run doctor as a user allowed to use the Asterisk CLI)")]
    missing = [c for c in CONTEXTS if f"'{c}'" not in shown]
    out = [Check(Verdict.FAIL, "dialplan contexts missing: " + ", ".join(missing) + " (copy asterisk-conf/"
                               "extensions.conf, then dialplan reload)") if missing
           else Check(Verdict.OK, "the dialplan contexts are present: " + ", ".join(CONTEXTS))]
    regs = _cli(cmd, "pjsip show registrations") or ""
    lines = [ln for ln in regs.splitlines() if "/" in ln and any(w in ln for w in ("Registered", "Rejected",
                                                                               "Unregistered", "Failed"))]
    if not lines:
        out.append(Check(Verdict.OK, "no outbound registration configured (a trunk by IP needs none)"))
    elif all("Registered" in ln and "Unregistered" not in ln for ln in lines):
        out.append(Check(Verdict.OK, f"trunk registered ({len(lines)} registration(s))"))
    else:
        out.append(Check(Verdict.FAIL, "trunk not registered: check the provider's credentials in pjsip.conf "
                                       "(pjsip show registrations)"))
    out.append(_call_limit(cmd))
    return out


MANIFEST: Final = Path(__file__).resolve().parents[1] / "models" / "manifest.yaml"


def _models(config: Config) -> Check:
    from agent.engines import french_asr
    from agent.models import installed, load_manifest

    models = config.paths.models
    broken = [d.name for d in models.iterdir() if d.is_dir() and not any(d.iterdir())] if models.is_dir() else []
    if MANIFEST.is_file() and models.is_dir():
        # A model folder from the manifest must carry the checksums of the pinned files it came from.
        broken += [spec.id for spec in load_manifest(MANIFEST)
                   if (models / spec.id).is_dir() and any((models / spec.id).iterdir())
                   and installed(models, spec) is None]
    if broken:
        return Check(Verdict.FAIL, f"model(s) incomplete or not matching the manifest's checksums in {models}: "
                                   f"{', '.join(broken)} (make models)")
    if french_asr(models) is None:
        return Check(Verdict.WARN, f"no French speech model in {models}: calls are taken as voice messages "
                                   "(make models on a box with internet)")
    return Check(Verdict.OK, f"French models installed in {models}")


def _store(path: Path) -> Check:
    try:
        probe_write(path)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
            return _damaged(path, str(exc))
        return Check(Verdict.FAIL, f"store {path} not writable ({exc}): give the service user write access "
                                   "to the file and its folder")
    found = integrity(path)
    if found != ["ok"]:
        return _damaged(path, "; ".join(found)[:200])
    return Check(Verdict.OK, f"store {path} writable, integrity ok")


def _damaged(path: Path, what: str) -> Check:
    return Check(Verdict.FAIL, f"store {path} damaged ({what}): stop the service, move it aside, copy the newest "
                               f"backup from {path.parent / 'backups'} in its place, start the service")


async def _routes(config: Config) -> list[Check]:
    out = []
    route = REGISTRY.get(config.sms.route)
    if route is None:
        out.append(Check(Verdict.WARN, "no SMS route (sms.route: none): the artisan gets no SMS"))
    else:
        verdicts = {True: Verdict.OK, False: Verdict.FAIL, None: Verdict.WARN}
        out += [Check(verdicts[p.ok], p.line) for p in await route.check(config.sms.settings)]
    if config.calendar is not None:
        from agent.actions.agenda import Calendars
        from agent.actions.calendar import CalDavCalendar

        cals = Calendars(CalDavCalendar(config.calendar))
        now = datetime.now().astimezone()
        try:
            busy = await cals.busy(now, now + timedelta(days=1), config.calendar.timeout_s + 1)
            out.append(Check(Verdict.OK, f"calendar {config.calendar.calendar!r} read ({len(busy)} busy period(s) "
                                         "in the next 24 h)"))
        except Exception as exc:
            out.append(Check(Verdict.FAIL, f"calendar {config.calendar.calendar!r} not readable "
                                           f"({type(exc).__name__}): check calendar.caldav url, user, password"))
        finally:
            cals.close()
    return out


def _clock() -> Check:
    if shutil.which("timedatectl") is None:
        return Check(Verdict.WARN, "cannot tell whether the clock is in sync (no timedatectl): bookings need it")
    out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                         text=True, timeout=10)
    if out.stdout.strip() == "yes":
        return Check(Verdict.OK, "clock in sync (NTP)")
    return Check(Verdict.WARN, "clock not in sync with NTP: enable systemd-timesyncd or chrony")


def _disk(folder: Path) -> Check:
    probe = folder if folder.exists() else Path("/")
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        return Check(Verdict.FAIL, f"only {free >> 20} MiB free under {probe}: free some space (recordings, logs)")
    return Check(Verdict.OK, f"{free >> 30} GiB free under {probe}")


def _unstored(messages: Path) -> Check:
    """Voice messages taken while the store could not be written: no lead holds them."""
    cards = sorted(messages.glob("message-*.json")) if messages.is_dir() else []
    if cards:
        return Check(Verdict.FAIL, f"{len(cards)} voice message(s) taken while the store could not be written, in "
                                   f"{messages}: no lead holds them; the caller's number is in the .json beside "
                                   "each .wav (delete both once called back)")
    return Check(Verdict.OK, "no voice message waiting outside the store")
