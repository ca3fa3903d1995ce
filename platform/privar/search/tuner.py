"""A study's search: Ray Tune runs the trials, an Optuna multi-objective sampler picks them.

The only module that builds Tune objects (Ray's API moves between releases). It takes a
:class:`~privar.search.spec.SearchSpec`, never the study. What it sets up:

- ``OptunaSearch`` over the study's space with two objectives (``action_acc`` max,
  ``privacy_acc`` min), in memory: Tune saves the searcher with its experiment state, so a
  resume restores the Optuna study from wherever that state lives;
- ``ConcurrencyLimiter``: at most ``search.concurrency`` trials at once, and never more than
  the cluster holds or its autoscaler can grow to (:func:`privar.resources.concurrency`);
- optional ASHA early stopping on ``action_acc``, with trials it ends told to Optuna as
  *pruned*: their early values must never reach the Pareto front;
- a placement group per trial: its training CPUs, GPU fraction and memory plus
  ``resources.data_cpus`` for the Ray Data tasks it starts, so concurrent trials cannot starve
  their own data pipeline; a group no node can ever hold is refused before the search starts;
- Tune's experiment state and the trials' checkpoints under ``search.storage`` (a shared folder
  or an object-store URI; default: the study run's folder), which :func:`run_search` restores
  on resume, from this driver or another: finished trials are kept, unfinished ones restart
  from their last checkpoint (:func:`refill_named_checkpoints`);
- Ctrl-C stops the search as Tune stops it (its state saved one last time) and then raises
  ``KeyboardInterrupt``, never returning a search cut short as if it had ended
  (:func:`ctrl_c_stops_the_search`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from privar.cluster import capacity, waiting_for
from privar.console import progress_note, quiet_optuna
from privar.data.dataset import StudyData
from privar.resources import Capacity, GiB, check_group, concurrency, describe, fits
from privar.search.scratch import sweep_every_node
from privar.search.space import OBJECTIVES, make_sampler, suggest
from privar.search.spec import SearchSpec
from privar.search.trial import SearchContext, train_trial
from privar.study import ResourcesConfig

TUNE_DIR = "tune"
WAIT_SAY_EVERY_S = 30.0
KEEP = 2  # checkpoints kept per trial: the last epoch's, and one to fall back on
# The study key that asks for each resource of a trial's bundles, for error messages.
TRIAL_KEYS = {"CPU": "resources.cpus", "GPU": "resources.gpu", "memory": "resources.memory_gb"}


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


def _say(msg: str) -> None:
    print(msg, flush=True)


def _now() -> float:
    """The progress lines' clock (a test sets its own)."""
    return time.monotonic()


class _Progress(tune.Callback):
    """One line per epoch and per finished trial, on stdout, each ending with how far the search
    got: ``[trial 3/8, 02:31 elapsed, ~04:10 left]`` (the trial's number in the order the search
    started them, and :func:`~privar.console.progress_note` over trial epochs: every trial's
    reported epochs, all of them once it ended, early or not). Lines start ``trial <id> epoch`` and
    ``trial <id> finished`` / ``failed``, as ``privar status`` reads them
    (:func:`privar.recipes.submit.progress`). The clock starts with this session's search: a
    resumed one counts what it redoes, not what an earlier driver did. (Tune pickles its
    callbacks with the experiment, so this holds no function references.)"""

    def __init__(self, epochs: int, num_trials: int) -> None:
        self.epochs, self.num_trials = epochs, num_trials
        self.say = _say
        self._restart()

    def _restart(self) -> None:
        self.t0: float | None = None
        self.done: dict[str, int] = {}  # trial id -> epochs done
        self.before = 0  # epochs done when this session's search started

    def __setstate__(self, state: dict) -> None:
        # A search resumed from the state an older privar pickled: no trial count known.
        self.__dict__.update({"num_trials": 0, **state})

    def setup(self, total_num_samples: int | None = None, **info) -> None:
        # Every fit, a resumed one too: a new clock.
        self.num_trials = self.num_trials or total_num_samples or 0
        self._restart()

    def _ended(self, trial) -> bool:
        return trial.status in ("TERMINATED", "ERROR")

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.t0 is None:
            self.t0 = _now()
            for t in trials:  # a resumed search's trials, finished or not
                self.done[t.trial_id] = (self.epochs if self._ended(t) else
                                         int((t.last_result or {}).get("epoch", 0)))  # fmt: skip
            self.before = sum(self.done.values())

    def note(self, trials, trial) -> str:
        """``[trial 3/8, 02:31 elapsed, ~04:10 left]`` for ``trial`` of ``trials``."""
        if self.t0 is None:
            self.t0 = _now()
        number = next((i for i, t in enumerate(trials, 1) if t is trial), len(trials))
        done = sum(min(e, self.epochs) for e in self.done.values()) - self.before
        total = self.num_trials * self.epochs - self.before
        elapsed = _now() - self.t0
        return f"[trial {number}/{self.num_trials}, {progress_note(done, total, elapsed)}]"

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        epoch = int(result.get("epoch", 0))
        self.done[trial.trial_id] = max(self.done.get(trial.trial_id, 0), epoch)
        self.say(f"  trial {trial.trial_id} epoch {epoch}/{self.epochs}: "
                 f"action_acc {result.get('action_acc', float('nan')):.3f}  "
                 f"privacy_acc {result.get('privacy_acc', float('nan')):.3f}  "
                 f"{self.note(trials, trial)}")  # fmt: skip

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        reached = self.done.get(trial.trial_id, self.epochs)
        self.done[trial.trial_id] = self.epochs  # what it did not run is no longer to do
        early = f" (stopped early after epoch {reached})" if reached < self.epochs else ""
        self.say(f"  trial {trial.trial_id} finished{early}  {self.note(trials, trial)}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.done[trial.trial_id] = self.epochs
        self.say(f"  trial {trial.trial_id} failed: see {trial.local_path}  "
                 f"{self.note(trials, trial)}")  # fmt: skip


def trial_bundles(r: ResourcesConfig) -> list[dict[str, float]]:
    """A trial's placement-group bundles: its training (CPUs, GPU fraction, memory) and, when
    ``resources.data_cpus`` asks for some, a second bundle for its Ray Data tasks."""
    train = {k: v for k, v in {"CPU": r.cpus, "GPU": r.gpu, "memory": r.memory_gb * GiB}.items()
             if v > 0}  # fmt: skip
    return [train, {"CPU": r.data_cpus}] if r.data_cpus else [train]


def plan_trials(r: ResourcesConfig, at_most: int, cap: Capacity) -> int:
    """Trials at once: refuses (one line naming the key) a trial no node can ever hold, and caps
    ``at_most`` (``search.concurrency``) at what the cluster holds or can grow to."""
    bundles = trial_bundles(r)
    check_group(bundles[:1], cap, TRIAL_KEYS, "each trial")
    check_group(bundles[1:], cap, {"CPU": "resources.data_cpus"}, "each trial's data tasks")
    return concurrency(bundles, cap, at_most)


def _trainable(spec: SearchSpec, data: StudyData, ctx: SearchContext):
    fn = tune.with_parameters(train_trial, search=spec, data=data, ctx=ctx)
    return tune.with_resources(fn, tune.PlacementGroupFactory(trial_bundles(spec.resources)))


def experiment_path(spec: SearchSpec, ctx: SearchContext) -> tuple[str, str]:
    """(storage path, experiment name) of the study run's Tune experiment: under
    ``search.storage`` when set (one experiment per study run), else the run's folder."""
    if spec.search.storage:
        return f"{spec.search.storage.rstrip('/')}/{spec.name}", ctx.study_run
    return str(ctx.folder.resolve()), TUNE_DIR


class _Waiting(tune.Callback):
    """Says when no trial runs because a trial's placement group is pending and its bundles do
    not fit what is free: a cluster busy with other work, or nodes the autoscaler is adding.
    Then again every half minute, so a wait is never a silent hang. (A group being placed on
    free resources, or a placed one whose trial is still starting, is not a wait.)"""

    def __init__(self, bundles: list[dict[str, float]], cap: Capacity) -> None:
        self.bundles, self.cap = bundles, cap
        self.since: float | None = None
        self.checked = self.said = -WAIT_SAY_EVERY_S
        self.say = _say

    def on_step_end(self, iteration, trials, **info) -> None:
        import ray
        from ray.util import placement_group_table

        status = [t.status for t in trials]
        now = time.monotonic()
        if "RUNNING" in status or "PENDING" not in status:
            self.since = None
            return
        if now - self.checked < 2.0:  # one look at the cluster every 2 s is plenty
            return
        self.checked = now
        pending = any(g["state"] == "PENDING" for g in placement_group_table().values())
        if not pending or all(fits(b, ray.available_resources()) for b in self.bundles):
            self.since = None  # nothing waits, or a group is being placed on free resources
            return
        self.since = self.since or now
        if now - self.said >= WAIT_SAY_EVERY_S:
            self.said = now
            self.say(f"  search: waiting {now - self.since:.0f} s for a trial's "
                     f"{' + '.join(describe(b) for b in self.bundles)}; "
                     f"{waiting_for(self.cap)}")  # fmt: skip


def run_search(spec: SearchSpec, data: StudyData, ctx: SearchContext, resume: bool = False,
               say=_say) -> list[TrialOutcome]:  # fmt: skip
    """Run (or, with ``resume``, finish) the search ``spec`` on ``data`` (prepared); returns
    every trial's outcome."""
    # Tune's newer console output prints a banner and tables even at verbose=0; the classic
    # reporter at verbose=0 prints nothing, and _Progress says what happens.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # A trial checkpoints with every epoch's report, and Tune then saves its own state; on
    # seconds-long baby epochs Tune warns about that at every epoch. Real epochs are minutes.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune saves its own state (what `privar resume` restores from) every 10 s or so by default;
    # every second here, so a resumed trial redoes less (not at every step of its loop, ten a
    # second). A state a second old can still name a deleted checkpoint: see
    # refill_named_checkpoints.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    ctx.folder.mkdir(parents=True, exist_ok=True)
    s, bundles = spec.search, trial_bundles(spec.resources)
    cap = capacity()
    at_once = plan_trials(spec.resources, s.concurrency, cap)
    if at_once < s.concurrency:
        say(f"  search: {at_once} trials at a time (search.concurrency {s.concurrency}; the "
            f"cluster holds {at_once} of {' + '.join(describe(b) for b in bundles)})")  # fmt: skip
    storage, name = experiment_path(spec, ctx)
    run_config = tune.RunConfig(
        name=name, storage_path=storage, verbose=0,
        callbacks=[_Progress(spec.epochs, s.num_trials), _Waiting(bundles, cap)],
        failure_config=tune.FailureConfig(max_failures=1),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=KEEP),
    )  # fmt: skip
    trainable = _trainable(spec, data, ctx)
    quiet_optuna()  # before Optuna says it created its study
    if resume:
        tuner = tune.Tuner.restore(f"{storage}/{name}", trainable, resume_unfinished=True,
                                   resume_errored=True)  # fmt: skip
        for path in refill_named_checkpoints(tuner):
            say(f"  search: {path} was deleted after Tune last saved its state; the trial goes "
                f"on from its newest checkpoint")  # fmt: skip
    else:
        searcher = PrunedAwareOptunaSearch(
            space=functools.partial(suggest, space=s.space),
            metric=[m for m, _ in OBJECTIVES], mode=[d for _, d in OBJECTIVES],
            sampler=make_sampler(s.sampler, spec.seed, s.num_trials),
            study_name=spec.name,
        )  # fmt: skip
        scheduler = (
            # max_t one past the last epoch: ASHA stops a trial that reaches max_t at once,
            # which would kill it before it saves its encoder and closes its MLflow run.
            ASHAScheduler(time_attr="epoch", metric="action_acc", mode="max",
                          max_t=spec.epochs + 1, grace_period=s.grace_epochs)
            if s.early_stop else FIFOScheduler()
        )  # fmt: skip
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=at_once),
                scheduler=scheduler, num_samples=s.num_trials,
            ),
            run_config=run_config,
        )  # fmt: skip
    with ctrl_c_stops_the_search():
        grid = tuner.fit()
    sweep_every_node()
    outcomes = []
    for result in grid:
        m = result.metrics or {}
        error = _first_line(result.error) if result.error else None
        trial_id = m.get("trial_id") or Path(result.path).name
        outcomes.append(TrialOutcome(trial_id, m.get("run_id"), m,
                                     m.get("epoch", 0) >= m.get("epochs", 1), error))  # fmt: skip
    return outcomes


@contextlib.contextmanager
def ctrl_c_stops_the_search() -> Iterator[None]:
    """Around ``Tuner.fit``: Ctrl-C (SIGINT) ends the search with ``KeyboardInterrupt``.

    Left alone, Tune catches SIGINT: it stops its trials, saves its experiment state one last
    time (what ``privar resume`` restores, the cut-short trials still unfinished in it) and
    returns from ``fit`` as if the search had ended; the study would go on to farm trials cut
    short and call them stopped early. Here Tune's SIGINT handler is off
    (``TUNE_DISABLE_SIGINT_HANDLER``) and this one asks Tune for the same stop through SIGUSR1,
    which Tune handles alike, then raises once ``fit`` returns. Before Tune handles SIGUSR1, and
    at a second Ctrl-C, it raises at once. Off the main thread, where signals cannot be
    handled, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []

    def on_ctrl_c(signum: int, frame) -> None:
        if pressed or signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise KeyboardInterrupt
        pressed.append(signum)
        signal.raise_signal(signal.SIGUSR1)

    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    before = signal.signal(signal.SIGINT, on_ctrl_c), signal.getsignal(signal.SIGUSR1)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGUSR1, before[1])
    if pressed:
        raise KeyboardInterrupt


def refill_named_checkpoints(tuner: tune.Tuner) -> list[str]:
    """Give every trial of a restored ``tuner`` the checkpoint its saved state names; returns
    the paths refilled.

    Tune deletes a trial's older checkpoints as it registers new ones but saves its experiment
    state only every second or so: a driver killed in between leaves a state that names a
    checkpoint no longer on storage, and Tune fails that trial on resume ("Could not recover
    from checkpoint as it does not exist on storage anymore"). The trial's newest checkpoint on
    storage is copied to the name the state holds, so the trial goes on from its newest epoch
    (a privar checkpoint carries its own epoch). It goes through the checkpoint's pyarrow
    filesystem, as Tune's storage does (tested on a folder, not on ``s3://...``)."""
    refilled = []
    for result in tuner.get_results():
        named = result.checkpoint
        if named is None:
            continue
        fs = named.filesystem
        if fs.get_file_info(named.path).type != pafs.FileType.NotFound:
            continue
        trial_dir = posixpath.dirname(named.path)
        kept = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(trial_dir))
                      if i.type == pafs.FileType.Directory
                      and i.base_name.startswith("checkpoint_"))  # fmt: skip
        if kept:  # none left at all: Tune reports the trial's checkpoint lost
            fs.create_dir(named.path)
            pafs.copy_files(kept[-1], named.path, source_filesystem=fs,
                            destination_filesystem=fs)  # fmt: skip
            refilled.append(named.path)
    return refilled


def _first_line(error: BaseException) -> str:
    """The root cause of a trial's error, in one line (Tune wraps it in its own errors)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}"


def has_search_state(spec: SearchSpec, ctx: SearchContext) -> bool:
    storage, name = experiment_path(spec, ctx)
    return tune.Tuner.can_restore(f"{storage}/{name}")
