"""`mantle-gateway serve`: the local door, with whatever it needs started beside it.

Without AWS_ENDPOINT_URL_DYNAMODB it starts an embedded DynamoDB, creates the tables and a demo
key (printed once). With `--upstream simulator` it answers from the built-in Mantle simulator,
so a newcomer with no AWS account sees the whole path work; the banner says so plainly.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mantle_gateway.settings import Settings

if TYPE_CHECKING:
    from mantle_gateway.doors.local import LocalServer
    from mantle_gateway.store.background_ledger import BackgroundLedger


def run(args: argparse.Namespace) -> int:
    from mantle_gateway import wiring
    from mantle_gateway.core.auth import issue_key
    from mantle_gateway.doors.local import serve
    from mantle_gateway.store.dynamo import Dynamo
    from mantle_gateway.store.keys import KeyStore
    from mantle_gateway.store.tables import create_tables
    from mantle_gateway.upstream import signing

    settings = Settings.load()
    notes: list[str] = []
    demo_key = None
    if settings.dynamodb_endpoint_url is None:
        from mantle_gateway.cli.local_env import EmbeddedDynamoDB

        dynamodb = EmbeddedDynamoDB().start()
        settings = dataclasses.replace(settings, dynamodb_endpoint_url=dynamodb.endpoint_url)
        notes.append(f"DynamoDB: embedded (moto) at {dynamodb.endpoint_url}; data lasts until exit")
    else:
        notes.append(f"DynamoDB: {settings.dynamodb_endpoint_url}")

    credentials = None
    if args.upstream == "simulator":
        from mantle_gateway import simulator

        sim = simulator.Simulator(region=settings.region)
        sim.start()
        settings = dataclasses.replace(settings, mantle_endpoint_url=sim.url, bedrock_api_key=None)
        credentials = signing.static_credentials(
            simulator.SIMULATOR_ACCESS_KEY, simulator.SIMULATOR_SECRET_KEY
        )
        notes.append(f"Upstream: SIMULATED answers from the built-in Mantle simulator at {sim.url}")
    else:
        notes.append(f"Upstream: {settings.mantle_endpoint_url}")
        if not settings.bedrock_api_key and signing.default_credentials()() is None:
            notes.append(
                "Warning: no AWS credentials found, so upstream calls will fail; run "
                "`aws configure` or `aws sso login` (or set AWS_PROFILE), or use "
                "`--upstream simulator`."
            )

    dynamo = Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)
    if "embedded" in notes[0]:
        create_tables(dynamo, settings)
        demo_key, record = issue_key(
            KeyStore(dynamo, settings.keys_table), name="demo", now=datetime.now(UTC)
        )
        notes.append(f"Demo key ({record.key_id}), shown once: {demo_key}")

    gateway, usage_writer = wiring.build_local(settings, credentials=credentials)
    server = serve(
        gateway,
        args.host,
        args.port,
        settings.max_request_bytes,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
        request_timeout=args.request_timeout,
    )
    print(f"Mantle Gateway listening on {server.url}")
    print(
        f"  OpenAI base URL: {server.url}/openai/v1    Anthropic base URL: {server.url}/anthropic"
    )
    for note in notes:
        print("  " + note)
    key = demo_key or "<your gateway key>"
    print(
        f"  Try: curl -s {server.url}/openai/v1/chat/completions -H 'authorization: Bearer {key}'"
        " -H 'content-type: application/json'"
        ' -d \'{"model":"openai.gpt-oss-120b","messages":[{"role":"user","content":"hi"}]}\''
    )
    print(
        f"  Claude Code: ANTHROPIC_BASE_URL={server.url}/anthropic ANTHROPIC_API_KEY={key}"
        " claude -p 'say hi'"
    )
    if demo_key:
        month = datetime.now(UTC).strftime("%Y-%m")
        print(
            f"  Usage: AWS_ENDPOINT_URL_DYNAMODB={settings.dynamodb_endpoint_url} "
            f"mantle-gateway usage report --month {month}"
        )
    sys.stdout.flush()
    _serve_until_stopped(server, usage_writer, args.drain_timeout)
    return 0


def _serve_until_stopped(
    server: LocalServer, usage_writer: BackgroundLedger, drain_timeout: float
) -> None:
    """Serve until SIGTERM or Ctrl-C; then stop accepting, let the answers in flight finish
    (bounded), and write the queued usage (bounded: what is left is logged for `usage replay`)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start_background()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("Stopping: finishing answers in flight, then writing queued usage.", file=sys.stderr)
    server.shutdown()
    try:
        server.drain(drain_timeout)
        server.server_close()
        unwritten = usage_writer.drain(drain_timeout)
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, but keep every record
        unwritten = usage_writer.drain(0)
    if unwritten:
        print(
            f"{unwritten} usage records could not be written in time: each is in the log as a "
            "usage_write_failed line; write them with `mantle-gateway usage replay LOGFILE`.",
            file=sys.stderr,
        )
