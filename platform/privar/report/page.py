"""``report.html``: the study on one self-contained page (see :mod:`privar.report`).

The page holds everything it shows: the plot and the pictures are inlined as base64 PNGs, so it
can be opened from the study's output folder, mailed, or viewed as an MLflow artifact.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from privar.report.rows import Row, format_params, front_rows, knee_run_id, label, metric
from privar.report.table import IN_LOOP

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { font: 12px monospace; color: #555; word-break: break-all; min-width: 12ch; }
figure { display: inline-block; margin: 0 1.5em 1.5em 0; vertical-align: top; }
figcaption { font-weight: 600; margin-bottom: 4px; }
img { image-rendering: pixelated; max-width: 100%; }
code { font-size: 12px; color: #555; }
"""


def _png(data: bytes, alt: str) -> str:
    return (f'<img alt="{escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">')  # fmt: skip


def _number(value: float | None, fmt: str = "{:.3f}") -> str:
    return "-" if value is None or math.isnan(value) else fmt.format(value)


def _front_table(rows: Sequence[Row], metrics: tuple[str, str],
                 aliases: Mapping[str, Sequence[str]]) -> str:  # fmt: skip
    front = front_rows(rows)
    if not front:
        return "<p>No trial is on the front.</p>"
    knee_id = knee_run_id(front)
    head = ("#", "run", "trial", "encoder", "params", *metrics, "recon_psnr", "aliases", "run id")
    lines = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for rank, r in enumerate(front, start=1):
        star = " (knee)" if r["run_id"] == knee_id else ""
        cells = [
            (f"{rank}{star}", ""),
            (label(r), ""),
            (str(r.get("trial", "")), ""),
            (str(r["encoder"]), ""),
            (format_params(r.get("params") or {}), ""),
            (_number(metric(r, "action_acc")), "num"),
            (_number(metric(r, "privacy_acc")), "num"),
            (_number(metric(r, "recon_psnr"), "{:.2f}"), "num"),
            (", ".join(aliases.get(r["run_id"], ())), ""),
            (str(r["run_id"]), "id"),  # 32 hex digits: may break, never widen the page
        ]
        lines.append("<tr>" + "".join(f'<td class="{c}">{escape(t)}</td>' for t, c in cells)
                     + "</tr>")  # fmt: skip
    return "\n".join([*lines, "</table>"])


def write_page(
    rows: Sequence[Row],
    path: str | Path,
    title: str,
    summary: Sequence[str],
    plot: bytes,
    samples: Mapping[str, bytes],
    metrics: tuple[str, str] = IN_LOOP,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write ``report.html`` to ``path`` and return it.

    Args:
        rows: the study's rows, marked (:func:`~privar.report.mark_front`).
        title: the page's heading (the study's name).
        summary: lines of plain text under the heading (how the front was placed, hypervolume).
        plot: ``pareto.png``'s bytes.
        samples: run id -> its picture's PNG bytes (raw clips over encoded ones), shown for
            every front trial and every baseline that has one.
        metrics: the MLflow names of the two accuracies (the table's column titles).
        aliases: run id -> its registry aliases (``pareto-1``, ``knee``).
    """
    aliases = aliases or {}
    shown = [*front_rows(rows), *(r for r in rows if r.get("kind") == "baseline")]
    figures = []
    for r in shown:
        if r["run_id"] not in samples:
            continue
        kind = "baseline" if r.get("kind") == "baseline" else "front trial"
        caption = f"{label(r)} ({kind}): {metrics[0]} {_number(metric(r, 'action_acc'))}, " \
                  f"{metrics[1]} {_number(metric(r, 'privacy_acc'))}"  # fmt: skip
        figures.append(f"<figure><figcaption>{escape(caption)}</figcaption>"
                       f"{_png(samples[r['run_id']], label(r))}</figure>")  # fmt: skip
    body = [
        f"<h1>{escape(title)}</h1>",
        *(f"<p>{escape(line)}</p>" for line in summary),
        "<h2>Pareto front</h2>",
        _front_table(rows, metrics, aliases),
        _png(plot, "Pareto front"),
        "<h2>What the encoders show</h2>",
        "<p>The same validation clips for every run: raw frames on top, encoded below.</p>",
        "\n".join(figures) or "<p>No pictures were logged.</p>",
    ]
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")  # fmt: skip
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
