"""The codec: round trips, tags, and one decode error type with a field path."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channel import Codec, FrameDecoder, MessageDecodeError, MessageEncodeError, Request, RequestFrame, encode_frame
from channel.lowlevel import PACKED_NIL, message_type_of, reply_type_of


@attrs.frozen
class Inner:
    xs: list[int]
    tags: set[str] = attrs.field(factory=set)


@attrs.frozen
class GetTaskStates:
    dag_id: str
    run_ids: list[str] | None = None
    inner: Inner | None = None
    when: dt.datetime | None = None
    extra: dict[str, float] = attrs.field(factory=dict)


@attrs.frozen
class TaskStatesResult:
    __message_type__: ClassVar[str] = "TaskStatesResult"
    states: dict[str, str]
    ok: bool = True


@attrs.frozen
class Renamed:
    __message_type__: ClassVar[str] = "WireName"
    n: int


CODEC = Codec([GetTaskStates, TaskStatesResult, Renamed])

aware = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
messages = st.builds(
    GetTaskStates,
    dag_id=st.text(max_size=20),
    run_ids=st.none() | st.lists(st.text(max_size=5), max_size=3),
    inner=st.none() | st.builds(Inner, xs=st.lists(int64, max_size=4), tags=st.sets(st.text(max_size=3), max_size=3)),
    when=st.none() | aware,
    extra=st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False), max_size=3),
) | st.builds(Renamed, n=int64)


def through_the_wire(body: dict) -> dict:
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(encode_frame(RequestFrame(id=1, body=body)))
    frame = decoder.next_frame()
    assert isinstance(frame, RequestFrame) and frame.body is not None
    return frame.body


@given(messages)
def test_any_message_round_trips_through_the_wire(message: object) -> None:
    assert CODEC.decode(through_the_wire(CODEC.encode(message))) == message


def test_encode_tags_the_body_with_the_class_name() -> None:
    body = CODEC.encode(GetTaskStates(dag_id="d"))
    assert body["type"] == "GetTaskStates" and body["dag_id"] == "d"


def test_message_type_override_is_the_wire_tag() -> None:
    assert message_type_of(Renamed) == "WireName"
    assert CODEC.encode(Renamed(n=1)) == {"n": 1, "type": "WireName"}
    assert CODEC.decode({"type": "WireName", "n": 1}) == Renamed(n=1)
    with pytest.raises(MessageDecodeError, match="unknown message type 'Renamed'"):
        CODEC.decode({"type": "Renamed", "n": 1})


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    assert CODEC.decode({"type": "WireName", "n": 1, "added_later": [1]}) == Renamed(n=1)


def test_pack_equals_pack_of_encode() -> None:
    import msgpack

    message = GetTaskStates(dag_id="d", run_ids=["a"])
    assert msgpack.unpackb(CODEC.pack(message)) == CODEC.encode(message)


@pytest.mark.parametrize(
    ("body", "message_type", "path", "reason"),
    [
        ([1], None, "$", "not a map"),
        ({"dag_id": "d"}, None, "$.type", "missing"),
        ({"type": 3}, None, "$.type", "a int, not a str"),
        ({"type": "Nope"}, "Nope", "$.type", "unknown message type"),
        ({"type": "GetTaskStates"}, "GetTaskStates", "$.dag_id", "required field missing"),
        ({"type": "GetTaskStates", "dag_id": 5}, "GetTaskStates", "$.dag_id", "expected str"),
        (
            {"type": "GetTaskStates", "dag_id": "d", "inner": {"xs": [1, "q"]}},
            "GetTaskStates",
            "$.inner.xs[1]",
            "expected int",
        ),
        ({"type": "WireName", "n": "5"}, "WireName", "$.n", "expected int"),
        ({"type": "WireName", "n": True}, "WireName", "$.n", "expected int"),
        ({"type": "TaskStatesResult", "states": {"a": 1}}, "TaskStatesResult", "$.states['a']", "expected str"),
        ({"type": "GetTaskStates", "dag_id": "d", "when": "today"}, "GetTaskStates", "$.when", ""),
        # an optional field takes None or exactly what its type takes
        ({"type": "GetTaskStates", "dag_id": "d", "run_ids": "ab"}, "GetTaskStates", "$.run_ids", ""),
        ({"type": "GetTaskStates", "dag_id": "d", "run_ids": [1]}, "GetTaskStates", "$.run_ids[0]", "expected str"),
    ],
)
def test_every_decode_failure_is_one_error_with_type_and_path(
    body: object, message_type: str | None, path: str, reason: str
) -> None:
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode(body)
    error = info.value
    assert (error.message_type, error.path) == (message_type, path)
    assert reason in error.reason
    assert path in str(error)


def test_encode_of_a_foreign_class_raises_in_the_caller() -> None:
    with pytest.raises(MessageEncodeError, match="Inner is not a message class"):
        CODEC.encode(Inner(xs=[]))


def test_pack_of_a_naive_datetime_raises_encode_error() -> None:
    with pytest.raises(MessageEncodeError, match="tzinfo"):
        CODEC.pack(GetTaskStates(dag_id="d", when=dt.datetime(2024, 1, 1)))


def test_pack_of_an_int_over_64_bits_raises_encode_error() -> None:
    with pytest.raises(MessageEncodeError):
        CODEC.pack(Renamed(n=2**70))


def test_numbers_are_accepted_as_datetimes_for_preconf_peers() -> None:
    decoded = CODEC.decode({"type": "GetTaskStates", "dag_id": "d", "when": 0})
    assert decoded.when == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def test_codec_construction_errors() -> None:
    @attrs.frozen
    class HasType:
        type: str

    @attrs.frozen
    class Clash:
        __message_type__: ClassVar[str] = "WireName"

    class NotAttrs:
        pass

    with pytest.raises(TypeError, match="field named 'type'"):
        Codec([HasType])
    with pytest.raises(ValueError, match="share the tag 'WireName'"):
        Codec([Renamed, Clash])
    with pytest.raises(TypeError, match="attrs classes"):
        Codec([NotAttrs])
    with pytest.raises(ValueError, match="at least one"):
        Codec([])


def test_single_class_codec_works() -> None:
    codec = Codec([Renamed])
    assert codec.decode(codec.encode(Renamed(n=4))) == Renamed(n=4)


# ------------------------------------------------------------------ typed requests


@attrs.frozen
class VariableResult:
    key: str
    value: str | None


@attrs.frozen
class GetVariable(Request[VariableResult]):
    key: str


@attrs.frozen
class Forget(Request[None]):
    key: str


@attrs.frozen
class Later(Request["LaterResult"]):
    n: int


@attrs.frozen
class LaterResult:
    n: int


def test_a_request_declares_its_reply_type() -> None:
    assert reply_type_of(GetVariable) is VariableResult
    assert reply_type_of(Forget) is type(None)
    assert reply_type_of(Later) is LaterResult  # a forward reference, resolved
    assert reply_type_of(VariableResult) is None
    codec = Codec([GetVariable, VariableResult, Forget, Later, LaterResult])
    assert codec.reply_type(GetVariable) is VariableResult
    assert codec.decode(codec.encode(GetVariable(key="k"))) == GetVariable(key="k")


def test_a_reply_of_another_type_is_a_decode_error() -> None:
    codec = Codec([GetVariable, VariableResult, Forget])
    codec.check_reply(GetVariable, VariableResult(key="k", value=None))
    codec.check_reply(Forget, None)
    with pytest.raises(MessageDecodeError, match="expected VariableResult in reply to GetVariable, got GetVariable"):
        codec.check_reply(GetVariable, GetVariable(key="k"))
    with pytest.raises(MessageDecodeError, match="got no body"):
        codec.check_reply(GetVariable, None)


def test_a_codec_rejects_a_reply_type_it_cannot_decode() -> None:
    with pytest.raises(ValueError, match="declares replies of VariableResult, which is not a message class"):
        Codec([GetVariable])


def test_encode_errors_name_the_class_and_the_field_path() -> None:
    codec = Codec([GetTaskStates, Inner])
    with pytest.raises(MessageEncodeError, match=r"cannot encode GetTaskStates at \$\.extra\.x: "):
        codec.pack(GetTaskStates(dag_id="d", extra={"x": object()}))  # type: ignore[dict-item]
    with pytest.raises(MessageEncodeError, match=r"cannot encode GetTaskStates at \$\.inner\.xs\[1\]: "):
        codec.pack(GetTaskStates(dag_id="d", inner=Inner(xs=[1, 2**70])))


def test_none_packs_as_an_empty_body() -> None:
    assert Codec([Inner]).pack(None) == PACKED_NIL


def test_keys_a_class_does_not_have_are_ignored_for_forward_compatibility() -> None:
    """Decided in issue 18, as msgspec (and so Airflow) does by default: a newer peer
    may add fields; an older reader ignores them rather than failing the call."""
    body = {"type": "GetTaskStates", "dag_id": "d", "added_later": [1, 2], "nested": {"x": 1}}
    assert CODEC.decode(body) == GetTaskStates(dag_id="d")


def test_a_body_with_several_bad_fields_names_each_up_to_five() -> None:
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode({"type": "GetTaskStates", "dag_id": 1, "inner": {"xs": [1, "2"]}, "extra": {"k": "v"}})
    error = info.value
    assert error.path == "$.dag_id"  # the first, as before
    assert error.reason.startswith("invalid value for type, expected str; also ")
    assert "$.inner.xs[1]: " in error.reason and "$.extra['k']: " in error.reason
    assert "more)" not in error.reason
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode({"type": "GetTaskStates", "dag_id": "d", "inner": {"xs": [str(i) for i in range(1_000)]}})
    reason = info.value.reason
    assert [f"$.inner.xs[{i}]" in reason or i == 0 for i in range(5)] == [True] * 5
    assert "$.inner.xs[5]" not in reason and reason.endswith("(and 995 more)")
    assert len(str(info.value)) < 1_000  # bounded, whatever the peer sent


@pytest.mark.parametrize(
    ("field", "value"),
    [("run_ids", "xy"), ("run_ids", {"a": 1}), ("extra", [["k", 1.0]]), ("inner", {"xs": "12"}), ("inner", {"xs": [], "tags": "ab"})],
)
def test_a_container_field_takes_only_its_own_msgpack_kind(field: str, value: object) -> None:
    # Found writing the docs (issue 18): cattrs iterates whatever it is given, so the
    # string "xy" decoded as run_ids=["x", "y"] and a map as the list of its keys.
    with pytest.raises(MessageDecodeError, match=r"expected (list|dict|set)"):
        CODEC.decode({"type": "GetTaskStates", "dag_id": "d", field: value})


def test_each_container_kind_comes_back_as_its_own_type_and_refuses_a_string() -> None:
    # The guards are registered so that the narrower kind wins (a tuple is also a
    # sequence, a frozenset also a set): each decodes to its own type.
    @attrs.frozen
    class Kinds:
        items: tuple[int, ...] = ()
        pair: tuple[int, str] = (0, "")
        tags: set[str] = attrs.field(factory=set)
        frozen: frozenset[int] = frozenset()

    codec = Codec([Kinds])
    decoded = codec.decode({"type": "Kinds", "items": [1, 2], "pair": [3, "c"], "tags": ["a"], "frozen": [4]})
    assert decoded == Kinds(items=(1, 2), pair=(3, "c"), tags={"a"}, frozen=frozenset({4}))
    assert (type(decoded.tags), type(decoded.frozen)) == (set, frozenset)
    for field in ("items", "pair", "tags", "frozen"):
        with pytest.raises(MessageDecodeError, match=rf"\$\.{field}: .*expected (tuple|set|frozenset)"):
            codec.decode({"type": "Kinds", field: "ab"})
