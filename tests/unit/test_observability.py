"""Metrics are EMF lines with the configured namespace; secrets never reach a log line."""

import json
import logging
from collections.abc import Iterator

import pytest

from mantle_gateway import observability


@pytest.fixture(autouse=True)
def _restore_defaults() -> Iterator[None]:
    yield
    observability.configure(level="INFO", metrics_namespace="MantleGateway", metrics_enabled=True)


def test_metric_is_one_emf_line_in_the_namespace(capsys: pytest.CaptureFixture[str]) -> None:
    observability.configure(level="INFO", metrics_namespace="GatewayTest", metrics_enabled=True)
    observability.metric("BudgetRefusals")
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "GatewayTest"
    assert directive["Metrics"][0]["Name"] == "BudgetRefusals"
    assert directive["Dimensions"] == [["service"]]
    assert line["service"] == "mantle-gateway"
    assert line["BudgetRefusals"] == [1.0]


def test_disabled_metrics_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    observability.configure(level="INFO", metrics_namespace="GatewayTest", metrics_enabled=False)
    observability.metric("BudgetRefusals")
    assert capsys.readouterr().out == ""


def test_redaction_masks_keys_and_bearer_values() -> None:
    text = "key mgw_abcdefghijklmnop and Authorization: Bearer sk-1234567890abcdef"
    cleaned = observability.redact(text)
    assert "mgw_abcdefghijklmnop" not in cleaned
    assert "sk-1234567890abcdef" not in cleaned


def test_log_records_are_scrubbed_before_writing(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "got mgw_abcdefghijkl", (), None)
    record.detail = {"header": "Bearer abcdefghijklmnop"}
    observability._RedactFilter().filter(record)
    assert "mgw_abcdefghijkl" not in record.getMessage()
    assert "abcdefghijklmnop" not in json.dumps(record.detail)


def test_refusals_log_4xx_at_info_and_5xx_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=observability.logger.name)
    observability.log_refusal(429, "rate_limit_exceeded", request_id="r1", key_id="key_1")
    observability.log_refusal(503, "service_unavailable", request_id="r2", key_id=None)
    first, second = [r for r in caplog.records if r.getMessage() == "request_refused"]
    assert (first.levelno, first.status, first.code) == (logging.INFO, 429, "rate_limit_exceeded")
    assert (first.request_id, first.key_id) == ("r1", "key_1")
    assert (second.levelno, second.request_id) == (logging.WARNING, "r2")
    assert not hasattr(second, "key_id"), "an unknown key is left out, not logged as null"
