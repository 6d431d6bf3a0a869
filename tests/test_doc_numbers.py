"""Every number the docs state is the code's: each "(default X)" in a docstring or a
page is the default the code has, and each other bound a page names (a depth, a
count, a timeout, an exit code) is the constant the code uses. What each of those
constants does is tested where it acts (named beside each row below); this file
keeps the words and the code from drifting apart."""

from __future__ import annotations

import ast
import inspect
import re
import signal
from pathlib import Path
from typing import Any

import attrs
import pytest

import actors
import channel
from actors import _incarnation, _options, _supervisor
from channel import _bounds, _locate
from examples.triggerer import job, store, web
from tests.channel.test_decode_bounds import MAX_FACTOR

ROOT = Path(__file__).resolve().parent.parent
PAGES = {path.name: " ".join(path.read_text().split()) for path in (ROOT / "docs").glob("*.rst")}
MiB = 2**20


def stated(text: str) -> Any:
    """The value "(default X)" states: ``1,024`` and ``16 MiB`` are ints, ``None``,
    ``True`` and ``False`` themselves, and a formula (``stuck_after / 2``) is computed
    later from an unset (``None``) option."""
    text = re.split(r"[;:]", text)[0].strip("` ").replace(",", "")
    if text.lower() == "none":
        return None
    if text in ("True", "False"):
        return text == "True"
    if match := re.fullmatch(r"([\d.]+) MiB", text):
        return int(float(match.group(1)) * MiB)
    if re.fullmatch(r"[\d.]+", text):
        number = float(text)
        return int(number) if number.is_integer() else number
    if re.fullmatch(r"[a-z_]+ [/*] \d+", text):
        return None
    raise AssertionError(f"cannot read the default {text!r}")


def typed_dict_defaults(name: str) -> dict[str, Any]:
    """Each key of the TypedDict ``name`` in actors/_options.py, and what its docstring
    says its default is."""
    tree = ast.parse((ROOT / "actors" / "_options.py").read_text())
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    said: dict[str, Any] = {}
    for key, doc in zip(cls.body, cls.body[1:], strict=False):
        if isinstance(key, ast.AnnAssign) and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
            assert isinstance(key.target, ast.Name)
            if match := re.search(r"\(default ([^)]*)\)", " ".join(str(doc.value.value).split())):
                said[key.target.id] = stated(match.group(1))
    return said


def same(default: Any, said: Any) -> bool:
    """Whether the code's default is what the words say ("none" is also no classes)."""
    return bool(default == said or (said is None and default == ()))


def code_defaults(config: type) -> dict[str, Any]:
    return {field.name: field.default for field in attrs.fields(config)}


@pytest.mark.parametrize(("options", "config"), [
    ("CommsOptions", _options.ChannelConfig), ("SupervisorOptions", _options.SupervisorConfig),
])
def test_every_default_an_options_docstring_states_is_the_code_s(options: str, config: type) -> None:
    said = typed_dict_defaults(options)
    assert len(said) >= 5, said  # the docstrings do state them
    defaults = code_defaults(config)
    for key, value in said.items():
        assert same(defaults[key], value), (options, key)


def test_serve_s_signature_is_its_config_s_defaults_and_its_docstring_agrees() -> None:
    parameters = inspect.signature(actors.serve).parameters
    defaults = code_defaults(_options.ServeConfig)
    for name, default in defaults.items():
        assert parameters[name].default == default, name
    assert set(defaults) == {name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY} - {"task_status"}
    for name, value in re.findall(r"^\s+(\w+): .*?\(default ([^)]*)\)", inspect.getdoc(actors.serve) or "", re.M):
        assert same(defaults[name], stated(value)), name


@pytest.mark.parametrize(("page", "config"), [
    ("callers.rst", _options.ChannelConfig), ("serving.rst", _options.ServeConfig),
])
def test_every_default_a_page_states_is_the_code_s(page: str, config: type) -> None:
    found = re.findall(r"``(\w+)``[^().]{0,40}\(default ([^)]*)\)", PAGES[page])
    assert len(found) >= 1 if page == "callers.rst" else len(found) >= 6, found
    defaults = code_defaults(config)
    for name, value in found:
        assert same(defaults[name], stated(value)), (page, name)


def thousands(number: float) -> str:
    return f"{number:,}" if isinstance(number, int) else f"{number:g}"


# (page, what it says with {} for the number, the number in the code). Where each acts:
NUMBERS = [
    # tests/channel/test_hostile_frames.py (depth and width), tests/actors/test_oversized_and_context.py
    ("wire.rst", "deeper than {} levels", channel.DEFAULT_MAX_DEPTH),
    ("wire.rst", "default {} MiB, checked on the length prefix", channel.DEFAULT_MAX_FRAME_SIZE // MiB),
    ("wire.rst", "one per 16 bytes plus {}", _bounds.max_containers(0)),
    # tests/channel/test_refusal_cost.py
    ("wire.rst", "{} values names its first failure only", _locate.DETAILED_MAX_VALUES),
    # tests/channel/test_decode_bounds.py
    ("wire.rst", "decodes to at most {} times", MAX_FACTOR),
    # tests/actors/test_responder_bounds.py (max_unwritten, stall_timeout), test_unanswered.py (a channel's stall)
    ("wire.rst", "``max_unwritten`` bytes ({} MiB)", _options.ServeConfig().max_unwritten // MiB),
    ("wire.rst", "``stall_timeout``, {} s", _options.ServeConfig().stall_timeout),
    ("wire.rst", "twice its ``timeout``, at least {} s", _options.ChannelConfig(timeout=1).stall_timeout),
    ("wire.rst", "or {} s without one", _options.ChannelConfig().stall_timeout),
    ("callers.rst", "least {} s;", _options.ChannelConfig(timeout=1).stall_timeout),
    ("callers.rst", "{} s without one", _options.ChannelConfig().stall_timeout),
    # tests/supervisor/test_busy_is_not_stuck.py
    ("design.rst", "(the {} requests it reads ahead", _incarnation._QUEUED),
    ("design.rst", "pause while {} MiB of requests wait", _options.ServeConfig().max_queued_bytes // MiB),
    # tests/supervisor/test_policy.py
    ("supervising.rst", "reset after {} s of RUNNING", _supervisor._RESET_BACKOFF_AFTER),
    # tests/triggerer/test_demo.py (poison), test_http_load.py, test_store_failures.py
    ("triggerer.rst", "fails a trigger after {} blocks", store.MAX_BLOCKS),
    ("triggerer.rst", "the job refreshes every {} s", job.COUNTS_EVERY),
    ("triggerer.rst", "holds at most {} connections", web.MAX_CONNECTIONS),
    ("triggerer.rst", "holds for over {} s", store.LOCK_TIMEOUT),
    ("triggerer.rst", "exit with {} and", 128 + signal.SIGTERM),
    ("triggerer.rst", "and {}; the store can then be resumed", 128 + signal.SIGINT),
]


@pytest.mark.parametrize(("page", "words", "number"), NUMBERS)
def test_a_bound_a_page_names_is_the_code_s(page: str, words: str, number: float) -> None:
    assert words.format(thousands(number)) in PAGES[page]



def test_what_docstrings_say_of_one_default_in_terms_of_another_holds() -> None:
    held_at_once = _incarnation._QUEUED + code_defaults(_options.SupervisorConfig)["max_concurrency"]
    doc = " ".join((inspect.getdoc(actors.connect_to_supervisor) or "").split())
    assert f"({thousands(held_at_once)} requests by default" in doc
    # serve queues what a default requester keeps in flight, so it never leaves it unread
    assert "the default is a requester's default ``max_in_flight``" in " ".join(
        (inspect.getdoc(actors.serve) or "").split())
    assert _options.ServeConfig().max_queued == _options.ChannelConfig().max_in_flight
