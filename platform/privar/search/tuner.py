"""A study's search: Ray Tune runs the trials, an Optuna multi-objective sampler picks them.

The only module that builds Tune objects (Ray's API moves between releases). What it sets up:

- ``OptunaSearch`` over the study's space with two objectives (``action_acc`` max,
  ``privacy_acc`` min), its Optuna study in ``FOLDER/optuna.db`` so ``privar pareto`` and a
  resume can read it;
- ``ConcurrencyLimiter``: at most ``search.concurrency`` trials at once;
- optional ASHA early stopping on ``action_acc``, with trials it ends told to Optuna as
  *pruned*: their early values must never reach the Pareto front;
- a placement group per trial: its training CPUs/GPU fraction plus ``resources.data_cpus`` for
  the Ray Data tasks it starts, so concurrent trials cannot starve their own data pipeline;
- Tune's experiment state in ``FOLDER/tune``, which :func:`run_search` restores on resume:
  finished trials are kept, unfinished ones restart from their own checkpoints.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from privar.data.stream import StudyData
from privar.search.space import OBJECTIVES, make_sampler, suggest
from privar.search.trial import SearchContext, train_trial
from privar.study import Study

TUNE_DIR = "tune"
OPTUNA_DB = "optuna.db"


class PrunedAwareOptunaSearch(OptunaSearch):
    """Ray's ``OptunaSearch`` tells Optuna a trial the scheduler stopped early as COMPLETE with
    its last, early values, which would put a half-trained encoder on the front. Here a trial
    that ends before its last epoch is told as PRUNED."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:  # fmt: skip
        if result and not error and result.get("epoch", 0) < result.get("epochs", 0):
            result = None  # OptunaSearch records "no values, no error" as PRUNED
        super().on_trial_complete(trial_id, result, error)


@dataclass
class TrialOutcome:
    """A trial at the end of the search: Tune's id, its MLflow run, its last metrics, whether
    it ran all its epochs (an early-stopped trial did not), and its error if it failed."""

    trial_id: str
    run_id: str | None
    metrics: dict
    complete: bool
    error: str | None = None


def optuna_storage(folder: Path) -> str:
    return f"sqlite:///{(folder / OPTUNA_DB).resolve()}"


def _say(msg: str) -> None:
    print(msg, flush=True)


class _Progress(tune.Callback):
    """One line per epoch and per finished trial, on stdout: progress on a laptop run. (Tune
    pickles its callbacks with the experiment, so this holds no function references.)"""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.say = _say

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.say(f"  trial {trial.trial_id} epoch {result.get('epoch')}/{self.epochs}: "
                 f"action_acc {result.get('action_acc', float('nan')):.3f}  "
                 f"privacy_acc {result.get('privacy_acc', float('nan')):.3f}")  # fmt: skip

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.say(f"  trial {trial.trial_id} finished")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.say(f"  trial {trial.trial_id} failed: see {trial.local_path}")


def _trainable(study: Study, data: StudyData, ctx: SearchContext):
    r = study.resources
    bundles = [{"CPU": r.cpus, **({"GPU": r.gpu} if r.gpu else {})}]
    if r.data_cpus:
        bundles.append({"CPU": r.data_cpus})
    fn = tune.with_parameters(train_trial, study=study, data=data, ctx=ctx)
    return tune.with_resources(fn, tune.PlacementGroupFactory(bundles))


def run_search(study: Study, data: StudyData, ctx: SearchContext,
               resume: bool = False) -> list[TrialOutcome]:  # fmt: skip
    """Run (or, with ``resume``, finish) the study's search; returns every trial's outcome."""
    # Tune's newer console output prints a banner and tables even at verbose=0; the classic
    # reporter at verbose=0 prints nothing, and _Progress says what happens.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    folder = ctx.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    s = study.search
    run_config = tune.RunConfig(
        name=TUNE_DIR, storage_path=str(folder), verbose=0,
        callbacks=[_Progress(study.train.epochs)],
        failure_config=tune.FailureConfig(max_failures=1),
    )  # fmt: skip
    trainable = _trainable(study, data, ctx)
    if resume:
        tuner = tune.Tuner.restore(str(folder / TUNE_DIR), trainable, resume_unfinished=True,
                                   resume_errored=True)  # fmt: skip
    else:
        searcher = PrunedAwareOptunaSearch(
            space=functools.partial(suggest, space=s.space),
            metric=[m for m, _ in OBJECTIVES], mode=[d for _, d in OBJECTIVES],
            sampler=make_sampler(s.sampler, study.seed, s.num_trials),
            study_name=study.name, storage=optuna.storages.RDBStorage(optuna_storage(folder)),
        )  # fmt: skip
        scheduler = (
            # max_t one past the last epoch: ASHA stops a trial that reaches max_t at once,
            # which would kill it before it saves its encoder and closes its MLflow run.
            ASHAScheduler(time_attr="epoch", metric="action_acc", mode="max",
                          max_t=study.train.epochs + 1, grace_period=s.grace_epochs)
            if s.early_stop else FIFOScheduler()
        )  # fmt: skip
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=s.concurrency),
                scheduler=scheduler, num_samples=s.num_trials,
            ),
            run_config=run_config,
        )  # fmt: skip
    grid = tuner.fit()
    outcomes = []
    for result in grid:
        m = result.metrics or {}
        error = _first_line(result.error) if result.error else None
        trial_id = m.get("trial_id") or Path(result.path).name
        outcomes.append(TrialOutcome(trial_id, m.get("run_id"), m,
                                     m.get("epoch", 0) >= m.get("epochs", 1), error))  # fmt: skip
    return outcomes


def _first_line(error: BaseException) -> str:
    """The root cause of a trial's error, in one line (Tune wraps it in its own errors)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"


def has_search_state(folder: Path) -> bool:
    return (folder / TUNE_DIR).is_dir() and tune.Tuner.can_restore(str(folder / TUNE_DIR))
