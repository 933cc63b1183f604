"""One SIP phone in its own process: `python -m tests.phone_worker ...` places one call and prints
JSON. The pjsua2 wheel is built with PJSUA_MAX_CALLS = 4, so tests that need more simultaneous
calls run one phone per process."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.devtools.phones import Phones
from agent.devtools.speech import speech_seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="host:port of the SIP server")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--timeout", type=float, default=40.0)
    args = ap.parse_args()
    phones = Phones()
    acc = phones.account(args.server, args.user, args.password)
    call = phones.call(acc, args.uri, Path(args.record))
    phones.wait_until(lambda: call.ended, args.timeout)
    result = {"confirmed": call.confirmed, "ended": call.ended, "ended_by_remote": call.ended_by_remote,
              "status": call.status,
              "speech_s": speech_seconds(call.heard()) if call.confirmed and call.ended else 0.0}
    phones.close()
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
