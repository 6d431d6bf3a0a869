"""Request context: the trace carrier a caller sends, and what a handler can ask.

A request frame may carry Airflow's ``context_carrier``: the W3C trace context
(``traceparent``, ``tracestate``) of the span that made the request. A caller can
pass one; when it passes none and OpenTelemetry is in use with a span active, the
active span's context is injected, as Airflow's task SDK does. OpenTelemetry is
optional: it is never imported unless the program already imported it.

Inside a handler run by :func:`~actors.serve` (or a supervisor),
:func:`current_request` says which request is being handled.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["RequestInfo", "current_request", "outgoing_carrier", "request_info"]


@attrs.frozen(kw_only=True)
class RequestInfo:
    """What a handler knows about the request it is handling."""

    frame_id: int
    """The request's frame id, chosen by the requester."""
    carrier: dict[str, Any] | None
    """The request's ``context_carrier`` (W3C ``traceparent``/``tracestate``), or ``None``."""
    incarnation: int | None = None
    """Under a supervisor, which worker incarnation (1, 2, ...) sent it; else ``None``."""


request_info: contextvars.ContextVar[RequestInfo] = contextvars.ContextVar("trio_comms_request")


def current_request() -> RequestInfo:
    """The request the calling handler is answering.

    ::

        async def handler(message):
            info = actors.current_request()
            log.info("frame %d from incarnation %s", info.frame_id, info.incarnation)

    Raises:
        RuntimeError: called outside a handler run by ``serve`` or a supervisor.
    """
    try:
        return request_info.get()
    except LookupError:
        raise RuntimeError("current_request() is only available inside a request handler") from None


def outgoing_carrier(carrier: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The carrier a request goes out with: the caller's, else the active span's, else none."""
    if carrier is not None:
        return dict(carrier)
    if "opentelemetry.trace" not in sys.modules:
        return None  # OpenTelemetry is not in use: never import it ourselves
    return _active_span_carrier()


def _active_span_carrier() -> dict[str, Any] | None:
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    injected: dict[str, Any] = {}
    TraceContextTextMapPropagator().inject(injected)
    return injected or None
