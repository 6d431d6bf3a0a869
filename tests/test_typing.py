"""The public API's types hold under ``mypy --strict``: README's examples type-check,
and a typed request's reply is its declared type (so a typo is a type error)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy comes with the project's lint extra")

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

BAD_REPLY_USE = textwrap.dedent(
    '''
    import attrs
    import actors
    import channel

    @attrs.frozen
    class VariableResult:
        key: str

    @attrs.frozen
    class GetVariable(channel.Request[VariableResult]):
        key: str

    async def use(comms: actors.Comms) -> None:
        reply = await comms.asend(GetVariable(key="k"))
        reveal_type(reply)
        reply.no_such_attr
        untyped = await comms.asend(VariableResult(key="k"))
        untyped.anything_goes
    '''
)


def _mypy(tmp_path: Path, files: dict[str, str]) -> tuple[str, int]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml"), *map(str, (tmp_path / n for n in files))]
    )
    return stdout + stderr, status


def test_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks  # (docs/examples/ are type-checked by make lint)
    out, status = _mypy(tmp_path, {f"readme_block_{i}.py": block for i, block in enumerate(blocks)})
    assert status == 0, out


def test_a_typed_reply_is_its_declared_type(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, {"bad_reply_use.py": BAD_REPLY_USE})
    assert status == 1
    assert 'Revealed type is "bad_reply_use.VariableResult"' in out
    assert '"VariableResult" has no attribute "no_such_attr"' in out
    assert "anything_goes" not in out  # an undeclared request's reply stays Any


MISSPELLED_STATUS = textwrap.dedent(
    '''
    import actors

    async def use(supervisor: actors.Supervisor, comms: actors.Comms) -> None:
        status = supervisor.status.value
        reveal_type(status)
        status.incarnaton
        await supervisor.status.wait_value(lambda s: s.stat is actors.WorkerState.RUNNING)
        reveal_type(comms.state.value)
        comms.state.value.nme
    '''
)


def test_status_and_channel_state_are_typed(tmp_path: Path) -> None:
    # trio-util ships no types: without actors.Observable these were Any, and a
    # misspelled field passed mypy --strict.
    out, status = _mypy(tmp_path, {"misspelled_status.py": MISSPELLED_STATUS})
    assert status == 1
    assert "Revealed type is \"actors._supervisor_status.SupervisorStatus\"" in out
    assert '"SupervisorStatus" has no attribute "incarnaton"' in out
    assert '"SupervisorStatus" has no attribute "stat"' in out
    assert "Revealed type is \"actors._state.ChannelState\"" in out
    assert '"ChannelState" has no attribute "nme"' in out


MISSPELLED_OPTIONS = textwrap.dedent(
    '''
    import socket
    import trio
    import actors
    import channel

    async def use(stream: trio.abc.Stream, sock: socket.socket, codec: channel.Codec) -> None:
        async with actors.open_comms(stream, codec, timout=10):
            pass
        actors.comms_in_thread(sock, codec, max_in_flight="many")
        async with actors.connect_to_supervisor(codec, heartbeat=1):
            pass
        async with actors.open_supervisor(["w"], codec, lambda m: m, stuck_after=1):
            pass
    '''
)


def test_every_opener_checks_its_option_names_and_types(tmp_path: Path) -> None:
    # These were `**Any` (connect_to_supervisor) or spelled out per opener: one
    # TypedDict per set of options now types all of them.
    out, status = _mypy(tmp_path, {"misspelled_options.py": MISSPELLED_OPTIONS})
    assert status == 1
    assert 'Unexpected keyword argument "timout" for "open_comms"' in out
    assert 'Argument "max_in_flight" to "comms_in_thread" has incompatible type "str"' in out
    assert 'Argument "heartbeat" to "connect_to_supervisor" has incompatible type "int"' in out
    assert 'Missing named argument "heartbeat" for "open_supervisor"' in out
