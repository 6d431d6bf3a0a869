"""The job's HTTP side under load (docs/triggerer.rst): a flood of /health/ready costs
the store nothing and never delays the runner's sync (no restart), and idle
connections past the cap are closed at once instead of taking the job's fds.

The flood: a real job process and real loopback TCP clients. The cap: the job's own
server in this process (so the test can wait until each connection's handler ran),
with real loopback clients.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import trio
import trio.testing

from examples.triggerer.web import MAX_CONNECTIONS, serve_http
from tests.triggerer.test_demo import TEST_TIMEOUT, Demo, assert_gone, demo_command, ensure_ended

FLOOD = 8_000
AT_ONCE = 1_000


async def get(host: str, port: int, path: str) -> bytes:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    return response


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def test_a_flood_of_readiness_checks_never_restarts_the_runner(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        demo_command("--triggers", "3000", "--stuck-after", "1", "--db", str(tmp_path / "t.db")),
        stdout=subprocess.PIPE,
    )
    demo = Demo(process)
    answered = 0
    try:
        with trio.fail_after(TEST_TIMEOUT):
            while not demo.runner_pids:
                await demo.next_line()
            host, port = address(demo.url)
            async with trio.open_nursery() as nursery:

                async def flood() -> None:
                    nonlocal answered
                    room = trio.Semaphore(AT_ONCE)

                    async def one() -> None:
                        nonlocal answered
                        async with room:
                            try:
                                if (await get(host, port, "/health/ready")).startswith(b"HTTP/1.1 "):
                                    answered += 1
                            except OSError:
                                pass  # the job finished and closed its server

                    async with trio.open_nursery() as clients:
                        for _ in range(FLOOD):
                            await room.acquire()  # start no more than AT_ONCE at a time
                            room.release()
                            clients.start_soon(one)

                nursery.start_soon(flood)
                nursery.start_soon(demo.follow, nursery.cancel_scope)
            code = await process.wait()
    finally:
        await ensure_ended(process)
    output = "\n".join(demo.lines)
    assert code == 0, output
    assert answered > 1_000, answered  # the flood reached the job while it ran
    assert "runner restarts: 0" in output, output
    assert_gone(demo.runner_pids)


async def closed_by_server(stream: trio.SocketStream) -> bool:
    """Wait for the server's end of ``stream``: True if it closed or reset it."""
    try:
        return await stream.receive_some() == b""
    except trio.BrokenResourceError:
        return True  # closed forcefully: a reset


async def test_idle_connections_past_the_cap_are_closed_and_health_still_answers() -> None:
    """The job's own server (serve_http) on loopback, in this process so the test can
    wait until every accepted connection's handler has run: MAX_CONNECTIONS idle
    clients are held, 20 more are closed at once, and once five held ones end, a
    request is served again."""

    async def health() -> tuple[int, str, bytes]:
        return 200, "application/json", b"{}"

    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, "127.0.0.1", 0, {"/health/live": health})
            idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(MAX_CONNECTIONS)]
            await trio.testing.wait_all_tasks_blocked()  # each accepted, and its handler holds a place
            extra = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(20)]
            with trio.fail_after(5):  # at once; a held connection lasts its 10 s idle timeout
                for stream in extra:
                    assert await closed_by_server(stream)
            # A held one ends: the server frees its place before it closes it.
            for stream in idle[:5]:
                await stream.send_eof()
                assert await closed_by_server(stream)
            assert (await get("127.0.0.1", port, "/health/live")).startswith(b"HTTP/1.1 200")
            for stream in idle + extra:
                await stream.aclose()
            nursery.cancel_scope.cancel()
