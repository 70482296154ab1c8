"""Body checks: 413 over the limit, 400 for anything not a JSON object with a model."""

import pytest

from mantle_gateway.core import body
from mantle_gateway.errors import InvalidRequestError, RequestTooLargeError


def test_parses_model_and_stream() -> None:
    parsed = body.parse(b'{"model":"openai.gpt-oss-120b","stream":true}')
    assert parsed.model == "openai.gpt-oss-120b"
    assert parsed.stream is True


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1,2]",
        b'"text"',
        b"{}",
        b'{"model":""}',
        b'{"model":5}',
        b'{"model":"m","stream":"yes"}',
        b"\xff\xfe",
    ],
)
def test_invalid_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body.parse(raw)
    assert info.value.status == 400


def test_stream_null_means_not_streamed() -> None:
    assert body.parse(b'{"model":"m","stream":null}').stream is False


def test_size_limit_is_413() -> None:
    body.check_size(b"x" * 10, 10)
    with pytest.raises(RequestTooLargeError) as info:
        body.check_size(b"x" * 11, 10)
    assert info.value.status == 413
