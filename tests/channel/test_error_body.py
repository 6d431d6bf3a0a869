"""Error bodies: Airflow's ErrorResponse shape, both ways."""

from __future__ import annotations

import pytest

from channel import GENERIC_ERROR, ErrorReply, MessageDecodeError, error_body, read_error_body


def test_error_reply_keeps_its_code_and_detail() -> None:
    body = error_body(ErrorReply("VARIABLE_NOT_FOUND", {"key": "k"}))
    assert body == {"type": "ErrorResponse", "error": "VARIABLE_NOT_FOUND", "detail": {"key": "k"}}
    assert read_error_body(body) == ("VARIABLE_NOT_FOUND", {"key": "k"})


def test_any_other_exception_is_a_generic_error_naming_it() -> None:
    body = error_body(ValueError("bad thing"))
    assert body["error"] == GENERIC_ERROR
    assert body["detail"] == {"error_type": "ValueError", "message": "bad thing"}


def test_reads_airflow_shapes() -> None:
    assert read_error_body({"type": "ErrorResponse", "error": "GENERIC_ERROR", "detail": None}) == (
        "GENERIC_ERROR",
        None,
    )
    assert read_error_body({"error": "API_SERVER_ERROR"}) == ("API_SERVER_ERROR", None)


@pytest.mark.parametrize(
    ("error", "path"),
    [
        ("x", "$"),
        ({"type": "Other", "error": "X"}, "$.type"),
        ({"type": "ErrorResponse"}, "$.error"),
        ({"error": ""}, "$.error"),
        ({"error": "X", "detail": [1]}, "$.detail"),
    ],
)
def test_malformed_error_bodies_are_decode_errors(error: object, path: str) -> None:
    with pytest.raises(MessageDecodeError) as info:
        read_error_body(error)
    assert info.value.path == path


def test_error_reply_rejects_an_empty_code() -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        ErrorReply("")
