"""After the run's other tests: no DynamoDB table holds an issued key in plaintext.

Named to run last in this folder, so every key issued by the integration tests is covered.
"""

from __future__ import annotations

import json


def test_no_plaintext_key_in_any_table(settings, dynamo, new_key, issued_secrets) -> None:
    new_key()  # at least one, even when run alone
    dump = []
    for table in (settings.keys_table, settings.usage_table, settings.limits_table):
        # Small pages: one Scan of a whole table the run has filled can outlast the client's
        # read timeout on a loaded machine (moto answers a page at a time).
        pages = dynamo.client.get_paginator("scan").paginate(
            TableName=table, PaginationConfig={"PageSize": 100}
        )
        dump.extend(json.dumps(page["Items"]) for page in pages)
    text = "\n".join(dump)
    assert len(issued_secrets) > 1
    for secret in issued_secrets:
        assert secret not in text
        assert secret[4:20] not in text
