"""A server for many clients on loopback TCP: serve_listeners gives each connection its
own serve. A client killed mid-frame ends its own connection, logged; the others go on."""

import logging
import sys

import attrs
import trio

import actors
import channel


@attrs.frozen
class Ask:
    question: str


@attrs.frozen
class Answer:
    text: str


codec = channel.Codec([Ask, Answer])


async def handler(message: Ask) -> Answer:
    return Answer(text=f"you asked {message.question!r}")


async def main() -> None:
    # The library logs to "actors.*" loggers; a peer's fault is one warning line.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        started = await nursery.start(actors.serve_listeners, listeners, codec, handler)
        port = started[0].socket.getsockname()[1]

        # A client that dies in the middle of a frame: 3 bytes of a 4-byte length prefix.
        broken = await trio.open_tcp_stream("127.0.0.1", port)
        await broken.send_all(b"\x00\x00\x01")
        await broken.aclose()

        async def client(n: int) -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with actors.open_comms(stream, codec, timeout=10) as comms:
                reply = await comms.asend(Ask(question=f"client {n}"))
                print(reply.text)

        async with trio.open_nursery() as clients:
            for n in range(3):
                clients.start_soon(client, n)
        nursery.cancel_scope.cancel()  # stop accepting; the server's connections close


trio.run(main)
