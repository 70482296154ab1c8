"""A Lambda runtime for Python that streams responses, in the standard library only.

The managed Python runtimes do not stream (docs/decisions/0001-streaming-runtime.md). This layer
replaces the managed runtime's client with its own Runtime API loop, started through the
documented exec-wrapper hook:

    AWS_LAMBDA_EXEC_WRAPPER=/opt/streaming_runtime/exec_wrapper

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper

Modules, one job each:

    exec_wrapper    what Lambda starts: keeps the interpreter, runs `python -m streaming_runtime`
    bootstrap       start: environment, sys.path, import the handler once, report init errors
    loop            one invocation at a time: next event, context, handler, answer or error
    contract        what a handler may return and the bytes each shape becomes
    runtime_api     the Runtime API over HTTP/1.1, hand-framed chunks and error trailers
    context         the context object handlers receive
    failures        an exception as the Runtime API's error document, and its log line

The runtime knows nothing about the application: `contract` is the whole interface.
"""
