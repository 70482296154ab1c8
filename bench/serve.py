"""Child-process entry: `python -m bench.serve ROLE READY_FILE [--simulator URL --dynamodb URL]`.

Each server runs in its own process so that the simulator, moto and the gateway do not share
one GIL with each other or with the load-generating client threads, as they would not in
production either. A child writes `{"url": …, "pid": …}` to READY_FILE once it listens (written
whole, then renamed, so the parent never reads half of it) and serves until it is terminated.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path

from bench.tap import CallLog, Tap


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("role", choices=("dynamodb", "simulator", "gateway", "floor"))
    parser.add_argument("ready_file", type=Path)
    parser.add_argument("--simulator", default="")
    parser.add_argument("--dynamodb", default="")
    args = parser.parse_args(argv)
    if args.role == "dynamodb":
        _dynamodb(args.ready_file)
    elif args.role == "simulator":
        _simulator(args.ready_file)
    elif args.role == "floor":
        _floor(args.ready_file, args.simulator, args.dynamodb)
    else:
        _gateway(args.ready_file, args.simulator, args.dynamodb)


def _ready(path: Path, url: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    partial.rename(path)


def _dynamodb(ready: Path) -> None:
    from mantle_gateway.cli.local_env import EmbeddedDynamoDB

    server = EmbeddedDynamoDB().start()
    _ready(ready, server.endpoint_url)
    threading.Event().wait()


def _simulator(ready: Path) -> None:
    from bench import payloads
    from mantle_gateway.simulator import Simulator

    sim = Simulator().start()
    sim.guardrail_delay = payloads.GUARDRAIL_DELAY  # only ApplyGuardrail calls wait
    _ready(ready, sim.url)
    threading.Event().wait()


def _gateway(ready: Path, simulator_url: str, dynamodb_url: str) -> None:
    from bench import payloads
    from mantle_gateway import wiring
    from mantle_gateway.doors.local import serve
    from mantle_gateway.settings import Settings
    from mantle_gateway.simulator import SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY
    from mantle_gateway.upstream.signing import static_credentials

    settings = Settings.from_env(
        {
            "AWS_REGION": "us-east-1",
            "MANTLE_ENDPOINT_URL": simulator_url,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": simulator_url,  # its ApplyGuardrail stand-in
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
            "POWERTOOLS_METRICS_NAMESPACE": "MantleGatewayBench",
            "PRICES_JSON": json.dumps({payloads.MESSAGES_MODEL: payloads.MESSAGES_PRICE}),
        }
    )
    log = CallLog()
    dynamo = log.dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)
    credentials = static_credentials(SIMULATOR_ACCESS_KEY, SIMULATOR_SECRET_KEY)
    gateway, usage_writer = wiring.build_local(
        settings, credentials=log.marking(credentials), dynamo=dynamo
    )
    server = serve(Tap(gateway, log, usage_writer), "127.0.0.1", 0, settings.max_request_bytes)
    _ready(ready, server.url)
    server.serve_forever()


def _floor(ready: Path, simulator_url: str, dynamodb_url: str) -> None:
    from bench import floor
    from mantle_gateway.settings import Settings

    settings = Settings.from_env(
        {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url}
    )
    server = floor.serve(simulator_url, settings)
    _ready(ready, server.url)
    threading.Event().wait()


if __name__ == "__main__":
    main()
