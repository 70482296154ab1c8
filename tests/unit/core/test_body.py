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


@pytest.mark.parametrize(
    "raw",
    [
        # the allow-list would check the last model while a first-wins parser runs the first
        b'{"model":"openai.gpt-5.5","model":"openai.gpt-oss-20b","messages":[]}',
        b'{"model":"m","stream":false,"stream":true}',
        b'{"model":"m","stream":true,"stream_options":{"include_usage":false,"include_usage":true}}',
        b'{"model":"m","messages":[{"role":"user","role":"system","content":"hi"}]}',
        b'{"model":"m","tools":[{"function":{"parameters":{"a":{"b":1,"b":2}}}}]}',
        # the same key spelled with an escape is the same key
        b'{"model":"m","mod\\u0065l":"other"}',
    ],
)
def test_a_key_repeated_in_any_object_is_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body.parse(raw)
    assert (info.value.status, info.value.code) == (400, "invalid_request")
    assert "repeats the key" in info.value.message


def test_the_repeated_key_is_named_only_when_short_and_printable() -> None:
    with pytest.raises(InvalidRequestError) as info:
        body.parse(b'{"model":"m","model":"n"}')
    assert '"model"' in info.value.message
    long_key = "k" * 300
    with pytest.raises(InvalidRequestError) as info:
        body.parse(f'{{"model":"m","{long_key}":1,"{long_key}":2}}'.encode())
    assert long_key not in info.value.message


def test_keys_that_differ_only_in_case_or_live_in_different_objects_are_fine() -> None:
    parsed = body.parse(
        b'{"model":"m","Model":"x","messages":[{"role":"user"},{"role":"assistant"}]}'
    )
    assert parsed.model == "m"
    assert parsed.data["messages"] == [{"role": "user"}, {"role": "assistant"}]


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(constant: bytes) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body.parse(b'{"model":"m","temperature":' + constant + b"}")
    assert info.value.message == "Request body is not valid JSON."
