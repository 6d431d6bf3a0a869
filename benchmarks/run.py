"""``make bench``: trio-comms side by side with the designs people use today.

Every trial runs in a fresh process against its own echo peer process over a
socketpair, with ~100-byte bodies, and every caller checks that each reply is its
own. Candidates are interleaved (A B C ... A B C ...) and repeated; the table quotes
medians and the ratios of trio-comms to each reference and to the limit. Results are
printed as markdown and saved as JSON under benchmarks/results/.

    python -m benchmarks.run [--repeats 3] [--seconds 1.0] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .rst import write_rst

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

TASK_LEVELS = [1, 10, 100, 1000]
THREAD_LEVELS = [1, 10, 100]
GRID: list[tuple[str, list[int]]] = [
    ("trio-comms: trio tasks", TASK_LEVELS),
    ("trio-comms: threads (send)", THREAD_LEVELS),
    ("trio-comms: asyncio loop in a thread", TASK_LEVELS),
    ("trio-comms: comms_in_thread from asyncio", TASK_LEVELS),
    ("reference: lock-serialized threads, untyped", THREAD_LEVELS),
    ("reference: lock-serialized threads, typed", THREAD_LEVELS),
    ("reference: asyncio pending futures, coroutines, untyped", TASK_LEVELS),
    ("reference: asyncio pending futures, coroutines, typed", TASK_LEVELS),
    ("reference: asyncio pending futures, threads, untyped", THREAD_LEVELS),
    ("reference: asyncio pending futures, threads, typed", THREAD_LEVELS),
    ("reference: trio parked tasks, untyped", TASK_LEVELS),
    ("reference: trio parked tasks, typed", TASK_LEVELS),
    ("reference: threads handing over to a trio thread, typed", THREAD_LEVELS),
    ("limit: raw socket, K frames per sendall, msgpack.Unpacker", TASK_LEVELS),
]


def child(module: str, *args: object) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(trials: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(t[key] for t in trials) for key in trials[0]}


def parse_run_args() -> tuple[int, float, bool]:
    """``--repeats``, ``--seconds`` and ``--quick`` (one repeat of short trials)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="one repeat, short trials (a smoke run)")
    args = parser.parse_args()
    repeats, seconds = (1, 0.3) if args.quick else (args.repeats, args.seconds)
    return repeats, seconds, args.quick


Trials = dict[str, list[dict[str, float]]]


def run_rounds(
    cells: list[tuple[str, int]],
    repeats: int,
    seconds: float,
    trial: Callable[[str, int], dict[str, float]],
    after_round: Callable[[Trials], None] | None = None,
) -> Trials:
    """Every cell once per round, in order (interleaved), ``repeats`` rounds."""
    trials: Trials = {}
    for repeat in range(repeats):
        print(f"round {repeat + 1}/{repeats}: {len(cells)} trials", file=sys.stderr, flush=True)
        for name, level in cells:
            trials.setdefault(f"{name}|{level}", []).append(trial(name, level))
        if after_round is not None:
            after_round(trials)
    return trials


def main() -> None:
    repeats, seconds, quick = parse_run_args()
    cells = [(name, level) for name, levels in GRID for level in levels]

    def extras(trials: Trials) -> None:
        for kind in ("responder-concurrent", "responder-serial"):
            trials.setdefault(kind, []).append(child("benchmarks.extras", kind, seconds * 2))
        for callers in (100, 1000, 10000):
            trials.setdefault(f"scale|{callers}", []).append(child("benchmarks.extras", "scale", callers, seconds * 2))
        trials.setdefault("asyncio-submit", []).append(child("benchmarks.extras", "asyncio-submit", 15))

    trials = run_rounds(cells, repeats, seconds, lambda name, level: child("benchmarks.trial", name, level, seconds), extras)
    memory = child("benchmarks.extras", "memory", 10000)

    medians = {key: median_of(value) for key, value in trials.items()}
    wrong = sum(t["wrong"] for value in trials.values() for t in value)
    report = render(medians, memory, repeats, seconds, wrong)
    print(report)
    stamp = save_results(
        "quick" if quick else "{stamp}",
        {"repeats": repeats, "seconds": seconds, "medians": medians, "memory": memory, "misrouted": wrong,
         "report": report},
    )
    write_rst(RESULTS / ("quick.rst" if quick else "bench.rst"), "make bench", report, stamp)
    chart = RESULTS / ("quick.png" if quick else "throughput.png")
    if draw_chart(medians, chart, stamp):
        print(f"saved {chart.relative_to(ROOT)}")
    if wrong:
        raise SystemExit(f"{wrong} replies were not their caller's own")


def draw_chart(medians: dict[str, dict[str, float]], path: Path, stamp: str) -> bool:
    """Requests per second against concurrency, one line per candidate (log x axis).

    Returns False (and says so) when matplotlib is missing: ``make bench`` installs it.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (make bench installs it)", file=sys.stderr)
        return False
    figure, axes = plt.subplots(figsize=(10, 6), dpi=100)
    colours = plt.get_cmap("tab20").colors
    for index, (name, levels) in enumerate(GRID):
        style = "-" if name.startswith("trio-comms") else (":" if name.startswith("limit") else "--")
        rps = [medians[f"{name}|{level}"]["rps"] for level in levels]
        axes.plot(levels, rps, style, marker="o", color=colours[index % len(colours)], label=name)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("concurrent callers (tasks or threads)")
    axes.set_ylabel("requests per second (median)")
    axes.set_title(f"trio-comms and reference designs, {stamp}, {machine()}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def candidate_table(grid: list[tuple[str, list[int]]], m: dict[str, dict[str, float]]) -> list[str]:
    """The markdown rows of every candidate at every level: req/s, latency, client CPU."""
    lines = [
        "| candidate | concurrency | req/s | p50 µs | p99 µs | client CPU µs/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, levels in grid:
        for level in levels:
            r = m[f"{name}|{level}"]
            lines.append(
                f"| {name} | {level} | {r['rps']:,.0f} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} | {r['cpu_us']:.1f} |"
            )
    return lines


def save_results(name: str, payload: dict[str, object]) -> str:
    """Write ``payload``, with the date and the machine, to ``benchmarks/results/<name>.json``
    (``{stamp}`` in ``name`` becomes the UTC date and time); return the stamp."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name.format(stamp=stamp)}.json"
    path.write_text(json.dumps({"date": stamp, "machine": machine(), **payload}, indent=2) + "\n")
    print(f"\nsaved {path.relative_to(ROOT)}")
    return stamp


def machine() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores"


def render(m: dict[str, dict[str, float]], memory: dict[str, float], repeats: int, seconds: float, wrong: int) -> str:
    lines = [
        f"Medians of {repeats} interleaved runs of {seconds:g} s each; {machine()}; replies not their caller's own: {wrong}.",
        "",
        *candidate_table(GRID, m),
    ]

    def ratio(a: str, b: str) -> str:
        return f"{m[a]['rps'] / m[b]['rps']:.2f}×" if m[b]["rps"] else "n/a"

    tasks, threads = "trio-comms: trio tasks", "trio-comms: threads (send)"
    futures, parked = "reference: asyncio pending futures", "reference: trio parked tasks"
    hand_over = "reference: threads handing over to a trio thread, typed"
    lock, limit = "reference: lock-serialized threads", "limit: raw socket, K frames per sendall, msgpack.Unpacker"
    def row(label: str, ours: str, theirs: str, levels: list[int]) -> str:
        cells = " | ".join(ratio(f"{ours}|{c}", f"{theirs}|{c}") for c in levels)
        return f"| {label} | {cells} |" + " |" * (len(TASK_LEVELS) - len(levels))

    flavours = ("untyped", "typed")
    lines += [
        "",
        "| ratio (req/s) | " + " | ".join(f"c={c}" for c in TASK_LEVELS) + " |",
        "| --- |" + " ---: |" * len(TASK_LEVELS),
        *(
            row(f"trio tasks / asyncio pending futures, coroutines, {f}", tasks, f"{futures}, coroutines, {f}", TASK_LEVELS)
            for f in flavours
        ),
        *(row(f"trio tasks / trio parked tasks, {f}", tasks, f"{parked}, {f}", TASK_LEVELS) for f in flavours),
        row(
            "trio parked tasks / asyncio pending futures, coroutines, untyped",
            f"{parked}, untyped",
            f"{futures}, coroutines, untyped",
            TASK_LEVELS,
        ),
        row("trio tasks / raw limit", tasks, limit, TASK_LEVELS),
        *(
            line
            for f in flavours
            for line in (
                row(f"threads / asyncio pending futures, threads, {f}", threads, f"{futures}, threads, {f}", THREAD_LEVELS),
                row(f"threads / lock-serialized, {f}", threads, f"{lock}, {f}", THREAD_LEVELS),
            )
        ),
        row("threads / threads handing over to a trio thread, typed", threads, hand_over, THREAD_LEVELS),
        row("threads handing over to a trio thread / lock-serialized, typed", hand_over, f"{lock}, typed", THREAD_LEVELS),
    ]
    tail = [
        f"{name} p99/p50 at 100 threads: {m[f'{name}|100']['p99_us'] / m[f'{name}|100']['p50_us']:.1f}×"
        for name in (threads, f"{futures}, threads, untyped", f"{lock}, untyped")
    ]
    conc, serial = m["responder-concurrent"], m["responder-serial"]
    scale = {c: m[f"scale|{c}"] for c in (100, 1000, 10000)}
    submit = m["asyncio-submit"]
    lines += [
        "",
        "- " + "; ".join(tail),
        f"- responder, 100 callers, 5 ms handlers: serve {conc['rps']:,.0f} req/s vs serial {serial['rps']:,.0f} req/s "
        f"= {conc['rps'] / serial['rps']:.0f}×",
        f"- memory with 10,000 requests pending: {memory['channel_bytes_per_pending']:,.0f} B per request held by the "
        f"channel (slot, in-flight entry, packed body); {memory['traced_bytes_per_pending']:,.0f} B traced in all and "
        f"{memory['rss_bytes_per_pending']:,.0f} B of RSS, the caller's own trio task included",
        "- scale, trio callers: "
        + ", ".join(f"{c:,}: {r['rps']:,.0f} req/s, p99 {r['p99_us'] / 1000:,.1f} ms" for c, r in scale.items())
        + f" (10,000 vs 100: {scale[10000]['rps'] / scale[100]['rps'] - 1:+.0%})",
        f"- asyncio submit, 1,000 concurrent asend through comms_in_thread: the loop blocked "
        f"{submit['channel_ms']:.1f} ms ({submit['channel_ms']:.1f} µs per call), against {submit['plain_ms']:.1f} ms for "
        f"the same gather awaiting plain futures ({submit['channel_ms'] / submit['plain_ms']:.1f}×; "
        f"{submit['channel_ms'] - submit['plain_ms']:.1f} µs per call more)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
