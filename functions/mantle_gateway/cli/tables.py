"""`mantle-gateway tables create`: the tables where AWS_ENDPOINT_URL_DYNAMODB points."""

from __future__ import annotations

import argparse
import json

from mantle_gateway.settings import Settings


def run(args: argparse.Namespace) -> int:
    from mantle_gateway.store.dynamo import Dynamo
    from mantle_gateway.store.tables import create_tables

    settings = Settings.load()
    dynamo = Dynamo(region=settings.region, endpoint_url=settings.dynamodb_endpoint_url)
    names = create_tables(dynamo, settings)
    if args.json:
        print(json.dumps({"tables": names}))
    else:
        for name in names:
            print(f"table ready: {name}")
    return 0
