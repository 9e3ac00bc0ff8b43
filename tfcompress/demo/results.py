"""The demo's table saved beside its files: Markdown, JSON and a PNG.

`results.md` for a README or a pull request, `results.json` for scripts,
`results.png` (size against accuracy, latency as the marker's area) for
people who would rather look; the PNG only when matplotlib is installed
(`pip install tfcompress[plots]`).
"""

import json
import os

from tfcompress.demo.table import COLUMNS


def format_markdown(rows):
    """Formats demo rows as a Markdown table (GitHub's pipe tables)."""
    lines = [
        "| " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "|" + "|".join("---:" if align == ">" else "---" for _, _, align in COLUMNS) + "|",
    ]
    for row in rows:
        cells = [cell.format(row) for _, cell, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_results(rows, output_dir, notes):
    """Writes `results.md`, `results.json` and, with matplotlib,
    `results.png` into `output_dir`; returns the paths written."""
    paths = []
    markdown = os.path.join(output_dir, "results.md")
    with open(markdown, "w") as f:
        f.write(format_markdown(rows) + "\n\n" + notes + "\n")
    paths.append(markdown)
    as_json = os.path.join(output_dir, "results.json")
    with open(as_json, "w") as f:
        json.dump(
            {"rows": [row.to_dict() for row in rows], "notes": notes}, f, indent=2
        )
        f.write("\n")
    paths.append(as_json)
    png = os.path.join(output_dir, "results.png")
    if plot_results(rows, png):
        paths.append(png)
    return paths


def plot_results(rows, path):
    """Draws every variant's file size against its LiteRT accuracy, the
    marker's area proportional to its latency; returns whether it could
    (matplotlib is optional)."""
    try:
        # The `Figure` API draws with the Agg canvas and leaves pyplot's
        # global backend alone.
        from matplotlib.figure import Figure
    except ImportError:
        return False
    figure = Figure(figsize=(10, 5))
    axes = figure.subplots()
    slowest = max(row.latency_ms for row in rows) or 1.0
    for row in rows:
        # A legend, not labels on the points: variants of one size (the
        # int8 files) sit on top of each other.
        axes.scatter(
            row.tflite_bytes / 1024,
            100 * row.litert_accuracy,
            s=40 + 400 * row.latency_ms / slowest,
            alpha=0.6,
            label=f"{row.name}: {row.latency_ms:.3f} ms",
        )
    axes.legend(
        loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8,
        markerscale=0.5, title="median latency",
    )
    axes.set_xscale("log")
    axes.set_xlabel(".tflite size (KiB, log scale)")
    axes.set_ylabel("LiteRT test accuracy (%)")
    axes.set_title("tfcompress demo: size, accuracy, latency (marker area)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True
