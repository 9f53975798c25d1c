"""Run a named benchmark and print its table (or JSON with --json).

Each benchmark is a function `run(quick: bool) -> list[dict]` in the room that owns
what it measures; every row is one measurement and every key one column. Speeds are
quoted as ratios against a baseline measured in the same process, because this
machine is shared and absolute timings drift.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

BENCHES: dict[str, str] = {
    "world": "data.bench",  # renderer and simulator frames/s
    "quant": "quant.bench",  # int8 / LUT-GEMM: bytes, SQNR and speed against fp32
    "stream": "worldmodel.bench",  # streaming frames/s and memory, fp32 and each quant method
    "eval": "eval.bench",  # what one video of the evaluator costs, per dimension
    "memory": "worldmodel.bench_memory",  # the world memory's cost in live play, and a 10,000-frame play's
    "web": "app.bench_web",  # live play through the web server: latency and frames/s at 1, 4 and 8 clients
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHES), help="which benchmark to run")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shapes (for smoke tests)")


def format_table(rows: list[dict]) -> str:
    """Render rows as a Markdown table; columns in first-seen order."""
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return "" if value is None else str(value)

    table = [[cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in table)) for i, col in enumerate(columns)]
    lines = ["| " + " | ".join(col.ljust(w) for col, w in zip(columns, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in table]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    module = importlib.import_module(BENCHES[args.name])
    rows = module.run(quick=args.quick)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print(format_table(rows))
    return 0
