"""``privar pareto``: a study's front, read back from MLflow, as a table, CSV, plot and aliases.

The rows come from the study run's children: finished trial runs and baseline runs. A candidate
is placed by its farm metrics (``action_acc_fresh``, ``privacy_acc_worst``) when the farm has
attacked it; when no trial has been farmed (``farm.enabled: false``) the in-loop metrics
(``action_acc``, ``privacy_acc``) are used instead, and the table says so, since the in-loop
adversary is optimistic. Trials without farm metrics in a farmed study are plotted, never put
on the front: their leak was never measured by the farm.

Front encoders are registered as versions of the registered model ``<study>-encoder`` (source:
the trial run's ``encoder`` artifact folder) with aliases ``pareto-1`` ... (by action accuracy)
and ``knee``; each is also exported to TorchScript for the camera (``camera-N.ts`` in ``out``
and the ``camera`` artifact folder of its trial run). The encoder to export is downloaded from
the trial run's artifact ``encoder/encoder.pt``, whichever node trained it.

Beside ``report`` and ``export``, above ``tracking``: it reads the run tree through
:class:`~privar.tracking.Tracker` and composes the rest; ``privar run`` and ``privar pareto``
(``privar.recipes``) call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from privar import pareto, report
from privar.encoders.artifact import ENCODER_FOLDER, fetch_encoder
from privar.tracking.runs import ENCODER, ENCODER_SAVED, Tracker

FARMED = ("action_acc_fresh", "privacy_acc_worst")
IN_LOOP = ("action_acc", "privacy_acc")


def _number(text: str) -> Any:
    """MLflow keeps params as text: numbers back as numbers, so the table can round them."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _row(run, kind: str, keys: tuple[str, str]) -> dict[str, Any]:
    m = run.data.metrics
    return {
        "run_id": run.info.run_id,
        "kind": kind,
        "encoder": run.data.tags.get(ENCODER, "?"),
        "params": {k: _number(v) for k, v in run.data.params.items()},
        "action_acc": m.get(keys[0], math.nan),
        "privacy_acc": m.get(keys[1], math.nan),
        "recon_psnr": m.get("recon_psnr"),
        "has_encoder": ENCODER_SAVED in run.data.tags,  # its encoder is an artifact of the run
    }


def study_rows(tracker: Tracker, experiment_id: str, study_run: str) -> tuple[list[dict], bool]:
    """(rows of every finished trial and baseline, whether farm metrics place them)."""
    trials = [r for r in tracker.find_runs(experiment_id, "trial", study_run)
              if r.info.status == "FINISHED"]  # fmt: skip
    baselines = tracker.find_runs(experiment_id, "baseline", study_run)
    farmed = any(FARMED[1] in r.data.metrics for r in trials + baselines)
    keys = FARMED if farmed else IN_LOOP
    rows = [_row(r, "trial", keys) for r in trials]
    rows += [_row(r, "baseline", keys) for r in baselines]
    return rows, farmed


def select_front(tracker: Tracker, experiment_id: str, study_run: str, study_name: str,
                 out: Path, clip_shape: tuple[int, int, int],
                 say: Callable[[str], None] = print) -> list[dict]:  # fmt: skip
    """Compute, print, write, log and register the study's front; returns its rows.
    ``clip_shape`` (T, H, W) of the study's clips, for the exported encoders' check."""
    rows, farmed = study_rows(tracker, experiment_id, study_run)
    study = tracker.client.get_run(study_run).data.metrics
    action_chance = study.get("action_chance", 0.0)
    privacy_chance = study.get("privacy_chance", 0.0)
    rows = report.mark_front(rows)
    front = report.front_rows(rows)
    knee = report.knee_run_id(rows)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = report.write_csv(rows, out / "pareto.csv")
    title = f"{study_name}: {'farm-checked' if farmed else 'in-loop'}"
    png_path = report.plot_front(rows, out / "pareto.png", action_chance, privacy_chance, title)
    points = [(r["action_acc"], r["privacy_acc"]) for r in front]
    hv = pareto.hypervolume(points, (action_chance, 1.0)) if points else 0.0
    how = ("farm-checked: fresh action model, worst case over the farm's adversaries" if farmed
           else "IN-LOOP metrics only: the farm did not run")  # fmt: skip
    say(f"Pareto front of {study_name} ({how}):")
    say(report.format_table(rows, action_chance, privacy_chance))
    for b in [r for r in rows if r["kind"] == "baseline"]:
        say(f"  baseline {b['encoder']} {report.format_params(b['params'])}: action "
            f"{b['action_acc']:.3f}, privacy (worst) {b['privacy_acc']:.3f}; "
            f"{against_baseline(front, b)}")  # fmt: skip
    say(f"  hypervolume {hv:.4f} (reference: action {action_chance:.3f}, privacy 1.0); "
        f"{csv_path}, {png_path}")  # fmt: skip
    tracker.log_metrics(study_run, {"hypervolume": hv, "front_size": len(front)})
    tracker.log_artifact(study_run, csv_path, "pareto")
    tracker.log_artifact(study_run, png_path, "pareto")
    _register(tracker, study_name, front, knee, out, clip_shape, say)
    return front


def against_baseline(front: list[dict], baseline: dict) -> str:
    """How the front compares with a baseline, in words: how many front encoders leak less
    (lower worst-case privacy accuracy), and how many dominate it outright (leak no more and
    keep at least its action accuracy, one of them strictly)."""
    a, p = baseline["action_acc"], baseline["privacy_acc"]
    less = sum(r["privacy_acc"] < p for r in front)
    dominate = sum(r["privacy_acc"] <= p and r["action_acc"] >= a
                   and (r["privacy_acc"] < p or r["action_acc"] > a) for r in front)  # fmt: skip
    return f"{less} of {len(front)} front encoders leak less, {dominate} dominate it"


def _register(tracker: Tracker, study_name: str, front: list[dict], knee: str | None, out: Path,
              clip_shape: tuple[int, int, int], say: Callable[[str], None]) -> None:  # fmt: skip
    """Front encoders as model versions with aliases, each exported for the camera."""
    import torch
    from mlflow.exceptions import MlflowException

    from privar.export import export_encoder

    name = f"{study_name}-encoder"
    client = tracker.client
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # registered by an earlier pareto call: new versions, aliases move
    for rank, row in enumerate(front, 1):
        version = client.create_model_version(name, f"runs:/{row['run_id']}/{ENCODER_FOLDER}",
                                              run_id=row["run_id"])  # fmt: skip
        client.set_registered_model_alias(name, f"pareto-{rank}", version.version)
        if row["run_id"] == knee:
            client.set_registered_model_alias(name, "knee", version.version)
        if row.get("has_encoder"):
            encoder = fetch_encoder(tracker, row["run_id"])
            info = export_encoder(encoder, torch.rand(1, 3, *clip_shape),
                                  out / f"camera-{rank}.ts")  # fmt: skip
            tracker.log_artifact(row["run_id"], info["path"], "camera")
            tag = " (knee)" if row["run_id"] == knee else ""
            say(f"  pareto-{rank}{tag}: {name} v{version.version}, exported {info['path']} "
                f"({info['param_count']} params)")  # fmt: skip
