"""The options of a channel and of a supervisor: one typed home, checked once, the
same for every opener."""

from __future__ import annotations

import math
import socket
import typing
from typing import Any

import attrs
import pytest
import trio

import actors
from actors._options import ChannelConfig, SupervisorConfig
from tests.actors.helpers import CODEC


@pytest.mark.parametrize(
    ("options", "config"), [(actors.CommsOptions, ChannelConfig), (actors.SupervisorOptions, SupervisorConfig)]
)
def test_the_typed_keywords_and_the_checked_config_name_the_same_options(options: Any, config: Any) -> None:
    assert set(typing.get_type_hints(options)) == {field.name for field in attrs.fields(config)}


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 1.5}, "max_in_flight"),
        ({"max_unanswered": 0}, "max_unanswered"),
        ({"max_frame_size": 0}, "max_frame_size"),
        ({"hello_timeout": math.inf}, "hello_timeout"),
    ],
)
async def test_every_channel_opener_refuses_the_same_bad_options(bad: dict[str, Any], match: str) -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with pytest.raises(ValueError, match=match):
            actors.comms_in_thread(ours, CODEC, **bad)
        with pytest.raises(ValueError, match=match):
            async with actors.connect_to_supervisor(CODEC, fd=ours.fileno(), **bad):
                pass  # pragma: no cover
        assert ours.fileno() != -1  # refused before the socket was taken
        a, b = socket.socketpair()
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        with b, pytest.raises(ValueError, match=match):
            async with actors.open_comms(stream, CODEC, **bad):
                pass  # pragma: no cover
        await stream.aclose()


def test_defaults_and_what_is_derived_from_them() -> None:
    config = ChannelConfig()
    assert (config.default_timeout, config.unanswered_limit, config.stall_timeout) == (None, 1024, 30.0)
    config = ChannelConfig(timeout=math.inf, max_in_flight=8)
    assert (config.default_timeout, config.unanswered_limit) == (None, 8)
    assert ChannelConfig(timeout=2).stall_timeout == 10.0
    assert ChannelConfig(timeout=20).stall_timeout == 40.0
    assert ChannelConfig(heartbeat=int).priority == frozenset({int})
    supervisor = SupervisorConfig(heartbeat=int, stuck_after=4)
    assert (supervisor.overloaded_after, supervisor.heartbeat_types) == (2.0, (int,))
    assert SupervisorConfig(heartbeat=(int, str), overloaded_gap=1).overloaded_after == 1


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"stuck_after": 0}, "stuck_after"),
        ({"overloaded_gap": -1}, "overloaded_gap"),
        ({"fd": -1}, "fd"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"backoff_initial": 5, "backoff_max": 1}, "initial <= maximum"),
        ({"max_restarts": -1}, "max_restarts"),
    ],
)
async def test_open_supervisor_refuses_bad_options_before_it_spawns(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        async with actors.open_supervisor(["/nonexistent/never-run"], CODEC, lambda m: m, heartbeat=int, **bad):
            pass  # pragma: no cover


def test_a_workers_requests_on_the_wire_are_kept_within_the_supervisors_credit() -> None:
    """in flight + given up but unanswered <= what the supervisor holds (docs/design.rst)."""
    from actors._options import ChannelConfig, within_credit

    default = ChannelConfig()
    assert within_credit(default, 2048 + 64) is default  # a default worker fits as it is
    big = within_credit(ChannelConfig(max_in_flight=4096), 2112)
    assert (big.max_in_flight, big.unanswered_limit) == (1056, 1056)
    small = within_credit(ChannelConfig(max_in_flight=10, max_unanswered=5000), 2112)
    assert (small.max_in_flight, small.unanswered_limit) == (10, 2102)
