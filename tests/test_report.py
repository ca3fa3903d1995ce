"""The front as rows: marking, the text table, pareto.csv, pareto.png and report.html."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from privar.report import (
    csv_columns,
    draw_front,
    format_params,
    format_table,
    mark_front,
    plot_front,
    spread,
    write_csv,
    write_page,
)

ACTION_CHANCE, PRIVACY_CHANCE = 0.2, 0.1


def _trial(run_id: str, encoder: str, params: dict, a: Any, p: Any, psnr: Any = None) -> dict:
    return {
        "run_id": run_id,
        "kind": "trial",
        "encoder": encoder,
        "params": params,
        "action_acc": a,
        "privacy_acc": p,
        "recon_psnr": psnr,
    }


def _baseline(run_id: str, encoder: str, params: dict, a: float, p: float) -> dict:
    return {**_trial(run_id, encoder, params, a, p), "kind": "baseline"}


# Front: t1 (0.80, 0.30), t4 (0.78, 0.12), t2 (0.60, 0.10). t3 is dominated by t1, t5 has no
# privacy metric. The downsample-14 baseline dominates every trial, yet baselines are never on
# the front. Knee, normalised over the front (action 0.6..0.8, privacy 0.1..0.3), u + v:
# t1 1 + 0, t4 0.9 + 0.9, t2 0 + 1: t4.
ROWS = [
    _trial("t1", "bdq", {"adversarial.alpha": 2.0, "encoder.levels": 16}, 0.80, 0.30, 14.2),
    _trial("t2", "bdq", {"adversarial.alpha": 8.0, "encoder.levels": 16}, 0.60, 0.10),
    _trial("t3", "bdq", {"adversarial.alpha": 1.0, "encoder.levels": 16}, 0.50, 0.50, 20.0),
    _trial("t4", "elr", {"encoder.resolution": (12, 16)}, 0.78, 0.12, 11.5),
    _trial("t5", "bdq", {"adversarial.alpha": 4.0, "encoder.levels": 8}, 0.90, None),
    _baseline("b1", "identity", {}, 0.95, 0.90),
    _baseline("b2", "downsample", {"size": 14}, 0.85, 0.05),
    _baseline("b3", "downsample", {"size": 28}, 0.90, 0.50),
]


@pytest.fixture
def rows() -> list[dict]:
    return mark_front(ROWS)


def test_mark_front_marks_trials_only_and_copies(rows: list[dict]) -> None:
    assert {r["run_id"] for r in rows if r["on_front"]} == {"t1", "t2", "t4"}
    assert all(not r["on_front"] for r in rows if r["kind"] == "baseline")
    assert all("on_front" not in r for r in ROWS)  # the input is untouched
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in ROWS]


def test_mark_front_uses_the_given_metric_keys() -> None:
    # With fresh-model metrics t3 now dominates t1.
    fresh = [{**r, "action_fresh": r["action_acc"], "leak": r["privacy_acc"]} for r in ROWS]
    fresh[2]["action_fresh"], fresh[2]["leak"] = 0.85, 0.25
    marked = mark_front(fresh, action_key="action_fresh", privacy_key="leak")
    assert {r["run_id"] for r in marked if r["on_front"]} == {"t2", "t3", "t4"}


def test_format_params() -> None:
    assert format_params({"encoder.levels": 16, "adversarial.alpha": 2.0}) == "alpha=2 levels=16"
    assert format_params({"encoder.resolution": (12, 16)}) == "resolution=12x16"
    # Two keys ending alike keep their full names.
    assert format_params({"encoder.sigma": 1.5, "blur.sigma": 0.25}) == (
        "blur.sigma=0.25 encoder.sigma=1.5"
    )
    assert format_params({}) == ""


def test_table_lists_the_front_best_action_first(rows: list[dict]) -> None:
    text = format_table(rows, ACTION_CHANCE, PRIVACY_CHANCE)
    lines = text.splitlines()
    # Header: counts, chance levels, and the hypervolume w.r.t. (0.2, 1.0), by hand:
    # privacy 0.10..0.12 at action 0.60: 0.4 x 0.02 = 0.008; 0.12..0.30 at 0.78: 0.58 x 0.18 =
    # 0.1044; 0.30..1.0 at 0.80: 0.6 x 0.7 = 0.42. Total 0.5324.
    assert lines[0].startswith("Pareto front: 3 of 5 trials")
    assert "chance: action 0.200, privacy 0.100" in lines[0]
    assert "hypervolume 0.5324" in lines[0]

    titles, rule, first, second, third = lines[1:6]
    assert set(rule) <= {"-", " "}
    assert first.split() == ["1", "bdq", "alpha=2", "levels=16", "0.800", "0.300", "14.20"]
    assert second.split() == ["2", "*", "elr", "resolution=12x16", "0.780", "0.120", "11.50"]
    assert third.split() == ["3", "bdq", "alpha=8", "levels=16", "0.600", "0.100", "-"]
    assert lines[6].startswith("* knee")

    # Fixed width: numbers right-aligned under their titles.
    columns = {"action": ("0.800", "0.780", "0.600"), "PSNR (dB)": ("14.20", "11.50", "-")}
    for title, values in columns.items():
        end = titles.index(title) + len(title)
        for line, value in zip((first, second, third), values, strict=True):
            assert line.rindex(value) + len(value) == end, (title, line)

    # Nothing off the front, no baseline.
    for absent in ("alpha=1", "alpha=4", "identity", "downsample"):
        assert absent not in text


def test_table_of_an_empty_front() -> None:
    text = format_table(mark_front(ROWS[5:]), ACTION_CHANCE, PRIVACY_CHANCE)
    assert text.splitlines() == [
        "Pareto front: 0 of 0 trials; chance: action 0.200, privacy 0.100; "
        "hypervolume 0.0000 (ref: action at chance, privacy 1.0)",
        "(no trial on the front)",
    ]


def test_csv_has_stable_columns_and_one_line_per_front_trial(
    rows: list[dict], tmp_path: Path
) -> None:
    path = write_csv(rows, tmp_path / "pareto.csv")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == list(csv_columns())
        assert reader.fieldnames[:4] == ["rank", "trial", "run_id", "run_name"]
        lines = list(reader)
    assert [line["run_id"] for line in lines] == ["t1", "t4", "t2"]
    assert [line["rank"] for line in lines] == ["1", "2", "3"]
    assert [line["knee"] for line in lines] == ["0", "1", "0"]
    assert [line["encoder"] for line in lines] == ["bdq", "elr", "bdq"]
    assert float(lines[1]["action_acc"]) == 0.78 and float(lines[1]["privacy_acc"]) == 0.12
    assert lines[0]["recon_psnr"] == "14.2" and lines[2]["recon_psnr"] == ""
    assert json.loads(lines[0]["params"]) == {"adversarial.alpha": 2.0, "encoder.levels": 16}
    assert json.loads(lines[1]["params"]) == {"encoder.resolution": [12, 16]}

    # No front: the header alone, same columns.
    empty = write_csv(mark_front(ROWS[5:]), tmp_path / "empty.csv")
    assert empty.read_text().splitlines() == [",".join(csv_columns())]


def test_csv_columns_are_named_as_the_metrics_with_trial_and_run_name(
    rows: list[dict], tmp_path: Path
) -> None:
    named = [{**r, "name": f"{r['run_id']} run", "trial": f"id-{r['run_id']}"} for r in rows]
    farm = ("action_acc_fresh", "privacy_acc_worst")
    path = write_csv(named, tmp_path / "pareto.csv", farm)
    with path.open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == ["rank", "trial", "run_id", "run_name", "encoder",
                              "action_acc_fresh", "privacy_acc_worst", "recon_psnr", "knee",
                              "params"]  # fmt: skip
    assert [line["trial"] for line in lines] == ["id-t1", "id-t4", "id-t2"]
    assert [line["run_name"] for line in lines] == ["t1 run", "t4 run", "t2 run"]
    assert float(lines[1]["action_acc_fresh"]) == 0.78
    assert float(lines[1]["privacy_acc_worst"]) == 0.12


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_is_a_real_png(rows: list[dict], tmp_path: Path) -> None:
    import matplotlib.image

    path = plot_front(rows, tmp_path / "pareto.png", ACTION_CHANCE, PRIVACY_CHANCE, "smoke")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 20_000  # axes, labels, markers: far more than an empty canvas

    img = matplotlib.image.imread(path)
    assert img.shape[0] > 400 and img.shape[1] > 600  # 7 x 5.5 in at 120 dpi
    # Drawn, not blank: many distinct colours (red baselines, blue trials, a gold knee).
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50
    red = (img[..., 0] > 0.7) & (img[..., 1] < 0.3) & (img[..., 2] < 0.3)
    assert red.sum() > 100  # the baselines' markers


def test_drawing_shows_trials_front_knee_baselines_and_chance(rows: list[dict]) -> None:
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    draw_front(ax, rows, ACTION_CHANCE, PRIVACY_CHANCE, "smoke")
    assert ax.get_title() == "smoke"
    assert ax.get_xlabel() == "worst-case privacy accuracy (lower is better)"
    assert ax.get_ylabel() == "action accuracy"

    # Each baseline and each front trial labelled, pointing at its marker; markers all
    # different. Rows without a run name are called by encoder and parameters.
    labels = {t.get_text(): t.xy for t in ax.texts}
    baselines = {
        "identity": (0.90, 0.95),
        "downsample size=14": (0.05, 0.85),
        "downsample size=28": (0.50, 0.90),
    }
    assert labels == {
        **baselines,
        "bdq alpha=2 levels=16": (0.30, 0.80),
        "elr resolution=12x16": (0.12, 0.78),
        "bdq alpha=8 levels=16": (0.10, 0.60),
    }
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"trials", "Pareto front", "knee", "action chance", "privacy chance"} <= legend
    markers = [
        c.get_paths()[0].vertices.tobytes() for c in ax.collections if c.get_label() in baselines
    ]
    assert len(set(markers)) == 3

    # The front's step line goes through t2, t4, t1 by increasing leak; the knee is t4.
    (step,) = [line for line in ax.lines if line.get_label() == "Pareto front"]
    xs, ys = step.get_data()
    assert (xs[0], ys[0]) == (0.10, 0.60) and (xs[-1], ys[-1]) == (0.30, 0.80)
    assert step.get_drawstyle() == "steps-post"
    (star,) = [c for c in ax.collections if c.get_label() == "knee"]
    assert star.get_offsets().tolist() == [[0.12, 0.78]]

    # Chance levels: dashed, horizontal at the action chance, vertical at the privacy chance.
    chance = {line.get_label(): line for line in ax.lines if "chance" in line.get_label()}
    assert chance["action chance"].get_ydata()[0] == ACTION_CHANCE
    assert chance["privacy chance"].get_xdata()[0] == PRIVACY_CHANCE
    assert {line.get_linestyle() for line in chance.values()} == {"--"}
    # All trials with both metrics (t5 has no privacy metric: a NaN matplotlib skips).
    (dots,) = [c for c in ax.collections if c.get_label() == "trials"]
    assert len(dots.get_offsets()) == 5


def test_plot_copes_with_no_front_and_missing_metrics(tmp_path: Path) -> None:
    only_baselines = mark_front(ROWS[4:])  # t5 (no privacy metric) and the baselines
    path = plot_front(only_baselines, tmp_path / "p.png", ACTION_CHANCE, PRIVACY_CHANCE, "none")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_labels_are_named_by_run_and_do_not_overlap(tmp_path: Path) -> None:
    """Five front trials and two baselines crowded into a corner: every label is drawn, and no
    two labels' boxes overlap once rendered."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    crowded = [
        {**_trial(f"r{i}", "bdq", {"adversarial.alpha": 1.0 + i}, 0.80 - 0.005 * i,
                  0.30 - 0.004 * i), "name": f"t{i + 1} alpha={1.0 + i:.3g} levels=4"}
        for i in range(5)
    ] + [
        {**_baseline("b1", "identity", {}, 0.81, 0.31), "name": "identity"},
        {**_baseline("b2", "downsample", {"size": 8}, 0.79, 0.29), "name": "downsample size=8"},
    ]  # fmt: skip
    fig = Figure(figsize=(8, 6))
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_front(ax, mark_front(crowded), ACTION_CHANCE, PRIVACY_CHANCE, "crowded")
    canvas.draw()
    texts = {t.get_text(): t for t in ax.texts}
    assert set(texts) == {r["name"] for r in crowded}
    # The text's own box, not the line to its point (an annotation's extent includes it).
    boxes = [Text.get_window_extent(t, canvas.get_renderer()) for t in texts.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_labels_leave_every_marker_in_sight() -> None:
    """The smoke study's front of 2026-11-28: two trials sat at the knee's height just right of
    it, under its label, and could not be seen. Every label's text box now holds no marker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    trials = [(0.800, 0.188), (0.717, 0.183), (0.717, 0.226), (0.717, 0.283), (0.667, 0.217),
              (0.733, 0.383), (0.767, 0.450), (0.733, 0.483)]  # fmt: skip
    study = [_trial(f"t{i + 1}", "bdq", {"adversarial.alpha": 2.0 + i, "encoder.levels": 2}, a, p)
             for i, (a, p) in enumerate(trials)] + [
        _baseline("b1", "identity", {}, 0.933, 1.0),
        _baseline("b2", "downsample", {"size": 8}, 0.35, 0.933),
    ]  # fmt: skip
    fig = Figure(figsize=(8, 6), layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_front(ax, mark_front(study), ACTION_CHANCE, 1 / 6, "smoke")
    canvas.draw()
    markers = ax.transData.transform([(r["privacy_acc"], r["action_acc"]) for r in study])
    assert len(ax.texts) == 4  # the two front trials and the two baselines
    for t in ax.texts:
        box = Text.get_window_extent(t, canvas.get_renderer())
        assert not any(box.contains(x, y) for x, y in markers), t.get_text()


def test_spread_keeps_order_and_gaps_within_bounds() -> None:
    assert spread([], 0.1) == []
    assert spread([0.5], 0.1) == [0.5]
    out = spread([0.50, 0.51, 0.49, 0.9], 0.1)
    assert out[3] == 0.9  # far enough already: not moved
    by_target = [out[i] for i in (2, 0, 1)]  # 0.49 < 0.50 < 0.51 keep their order
    assert by_target == sorted(by_target)
    assert all(b - a >= 0.1 - 1e-12 for a, b in zip(by_target, by_target[1:], strict=False))
    # Crowded at the top: pushed down below hi, still apart.
    top = sorted(spread([0.99, 0.98, 0.97], 0.1, 0.0, 1.0))
    assert top[-1] <= 1.0 and top[1] - top[0] >= 0.1 - 1e-12 and top[2] - top[1] >= 0.1 - 1e-12


def test_page_is_self_contained_with_table_plot_and_samples(
    rows: list[dict], tmp_path: Path
) -> None:
    import base64
    import re

    plot = plot_front(rows, tmp_path / "pareto.png", ACTION_CHANCE, PRIVACY_CHANCE, "s")
    samples = {"t1": b"\x89PNG-t1", "t4": b"\x89PNG-t4", "b1": b"\x89PNG-b1"}
    farm = ("action_acc_fresh", "privacy_acc_worst")
    page = write_page(rows, tmp_path / "report.html", "smoke <study>", ["placed by the farm"],
                      plot.read_bytes(), samples, farm, {"t4": ["pareto-2", "knee"]})  # fmt: skip
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "smoke &lt;study&gt;" in html
    # Nothing fetched from elsewhere: every image is inlined.
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in html
    images = [base64.b64decode(s.split(",", 1)[1]) for s in sources]
    assert plot.read_bytes() in images
    assert {b"\x89PNG-t1", b"\x89PNG-t4", b"\x89PNG-b1"} <= set(images)
    # The front table names the metrics, lists the front best action first, and the aliases.
    assert "<th>action_acc_fresh</th>" in html and "<th>privacy_acc_worst</th>" in html
    assert html.index("alpha=2 levels=16") < html.index("resolution=12x16")
    assert "pareto-2, knee" in html
    # A baseline's picture is captioned as one; a trial off the front shows none.
    assert "identity (baseline)" in html and "alpha=1 levels=16" not in html
