"""README's API tour stays true to the code."""

from __future__ import annotations

import os
import re
from pathlib import Path

import actors
import channel.lowlevel

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_the_channel_example_runs_as_written() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    channel_block = next(block for block in blocks if "channel.Codec" in block)
    exec(compile(channel_block, "README.md", "exec"), {})


def test_every_public_name_the_readme_mentions_exists() -> None:


    for module in (actors, channel, channel.lowlevel):
        mentioned = set(re.findall(rf"\b{module.__name__}\.([A-Za-z_]\w*)", README)) - {"lowlevel"}
        assert mentioned, module.__name__
        missing = {name for name in mentioned if name not in module.__all__}
        assert not missing, f"README mentions {module.__name__}.{missing}, which is not in its __all__"


def test_the_actors_example_runs_as_written(capsys) -> None:  # type: ignore[no-untyped-def]
    """Every function of the actors block, against its own responder, over socketpairs."""
    import asyncio
    import socket
    import threading

    import trio

    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    actors_block = next(block for block in blocks if "actors.open_comms" in block)
    example: dict[str, object] = {}
    exec(compile(actors_block, "README.md", "exec"), example)

    async def pair() -> None:
        with trio.fail_after(20):
            a, b = trio.socket.socketpair()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(example["responder"], trio.SocketStream(b))  # type: ignore[arg-type]
                await example["requester"](trio.SocketStream(a))  # type: ignore[operator]

    trio.run(pair)

    def responder_thread(sock: socket.socket) -> threading.Thread:
        thread = threading.Thread(
            target=trio.run,
            args=(example["responder"], trio.SocketStream(trio.socket.from_stdlib_socket(sock))),
            daemon=True,
        )
        thread.start()
        return thread

    ours, theirs = socket.socketpair()
    thread = responder_thread(theirs)
    example["host_on_threads"](ours)  # type: ignore[operator]
    thread.join(20)
    ours, theirs = socket.socketpair()
    thread = responder_thread(theirs)
    asyncio.run(example["host_on_asyncio"](ours))  # type: ignore[operator]
    thread.join(20)
    assert not thread.is_alive()
    out = capsys.readouterr().out
    assert out.splitlines() == ["v StartTriggerer(version='1')", "v", "v"]


def test_the_supervisor_example_runs_as_written(tmp_path: Path) -> None:
    """README's supervisor program, saved to a file and run as a real process."""
    import subprocess
    import sys

    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    program = next(block for block in blocks if "actors.open_supervisor" in block)
    path = tmp_path / "supervised.py"
    path.write_text(program)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines[:2]] == ["incarnation 1", "incarnation 2"]
    assert re.fullmatch(r"incarnation 2 \(pid \d+\) replaced pid \d+, which ended exited with -9; healthy=True", lines[2])
    pids = [int(line.split()[1].rstrip(":")) for line in lines[:2]]
    for pid in pids:  # no worker left behind
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} outlived the example")
