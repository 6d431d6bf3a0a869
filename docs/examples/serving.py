"""Serving requests: concurrent handlers, error replies, the request's context, a
hello, and trio's start protocol. A requester in the same process shows each."""

import attrs
import trio

import actors
import channel


@attrs.frozen
class VariableResult:
    key: str
    value: str


@attrs.frozen
class GetVariable(channel.Request[VariableResult]):
    key: str


@attrs.frozen
class StartTriggerer:  # the hello: an unsolicited first frame, as Airflow sends
    version: str


codec = channel.Codec([GetVariable, VariableResult, StartTriggerer])
variables = {"region": "eu-west-1"}


async def handler(message: GetVariable) -> VariableResult:
    # Handlers run concurrently (up to max_concurrency); replies go out as they finish.
    request = actors.current_request()  # frame_id, carrier (trace context), incarnation
    if message.key == "bug":
        raise ZeroDivisionError("oops")  # any other exception: GENERIC_ERROR, and a log line
    if message.key not in variables:
        # An error reply with a code and a detail: the caller gets actors.RemoteError.
        raise channel.ErrorReply("VARIABLE_NOT_FOUND", {"key": message.key, "frame": request.frame_id})
    return VariableResult(key=message.key, value=variables[message.key])


async def main() -> None:
    ours, theirs = trio.socket.socketpair()
    async with trio.open_nursery() as nursery:
        # nursery.start returns once serve has written its hello and is reading.
        await nursery.start(lambda task_status: actors.serve(
            trio.SocketStream(theirs), codec, handler,
            max_concurrency=64, hello=StartTriggerer(version="1"), drain_timeout=5, task_status=task_status,
        ))
        async with actors.open_comms(trio.SocketStream(ours), codec, expect_hello=True) as comms:
            print("hello:", comms.hello)
            print("region:", (await comms.asend(GetVariable(key="region"))).value)
            for key in ("nope", "bug"):
                try:
                    await comms.asend(GetVariable(key=key))
                except actors.RemoteError as error:
                    print("error:", error.code, error.detail)
        # Our end is closed: serve sees EOF, lets running handlers finish, and returns.


trio.run(main)
