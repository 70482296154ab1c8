"""Start: read the environment, set sys.path, import the handler once, then serve forever.

The initialization tasks of a custom runtime
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-build):
read `_HANDLER`, `LAMBDA_TASK_ROOT`, `AWS_LAMBDA_RUNTIME_API`; load the handler, running its
module's global code once so pools and caches live as long as the process; on failure call
`/runtime/init/error` and exit.

The init error's type is what the managed Python runtime reports for the same failure: a
`Runtime.*` category when the runtime itself could not find or import the handler (bad name,
import or syntax error, missing function, bad configuration), else the class name of the
exception the handler's module raised while it was imported (a `ConfigError`, a `KeyError`).

Environment read here and nowhere else:

    AWS_LAMBDA_RUNTIME_API           host:port of the Runtime API (set by Lambda)
    _HANDLER                         module.function, e.g. mantle_gateway.doors.lambda_entry.handler
    LAMBDA_TASK_ROOT                 the function's code (set by Lambda; default /var/task)
    STREAMING_RUNTIME_RESPONSE_MODE  streaming (default) | buffered: how HTTP answers are sent.
                                     The Runtime API never says how the function was invoked, so
                                     the function's configuration must (docs/decisions/0001).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping

from streaming_runtime import failures
from streaming_runtime.failures import ErrorReport
from streaming_runtime.loop import Handler, ResponseMode, serve
from streaming_runtime.runtime_api import RuntimeApi

MODE_VARIABLE = "STREAMING_RUNTIME_RESPONSE_MODE"


class InitError(Exception):
    """The runtime could not start the handler; `error_type` is a `Runtime.*` category."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type

    def report(self) -> ErrorReport:
        """The frames are the cause's (where the import failed), when there is one."""
        cause = self.__cause__
        frames = () if cause is None else ErrorReport.from_exception(cause).stack_trace
        return ErrorReport(self.error_type, str(self), frames)


def main() -> None:
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    try:
        api = RuntimeApi(address)
    except ValueError as error:
        # Nowhere to report this but the log: outside Lambda, or Lambda is broken.
        failures.log(ErrorReport.from_exception(error), request_id=None, where="init")
        sys.exit(1)
    try:
        mode = response_mode(os.environ)
        extend_sys_path(os.environ)
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except InitError as error:
        report = error.report()
    except Exception as error:  # raised by the handler module's own code while it was imported
        report = ErrorReport.from_exception(error)
    else:
        serve(api, handler, mode)
        return
    failures.log(report, request_id=None, where="init")
    api.post_init_error(report)
    sys.exit(1)


def response_mode(env: Mapping[str, str]) -> ResponseMode:
    raw = env.get(MODE_VARIABLE, "").strip().lower() or ResponseMode.STREAMING.value
    try:
        return ResponseMode(raw)
    except ValueError:
        raise InitError(
            "Runtime.ConfigInvalid", f"{MODE_VARIABLE}: {raw!r} is not streaming or buffered"
        ) from None


def extend_sys_path(env: Mapping[str, str]) -> None:
    """What the managed Python runtime puts first on sys.path: the function code, then the
    layer folders (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html#packaging-layers-paths)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    wanted = [
        env.get("LAMBDA_TASK_ROOT", "/var/task"),
        f"/opt/python/lib/{version}/site-packages",
        "/opt/python",
    ]
    for path in reversed(wanted):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)


def load_handler(spec: str) -> Handler:
    """`package.module.function` (a `/` in the module part is read as a dot, as the managed
    runtime does). Imported once: a warm process keeps the module and its state."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler {spec!r}: not module.name")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as error:
        raise InitError("Runtime.UserCodeSyntaxError", f"Syntax error in {module_name}") from error
    except ImportError as error:
        raise InitError(
            "Runtime.ImportModuleError", f"Unable to import module {module_name!r}: {error}"
        ) from error
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise InitError(
            "Runtime.HandlerNotFound", f"Handler {function_name!r} not found in {module_name!r}"
        )
    checked: Handler = handler
    return checked
