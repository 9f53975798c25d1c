"""Calibration: the simulator's true videos beat every broken baseline on the dimensions meant to catch it.

The claims live here, once, for the quick check (tests/test_eval_calibration.py, which scores the runs itself)
and for finished runs of any size, the full suite included:

    python -m eval.calibration runs/eval/full     # reads ROOT/gt and ROOT/frozen, shuffled, noise, mismatched

Each claim of the form "the truth beats baseline X on dimension D" must hold by CLAIM_MARGIN and, from finished
reports, with a paired 95% interval on truth - X that excludes zero (eval/bootstrap.py): a win that the spread of
scenes and actions could undo is not counted. Prints one line per claim and exits 1 when any fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

BASELINES = ("frozen", "shuffled", "noise", "mismatched")
CLAIM_MARGIN = 0.02
# (dimension, the baseline meant to break it): the truth must beat it.
TRUTH_BEATS = (
    ("image_quality", "noise"), ("aesthetic", "noise"), ("temporal", "shuffled"), ("smoothness", "shuffled"),
    ("keyboard", "frozen"), ("mouse", "frozen"), ("keyboard", "mismatched"), ("mouse", "mismatched"),
    ("consistency_3d", "noise"), ("pose_following", "frozen"), ("scenario", "noise"), ("scenario", "mismatched"),
    ("ssim", "noise"),
)  # fmt: skip
LOWEST_OF_ALL = (("image_quality", "noise"), ("aesthetic", "noise"), ("ssim", "noise"))
TRUTH_IS_BEST = ("keyboard", "mouse", "pose_following", "ssim")  # not scenario: a frozen video aces it


Margins = dict[tuple[str, str], list[float] | None]  # (dimension, baseline) -> interval on truth - baseline


def check_summaries(summaries: dict[str, dict[str, Any]], margins: Margins | None = None) -> list[str]:
    """Every failed claim, as a sentence; `summaries` maps "truth" and each baseline to its summary, `margins`
    (optional) maps (dimension, baseline) to the paired interval on truth - baseline."""
    failures = []
    truth = summaries["truth"]
    for dim, worst in TRUTH_BEATS:
        gap = truth[dim] - summaries[worst][dim]
        if gap <= CLAIM_MARGIN:
            failures.append(f"{dim}: the truth beats {worst} by {gap:.3f}, not more than {CLAIM_MARGIN}")
        interval = (margins or {}).get((dim, worst), [1.0, 1.0])
        if interval is None or interval[0] <= 0:
            failures.append(f"{dim}: the truth's lead over {worst} has a 95% interval {interval} that holds 0")
    for dim, worst in LOWEST_OF_ALL:
        others = {name: s[dim] for name, s in summaries.items() if name != worst}
        if summaries[worst][dim] >= min(others.values()):
            failures.append(f"{dim}: {worst} ({summaries[worst][dim]:.3f}) is not the lowest of all {others}")
    for dim in TRUTH_IS_BEST:
        best = max(summaries, key=lambda name: summaries[name][dim])
        if best != "truth":
            failures.append(f"{dim}: {best} ({summaries[best][dim]:.3f}) beats the true videos ({truth[dim]:.3f})")
    return failures


def check_folders(root: Path) -> tuple[list[str], list[str]]:
    """(claims checked, failures) from ROOT/gt and ROOT/<baseline> report folders."""
    from eval import bootstrap
    from eval.compare import check_same_videos, read_report, scored_rows

    reports = {"truth": read_report(root / "gt")} | {kind: read_report(root / kind) for kind in BASELINES}
    rows = {name: scored_rows(report) for name, report in reports.items()}
    margins = {}
    for kind in BASELINES:
        check_same_videos(rows["truth"], rows[kind], ("gt", kind))
        paired = bootstrap.paired_differences(rows["truth"], rows[kind])
        margins.update({(dim, kind): paired.get(dim) for dim, worst in TRUTH_BEATS if worst == kind})
    checked = [f"truth - {worst} on {dim}: {margins[(dim, worst)]}" for dim, worst in TRUTH_BEATS]
    return checked, check_summaries({name: report["summary"] for name, report in reports.items()}, margins)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a folder holding gt/ and frozen/, shuffled/, noise/, mismatched/ report folders")
    args = parser.parse_args(argv)
    try:
        checked, failures = check_folders(args.root)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(checked))
    print("\n".join(f"FAILED {f}" for f in failures) or "calibration holds: every claim, every interval excludes 0")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
