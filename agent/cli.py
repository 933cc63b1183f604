"""`standardiste` command line: arguments only; the work is in app.py, admin.py and the rooms (the
`dev` and `demo` commands, and the tests' fault knob, in agent/devtools/)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent.yamlnode import ConfigError


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from agent.admin import setup_logging
    from agent.app import run_service
    from agent.config import load_config
    from agent.store.db import StoreError
    from agent.telephony.ari import AriError

    config = load_config(args.config)
    setup_logging(config.log_level)
    if os.environ.get("STANDARDISTE_FAULTS"):  # the tests' engine faults (agent/devtools/faults.py)
        from agent.devtools.faults import announce

        announce()
    try:
        asyncio.run(run_service(config, scripted_asr=Path(args.scripted_asr) if args.scripted_asr else None))
    except (AriError, StoreError) as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_set_password(args: argparse.Namespace) -> int:
    import getpass

    from agent.web.auth import set_password

    if args.file:
        path = Path(args.file)
    else:
        from agent.config import load_config

        path = load_config(args.config).web.password_file
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Mot de passe du tableau de bord : ")
        if getpass.getpass("Encore une fois : ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 1
    try:
        set_password(path, password)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"dashboard password set ({path}, scrypt hash, mode 0600)")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.store.queries import backup

    store = load_config(args.config).paths.store
    dest = backup(store, Path(args.dir) if args.dir else store.parent / "backups", keep=args.keep)
    print(f"store copied to {dest}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from agent.store.db import Store
    from agent.store.privacy import forget

    store_path = Path(args.store) if args.store else _config_store(args.config)
    store = Store(store_path)
    try:
        done = store.run_sync(lambda conn: forget(conn, args.number))
    except ValueError as exc:
        print(f"forget: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    # The number is not repeated: this output may end up in a log.
    print(f"erased: {done.calls} call(s), {done.leads} lead(s), {done.recordings} voice message(s), "
          f"{done.messages} SMS; the erasure is recorded without the number")
    return 0


def _config_store(config: str) -> Path:
    from agent.config import load_config

    return load_config(config).paths.store


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.doctor import Verdict, run_doctor

    checks = run_doctor(load_config(args.config), args.asterisk_cli)
    for check in checks:
        print(check)
    return 1 if any(c.verdict is Verdict.FAIL for c in checks) else 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from agent.admin import check_config

    for file in args.files:
        print(check_config(file))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from agent.app import simulation_extractor
    from agent.dialogue.simulate import print_results, simulate_file

    extractor = simulation_extractor(Path(args.models)) if args.llm == "auto" else None
    print_results(simulate_file(Path(args.scenario), extractor), as_json=args.json)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from agent.dialogue.chat import chat, dialplan_ref, parse_caller_id, parse_now

    plan = dialplan_ref(args.dialplan)
    return chat(plan, now=parse_now(args.now, plan), caller_id=parse_caller_id(args.caller_id), asr=args.asr,
                as_json=args.json)


def cmd_render_prompts(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.engines import load_tts
    from agent.session.phrasebook import PhraseBook

    config = load_config(args.config)
    book = PhraseBook(load_tts(config.paths.models)[0], config.paths.cache, config.media.rate)
    for plan in config.dialplans.all():
        book.prepare_dialplan(plan)
    book.render_fallback(config.paths.prompts)
    print(f"prompts written to {config.paths.prompts}, phrases to {config.paths.cache}")
    return 0


def cmd_ari_user(args: argparse.Namespace) -> int:
    from agent.admin import write_ari_user
    from agent.files import write_private

    section = write_ari_user(Path(args.password_file), args.username)
    if args.out:
        write_private(Path(args.out), section, 0o640)  # Asterisk's group reads it; never 644, even briefly
    else:
        sys.stdout.write(section)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from agent.devtools.run import run_dev

    return run_dev(Path(args.run_dir), sip_port=args.sip_port, http_port=args.http_port)


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.devtools.demo import run_demo

    return run_demo(Path(args.run_dir))


def cmd_leads(args: argparse.Namespace) -> int:
    from agent.admin import print_leads

    return print_leads(Path(args.store), args.since, "csv" if args.csv else "json" if args.json else "text")


def cmd_call(args: argparse.Namespace) -> int:
    from agent.admin import print_call

    return print_call(Path(args.store), args.id, as_json=args.json)


def cmd_models(args: argparse.Namespace) -> int:
    from agent.models import models_command

    return models_command(args.action, Path(args.manifest), Path(args.dir), args.only, pin=bool(args.pin))


DEV_STORE = ".run/standardiste.db"
"""The development store `make run` and `make demo` use (relative to the checkout)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="standardiste", description="On-premise AI phone receptionist.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the receptionist (ARI controller)")
    p.add_argument("--config", required=True, help="service config YAML")
    p.add_argument("--scripted-asr", help="tests and demos only: a file of known caller texts instead of ASR")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("set-password", help="set the dashboard's password (a scrypt hash, mode 0600)")
    p.add_argument("--config", default="/etc/standardiste/standardiste.yaml", help="where web.password_file is")
    p.add_argument("--file", help="write this file instead of the config's web.password_file")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_set_password)

    p = sub.add_parser("backup", help="copy the store (SQLite online backup), keeping the newest copies")
    p.add_argument("--config", default="/etc/standardiste/standardiste.yaml")
    p.add_argument("--dir", help="where the copies go (default: backups/ next to the store)")
    p.add_argument("--keep", type=int, default=14, help="how many copies to keep")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("forget", help="erase a person's calls, leads, voice messages and SMS by phone number "
                                      "(GDPR art. 17)")
    p.add_argument("number", help="the phone number, in any French or international form")
    p.add_argument("--config", default="/etc/standardiste/standardiste.yaml", help="where paths.store is")
    p.add_argument("--store", help="this store file instead of the config's")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("doctor", help="check the box end to end, one line per check (exit 1 on a failure)")
    p.add_argument("--config", default="/etc/standardiste/standardiste.yaml")
    p.add_argument("--asterisk-cli", default="asterisk -rx", help="how to run an Asterisk CLI command")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("check-config", help="validate service configs and dialplans, then exit")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("simulate", help="run a conversation from text turns (SCENARIO.yaml)")
    p.add_argument("scenario")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.add_argument("--llm", choices=("auto", "none"), default="none",
                   help="auto: ask the LLM for what rules missed (slower); none: rules only")
    p.add_argument("--models", default="models")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("chat", help="talk with a dialplan in the terminal (the caller types)")
    p.add_argument("dialplan", metavar="DIALPLAN", help="a trade (plombier, electricien, ...) or a dialplan file")
    p.add_argument("--asr", action="store_true", help="turn what is typed into ASR text (numbers as words, ...)")
    p.add_argument("--caller-id", help="the calling number (+33612345678, or anonymous)")
    p.add_argument("--now", help="the time of the call, ISO 8601 (default: now in the dialplan's time zone)")
    p.add_argument("--json", action="store_true", help="one JSON object per reply (a stable test interface)")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("render-prompts", help="render the fixed prompts and phrases (incl. the dialplan fallback)")
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

    p = sub.add_parser("dev", help="a private Asterisk on loopback plus the receptionist (make run)")
    p.add_argument("--run-dir", default=".run")
    p.add_argument("--sip-port", type=int, default=0, help="0 = 5060 if free, else any free port")
    p.add_argument("--http-port", type=int, default=0, help="0 = any free port")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("demo", help="a whole scripted call on a private Asterisk, printed live (make demo)")
    p.add_argument("--run-dir", default=".run")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("leads", help="list the leads calls left")
    p.add_argument("--store", default=DEV_STORE, help=f"the SQLite store (default: {DEV_STORE})")
    p.add_argument("--since", help="only leads from this date on (YYYY-MM-DD)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    p.set_defaults(func=cmd_leads)

    p = sub.add_parser("call", help="one call: transcript, lead, actions and trace")
    p.add_argument("id", type=int)
    p.add_argument("--store", default=DEV_STORE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_call)
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
