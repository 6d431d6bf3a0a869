"""The wire layer alone: messages to bytes and back, with no I/O and no trio."""

import attrs

import channel


@attrs.frozen
class VariableResult:
    key: str
    value: str | None


@attrs.frozen
class GetVariable(channel.Request[VariableResult]):  # declares its reply type
    key: str


codec = channel.Codec([GetVariable, VariableResult])
body = codec.encode(GetVariable(key="k"))  # {"key": "k", "type": "GetVariable"}
wire = channel.encode_frame(channel.RequestFrame(id=1, body=body))

decoder = channel.FrameDecoder(channel.RequestFrame, max_frame_size=16 * 2**20)
decoder.receive_data(wire[:3])  # any chunking: bytes in as they arrive
assert decoder.next_frame() is channel.NEED_DATA
decoder.receive_data(wire[3:])
frame = decoder.next_frame()  # a frame, NEED_DATA, END_OF_STREAM, or one to fail alone
assert isinstance(frame, channel.RequestFrame)
assert codec.decode(frame.body) == GetVariable(key="k")

# The answer, and how a requester reads it.
reply = channel.encode_frame(channel.ResponseFrame(id=frame.id, body=codec.encode(VariableResult("k", "v"))))
responses = channel.FrameDecoder(channel.ResponseFrame)
responses.receive_data(reply)
responses.receive_data(b"")  # the peer closed its end
answer = responses.next_frame()
assert isinstance(answer, channel.ResponseFrame) and answer.error is None
print(codec.decode(answer.body))
assert responses.next_frame() is channel.END_OF_STREAM
