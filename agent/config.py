"""Service configuration: YAML loaded once into frozen, validated objects.

An error names the file, the key path and what was expected, e.g.::

    /etc/standardiste/standardiste.yaml: ari.url: expected an http:// or https:// URL, got 'localhost'

`standardiste check-config FILE` runs exactly this code.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

from agent.actions.calendar import CalDavSettings
from agent.actions.delivery import RetryPolicy
from agent.actions.routes import NO_ROUTE, REGISTRY, ROUTE_NAMES, Via, via
from agent.asr.base import AsrSettings
from agent.audio.barge_in import BargeInSettings
from agent.audio.vad import (
    DEFAULT_AGGRESSIVENESS,
    DEFAULT_HANGOVER_MS,
    DEFAULT_MAX_UTTERANCE_MS,
    DEFAULT_MIN_RMS,
    DEFAULT_MIN_UTTERANCE_MS,
    DEFAULT_PAUSE_MS,
    DEFAULT_PRE_ROLL_MS,
    DEFAULT_RESUME_FRAMES,
    DEFAULT_START_FRAMES,
    DEFAULT_START_WINDOW,
    VadEngine,
    VadSettings,
)
from agent.dialogue.dialplan import TRADES, Dialplan, builtin_dialplan, load_dialplan
from agent.passwords import weakness
from agent.session.timing import (
    ACK_AFTER_S,
    ACK_EARLY,
    DEAD_AIR_S,
    ENGINE_TIMEOUT_S,
    FIRST_TURN_WAIT_S,
    NEXT_TURN_WAIT_S,
    CallTiming,
    Pipeline,
    RecogniserSetup,
)
from agent.telephony.media import FORMATS, MAX_LEAD_FRAMES, MediaSettings
from agent.yamlnode import ConfigError, Node, read_yaml

log = logging.getLogger(__name__)
DEFAULT_APP: Final = "standardiste"
DEFAULT_PASSWORD_ENV: Final = "STANDARDISTE_ARI_PASSWORD"
MIN_ARI_PASSWORD_LEN: Final = 16
"""ARI controls every call (and can originate them: toll fraud); `ari-user` writes 32 random characters."""


@dataclass(frozen=True)
class AriConfig:
    url: str
    """Base URL of Asterisk's HTTP server, without /ari (e.g. http://127.0.0.1:8088)."""
    username: str
    password: str
    app: str


@dataclass(frozen=True)
class PathsConfig:
    prompts: Path
    """Where pre-rendered prompts (8 kHz WAV) are written and read; Asterisk must read it too."""
    messages: Path
    """Where callers' spoken messages are saved (the dialplan's STANDARDISTE_MESSAGES too)."""
    models: Path
    """Where `make models` installed the production French models (stand-ins are used without)."""
    store: Path
    """The SQLite database of calls, turns, leads, actions and traces."""
    cache: Path
    """Rendered phrases (keyed by text and voice): safe to delete, rebuilt at start-up."""


@dataclass(frozen=True)
class Dialplans:
    """Which business answers a call: by the dialled number (DID), else the default."""

    default: Dialplan
    numbers: dict[str, Dialplan]

    def for_did(self, did: str) -> Dialplan:
        return self.numbers.get(did_key(did), self.default)

    def all(self) -> list[Dialplan]:
        seen: dict[str, Dialplan] = {self.default.file: self.default}
        for plan in self.numbers.values():
            seen.setdefault(plan.file, plan)
        return list(seen.values())


def did_key(did: str) -> str:
    """A dialled number in one form: digits only, +33X and 0033X as 0X (what the dialplan passes)."""
    digits = re.sub(r"[^0-9]", "", did)
    for prefix in ("0033", "33"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 9:
            return "0" + digits[len(prefix):]
    return digits


@dataclass(frozen=True)
class SmsConfig:
    """How the outbox's messages leave the box (`sms:`): one route of the registry
    (agent/actions/routes), its settings (`sms.<route>`), and how hard to try."""

    route: str = NO_ROUTE
    settings: object = None
    """The route's own settings (SipSettings, HttpSettings, ...), from its parser."""
    max_attempts: int = RetryPolicy.max_attempts
    """Tries before a message is given up and shown as failed."""
    first_retry_s: float = RetryPolicy.first_retry_s
    max_retry_s: float = RetryPolicy.max_retry_s
    """The wait between tries doubles from first_retry_s up to this cap, seconds."""

    def via(self, plan: Dialplan) -> Via:
        """How `plan`'s messages leave (where the artisan's go, which kinds the route carries)."""
        return via(self.route, self.settings, plan)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.first_retry_s, self.max_retry_s)


@dataclass(frozen=True)
class WebConfig:
    """The dashboard (`web:`): where it listens and where its secrets are."""

    enabled: bool = True
    host: str = "127.0.0.1"
    """Loopback by default; another address opens it to the network (put it behind TLS)."""
    port: int = 8080
    password_file: Path = Path("/var/lib/standardiste/web-password")
    """The scrypt hash `standardiste set-password` writes; without it the dashboard does not start."""
    secret_file: Path = Path("/var/lib/standardiste/web-secret")
    conversion_rate: float = 0.3
    """Share of leads that become jobs, for the "chiffre d'affaires récupéré" figure."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses of the reverse proxies whose X-Forwarded-For is believed (none by default: the TCP
    peer is the client, so a forged header can neither dodge the login limit nor reach /metrics)."""
    secure_cookies: bool = False
    """Behind TLS: the session cookie goes over HTTPS only, and HSTS is sent."""
    max_connections: int = 32
    """Requests the dashboard handles at once; more are answered 503 at once."""


@dataclass(frozen=True)
class Config:
    file: str
    ari: AriConfig
    paths: PathsConfig
    dialplans: Dialplans
    call: CallTiming
    media: MediaSettings
    log_level: str
    sms: SmsConfig = SmsConfig()
    calendar: CalDavSettings | None = None
    """The artisan's CalDAV calendar; None: the store's own agenda (`calendar.kind: local`)."""
    web: WebConfig = WebConfig()
    asr: AsrSettings = field(default_factory=AsrSettings)
    max_calls: int = 0
    """Conversations at once (`call.max_concurrent`); 0 here means the CPU-derived default."""


CALLS_PER_CORE: Final = 3
"""Default conversations per core. The recogniser costs up to 0.8 s of CPU per second of caller
speech (the stand-in model, README "Performance") and a caller speaks about 40 % of a call: about 3
calls per core; beyond it the recognition falls behind and every caller waits longer."""


def default_max_calls() -> int:
    return CALLS_PER_CORE * (os.cpu_count() or 1)


AUTO: Final = Path("auto")
"""`media.vad.engine: auto` while the config is read: Silero if its model is installed."""


def _parse_media(media: Node) -> MediaSettings:
    fmt = media.choice("format", "ulaw", tuple(FORMATS))
    vad = media.node("vad")
    vad_cfg = VadSettings(
        aggressiveness=vad.integer("aggressiveness", DEFAULT_AGGRESSIVENESS, lo=0, hi=3),
        start_frames=vad.integer("start_frames", DEFAULT_START_FRAMES, lo=1, hi=10),
        start_window=vad.integer("start_window", DEFAULT_START_WINDOW, lo=1, hi=20),
        resume_frames=vad.integer("resume_frames", DEFAULT_RESUME_FRAMES, lo=1, hi=20),
        hangover_ms=vad.integer("hangover_ms", DEFAULT_HANGOVER_MS, lo=100, hi=5000),
        min_utterance_ms=vad.integer("min_utterance_ms", DEFAULT_MIN_UTTERANCE_MS, lo=0, hi=2000),
        min_rms=vad.number("min_rms", DEFAULT_MIN_RMS, lo=0.0, hi=10000.0),
        pre_roll_ms=vad.integer("pre_roll_ms", DEFAULT_PRE_ROLL_MS, lo=0, hi=1000),
        max_utterance_ms=vad.integer("max_utterance_ms", DEFAULT_MAX_UTTERANCE_MS, lo=2000, hi=120000),
        pause_ms=vad.integer("pause_ms", DEFAULT_PAUSE_MS, lo=0, hi=5000),
        turn_model=vad.flag("turn_model", False),
    )
    if vad_cfg.start_frames > vad_cfg.start_window:
        raise vad.error("start_frames", f"at most start_window ({vad_cfg.start_window})", vad_cfg.start_frames)
    # Silero when its model is installed (auto, the default), by the figures: in street, car and wind
    # noise webrtcvad takes the silence for speech and sees 1-7 of 10 pauses, Silero 9-10
    # (scripts/compare_vad.py); what it lost before is understood and mended (its late onset,
    # TurnDetector._onset; a nasal onset after a pause, silero.GOING_ON and vad.SILERO_HOLD_MS; its
    # state drifting over a call until a short "oui" was not heard, silero.RESET_EVERY_S).
    engine = vad.choice("engine", "auto", ("auto", *(e.value for e in VadEngine)))
    vad_cfg = replace(vad_cfg, engine=VadEngine.SILERO if engine == "auto" else VadEngine(engine))
    auto = engine == "auto"
    if vad_cfg.pause_ms >= vad_cfg.hangover_ms:
        raise vad.error("pause_ms", f"0 (no decision) or less than hangover_ms ({vad_cfg.hangover_ms})",
                        vad_cfg.pause_ms)
    vad.close()
    if auto:
        vad_cfg = replace(vad_cfg, silero_model=AUTO)
    barge = media.node("barge_in")
    defaults = BargeInSettings()
    barge_cfg = BargeInSettings(
        enabled=barge.flag("enabled", defaults.enabled),
        min_frames=barge.integer("min_frames", defaults.min_frames, lo=1, hi=10),
        guard_ms=barge.integer("guard_ms", defaults.guard_ms, lo=0, hi=2000),
        echo_return_loss_db=barge.number("echo_return_loss_db", defaults.echo_return_loss_db, lo=0.0, hi=60.0),
    )
    barge.close()
    settings = MediaSettings(
        format=fmt,
        bind_host=media.text("bind_host", "127.0.0.1"),
        lead_frames=media.integer("lead_frames", 1, lo=0, hi=MAX_LEAD_FRAMES),
        vad=vad_cfg,
        barge_in=barge_cfg,
    )
    media.close()
    return settings


def _read_password(ari: Node) -> str:
    """The ARI password comes from a secrets file or the environment, never from the YAML."""
    if not any(ari.has(k) for k in ("password", "password_file", "password_env")):
        secret = os.environ.get(DEFAULT_PASSWORD_ENV, "")
    else:
        secret = ari.secret("ARI password", "password")
    if not secret:
        raise ari.error("password_file", f"a secrets file, or the environment variable {DEFAULT_PASSWORD_ENV} set")
    why = weakness(secret, MIN_ARI_PASSWORD_LEN)
    if why is not None:  # the value itself is never shown
        raise ari.error("password_file", f"a strong ARI password (this one is {why}; "
                        "`standardiste ari-user` writes a random one)")
    return secret


def parse_config(data: object, file: str) -> Config:
    root = Node(file, "", data if data is not None else {})
    ari = root.node("ari", required=True)
    url = ari.text("url", "http://127.0.0.1:8088")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ari.error("url", "an http:// or https:// URL of Asterisk's HTTP server", url)
    ari_cfg = AriConfig(
        url=url.rstrip("/").removesuffix("/ari"),
        username=ari.text("username", "standardiste"),
        password=_read_password(ari),
        app=ari.text("app", DEFAULT_APP),
    )
    ari.close()

    paths = root.node("paths")
    paths_cfg = PathsConfig(prompts=Path(paths.text("prompts", "/var/lib/standardiste/prompts")),
                            messages=Path(paths.text("messages", "/var/lib/standardiste/messages")),
                            models=Path(paths.text("models", "/var/lib/standardiste/models")),
                            store=Path(paths.text("store", "/var/lib/standardiste/standardiste.db")),
                            cache=Path(paths.text("cache", "/var/cache/standardiste/phrases")))
    paths.close()

    call = root.node("call")
    call_cfg = CallTiming(
        first_turn_wait_s=call.number("first_turn_wait_seconds", FIRST_TURN_WAIT_S, lo=1.0, hi=60.0),
        next_turn_wait_s=call.number("next_turn_wait_seconds", NEXT_TURN_WAIT_S, lo=0.5, hi=30.0),
        ack_after_s=call.integer("ack_after_ms", int(ACK_AFTER_S * 1000), lo=100, hi=3000) / 1000,
        ack_early=call.flag("ack_early", ACK_EARLY),
        dead_air_s=call.integer("dead_air_ms", int(DEAD_AIR_S * 1000), lo=0, hi=5000) / 1000,
        pipeline=Pipeline(call.choice("pipeline", Pipeline.STREAMING.value, tuple(p.value for p in Pipeline))),
        recogniser_setup=RecogniserSetup(call.choice("recogniser_setup", RecogniserSetup.BACKGROUND.value,
                                                     tuple(r.value for r in RecogniserSetup))),
        engine_timeout_s=call.integer("engine_timeout_ms", int(ENGINE_TIMEOUT_S * 1000), lo=500, hi=30000) / 1000,
    )
    max_calls = call.integer("max_concurrent", default_max_calls(), lo=1, hi=1000)
    call.close()
    media_cfg = _parse_media(root.node("media"))
    if media_cfg.vad.engine is VadEngine.SILERO:
        # Silero when its model is installed (auto, the default: webrtcvad otherwise); asked for by
        # name, a missing model is an error.
        model = paths_cfg.models / "smart-turn" / "silero_vad.onnx"
        auto = media_cfg.vad.silero_model == AUTO
        if not model.is_file() and not auto:
            raise ConfigError(file, "media.vad.engine", f"webrtc, or silero with {model} installed "
                              "(make venv or make models: scripts/install-turn-model.sh)", "silero")
        vad_cfg = replace(media_cfg.vad, silero_model=model) if model.is_file() else \
            replace(media_cfg.vad, engine=VadEngine.WEBRTC, silero_model=None)
        media_cfg = replace(media_cfg, vad=vad_cfg)
    asr = root.node("asr")
    asr_cfg = AsrSettings(threads=asr.integer("threads", AsrSettings.threads, lo=0, hi=64),
                          nice=asr.integer("nice", AsrSettings.nice, lo=0, hi=19),
                          keep=asr.integer("keep", AsrSettings.keep, lo=0, hi=64),
                          warm=asr.integer("warm", AsrSettings.warm, lo=0, hi=64))
    asr.close()

    log_level = root.choice("log_level", "info", ("debug", "info", "warning", "error"))
    dialplans = _parse_dialplans(root.node("dialplans", required=True), Path(file).parent)
    sms = _parse_sms(root.node("sms"))
    calendar = _parse_calendar(root.node("calendar"))
    web = root.node("web")
    web_cfg = WebConfig(enabled=web.flag("enabled", WebConfig.enabled), host=web.text("host", WebConfig.host),
                        port=web.integer("port", WebConfig.port, lo=1, hi=65535),
                        password_file=Path(web.text("password_file", str(WebConfig.password_file))),
                        secret_file=Path(web.text("secret_file", str(WebConfig.secret_file))),
                        conversion_rate=web.number("conversion_rate", WebConfig.conversion_rate, lo=0.0, hi=1.0),
                        trusted_proxies=_addresses(web, "trusted_proxies"),
                        secure_cookies=web.flag("secure_cookies", WebConfig.secure_cookies),
                        max_connections=web.integer("max_connections", WebConfig.max_connections, lo=2, hi=1024))
    web.close()
    root.close()
    return Config(file=file, ari=ari_cfg, paths=paths_cfg, dialplans=dialplans, call=call_cfg, media=media_cfg,
                  log_level=log_level, sms=sms, calendar=calendar, web=web_cfg, asr=asr_cfg, max_calls=max_calls)


def _addresses(node: Node, key: str) -> tuple[str, ...]:
    raw = node.raw(key, [])
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise node.error(key, "a list of IP addresses", raw)
    for a in raw:
        try:
            ipaddress.ip_address(a)
        except ValueError:
            raise node.error(key, "a list of IP addresses (no names, no ranges)", a) from None
    return tuple(raw)


def _parse_calendar(node: Node) -> CalDavSettings | None:
    kind = node.choice("kind", "local", ("local", "caldav"))
    settings = None
    if kind == "caldav":
        n = node.node("caldav", required=True)
        url = n.text("url", required=True)
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.password:
            raise n.error("url", "the CalDAV server's http:// or https:// URL, without credentials", url)
        password = n.secret("CalDAV password", "password")
        if not password:
            raise n.error("password_file", "a file holding the CalDAV password (or password_env)")
        settings = CalDavSettings(url=url, username=n.text("username", required=True), password=password,
                                  calendar=n.text("calendar", required=True),
                                  timeout_s=n.number("timeout_seconds", 5.0, lo=0.5, hi=60.0))
        n.close()
    node.close()
    return settings




def _parse_sms(node: Node) -> SmsConfig:
    route = node.choice("route", NO_ROUTE, ROUTE_NAMES)
    retry = node.node("retry")
    attempts = retry.integer("max_attempts", RetryPolicy.max_attempts, lo=1, hi=100)
    first = retry.number("first_delay_seconds", RetryPolicy.first_retry_s, lo=0.1, hi=3600.0)
    cap = retry.number("max_delay_seconds", RetryPolicy.max_retry_s, lo=1.0, hi=86400.0)
    retry.close()
    settings = REGISTRY[route].parse(node.node(route)) if route in REGISTRY else None
    node.close()
    return SmsConfig(route=route, settings=settings, max_attempts=attempts, first_retry_s=first, max_retry_s=cap)


def _dialplan(node: Node, key: str, base: Path) -> Dialplan:
    """A dialplan file (relative to the config's folder) or a built-in trade's example."""
    ref = node.text(key, required=True)
    if ref in TRADES:
        return builtin_dialplan(ref)
    path = Path(ref) if Path(ref).is_absolute() else base / ref
    if not path.is_file():
        raise node.error(key, "a dialplan YAML file, or a built-in trade (" + ", ".join(TRADES) + ")", ref)
    return load_dialplan(path)


def _parse_dialplans(node: Node, base: Path) -> Dialplans:
    default = _dialplan(node, "default", base)
    numbers: dict[str, Dialplan] = {}
    by_number = node.node("numbers")
    for did in by_number.keys():
        key = did_key(str(did))
        if len(key) < 2:
            raise by_number.error(str(did), "a dialled number (DID), e.g. \"0493000000\"")
        numbers[key] = _dialplan(by_number, str(did), base)
    by_number.close()
    node.close()
    return Dialplans(default, numbers)


def load_config(path: str | Path) -> Config:
    return parse_config(read_yaml(path), str(path))
