"""`python -m quant.bench_summary ROWS.json`: the README's and docs/QUANT.md's table from `worldmodel bench quant --json`.

One line per method: weight bytes, SQNR on plain and on outlier inputs, and speed against fp32 at each M, each cell
the min–max over the DiT's shapes, then the same speeds on 4096² (a large-model shape) where it was timed, then
(ours only) the speed against PyTorch's quantize_dynamic (fbgemm) at M = 64…1024, on the DiT's shapes and on 4096². The CPU
the rows came from is printed above the table, as every committed figure must say where it was measured.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

from quant.bench_common import DIT_SHAPES


def _span(values: list[float], digits: int = 2, suffix: str = "") -> str:
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}{suffix}" if f"{lo:.{digits}f}" == f"{hi:.{digits}f}" else f"{lo:.{digits}f}–{hi:.{digits}f}{suffix}"


def summary(rows: list[dict]) -> str:
    dit = {(k, n) for k, n in DIT_SHAPES}
    tokens = sorted({r["M"] for r in rows})
    by_method: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["method"] != "fp32":
            by_method[row["method"]].append(row)
    head = ["method", "bytes vs fp32", "SQNR dB", "SQNR outliers dB"] + [f"M={m}" for m in tokens]
    head += [f"4096² M={m}" for m in tokens]
    head += ["vs torch dyn M≥64", "4096² vs torch dyn M≥64"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, found in by_method.items():
        small = [r for r in found if (r["K"], r["N"]) in dit]
        big = [r for r in found if (r["K"], r["N"]) not in dit]
        cells = [method, _span([r["bytes_vs_fp32"] for r in small], 3), _span([r["sqnr_db"] for r in small], 1),
                 _span([r["sqnr_outlier_db"] for r in small], 1)]
        cells += [_span([r["speed_vs_fp32"] for r in small if r["M"] == m], suffix="×") for m in tokens]
        cells += [_span([r["speed_vs_fp32"] for r in big if r["M"] == m], suffix="×") for m in tokens]
        for shape_rows in (small, big):
            ratios = [r["speed_vs_torch_dyn"] for r in shape_rows if r["M"] >= 64 and r.get("speed_vs_torch_dyn")]
            cells.append(_span(ratios, suffix="×"))
        lines.append("| " + " | ".join(cells) + " |")
    cpus = sorted({r.get("cpu", r.get("gpu", "?")) for r in rows})
    return f"Measured on: {', '.join(cpus)}; 1 thread.\n\n" + "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m quant.bench_summary ROWS.json  (from worldmodel bench quant --json)")
    with open(sys.argv[1]) as f:
        print(summary(json.load(f)))
