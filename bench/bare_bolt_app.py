"""A bare Bolt app: the baseline `bench/slack_fit.py` and `bench/capture.py` measure the bot against.

    SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=xoxb-... SLACK_API_URL=http://127.0.0.1:PORT/api/ \\
        .venv/bin/python bench/bare_bolt_app.py --port 3100

The same stack as `icp-bot run --http` (bot/server.py): slack-bolt's `App` with the signing
secret checked, its WSGI `SlackRequestHandler` on POST /slack/events, served by waitress with the
same thread count and limits. Two listeners: `/icp-fit` acknowledges, then answers "ok" on the
command's response_url — the shape of the bot's work without the fit check; and `message` events,
which Bolt acknowledges by itself and the listener leaves at that (the floor of bench/capture.py).
The Web API client points at SLACK_API_URL (Bolt calls auth.test there once at start, as it does
for the bot).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress.server import create_server

EVENTS_PATH = "/slack/events"  # as bot/server.py
MAX_BODY = 1_000_000  # bot/server.py's MAX_BODY
THREADS = 8  # bot/server.py's serve_http default; bench/slack_fit.py passes the bot's value with --threads


def build_app(signing_secret: str, token: str, api_url: str) -> App:
    client = WebClient(token=token, base_url=api_url.rstrip("/") + "/", timeout=15)
    app = App(client=client, signing_secret=signing_secret, logger=logging.getLogger("bare_bolt"))

    @app.command("/icp-fit")
    def icp_fit(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        ack()
        respond(text="ok", response_type="ephemeral")

    @app.event("message")
    def message(ack: Ack) -> None:
        ack()  # (Bolt has already acknowledged the event; nothing else is done with it)

    return app


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=THREADS, help="waitress worker threads")
    args = parser.parse_args()
    missing = [
        k for k in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_API_URL") if not os.environ.get(k)
    ]
    if missing:
        print(f"bare_bolt_app: set {', '.join(missing)}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(
        os.environ["SLACK_SIGNING_SECRET"], os.environ["SLACK_BOT_TOKEN"], os.environ["SLACK_API_URL"]
    )
    server = create_server(
        SlackRequestHandler(app, path=EVENTS_PATH),
        host=args.host,
        port=args.port,
        threads=args.threads,
        max_request_body_size=MAX_BODY,
        ident="bare-bolt",
        clear_untrusted_proxy_headers=True,
    )
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        server.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    print(f"bare Bolt app listening on http://{args.host}:{server.effective_port}{EVENTS_PATH}", flush=True)
    try:
        server.run()
    except OSError:
        if not stopping:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
