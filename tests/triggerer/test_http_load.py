"""The job's HTTP side under load (docs/triggerer.rst): a flood of /health/ready costs
the store nothing and never delays the runner's sync (no restart), and idle
connections past the cap are closed at once instead of taking the job's fds.

A real job process, real loopback TCP clients.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import trio

from examples.triggerer.web import MAX_CONNECTIONS
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


async def test_idle_connections_past_the_cap_are_closed_and_health_still_answers(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        demo_command("--triggers", "20000", "--db", str(tmp_path / "t.db")), stdout=subprocess.PIPE,
    )
    demo = Demo(process)
    idle: list[trio.SocketStream] = []
    try:
        with trio.fail_after(TEST_TIMEOUT):
            while not demo.runner_pids:
                await demo.next_line()
            host, port = address(demo.url)
            for _ in range(MAX_CONNECTIONS):
                idle.append(await trio.open_tcp_stream(host, port))
            extra = [await trio.open_tcp_stream(host, port) for _ in range(20)]
            for stream in extra:
                assert await stream.receive_some() == b""  # closed at once, not held
                await stream.aclose()
            # A held connection times out after 10 s; health answers again as soon as one goes.
            for stream in idle[:5]:
                await stream.aclose()
            assert (await get(host, port, "/health/live")).startswith(b"HTTP/1.1 200")
    finally:
        for stream in idle:
            await stream.aclose()
        process.terminate()
        with trio.move_on_after(TEST_TIMEOUT):
            await process.wait()
        await ensure_ended(process)
    assert_gone(demo.runner_pids)
