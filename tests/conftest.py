from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.actors.helpers import socket_stream_pair


@pytest.fixture
async def stream_pair() -> AsyncIterator[tuple[trio.SocketStream, trio.SocketStream]]:
    """Two connected trio streams over a real socketpair; both closed at teardown."""
    ours, theirs = socket_stream_pair()
    yield ours, theirs
    await trio.aclose_forcefully(ours)
    await trio.aclose_forcefully(theirs)
