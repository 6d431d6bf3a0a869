"""The README and the docs stay true to the code: their programs run as written, the
names they mention exist, and the map they draw points at real files and methods."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import actors
import channel
import channel.lowlevel

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
PAGES = {path.name: path.read_text() for path in DOCS.glob("*.rst")}
PROGRAMS = sorted((DOCS / "examples").glob("*.py"))


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_readme_is_a_map_not_the_territory() -> None:
    assert len(README.splitlines()) <= 200
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / link).is_file(), link
    linked = {Path(link).stem for link in re.findall(r"\]\(docs/([^)]+)\.rst\)", README)}
    assert linked == {Path(name).stem for name in PAGES} - {"index"}


def test_the_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    (program,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(program.splitlines()) <= 40
    path = tmp_path / "quickstart.py"
    path.write_text(program)
    done = run(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "you asked 'ready?'\n"


def test_every_docs_program_is_shown_on_a_page() -> None:
    assert PROGRAMS
    shown = "\n".join(PAGES.values())
    for program in PROGRAMS:
        assert f".. literalinclude:: examples/{program.name}" in shown, program.name


LISTENER_OUTPUT = ["you asked 'client 0'", "you asked 'client 1'", "you asked 'client 2'"]  # in any order

EXPECTED_OUTPUT = {
    "sans_io.py": ["VariableResult(key='k', value='v')"],
    "callers.py": ["on the loop thread: LoopThreadError", "trio host: 8 replies routed", "threads host: value of x", "asyncio host: 10 replies, the last value of 9"],
    "serving.py": [
        "hello: StartTriggerer(version='1')",
        "region: eu-west-1",
        "error: VARIABLE_NOT_FOUND {'key': 'nope', 'frame': 2}",
        "error: GENERIC_ERROR {'error_type': 'ZeroDivisionError', 'message': 'oops'}",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_a_docs_program_runs_and_prints_what_it_says(name: str) -> None:
    done = run(DOCS / "examples" / name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == EXPECTED_OUTPUT[name]


def test_the_listener_program_logs_the_dead_client_once() -> None:
    done = run(DOCS / "examples" / "listener.py")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == LISTENER_OUTPUT
    warnings = done.stderr.splitlines()
    assert len(warnings) == 1, warnings
    assert re.fullmatch(
        r"WARNING actors\._listeners: connection from 127\.0\.0\.1:\d+ ended: TruncatedFrame: .*", warnings[0]
    ), warnings


def test_the_supervisor_program_runs_as_a_real_process_and_leaves_no_worker() -> None:
    done = run(DOCS / "examples" / "supervised.py")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines[:2]] == ["incarnation 1", "incarnation 2"]
    assert re.fullmatch(r"incarnation 2 \(pid \d+\) replaced pid \d+, which ended exited with -9; healthy=True", lines[2])
    for pid in [int(line.split()[1].rstrip(":")) for line in lines[:2]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def processes_running(path: Path) -> list[int]:
    running = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(path).encode() in command:
                running.append(int(entry.name))
    return running


def test_the_several_workers_program_does_every_job_once_and_leaves_no_worker() -> None:
    path = DOCS / "examples" / "workers.py"
    done = run(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "30 jobs, each done {1} time(s)", "worker 0 is on incarnation 2; the others on [1, 1]",
    ]
    assert "worker incarnation 1 ended: exited (exit code -9)" in done.stderr
    assert processes_running(path) == []


def test_every_program_is_checked() -> None:
    assert {program.name for program in PROGRAMS} == {*EXPECTED_OUTPUT, "supervised.py", "listener.py", "workers.py"}


def test_every_public_name_the_readme_and_docs_mention_exists() -> None:
    text = README + "\n".join(PAGES.values())
    for module in (channel.lowlevel, actors, channel):
        mentioned = set(re.findall(rf"\b{re.escape(module.__name__)}\.([A-Za-z_]\w*)", text)) - {"lowlevel"}
        assert mentioned, module.__name__
        missing = {name for name in mentioned if not name.startswith("_") and name not in module.__all__}
        # (channel.Codec.decode and the like: a class's method is checked on the class)
        assert not missing, f"{module.__name__}.{missing} is not in its __all__"
    for qualified in set(re.findall(r"\b((?:channel|actors)\.[A-Z]\w*\.[a-z_]\w*)", text)):
        module_name, class_name, attribute = qualified.rsplit(".", 2)
        assert hasattr(getattr(importlib.import_module(module_name), class_name), attribute), qualified


def test_the_layout_map_names_every_module_and_only_real_ones() -> None:
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\b(_?\w+\.py)\b", layout))
    for package in ("channel", "actors", "trio_comms_airflow"):
        modules = {path.name for path in (ROOT / package).glob("*.py")} - {"__init__.py", "__main__.py"}
        assert modules <= named, f"{package}/ modules missing from README's layout: {modules - named}"
    for name in named:
        assert any((ROOT / folder / name).exists() for folder in ("channel", "actors", "trio_comms_airflow", "examples", "tests")), name


# Where the design page sends a maintainer: each must exist where it says.
DESIGN_PLACES = {
    "actors._pump": [
        "FramePump.read_frames", "FramePump._send_ready", "FramePump.write_batches", "FramePump.read_what_waits",
    ],
    "actors._actor": ["CommsActor._next_batch", "CommsActor._on_frame", "CommsActor._reply_outcome"],
    "actors._incarnation": [
        "Incarnation.watch_heartbeat", "Incarnation.heard_heartbeat", "Incarnation.declare_dead",
        "Incarnation._read_what_waits", "Incarnation.answered_heartbeat",
    ],
    "actors._policy": ["Liveness.deadline", "Liveness.heartbeat", "Liveness.answered"],
    "actors._supervisor_status": ["StatusBoard.move"],
}


def test_the_design_page_points_at_real_code() -> None:
    design = PAGES["design.rst"]
    for module_name, places in DESIGN_PLACES.items():
        assert f"``{module_name.replace('.', '/')}.py``" in design, module_name
        module = importlib.import_module(module_name)
        for place in places:
            assert f"``{place}``" in design, place
            class_name, attribute = place.split(".")
            assert hasattr(getattr(module, class_name), attribute), place
    cited = set(re.findall(r"``([A-Z]\w+\.\w+)``", design))
    assert cited <= {place for places in DESIGN_PLACES.values() for place in places}, cited
