"""The report: per-video rows -> the GameWorld-style summary, written as JSON, Markdown and an HTML page.

Summary (every score in [0, 1], higher is better, except the raw PSNR in dB and the pose error in degrees):
- paper dimensions, in GameWorld Score's column order: image_quality, aesthetic, temporal, smoothness,
  keyboard, mouse, consistency_3d; keyboard pools the transitions of all videos per task (fb, lr, attack,
  jump) and averages the four task accuracies; mouse averages per-video accuracies (as GameWorld does);
  the other dimensions average per-video scores;
- ours: scenario (round-trip videos), psnr and ssim (means over frames 1.. of all videos, against the
  simulator), pose_following (score) and pose_error_deg.
The HTML page embeds matplotlib PNGs (summary bars, per-video distributions, fidelity against horizon,
controllability by action group) and thumbnail strips of a few videos beside the true ones.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from data.files import write_text_atomic

PAPER_DIMS = ("image_quality", "aesthetic", "temporal", "smoothness", "keyboard", "mouse", "consistency_3d")
OUR_DIMS = ("scenario", "psnr", "ssim", "pose_following", "pose_error_deg")
TITLES = {
    "image_quality": "Image", "aesthetic": "Aesthetic", "temporal": "Temporal", "smoothness": "Motion",
    "keyboard": "Keyboard", "mouse": "Mouse", "consistency_3d": "3D", "scenario": "Scenario",
    "psnr": "PSNR dB", "ssim": "SSIM", "pose_following": "Pose", "pose_error_deg": "Pose err deg",
}  # fmt: skip
# GameWorld Score's published rows (Matrix-Game report), in PAPER_DIMS order.
PUBLISHED: dict[str, tuple[float, ...]] = {
    "Oasis (published)": (0.65, 0.48, 0.94, 0.98, 0.77, 0.56, 0.56),
    "MineWorld (published)": (0.69, 0.47, 0.95, 0.98, 0.86, 0.64, 0.51),
    "Matrix-Game (published)": (0.72, 0.49, 0.97, 0.98, 0.95, 0.95, 0.76),
}
HORIZONS = (1, 4, 8, 16, 32, 64)


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    bench = [r for r in rows if r["kind"] == "benchmark"]
    trips = [r for r in rows if r["kind"] == "scenario"]
    failed = [r for r in rows if r["kind"] == "failed"]
    out: dict[str, Any] = {"videos": len(bench), "scenario_videos": len(trips), "failed_videos": len(failed)}
    for dim in ("image_quality", "aesthetic", "temporal", "smoothness", "consistency_3d"):
        out[dim] = _mean([r.get(dim) for r in bench])
    tasks: dict[str, list[int]] = {}
    for r in bench:
        for task, (correct, total) in r["keyboard_counts"].items():
            tasks.setdefault(task, [0, 0])
            tasks[task][0] += correct
            tasks[task][1] += total
    out["keyboard_tasks"] = {t: c / n for t, (c, n) in tasks.items() if n}
    out["keyboard"] = _mean(list(out["keyboard_tasks"].values()))
    out["mouse"] = _mean([r.get("mouse") for r in bench])
    out["scenario"] = _mean([r.get("scenario") for r in trips])
    with_truth = [r for r in bench if r.get("psnr_curve")]
    if with_truth:
        out["psnr"] = float(np.mean([np.mean(r["psnr_curve"][1:]) for r in with_truth]))
        out["ssim"] = float(np.mean([np.mean(r["ssim_curve"][1:]) for r in with_truth]))
        out["pose_following"] = _mean([r.get("pose_score") for r in with_truth])
        out["pose_error_deg"] = _mean([r.get("pose_error_deg") for r in with_truth])
        length = min(len(r["psnr_curve"]) for r in with_truth)
        out["psnr_by_horizon"] = {h: float(np.mean([r["psnr_curve"][h] for r in with_truth])) for h in HORIZONS if h < length}
        out["ssim_by_horizon"] = {h: float(np.mean([r["ssim_curve"][h] for r in with_truth])) for h in HORIZONS if h < length}
    else:
        for dim in ("psnr", "ssim", "pose_following", "pose_error_deg"):
            out[dim] = None
    return out


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _cell_with_interval(summary: dict[str, Any], dim: str, digits: int = 3) -> str:
    """`0.910 (0.884–0.931)`: the score and its 95% interval (eval/bootstrap.py), when the report has one."""
    low_high = (summary.get("intervals") or {}).get(dim)
    if summary.get(dim) is None or not low_high:
        return _cell(summary.get(dim), digits)
    return f"{_cell(summary[dim], digits)} ({_cell(low_high[0], digits)}–{_cell(low_high[1], digits)})"


def markdown_table(rows: dict[str, dict[str, Any]], published: bool = False) -> str:
    """One line per run ({label: summary}); published GameWorld rows appended when asked."""
    dims = PAPER_DIMS + OUR_DIMS
    lines = ["| run | " + " | ".join(TITLES[d] for d in dims) + " |", "|---|" + "---|" * len(dims)]
    for label, summary in rows.items():
        digits = {"psnr": 1, "pose_error_deg": 1}
        lines.append(f"| {label} | " + " | ".join(_cell_with_interval(summary, d, digits.get(d, 3)) for d in dims) + " |")
    if published:
        for label, values in PUBLISHED.items():
            lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |" + " - |" * len(OUR_DIMS))
    return "\n".join(lines)


def scorer_table(scorers: dict[str, str]) -> str:
    lines = ["| dimension | scorer |", "|---|---|"]
    lines += [f"| {dim} | {name} |" for dim, name in scorers.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------- plots


def _png(fig) -> str:  # a matplotlib Figure
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def action_group(name: str) -> str:
    if name == "empty":
        return "none"
    if "camera" in name:
        return "camera" if name.startswith("camera") else "key+camera"
    return "key pair" if "_" in name else "single key"


def plots(rows: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, str]:
    """Base64 PNGs by title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    bench = [r for r in rows if r["kind"] == "benchmark"]
    dims = [d for d in PAPER_DIMS + ("scenario", "ssim", "pose_following") if summary.get(d) is not None]
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.bar([TITLES[d] for d in dims], [summary[d] for d in dims], color="#4477aa")
    ax.set_ylim(0, 1)
    ax.set_title("summary (higher is better)")
    out["Summary"] = _png(fig)

    per_video = [
        d
        for d in ("image_quality", "aesthetic", "temporal", "smoothness", "mouse", "consistency_3d", "pose_score")
        if any(r.get(d) is not None for r in bench)
    ]
    if per_video:
        fig, axes = plt.subplots(1, len(per_video), figsize=(2.2 * len(per_video), 2.4), squeeze=False)
        for ax, dim in zip(axes[0], per_video):
            ax.hist([r[dim] for r in bench if r.get(dim) is not None], bins=20, range=(0, 1), color="#66aa55")
            ax.set_title(TITLES.get(dim, "Pose"), fontsize=9)
            ax.tick_params(labelsize=7)
        out["Per-video distributions"] = _png(fig)

    curves = [r for r in bench if r.get("psnr_curve")]
    if curves:
        length = min(len(r["psnr_curve"]) for r in curves)
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
        for ax, key, label in ((axes[0], "psnr_curve", "PSNR (dB)"), (axes[1], "ssim_curve", "SSIM")):
            mean = np.mean([r[key][:length] for r in curves], axis=0)
            ax.plot(range(1, length), mean[1:], color="#aa3377")
            ax.set_xlabel("frame (horizon)")
            ax.set_ylabel(label)
        fig.suptitle("fidelity to the simulator against horizon")
        out["Fidelity against horizon"] = _png(fig)

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in bench:
        groups.setdefault(action_group(r["action"]), []).append(r)
    if groups:
        names = sorted(groups)
        kb = [np.mean([c / max(n, 1) for r in groups[g] for c, n in r["keyboard_counts"].values()]) for g in names]
        ms = [np.mean([r["mouse"] for r in groups[g]]) for g in names]
        fig, ax = plt.subplots(figsize=(7, 2.8))
        x = np.arange(len(names))
        ax.bar(x - 0.2, kb, 0.4, label="keyboard (mean task accuracy)")
        ax.bar(x + 0.2, ms, 0.4, label="mouse")
        ax.set_xticks(x, names)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("controllability by action group")
        out["Controllability by action group"] = _png(fig)
    return out


def thumbnail(frames: np.ndarray, count: int = 6) -> str:
    """A strip of `count` frames spread over a video, as a base64 PNG (2x nearest upscale)."""
    from PIL import Image

    idx = np.linspace(0, len(frames) - 1, count).round().astype(int)
    strip = np.concatenate([frames[i] for i in idx], axis=1)
    img = Image.fromarray(strip).resize((strip.shape[1] * 2, strip.shape[0] * 2), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()



def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    info: dict[str, Any],
    thumbnails: list[tuple[str, np.ndarray, np.ndarray | None]] = (),
) -> dict[str, Any]:
    """Write OUT/report.json, report.md and report.html; return the summary."""
    from eval import bootstrap

    summary = summarize(rows)
    # Uncertainty (eval/bootstrap.py): a seeded 95% interval on every dimension, so two writes are the same bytes.
    summary["intervals"] = bootstrap.intervals(rows)
    summary["interval_method"] = bootstrap.METHOD
    label = info["source"]
    table = markdown_table({label: summary})
    scorers = scorer_table(info["scorers"])
    report = {"summary": summary, "run": info, "videos": rows}
    write_text_atomic(out / "report.json", json.dumps(report, indent=1, allow_nan=False) + "\n")
    md = (
        f"# worldmodel eval: {label}\n\n{table}\n\n"
        f"In parentheses, the 95% interval: {summary['interval_method']}.\n\n## Scorers\n\n{scorers}\n"
    )
    if summary.get("keyboard_tasks"):
        md += "\n## Keyboard tasks\n\n" + " ".join(f"{k}: {v:.3f}" for k, v in summary["keyboard_tasks"].items()) + "\n"
    failed = [r for r in rows if r["kind"] == "failed"]
    if failed:
        md += "\n## Videos not scored\n\n" + "".join(f"- {r['name']}: {r['error']}\n" for r in failed)
    write_text_atomic(out / "report.md", md)

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>worldmodel eval</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
        "img{image-rendering:pixelated;max-width:100%}</style></head><body>",
        f"<h1>worldmodel eval: {html.escape(label)}</h1>",
        f"<p>{summary['videos']} benchmark videos, {summary['scenario_videos']} round-trip videos; "
        f"suite {html.escape(json.dumps(info.get('suite', {})))}</p>",
        _html_table(summary),
        "<h2>Scorers</h2><table><tr><th>dimension</th><th>scorer</th></tr>",
        *[
            f"<tr><td>{html.escape(d)}</td><td style='text-align:left'>{html.escape(n)}</td></tr>"
            for d, n in info["scorers"].items()
        ],
        "</table>",
    ]
    if failed:
        parts.append("<h2>Videos not scored</h2><ul>")
        parts += [f"<li>{html.escape(r['name'])}: {html.escape(r['error'])}</li>" for r in failed]
        parts.append("</ul>")
    for title, png in plots(rows, summary).items():
        parts.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{png}'>")
    if thumbnails:
        parts.append("<h2>Videos (generated, then the simulator's)</h2>")
        for name, frames, truth in thumbnails:
            parts.append(f"<p>{html.escape(name)}<br><img src='data:image/png;base64,{thumbnail(frames)}'>")
            if truth is not None:
                parts.append(f"<br><img src='data:image/png;base64,{thumbnail(truth)}'>")
            parts.append("</p>")
    parts.append("</body></html>")
    write_text_atomic(out / "report.html", "\n".join(parts))
    return summary


def _html_table(summary: dict[str, Any]) -> str:
    dims = PAPER_DIMS + OUR_DIMS
    head = "".join(f"<th>{TITLES[d]}</th>" for d in dims)
    digits = {"psnr": 1, "pose_error_deg": 1}
    cells = "".join(f"<td>{html.escape(_cell_with_interval(summary, d, digits.get(d, 3)))}</td>" for d in dims)
    pub = "".join(
        f"<tr><td style='text-align:left'>{html.escape(k)}</td>" + "".join(f"<td>{v:.2f}</td>" for v in vals)
        + "<td>-</td>" * len(OUR_DIMS) + "</tr>"
        for k, vals in PUBLISHED.items()
    )
    return f"<table><tr><th>run</th>{head}</tr><tr><td style='text-align:left'>this run</td>{cells}</tr>{pub}</table>"


def leaderboard(report_paths: list[Path]) -> str:
    """A Markdown leaderboard from several report.json files (or folders holding one), published rows last."""
    rows = {}
    for path in report_paths:
        path = path / "report.json" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report.json (run `worldmodel eval ... --out` first)")
        report = json.loads(path.read_text())
        rows[report["run"]["source"]] = report["summary"]
    table = markdown_table(rows, published=True)
    if any(summary.get("intervals") for summary in rows.values()):
        table += (
            "\n\nIn parentheses, the 95% interval (eval/bootstrap.py); "
            "`worldmodel eval --compare A B` tells which differences are real."
        )
    return table
