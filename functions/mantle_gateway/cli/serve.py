"""`mantle-gateway serve`: the local door, with whatever it needs started beside it.

Without AWS_ENDPOINT_URL_DYNAMODB it starts an embedded DynamoDB whose tables live in a data
directory (`--data-dir`, default `.mantle-gateway/`; `cli/data_dir`): restored at start, saved
at exit and every 30 s while something changed. It creates the tables that are missing and a
demo key the first time, then shows that same key on every start. `--ephemeral` keeps nothing:
fresh tables and a new demo key, printed once. With `--upstream simulator` it answers from the
built-in Mantle simulator, so a newcomer with no AWS account sees the whole path work; the
banner says so plainly.
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
    from mantle_gateway.cli.data_dir import DataDir, Saver
    from mantle_gateway.cli.local_env import EmbeddedDynamoDB
    from mantle_gateway.doors.local import LocalServer
    from mantle_gateway.store.background_ledger import BackgroundLedger
    from mantle_gateway.store.keys import KeyStore


def run(args: argparse.Namespace) -> int:
    from mantle_gateway import wiring
    from mantle_gateway.doors.local import serve
    from mantle_gateway.store.dynamo import Dynamo
    from mantle_gateway.store.keys import KeyStore
    from mantle_gateway.store.tables import create_tables
    from mantle_gateway.upstream import signing

    settings = Settings.load()
    notes: list[str] = []
    demo_key = None
    embedded: EmbeddedDynamoDB | None = None
    data: DataDir | None = None
    if settings.dynamodb_endpoint_url is None:
        embedded, data, note = _embedded_dynamodb(args)
        settings = dataclasses.replace(settings, dynamodb_endpoint_url=embedded.endpoint_url)
        notes.append(note)
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
    saver: Saver | None = None
    if embedded is not None:
        create_tables(dynamo, settings)  # those missing from the restored snapshot
        demo_key, lines = _demo_key(KeyStore(dynamo, settings.keys_table), data, embedded)
        notes += lines
        saver = data.keep(embedded) if data is not None else None

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
    try:
        _serve_until_stopped(server, usage_writer, args.drain_timeout)
    finally:
        if saver is not None:
            saver.close()  # after the door and the usage drain, so their last writes are in
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
            f"{unwritten} usage records could not be written in time: each is logged as one "
            "replayable line; write them with `mantle-gateway usage replay LOGFILE`.",
            file=sys.stderr,
        )


def _embedded_dynamodb(
    args: argparse.Namespace,
) -> tuple[EmbeddedDynamoDB, DataDir | None, str]:
    """The embedded DynamoDB, its tables restored from the data dir unless `--ephemeral`."""
    from mantle_gateway.cli.data_dir import SAVE_EVERY_SECONDS, DataDir
    from mantle_gateway.cli.local_env import EmbeddedDynamoDB

    data = None if args.ephemeral else DataDir.open(args.data_dir)
    dynamodb = EmbeddedDynamoDB().start()
    note = f"DynamoDB: embedded (moto) at {dynamodb.endpoint_url}; "
    if data is None:
        return dynamodb, None, note + "--ephemeral: data lasts until exit"
    restored = data.restore(dynamodb)
    found = "new" if restored is None else f"{restored:,} items restored"
    return (
        dynamodb,
        data,
        note + f"data in {data.path} ({found}; saved at exit and every {SAVE_EVERY_SECONDS:.0f} s)",
    )


def _demo_key(
    keys: KeyStore, data: DataDir | None, dynamodb: EmbeddedDynamoDB
) -> tuple[str, list[str]]:
    """The demo key kept in the data dir if it still works, else a new one (kept there)."""
    from mantle_gateway.core.auth import digest, issue_key

    if data is not None and (secret := data.demo_secret()):
        record = keys.get_by_digest(digest(secret))
        if record is not None and record.status == "active":
            return secret, [f"Demo key ({record.key_id}): {secret}", _kept(data)]
    secret, record = issue_key(keys, name="demo", now=datetime.now(UTC))
    if data is None:
        return secret, [f"Demo key ({record.key_id}), shown once: {secret}"]
    data.save(dynamodb)  # the key's record first, then the secret that refers to it
    data.remember_demo_secret(secret)
    return secret, [f"Demo key ({record.key_id}), new: {secret}", _kept(data)]


def _kept(data: DataDir) -> str:
    return (
        f"  (its secret is kept in {data.demo_key_file}, mode 0600, to show it on the next "
        "start; DynamoDB holds only its digest)"
    )
