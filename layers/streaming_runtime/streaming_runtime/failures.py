"""An exception as the Runtime API's error document, and the log line that goes with it.

Lambda reads the same JSON object in three places: the body of `/invocation/{id}/error` and
`/init/error`, and, base64-encoded, the `Lambda-Runtime-Function-Error-Body` trailer of a stream
that failed after its first byte. Its fields are `errorMessage`, `errorType`, `stackTrace`
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-invokeerror).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass

_TOKEN = re.compile(r"[^A-Za-z0-9_.\-]")
_OWN_FRAMES = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True, slots=True)
class ErrorReport:
    error_type: str
    message: str
    stack_trace: tuple[str, ...] = ()

    @classmethod
    def from_exception(cls, error: BaseException, *, error_type: str | None = None) -> ErrorReport:
        """The class name is the type, as the managed runtimes report it; the frames are the
        handler's, as text lines (the runtime's own frames say nothing about the failure)."""
        summary = traceback.extract_tb(error.__traceback__)
        theirs = [frame for frame in summary if not frame.filename.startswith(_OWN_FRAMES)]
        frames = traceback.format_list(theirs or summary)
        name = error_type or type(error).__name__
        return cls(_token(name), str(error), tuple(frame.rstrip("\n") for frame in frames))

    def document(self) -> bytes:
        body = {
            "errorMessage": self.message,
            "errorType": self.error_type,
            "stackTrace": list(self.stack_trace),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def trailer_value(self) -> str:
        """Base64 of the document: a trailer is one header line, the JSON may hold anything.

        https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming
        """
        return base64.b64encode(self.document()).decode("ascii")


def _token(name: str) -> str:
    """Header values must be one plain line; a class name can be any identifier."""
    return _TOKEN.sub("_", name) or "Unhandled"


def log(report: ErrorReport, *, request_id: str | None, where: str) -> None:
    """One JSON line on stderr, which Lambda ships to CloudWatch Logs as one event."""
    line = {
        "level": "ERROR",
        "logger": "streaming_runtime",
        "where": where,
        "requestId": request_id,
        "errorType": report.error_type,
        "errorMessage": report.message,
        "stackTrace": list(report.stack_trace),
    }
    sys.stderr.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stderr.flush()


def warn(message: str, *, request_id: str | None) -> None:
    line = {"level": "WARNING", "logger": "streaming_runtime", "requestId": request_id}
    line["message"] = message
    sys.stderr.write(json.dumps(line, separators=(",", ":")) + "\n")
    sys.stderr.flush()
