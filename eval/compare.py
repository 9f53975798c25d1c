"""`worldmodel eval --compare A B`: which differences between two runs over the same videos are real.

Two runs (report folders or report.json files) scored on the same videos, e.g. the int8 model against fp32:
for every dimension, A's score, B's, the difference A - B and its 95% interval from a paired bootstrap
(eval/bootstrap.py: the same resamples of scenes and actions for both runs, so what both share, such as
which scenes and actions are hard, cancels). A difference whose interval excludes zero is called real;
one whose interval holds zero cannot be told from the spread of the suite's scenes and actions. The runs
must hold the same videos: a difference over different videos would mix the models with the videos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval import bootstrap


def read_report(path: Path) -> dict[str, Any]:
    path = path / "report.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no report.json (run `worldmodel eval ... --out` first)")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None


def scored_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report.get("videos", []) if r.get("kind") in ("benchmark", "scenario")]


def check_same_videos(a: list[dict[str, Any]], b: list[dict[str, Any]], labels: tuple[str, str]) -> None:
    names_a, names_b = {r["name"] for r in a}, {r["name"] for r in b}
    if names_a == names_b:
        return
    only_a, only_b = sorted(names_a - names_b), sorted(names_b - names_a)
    parts = [f"{len(only)} only in {label}" + (f" (the first: {only[0]})" if only else "")
             for only, label in ((only_a, labels[0]), (only_b, labels[1])) if only]
    raise ValueError(f"the two runs were not scored on the same videos: {', '.join(parts)}; "
                     "compare runs of the same suite (same --scenes, --actions, --frames)")


def compare(path_a: Path, path_b: Path) -> dict[str, dict[str, Any]]:
    """{dimension: {"a", "b", "difference", "interval", "real"}} for the dimensions both runs score."""
    report_a, report_b = read_report(path_a), read_report(path_b)
    rows_a, rows_b = scored_rows(report_a), scored_rows(report_b)
    check_same_videos(rows_a, rows_b, (str(path_a), str(path_b)))
    intervals = bootstrap.paired_differences(rows_a, rows_b)
    out = {}
    for dim, interval in intervals.items():
        a, b = report_a["summary"].get(dim), report_b["summary"].get(dim)
        if a is None or b is None:
            continue
        real = interval is not None and (interval[0] > 0 or interval[1] < 0)
        out[dim] = {"a": a, "b": b, "difference": a - b, "interval": interval, "real": real}
    return out


def markdown(path_a: Path, path_b: Path, result: dict[str, dict[str, Any]]) -> str:
    from eval.report import TITLES

    lines = [
        f"A: {read_report(path_a)['run']['source']} ({path_a})",
        f"B: {read_report(path_b)['run']['source']} ({path_b})",
        "",
        "| dimension | A | B | A - B | 95% interval | real? |",
        "|---|---|---|---|---|---|",
    ]
    for dim, d in result.items():
        low, high = d["interval"] or (None, None)
        span = f"{low:+.4f} to {high:+.4f}" if low is not None else "-"
        verdict = "yes: excludes 0" if d["real"] else "no: holds 0"
        lines.append(f"| {TITLES[dim]} | {d['a']:.4f} | {d['b']:.4f} | {d['difference']:+.4f} | {span} | {verdict} |")
    real = [TITLES[dim] for dim, d in result.items() if d["real"]]
    lines += ["", f"Differences that exclude zero: {', '.join(real) if real else 'none'}. ({bootstrap.METHOD}, paired)"]
    return "\n".join(lines)
