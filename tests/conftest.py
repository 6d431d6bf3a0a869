from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator

import pytest
import trio
from hypothesis import HealthCheck, settings

from tests.actors.helpers import socket_stream_pair

# "ci" keeps make test well under its time budget; "soak" (make soak) digs deeper.
settings.register_profile("ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# tests/airflow runs with the real Airflow in venvs of its own; make test's has none.
collect_ignore = [] if importlib.util.find_spec("airflow") else ["airflow"]


@pytest.fixture
async def stream_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """Two connected trio streams over a real socketpair; both closed at teardown."""
    ours, theirs = socket_stream_pair()
    yield ours, theirs
    await trio.aclose_forcefully(ours)
    await trio.aclose_forcefully(theirs)
