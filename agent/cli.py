"""`standardiste` command line: run, check-config, render-prompts, ari-user, dev."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from agent.telephony.call import CallPrompts, CallSettings

log = logging.getLogger("standardiste")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO; URLs carry channel ids only, but it is noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _prepare_prompts(config: Config) -> CallPrompts:
    """Render (or reuse) every fixed prompt with the best voice installed; the dialplan's fallback
    and beep included, so they play with no synthesis delay and with every engine down."""
    from agent.engines import load_tts
    from agent.telephony.call import CallPrompts
    from agent.tts.prompts import FIXED_PROMPTS, load_frames, render_beep, render_prompt

    engine, note = load_tts(config.paths.models)
    log.info("%s", note)
    out = config.paths.prompts
    for name, text in FIXED_PROMPTS.items():
        render_prompt(text, out, name=name, engine=engine)
    render_beep(out)
    rate = config.media.rate
    return CallPrompts(greeting=load_frames(render_prompt(config.call.greeting, out, engine=engine), rate),
                       goodbye=load_frames(render_prompt(config.call.goodbye, out, engine=engine), rate))


def call_settings(config: Config) -> CallSettings:
    from agent.telephony.call import CallSettings

    config.paths.messages.mkdir(parents=True, exist_ok=True)
    return CallSettings(media=config.media, messages_dir=config.paths.messages,
                        first_turn_wait_s=config.call.first_turn_wait_seconds,
                        next_turn_wait_s=config.call.next_turn_wait_seconds)


async def run_controller(config: Config, stop: asyncio.Event | None = None) -> None:
    from agent.telephony.ari import AriClient
    from agent.telephony.controller import Controller

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    prompts = await asyncio.to_thread(_prepare_prompts, config)
    log.info("prompts ready (greeting %.1f s)", len(prompts.greeting) * 0.02)
    ari = AriClient(config.ari.url, config.ari.username, config.ari.password, config.ari.app)
    controller = Controller(ari, prompts, call_settings(config))
    runner = asyncio.create_task(controller.run(stop))
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # raises what stopped it
        else:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
    finally:
        stopper.cancel()
        await ari.close()


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _setup_logging(config.log_level)
    from agent.telephony.ari import AriError

    try:
        asyncio.run(run_controller(config))
    except AriError as exc:
        log.error("stopped: %s", exc)
        return 1
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Service configs and dialplans alike (a dialplan has a `business:` section)."""
    import yaml

    from agent.dialogue.schema import load_dialplan

    for file in args.files:
        try:
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            data = None
        if isinstance(data, dict) and "business" in data:
            plan = load_dialplan(file)
            print(f"{file}: OK (dialplan for {plan.business}, {plan.trade.label})")
        else:
            load_config(file)
            print(f"{file}: OK")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from agent.dialogue.simulate import load_scenarios, run_sync

    extractor = None
    if args.llm == "auto":
        try:
            from agent.engines import load_llm

            extractor, _ = load_llm(Path(args.models))
        except (ImportError, RuntimeError) as exc:
            print(f"(no LLM: {exc})", file=sys.stderr)
    results = [run_sync(s, extractor) for s in load_scenarios(Path(args.scenario))]
    out = results[0] if len(results) == 1 else results
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for r in results:
            for reply in r["replies"]:
                print(f"agent> {reply}")
            print(f"lead: {r['lead']}\nurgency: {r['urgency']}  action: {r['action']}  booking: {r['booking']}\n")
    return 0


def cmd_render_prompts(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _prepare_prompts(config)
    print(f"prompts written to {config.paths.prompts}")
    return 0


def cmd_ari_user(args: argparse.Namespace) -> int:
    from agent.telephony.devasterisk import ari_user_section

    secret_file = Path(args.password_file)
    if not secret_file.exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(24) + "\n")
        secret_file.chmod(0o600)
        print(f"new ARI password written to {secret_file}", file=sys.stderr)
    section = ari_user_section(args.username, secret_file.read_text().strip())
    if args.out:
        Path(args.out).write_text(section)
        Path(args.out).chmod(0o640)
    else:
        sys.stdout.write(section)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from agent.telephony.devasterisk import SOFTPHONE_USER, DevAsterisk, Ports

    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    ast = DevAsterisk(run_dir, Ports.free(http=args.http_port, sip=args.sip_port))
    ast.render()
    config_path = ast.controller_config(run_dir / "standardiste.yaml")
    config = load_config(config_path)
    _setup_logging(config.log_level)
    print(f"Starting Asterisk {ast.install.version} (run dir {run_dir}) ...", flush=True)
    ast.start()
    try:
        missing = ast.missing_modules()
        if missing:
            print("warning: modules not running: " + ", ".join(missing), file=sys.stderr)
        print(f"""
Standardiste is answering on a local Asterisk. Call it from any softphone:
  SIP server : 127.0.0.1:{ast.ports.sip} (UDP)
  username   : {SOFTPHONE_USER}
  password   : {ast.softphone_password}
  dial       : 100 (any number)       e.g. {ast.sip_uri}
ARI: {ast.ari_url}/ari (user standardiste, password in {run_dir / 'ari-password'})
Voice messages (agent down): {ast.messages}
Asterisk log: {ast.log_file}
Ctrl-C stops both.
""", flush=True)
        asyncio.run(run_controller(config))
    finally:
        ast.stop()
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from agent.models import ModelError, install, installed, load_manifest

    specs = load_manifest(Path(args.manifest))
    if args.only:
        unknown = set(args.only) - {s.id for s in specs}
        if unknown:
            print(f"unknown model id(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        specs = [s for s in specs if s.id in args.only]
    models_dir = Path(args.dir)
    if args.action == "status":
        for spec in specs:
            where = installed(models_dir, spec)
            print(f"{spec.id:32} {spec.kind:4} {'installed in ' + str(where) if where else 'not installed'}"
                  f"  ({spec.licence})")
        return 0
    failed = 0
    for spec in specs:
        try:
            path = install(spec, models_dir, pin=args.pin)
            print(f"{spec.id}: installed in {path}")
        except ModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="standardiste", description="On-premise AI phone receptionist.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the ARI controller")
    p.add_argument("--config", required=True, help="service config YAML")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate config files and exit")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("simulate", help="run a conversation from text turns (SCENARIO.yaml)")
    p.add_argument("scenario")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.add_argument("--llm", choices=("auto", "none"), default="none",
                   help="auto: ask the LLM for what rules missed (slower); none: rules only")
    p.add_argument("--models", default="models")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("render-prompts", help="render the fixed prompts (incl. the dialplan fallback)")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_render_prompts)

    p = sub.add_parser("ari-user", help="write the ari.conf user section (crypt password)")
    p.add_argument("--username", default="standardiste")
    p.add_argument("--password-file", required=True, help="created with a random password if absent")
    p.add_argument("--out", help="file to write (default: stdout)")
    p.set_defaults(func=cmd_ari_user)

    p = sub.add_parser("models", help="install or list the production French models")
    p.add_argument("action", choices=("install", "status"))
    p.add_argument("--dir", default="models", help="where models are installed (default: models)")
    p.add_argument("--manifest", default=str(Path(__file__).resolve().parents[1] / "models" / "manifest.yaml"))
    p.add_argument("--only", nargs="+", help="model ids")
    p.add_argument("--pin", action="store_true", help="accept files with no sha256 pinned yet (prints them)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("dev", help="a private Asterisk on loopback plus the controller (make run)")
    p.add_argument("--run-dir", default=".run")
    p.add_argument("--sip-port", type=int, default=5060)
    p.add_argument("--http-port", type=int, default=0, help="0 = any free port")
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
