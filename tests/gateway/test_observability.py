"""Structured logs: JSON lines carrying the request id, with secrets redacted."""

from __future__ import annotations

import json
import logging

from gateway.observability import JsonFormatter, redact, request_id_var


def record(message: str, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("datashare.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def test_json_lines_carry_the_request_id_and_extra_fields() -> None:
    token = request_id_var.set("req-42")
    try:
        line = json.loads(
            JsonFormatter().format(record("query refused", construct="COPY", status=400))
        )
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-42"
    assert (line["level"], line["message"], line["construct"], line["status"]) == (
        "info",
        "query refused",
        "COPY",
        400,
    )


def test_secrets_are_redacted_in_messages_and_fields() -> None:
    message = "Authorization: Bearer eyJhbGciOi.abc.def client_secret=s3cr3t&x=1 password: hunter2"
    line = JsonFormatter().format(record(message, client_secret="s3cr3t", access_token="eyJ"))
    assert "eyJhbGciOi" not in line and "s3cr3t" not in line and "hunter2" not in line
    parsed = json.loads(line)
    assert parsed["client_secret"] == "[REDACTED]" and parsed["access_token"] == "[REDACTED]"
    assert redact("nothing secret here") == "nothing secret here"


def test_every_request_writes_an_access_line_with_route_and_status(client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="datashare.access"):
        client.get("/healthz", headers={"x-request-id": "trace-7"})
    access = [r for r in caplog.records if r.name == "datashare.access"]
    assert access and access[-1].route == "/healthz" and access[-1].status == 200
