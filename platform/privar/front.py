"""``privar pareto``: a study's front, read back from MLflow, as a table, CSV, plot, page and
registered models.

The rows come from the study run's children: finished trial runs and baseline runs. A candidate
is placed by its farm metrics (``action_acc_fresh``, ``privacy_acc_worst``) when the farm has
attacked it; when no trial has been farmed (``farm.enabled: false``) the in-loop metrics
(``action_acc``, ``privacy_acc``) are used instead, and the table says so, since the in-loop
adversary is optimistic. Trials without farm metrics in a farmed study are plotted, never put
on the front: their leak was never measured by the farm.

Every placed trial gets the metric ``pareto_rank`` (1: on the front, 2: on the front once the
first is taken away...; :func:`privar.pareto.ranks`), every placed baseline the layer it would
sit in among the trials (:func:`privar.pareto.rank_among`). The study run gets ``hypervolume``,
``pareto/pareto.csv`` (columns named as the metrics that placed the rows), ``pareto/pareto.png``
and ``report.html`` (the page, with each front encoder's and baseline's sample picture); the
same files are written to ``out``.

Front encoders are logged as MLflow PyTorch models of their trial runs (an input example of the
study's clip shape) and registered as versions of ``<study>-encoder`` with aliases ``pareto-1``
... (by action accuracy) and ``knee``, each version described (metrics, sampled values, trial);
the trial run is tagged ``privar.alias``. Each is also exported to TorchScript for the camera
(``camera-N.ts`` in ``out`` and the ``camera`` artifact folder of its trial run). The encoder is
downloaded from the trial run's artifact ``encoder/encoder.pt``, whichever node trained it.

Beside ``report`` and ``export``, above ``tracking``: it reads the run tree through
:class:`~privar.tracking.Tracker` and composes the rest; ``privar run`` and ``privar pareto``
(``privar.recipes``) call it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from privar import pareto, report
from privar.encoders.artifact import fetch_encoder
from privar.tracking.images import SAMPLES
from privar.tracking.models import log_torch_model, model_version
from privar.tracking.runs import ALIAS, ENCODER, ENCODER_SAVED, NOTE, SEARCHED, TRIAL, Tracker

FARMED = ("action_acc_fresh", "privacy_acc_worst")
IN_LOOP = ("action_acc", "privacy_acc")
RANK = "pareto_rank"
PAGE = "report.html"


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
    m, tags, params = run.data.metrics, run.data.tags, run.data.params
    if SEARCHED in tags:  # a trial logs every setting; its row shows the sampled ones
        params = {k: params[k] for k in tags[SEARCHED].split(",") if k in params}
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "trial": tags.get(TRIAL, ""),
        "kind": kind,
        "encoder": tags.get(ENCODER, "?"),
        "params": {k: _number(v) for k, v in params.items()},
        "action_acc": m.get(keys[0], math.nan),
        "privacy_acc": m.get(keys[1], math.nan),
        "recon_psnr": m.get("recon_psnr"),
        "metrics": dict(m),
        "alias": tags.get(ALIAS),
        "has_encoder": ENCODER_SAVED in tags,  # its encoder is an artifact of the run
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


def rank_rows(rows: list[dict]) -> None:
    """Set each row's ``pareto_rank``: trials by non-dominated sorting among themselves,
    baselines by the layer they would sit in among the trials; 0 for a row a missing metric
    leaves unplaced."""
    trials = [r for r in rows if r["kind"] == "trial"]
    others = [r for r in rows if r["kind"] != "trial"]
    ranks = pareto.ranks(report.points(trials))
    for r, rank in zip(trials, ranks, strict=True):
        r[RANK] = int(rank)
    placed = pareto.rank_among(report.points(others), report.points(trials), ranks)
    for r, rank in zip(others, placed, strict=True):
        r[RANK] = int(rank)


def select_front(tracker: Tracker, experiment_id: str, study_run: str, study_name: str,
                 out: Path, clip_shape: tuple[int, int, int],
                 say: Callable[[str], None] = print) -> list[dict]:  # fmt: skip
    """Compute, print, write, log and register the study's front; returns its rows.
    ``clip_shape`` (T, H, W) of the study's clips, for the exported encoders' check."""
    rows, farmed = study_rows(tracker, experiment_id, study_run)
    keys = FARMED if farmed else IN_LOOP
    study = tracker.client.get_run(study_run).data.metrics
    action_chance = study.get("action_chance", 0.0)
    privacy_chance = study.get("privacy_chance", 0.0)
    rows = report.mark_front(rows)
    rank_rows(rows)
    layers = max((r[RANK] for r in rows if r["kind"] == "trial"), default=0)
    for r in rows:
        if r[RANK]:
            tracker.log_metrics(r["run_id"], {RANK: r[RANK]})
            tracker.set_tags(r["run_id"], {NOTE: describe_run(r, keys, layers)})
    front = report.front_rows(rows)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = report.write_csv(rows, out / "pareto.csv", keys)
    title = f"{study_name}: {'farm-checked' if farmed else 'in-loop'}"
    png_path = report.plot_front(rows, out / "pareto.png", action_chance, privacy_chance, title)
    points = [(r["action_acc"], r["privacy_acc"]) for r in front]
    hv = pareto.hypervolume(points, (action_chance, 1.0)) if points else 0.0
    how = ("farm-checked: fresh action model, worst case over the farm's adversaries" if farmed
           else "IN-LOOP metrics only: the farm did not run")  # fmt: skip
    say(f"Pareto front of {study_name} ({how}):")
    say(report.format_table(rows, action_chance, privacy_chance))
    for b in [r for r in rows if r["kind"] == "baseline"]:
        say(f"  baseline {report.label(b)}: action {b['action_acc']:.3f}, privacy (worst) "
            f"{b['privacy_acc']:.3f}; {against_baseline(front, b)}")  # fmt: skip
    say(f"  hypervolume {hv:.4f} (reference: action {action_chance:.3f}, privacy 1.0); "
        f"{csv_path}, {png_path}")  # fmt: skip
    tracker.log_metrics(study_run, {"hypervolume": hv, "front_size": len(front)})
    tracker.log_artifact(study_run, csv_path, "pareto")
    tracker.log_artifact(study_run, png_path, "pareto")
    aliases = _register(tracker, study_name, rows, keys, out, clip_shape, say)
    summary = [f"Placed by {keys[0]} (higher is better) and {keys[1]} (lower is better): {how}.",
               f"Chance: action {action_chance:.3f}, privacy {privacy_chance:.3f}. Hypervolume "
               f"{hv:.4f} (reference: action at chance, privacy 1.0). {len(front)} of "
               f"{sum(r['kind'] == 'trial' for r in rows)} trials on the front."]  # fmt: skip
    shown = [*front, *(r for r in rows if r["kind"] == "baseline")]
    page = report.write_page(rows, out / PAGE, study_name, summary, png_path.read_bytes(),
                             _samples(tracker, [r["run_id"] for r in shown]), keys,
                             aliases)  # fmt: skip
    tracker.log_artifact(study_run, page)
    say(f"  report: {page}")
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


def _samples(tracker: Tracker, run_ids: list[str]) -> dict[str, bytes]:
    """Each run's sample picture (:data:`~privar.tracking.images.SAMPLES`), where it has one."""
    from mlflow.exceptions import MlflowException

    out = {}
    with tempfile.TemporaryDirectory(prefix="privar-samples-") as tmp:
        for run_id in run_ids:
            try:
                out[run_id] = tracker.download(run_id, SAMPLES, Path(tmp) / run_id).read_bytes()
            except (MlflowException, OSError):
                pass  # a run from before pictures were logged, or one that logged none
    return out


def describe_run(row: dict, keys: tuple[str, str], layers: int) -> str:
    """A placed trial's or baseline's description (its run page's): its Pareto layer among the
    study's trials (which form ``layers`` layers), and the two metrics that placed it."""
    rank = row[RANK]
    if row["kind"] != "trial":
        where = f"among the trials it would sit in Pareto layer {rank} (they form {layers})"
    elif rank == 1:
        where = "on the Pareto front"
    else:
        where = f"in Pareto layer {rank} of {layers}"
    return (
        f"{row['kind'].capitalize()} **{report.label(row)}** (encoder `{row['encoder']}`): "
        f"{where}; {keys[0]} {row['action_acc']:.3f}, {keys[1]} {row['privacy_acc']:.3f}. "
        f"Layer 1 is the front; each further layer is the front of the trials the layers "
        f"before it leave (`pareto_rank`)."
    )


def describe_version(row: dict, aliases: list[str], keys: tuple[str, str],
                     clip: tuple[int, ...]) -> str:  # fmt: skip
    """A model version's description: its trial, aliases, metrics, sampled values and input."""
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted(row["metrics"].items()))
    return "\n\n".join([
        f"Encoder `{row['encoder']}` of trial **{report.label(row)}** (search trial "
        f"{row['trial']}, MLflow run {row['run_id']}); aliases: {', '.join(aliases)}.",
        f"Placed by {keys[0]} {row['action_acc']:.4f} and {keys[1]} {row['privacy_acc']:.4f}.",
        f"Sampled: {report.format_params(row['params']) or 'nothing'}; every setting is a param "
        f"of the trial run.",
        f"Metrics: {metrics}.",
        f"Input: a float32 clip of shape {tuple(clip)} (batch, RGB, frames, height, width) in "
        f"[0, 1]; the output is the encoded clip.",
    ])  # fmt: skip


def _register(tracker: Tracker, study_name: str, rows: list[dict], keys: tuple[str, str],
              out: Path, clip_shape: tuple[int, int, int],
              say: Callable[[str], None]) -> dict[str, list[str]]:  # fmt: skip
    """Front encoders as MLflow models, registered with aliases and tagged, each exported for
    the camera; stale aliases (of an earlier, larger front) are removed. Returns the aliases
    of each front trial's run."""
    import torch

    from privar.export import export_encoder

    name = f"{study_name}-encoder"
    front, knee = report.front_rows(rows), report.knee_run_id(rows)
    aliases = {r["run_id"]: [f"pareto-{i}"] + (["knee"] if r["run_id"] == knee else [])
               for i, r in enumerate(front, 1)}  # fmt: skip
    example = torch.rand(1, 3, *clip_shape, generator=torch.Generator().manual_seed(0))
    versions = {}
    for rank, row in enumerate(front, 1):
        tags = aliases[row["run_id"]]
        if not row.get("has_encoder"):
            say(f"  pareto-{rank}: run {row['run_id']} logged no encoder; not registered")
            continue
        encoder = fetch_encoder(tracker, row["run_id"])
        uri = log_torch_model(tracker, row["run_id"], encoder, example.numpy().round(2))
        versions[row["run_id"]] = version = model_version(
            tracker, name, uri, row["run_id"],
            describe_version(row, tags, keys, tuple(example.shape)))  # fmt: skip
        for alias in tags:
            tracker.client.set_registered_model_alias(name, alias, version)
        tracker.set_tags(row["run_id"], {ALIAS: ",".join(tags)})
        info = export_encoder(encoder, example, out / f"camera-{rank}.ts")
        tracker.log_artifact(row["run_id"], info["path"], "camera")
        say(f"  {', '.join(tags)}: {name} v{version} ({report.label(row)}), exported "
            f"{info['path']} ({info['param_count']} params)")  # fmt: skip
    for row in rows:  # a trial that left the front keeps no alias tag
        if row["kind"] == "trial" and row.get("alias") and row["run_id"] not in versions:
            tracker.client.delete_tag(row["run_id"], ALIAS)
    if versions:
        held = {a for r in versions for a in aliases[r]}
        for alias in tracker.client.get_registered_model(name).aliases:
            if alias not in held and (alias == "knee" or alias.startswith("pareto-")):
                tracker.client.delete_registered_model_alias(name, alias)
    return {r: a for r, a in aliases.items() if r in versions}
