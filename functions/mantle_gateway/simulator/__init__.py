"""A local Mantle (`https://bedrock-mantle.{region}.api.aws`) for tests, benchmarks and demos.

    from mantle_gateway.simulator import Simulator, ErrorAnswer

    with Simulator() as sim:                      # 127.0.0.1, ephemeral port
        ...point the gateway at sim.url, signing with SIMULATOR_ACCESS_KEY/SECRET_KEY...
        sim.inject(ErrorAnswer(status=429, headers={"retry-after": "7"}))
        sim.requests[-1].signature_ok

It verifies SigV4 independently (hashlib/hmac, not botocore), serves the OpenAI-compatible
surface under `/v1` and `/openai/v1` with Mantle's per-model prefix rule and the Anthropic
Messages surface under `/anthropic/v1` (`messages`), streams real chunked SSE, keeps stored
responses (the newest 1,000, 64 MiB at most) and the recent requests (the newest 1,000, 16 MiB of
bodies at most), and misbehaves on demand (see `faults`). Standard library only, so importing it
costs next to nothing; it is left out of the Lambda bundle.
"""

from .faults import (
    BadUsage,
    DelayHeaders,
    DropMidStream,
    ErrorAnswer,
    Fault,
    ResetConnection,
    SlowStream,
    WrongRoute,
)
from .records import SeenRequest
from .routes import DEFAULT_MODEL_PREFIXES, prefix_for
from .server import (
    DEFAULT_MODELS,
    SIMULATOR_ACCESS_KEY,
    SIMULATOR_REGION,
    SIMULATOR_SECRET_KEY,
    Simulator,
)
from .sigv4 import SERVICE as SIGNING_SERVICE

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_MODEL_PREFIXES",
    "SIGNING_SERVICE",
    "SIMULATOR_ACCESS_KEY",
    "SIMULATOR_REGION",
    "SIMULATOR_SECRET_KEY",
    "BadUsage",
    "DelayHeaders",
    "DropMidStream",
    "ErrorAnswer",
    "Fault",
    "ResetConnection",
    "SeenRequest",
    "Simulator",
    "SlowStream",
    "WrongRoute",
    "prefix_for",
]
