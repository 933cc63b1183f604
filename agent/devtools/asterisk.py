"""A private Asterisk for `make run` and the tests: the integrator's files from asterisk-conf/,
rendered into one run dir with its own loopback ports, so several can run side by side.

The integrator's files are copied as they are except for a few named values (ports, directories),
which must exist in them: if a file changes shape, rendering fails instead of drifting.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from agent.admin import ari_user_section
from agent.files import write_private
from agent.telephony.rtp import max_callers

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CONF_SRC: Final = REPO_ROOT / "asterisk-conf"
DEFAULT_CACHE: Final = Path(os.environ.get("STANDARDISTE_CACHE", "/var/cache/standardiste"))
START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0
ARI_USER: Final = "standardiste"
SOFTPHONE_USER: Final = "softphone"
ARTISAN_USER: Final = "artisan"
"""The dev profile's artisan phone (PJSIP/artisan): registers, receives transfers."""
SIP_PROBE_TIMEOUT_S: Final = 2.0

REQUIRED_MODULES: Final = (
    "res_pjsip.so", "chan_pjsip.so", "res_pjsip_outbound_registration.so", "res_pjsip_messaging.so",
    "res_pjsip_nat.so", "res_pjsip_authenticator_digest.so", "res_ari.so", "res_ari_events.so",
    "res_ari_channels.so", "res_ari_bridges.so", "res_ari_playbacks.so", "res_ari_recordings.so",
    "res_ari_endpoints.so", "res_stasis.so", "res_stasis_broadcast.so", "res_stasis_snoop.so",
    "res_stasis_recording.so", "res_stasis_playback.so", "chan_rtp.so", "bridge_softmix.so",
    "bridge_simple.so", "app_dial.so", "app_record.so", "app_playback.so", "app_stasis.so",
    "codec_ulaw.so", "codec_alaw.so", "format_wav.so", "format_sln.so", "res_http_websocket.so",
)
"""Modules Standardiste needs at run time; `DevAsterisk.missing_modules()` checks them."""



class AsteriskSetupError(RuntimeError):
    stage = "asterisk"


@dataclass(frozen=True)
class AsteriskInstall:
    bin: Path
    moddir: Path
    datadir: Path
    version: str

    @classmethod
    def find(cls, cache: Path = DEFAULT_CACHE) -> AsteriskInstall:
        """From ASTERISK_* variables, else the env file `make asterisk` writes."""
        values = {k: v for k, v in os.environ.items() if k.startswith("ASTERISK_")}
        env_file = cache / "asterisk.env"
        if "ASTERISK_BIN" not in values and env_file.exists():
            for line in env_file.read_text().splitlines():
                key, _, value = line.partition("=")
                values.setdefault(key.strip(), value.strip())
        try:
            return cls(Path(values["ASTERISK_BIN"]), Path(values["ASTERISK_MODDIR"]),
                       Path(values["ASTERISK_DATADIR"]), values.get("ASTERISK_VERSION", "?"))
        except KeyError:
            raise AsteriskSetupError(f"no Asterisk found: run `make asterisk` (looked in {env_file} "
                                     "and ASTERISK_BIN/ASTERISK_MODDIR/ASTERISK_DATADIR)") from None


@dataclass(frozen=True)
class Ports:
    http: int
    sip: int
    rtp_start: int
    rtp_end: int
    web: int = 0
    """The dashboard's TCP port (the controller's, not Asterisk's)."""

    @classmethod
    def free(cls, http: int = 0, sip: int = 0) -> Ports:
        """Free loopback ports; a random RTP block so side-by-side instances do not collide."""
        http = http or _free_port(socket.SOCK_STREAM)
        sip = sip or _free_port(socket.SOCK_DGRAM)
        for _ in range(50):
            start = 20000 + 2 * secrets.randbelow(10000)
            if all(_udp_free(p) for p in range(start, start + 40, 2)):
                return cls(http, sip, start, start + 399, _free_port(socket.SOCK_STREAM))
        raise AsteriskSetupError("no free RTP port block found on loopback")


def port_free(port: int, kind: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port (UDP or TCP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def sip_answers(port: int, timeout: float = SIP_PROBE_TIMEOUT_S) -> bool:
    """Send a SIP OPTIONS to 127.0.0.1:port; True if anything SIP answers (Asterisk's transport is up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        local = s.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        msg = (f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
               "Max-Forwards: 70\r\n"
               f"From: <sip:probe@127.0.0.1:{local}>;tag={secrets.token_hex(4)}\r\n"
               f"To: <sip:probe@127.0.0.1:{port}>\r\n"
               f"Call-ID: {secrets.token_hex(8)}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
               f"Contact: <sip:probe@127.0.0.1:{local}>\r\nContent-Length: 0\r\n\r\n")
        s.sendto(msg.encode(), ("127.0.0.1", port))
        try:
            data = s.recv(4096)
        except OSError:
            return False
    return data.startswith(b"SIP/2.0 ")


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def override(text: str, section: str, key: str, value: str, file: str) -> str:
    """Replace `key = ...` inside `[section]`; fail if that line is not there."""
    out, current, done = [], None, False
    for line in text.splitlines(keepends=True):
        head = re.match(r"\s*\[([^\]]+)\]", line)
        if head:
            current = head.group(1).strip()
        elif current == section and re.match(rf"\s*{re.escape(key)}\s*=>?", line):
            line = f"{key} = {value}\n"
            done = True
        out.append(line)
    if not done:
        raise AsteriskSetupError(f"asterisk-conf/{file}: no `{key}` in [{section}] to set for the dev profile")
    return "".join(out)


DEV_MAX_CALLS: Final = 20
"""The dev/test controller's `call.max_concurrent` (a burst of 8 beside 8 conversations in make bench)."""


class DevAsterisk:
    """One private Asterisk process with its run dir, ARI credentials and a softphone account."""

    def __init__(self, run_dir: Path | None = None, ports: Ports | None = None,
                 install: AsteriskInstall | None = None) -> None:
        self.install = install or AsteriskInstall.find()
        # Short path: the control socket lives in it and unix socket paths are limited to 107 bytes.
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix="sd-ast-"))
        self.ports = ports or Ports.free()
        self.etc = self.run_dir / "etc"
        self.prompts = self.run_dir / "prompts"
        self.messages = self.run_dir / "messages"
        self.log_file = self.run_dir / "log" / "messages.log"
        self.ari_password = secrets.token_urlsafe(18)
        self.softphone_password = secrets.token_urlsafe(12)
        self.artisan_password = secrets.token_urlsafe(12)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def sip_uri(self) -> str:
        return f"sip:100@127.0.0.1:{self.ports.sip}"

    # --- configuration -----------------------------------------------------------------------
    def render(self) -> None:
        # Private to this user: the run dir holds passwords (ari_users.conf, pjsip.conf), callers' voice
        # messages and the store; no other local user may enter it, whatever the modes inside.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
        for sub in ("etc", "log", "run", "lib", "lib/keys", "spool", "cache", "agi-bin", "prompts", "messages"):
            (self.run_dir / sub).mkdir(mode=0o700, exist_ok=True)
            (self.run_dir / sub).chmod(0o700)
        p = self.ports
        overrides = {
            "http.conf": [("general", "bindport", str(p.http))],
            "pjsip.conf": [("transport-udp", "bind", f"127.0.0.1:{p.sip}")],
            "rtp.conf": [("general", "rtpstart", str(p.rtp_start)), ("general", "rtpend", str(p.rtp_end))],
            "extensions.conf": [("globals", "STANDARDISTE_PROMPTS", str(self.prompts)),
                                ("globals", "STANDARDISTE_MESSAGES", str(self.messages))],
            "ari.conf": [],
        }
        for name, changes in overrides.items():
            text = (CONF_SRC / name).read_text()
            for section, key, value in changes:
                text = override(text, section, key, value, name)
            extra = CONF_SRC / "dev" / f"{name}.append"
            if extra.exists():
                text += self._fill(extra.read_text())
            write_private(self.etc / name, text)
        for name in ("asterisk.conf", "modules.conf", "logger.conf"):
            write_private(self.etc / name, self._fill((CONF_SRC / "dev" / name).read_text()))
        write_private(self.etc / "ari_users.conf", ari_user_section(ARI_USER, self.ari_password))
        for name, value in (("ari-password", self.ari_password), ("softphone-password", self.softphone_password),
                            ("artisan-password", self.artisan_password)):
            write_private(self.run_dir / name, value + "\n")

    def _fill(self, text: str) -> str:
        values = {
            "run_dir": str(self.run_dir), "moddir": str(self.install.moddir),
            "datadir": str(self.install.datadir), "sbindir": str(self.install.bin.parent),
            "softphone_password": self.softphone_password, "artisan_password": self.artisan_password,
            "maxcalls": str(max_callers(self.ports.rtp_start, self.ports.rtp_end)),
        }
        return re.sub(r"@@(\w+)@@", lambda m: values[m.group(1)], text)

    def controller_config(self, path: Path, *, dialplan: str = "plombier", store: Path | None = None,
                          cache: Path | None = None, models: Path | None = None, extra: list[str] | None = None,
                          sms: list[str] | None = None, **call: object) -> Path:
        """A controller config pointing at this Asterisk (YAML written by hand: no dependency).
        `dialplan` is a built-in trade or a file; phrases are cached where every run shares them;
        `sms` replaces the `sms:` section (its lines)."""
        lines = [
            "ari:", f"  url: {self.ari_url}", f"  username: {ARI_USER}",
            f"  password_file: {self.run_dir / 'ari-password'}",
            "paths:", f"  prompts: {self.prompts}", f"  messages: {self.messages}",
            f"  models: {models or REPO_ROOT / 'models'}",
            f"  store: {store or self.run_dir / 'standardiste.db'}",
            f"  cache: {cache or DEFAULT_CACHE / 'phrases'}",
            "dialplans:", f"  default: {dialplan}",
            # SMS as SIP MESSAGEs through this Asterisk: to the artisan's phone (the dialplan's
            # artisan_to), and every caller's mobile is the dev softphone.
            *(sms or ["sms:", "  route: sip", "  sip:", '    to: "pjsip:softphone"',
                      '    from: "sip:standardiste@localhost"', "  retry:", "    max_attempts: 4",
                      "    first_delay_seconds: 1"]),
            # The dashboard on a free loopback port, its secrets in the run dir.
            "web:", f"  port: {self.ports.web}", f"  password_file: {self.run_dir / 'web-password'}",
            f"  secret_file: {self.run_dir / 'web-secret'}",
        ]
        lines += extra or []  # more top-level sections (the tests' and the demo's calendar)
        # Bursts of 8 calls (tests, make bench) are conversations here whatever the cores: the
        # product's per-core cap (call.max_concurrent) is tested where it is set on purpose.
        call.setdefault("max_concurrent", DEV_MAX_CALLS)
        if call:
            lines.append("call:")
            lines += [f"  {k}: {v!r}" if isinstance(v, str) else f"  {k}: {v}" for k, v in call.items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    # --- process ----------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.run_dir / "run" / "asterisk.pid"

    def leftover_pid(self) -> int | None:
        """The pid of an Asterisk still running from this run dir (a previous run that crashed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        conf = str(self.etc / "asterisk.conf").encode()
        return pid if cmdline and cmdline[0].endswith(b"asterisk") and conf in cmdline else None

    def stop_leftover(self) -> int | None:
        """Stop an Asterisk a crashed run left in this run dir, before anything is rewritten under it."""
        pid = self.leftover_pid()
        if pid is None:
            return None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        self.pid_file.unlink(missing_ok=True)
        return pid

    def check_ports_free(self) -> None:
        """One clear line instead of an Asterisk that starts without its SIP transport."""
        if not port_free(self.ports.sip, socket.SOCK_DGRAM):
            raise AsteriskSetupError(f"SIP port 127.0.0.1:{self.ports.sip} (UDP) is already in use: stop what uses "
                                     "it, or choose another (make run SIP_PORT=5070)")
        if not port_free(self.ports.http, socket.SOCK_STREAM):
            raise AsteriskSetupError(f"ARI/HTTP port 127.0.0.1:{self.ports.http} is already in use: choose "
                                     "another (make run HTTP_PORT=...)")

    def start(self) -> None:
        if not (self.etc / "asterisk.conf").exists():
            self.render()
        fd = os.open(self.run_dir / "log" / "stdout.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        out = os.fdopen(fd, "ab")
        # umask 077: what Asterisk writes (voice messages, logs) is readable by this user only.
        self.proc = subprocess.Popen(
            [str(self.install.bin), "-C", str(self.etc / "asterisk.conf"), "-f", "-n"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, umask=0o077)
        out.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last = "not started"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AsteriskSetupError(f"Asterisk exited with {self.proc.returncode} at start-up:\n"
                                         + self.log_tail())
            try:
                r = httpx.get(f"{self.ari_url}/ari/asterisk/info", auth=(ARI_USER, self.ari_password),
                              timeout=2.0)
                if r.status_code == 200:
                    self.cli("core waitfullybooted")
                    if not sip_answers(self.ports.sip):
                        raise AsteriskSetupError(f"Asterisk runs but its SIP transport on 127.0.0.1:{self.ports.sip} "
                                                 "does not answer (port taken?):\n" + self.log_tail(20))
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise AsteriskSetupError(f"ARI not ready after {timeout:.0f} s ({last}):\n" + self.log_tail())

    def cli(self, command: str, timeout: float = 20.0) -> str:
        out = subprocess.run([str(self.install.bin), "-C", str(self.etc / "asterisk.conf"), "-rx", command],
                             capture_output=True, timeout=timeout, text=True)
        return out.stdout

    def missing_modules(self) -> list[str]:
        text = self.cli("module show like .so")
        running = {line.split()[0] for line in text.splitlines() if " Running" in line}
        return [m for m in REQUIRED_MODULES if m not in running]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.cli("core stop now", timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 80) -> str:
        parts = []
        for f in (self.log_file, self.run_dir / "log" / "stdout.log"):
            if f.exists():
                parts.append(f"--- {f} ---\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts) or "(no Asterisk log yet)"

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)
