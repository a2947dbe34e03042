"""Turn times of `payops chat` with the offline stub on 100k-row scenarios.

    python benchmarks/chat.py [--rows 100000] [--kind issuer_outage] [--repeat 3]

For a scenario of the project's generator and one of the independent generator (tests/
independent_scenarios.py), in-process:
- `load`: reading the data (once per process; not part of a turn);
- `first`: the first turn, "what is wrong?" (bar: < 3 s, load included: `load+first`);
- `next`: the slowest later turn of a follow-up conversation (bar: < 1 s each).
And across processes (`payops chat --once`, process start included): the first question,
then "which processors are affected?" on the same thread from a new process.

Each figure is the median of `--repeat` runs; CPU seconds are shown beside wall seconds,
since wall time on a shared machine includes waiting for a core. Last lines:
`<generator> load+first=<s> bar_first=<ratio> next=<s> bar_next=<ratio> cli_first=<s> cli_next=<s>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAYOPS = Path(sys.executable).with_name("payops")
FOLLOW_UPS = (
    "which processors are affected?",
    "since when?",
    "is it the processor or the issuers?",
    "is it the mix?",
    "which decline codes moved?",
    "latency?",
    "what about the other processors?",
    "what is wrong?",
)
FIRST_BAR_S = 3.0
NEXT_BAR_S = 1.0


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def in_process(folder: Path) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of loading, the first turn and the slowest follow-up."""
    from agent.chat.context import ChatContext
    from agent.chat.session import ChatSession
    from agent.runner import memory_checkpointer

    with tempfile.TemporaryDirectory() as home:
        ctx = ChatContext(state_dir=Path(home))
        chat = ChatSession(ctx, memory_checkpointer(), folder)
        start = _clock()
        chat.investigation()
        load = _since(start)
        start = _clock()
        first = chat.ask("what is wrong?")
        first_t = _since(start)
        assert first.answer and not first.unverified, first.answer
        slowest = (0.0, 0.0)
        for question in FOLLOW_UPS:
            start = _clock()
            turn = chat.ask(question)
            took = _since(start)
            assert turn.answer and not turn.unverified, (question, turn.answer)
            slowest = max(slowest, took)
        ctx.close()
    return {"load": load, "first": first_t, "next": slowest}


def across_processes(folder: Path) -> tuple[float, float]:
    """Wall seconds of `payops chat --once`: the first question, then a follow-up from a
    new process on the same thread."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PAYOPS_HOME": home}
        times = []
        for question in ("what is wrong?", "which processors are affected?"):
            started = time.perf_counter()
            subprocess.run(
                [str(PAYOPS), "chat", str(folder), "--once", question, "--thread", "bench"],
                check=True,
                capture_output=True,
                env=env,
                cwd=ROOT,
            )
            times.append(time.perf_counter() - started)
    return times[0], times[1]


def _median(runs: list[dict[str, tuple[float, float]]], key: str) -> tuple[float, float]:
    return (
        statistics.median(r[key][0] for r in runs),
        statistics.median(r[key][1] for r in runs),
    )


def main() -> None:
    """Generate the two scenarios, time them, print medians and ratios to the bars."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kind", default="issuer_outage")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from tests.independent_scenarios import build
    from tools.generate import GenerateOptions, generate_scenario

    with tempfile.TemporaryDirectory() as out:
        folders = {
            "ours": generate_scenario(
                Path(out), args.kind, 1, args.rows, options=GenerateOptions(file_format="csv")
            ),
            "independent": build(Path(out), args.kind, 1, rows=args.rows),
        }
        for name, folder in folders.items():
            runs = [in_process(folder) for _ in range(args.repeat)]
            cli = [across_processes(folder) for _ in range(args.repeat)]
            load, first, nxt = (_median(runs, k) for k in ("load", "first", "next"))
            cli_first = statistics.median(c[0] for c in cli)
            cli_next = statistics.median(c[1] for c in cli)
            print(
                f"{name}: {args.rows:,} rows, {args.kind}: load {load[0]:.2f} s (cpu "
                f"{load[1]:.2f}), first turn {first[0]:.2f} s (cpu {first[1]:.2f}), slowest "
                f"follow-up {nxt[0]:.2f} s (cpu {nxt[1]:.2f}); payops chat --once: first "
                f"{cli_first:.2f} s, follow-up in a new process {cli_next:.2f} s",
                file=sys.stderr,
            )
            total = load[0] + first[0]
            print(
                f"{name} load+first={total:.2f} bar_first={total / FIRST_BAR_S:.2f} "
                f"next={nxt[0]:.2f} bar_next={nxt[0] / NEXT_BAR_S:.2f} "
                f"cli_first={cli_first:.2f} cli_next={cli_next:.2f}"
            )


if __name__ == "__main__":
    main()
