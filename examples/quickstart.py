"""Placeholder until the comms actor lands: encodes and decodes one frame."""

import attrs

import channel


@attrs.frozen
class GetVariable:
    key: str


codec = channel.Codec([GetVariable])
wire = channel.encode_frame(channel.RequestFrame(id=1, body=codec.encode(GetVariable(key="k"))))
decoder = channel.FrameDecoder(channel.RequestFrame)
decoder.receive_data(wire)
frame = decoder.next_frame()
assert isinstance(frame, channel.RequestFrame)
print(f"{len(wire)} bytes on the wire -> {codec.decode(frame.body)!r}")
