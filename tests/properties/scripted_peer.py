"""The far end of a routing scenario: answers by the scenario's policy, by content."""

from __future__ import annotations

import random
import socket
import threading

import trio

from channel import END_OF_STREAM, NEED_DATA, FrameDecoder, RequestFrame, ResponseFrame, encode_frame

from .scenario import ERROR_CODE, SCENARIO_BOUND, Scenario, key_of


class ScriptedPeer:
    """The far end: answers by the scenario's policy, in its own thread and trio loop.

    "late" requests are held back until :meth:`flush_late`, which the harness calls
    once every caller has finished, so their callers are sure to have given up. The
    flush waits until every request the actor wrote has arrived: a request written
    just before its caller gave up may still be on its way, and a flush on idleness
    alone would leave it unanswered.
    """

    def __init__(self, sock: socket.socket, scenario: Scenario) -> None:
        self._sock = sock
        self._actions = {r.key: r.action for r in scenario.requests()}
        self._policy = scenario.peer
        self._random = random.Random(scenario.peer.seed)
        self._late: list[RequestFrame] = []
        self._unknown_left = scenario.peer.unknown_replies
        self._flush_requested = threading.Event()
        self._flush_after = 0  # requests that must have arrived before the flush
        self.flushed = threading.Event()
        self.received = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._run,), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush_late(self, requests_written: int, timeout: float = SCENARIO_BOUND) -> bool:
        """Answer the held "late" requests once ``requests_written`` requests have arrived."""
        self._flush_after = requests_written
        self._flush_requested.set()
        return self.flushed.wait(timeout)

    def join(self, timeout: float = SCENARIO_BOUND) -> None:
        self._thread.join(timeout)

    def _reply_for(self, frame: RequestFrame) -> bytes:
        assert frame.body is not None
        key = key_of(frame.body["text"])
        action = self._actions.get(key, "answer")
        if action == "error":
            error = {"type": "ErrorResponse", "error": ERROR_CODE, "detail": {"key": key}}
            return encode_frame(ResponseFrame(id=frame.id, error=error))
        if action == "undecodable":
            return encode_frame(ResponseFrame(id=frame.id, body={"type": "Echoed", "text": 12345}))
        return encode_frame(ResponseFrame(id=frame.id, body={"type": "Echoed", "text": frame.body["text"]}))

    async def _send_unknown(self, stream: trio.SocketStream) -> None:
        if self._unknown_left:
            self._unknown_left -= 1
            await stream.send_all(encode_frame(ResponseFrame(id=2**40 + self._unknown_left, body=None)))

    async def _run(self) -> None:
        try:
            await self._serve()
        except Exception as exc:  # reported by the harness, not lost in a thread
            self.error = exc
            self.flushed.set()

    async def _serve(self) -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._sock))
        decoder = FrameDecoder(RequestFrame)
        held: list[RequestFrame] = []
        async with stream:
            while True:
                data = None
                with trio.move_on_after(0.002):
                    data = await stream.receive_some()
                if data is not None:
                    decoder.receive_data(data)
                while isinstance(event := decoder.next_frame(), RequestFrame):
                    self.received += 1
                    assert event.body is not None
                    if self._actions.get(key_of(event.body["text"])) == "late":
                        self._late.append(event)
                    else:
                        held.append(event)
                if held and (len(held) >= self._policy.batch or data is None):
                    self._random.shuffle(held)
                    for frame in held:
                        if self._policy.max_delay:
                            await trio.sleep(self._random.random() * self._policy.max_delay)
                        await stream.send_all(self._reply_for(frame))
                        if self._random.random() < 0.2:
                            await self._send_unknown(stream)
                    held.clear()
                if (
                    data is None
                    and self._flush_requested.is_set()
                    and self.received >= self._flush_after
                    and not self.flushed.is_set()
                ):
                    for frame in self._late:
                        await stream.send_all(self._reply_for(frame))
                    while self._unknown_left:
                        await self._send_unknown(stream)
                    self.flushed.set()
                if event is END_OF_STREAM:
                    return
                assert event is NEED_DATA


