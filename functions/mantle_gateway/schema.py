"""Table names, key attributes, index and TTL names: the one place infra and runtime agree on.

Stdlib only and free of imports, because `infra/` imports it and the Lambda handler pays for every
import on a cold start.

Tables (DESIGN §5):

keys    pk = SHA-256 hex digest of the secret; GSI `key_id-index` on `key_id` for the CLI.
usage   pk = "<key_id>#<YYYY-MM>", sk = "<ISO timestamp>#<request id>": one query answers
        "this key, this month"; GSI `month-index` (pk `month`, sk `sk`) answers "all keys, this
        month". Items of other kinds (stored-response owners) live under pk "response#<id>" and
        carry no `month`, so the month index never sees them.
limits  pk = "spend#<key_id>#<YYYY-MM>": one item per key and month holding the rate window
        and the budget counters (store/limits); a new minute or month overwrites or starts one,
        so nothing there needs a TTL.
"""

DEFAULT_KEYS_TABLE = "mantle-gateway-keys"
DEFAULT_USAGE_TABLE = "mantle-gateway-usage"
DEFAULT_LIMITS_TABLE = "mantle-gateway-limits"

KEYS_PK = "digest"
KEYS_ID_INDEX = "key_id-index"
KEYS_ID_ATTR = "key_id"

USAGE_PK = "pk"
USAGE_SK = "sk"
USAGE_MONTH_INDEX = "month-index"
USAGE_MONTH_ATTR = "month"
USAGE_TTL_ATTR = "expires_at"

LIMITS_PK = "pk"

RESPONSE_OWNER_PREFIX = "response#"
RESPONSE_OWNER_SK = "owner"

GUARDRAIL_ID_PATTERN = (
    r"[a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+"
)
GUARDRAIL_PATTERN = rf"(?P<id>{GUARDRAIL_ID_PATTERN}):(?P<version>[1-9][0-9]{{0,7}}|DRAFT)"
"""`GUARDRAIL_ID:VERSION` as keys, `GUARDRAIL_DEFAULT` and the stage config name a guardrail (the
id and version patterns of Bedrock's ApplyGuardrail API reference)."""
