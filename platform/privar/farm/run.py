"""The farm on Ray: every candidate encoder attacked by parallel jobs, logged to MLflow.

A *candidate* is a trained encoder or a fixed baseline encoder (identity, down-sampling). A
trained encoder lives in MLflow, as the artifact ``encoder/encoder.pt`` of a run (a finished
trial's, or the run ``privar farm --checkpoint`` logged a local file to): each job downloads it
through the tracker into a temporary folder on whatever node runs the job and loads it
(:func:`privar.encoders.artifact.fetch_encoder`); no node reads a path another node wrote. A
baseline is built fresh from the registry. For each candidate, one Ray task per job:

* ``adversary`` jobs, one per privacy model of the farm's adversaries and rung of their race
  (:meth:`~privar.farm.spec.FarmSpec.race`, successive halving on validation privacy accuracy,
  :mod:`privar.farm.racing`): the adversaries a rung stops are logged with the epochs they got,
  and only those that ran every epoch count in the candidate's privacy metrics;
* a ``reconstruction`` job, judged by the strongest adversary trained on raw frames (the
  *judges*, trained first: they are also the identity baseline's attacks);
* an ``action`` job, a fresh action model.

What to attack with, and what each job reserves, is a :class:`~privar.farm.spec.FarmSpec`
(every model's keyword arguments already resolved through its registry); the farm never reads
the study.

Each finished task is one line, ending with how far the farm got: ``[5/20 done, 01:10 elapsed,
~02:00 left]`` (judges and jobs alike, :func:`~privar.console.progress_note`; the clock starts
once the farm's placement group is placed).

Tasks run inside one placement group, one task per bundle at a time, so the farm never competes
with itself for CPUs it cannot get (and never waits on resources a search still holds: the farm
starts when the search is done). Without a clip cache each bundle also holds a CPU for the Ray
Data tasks that decode the job's clips. A task that crashes is retried
(``FarmSpec.retries``); one that still fails is logged as a FAILED run and the others go on. A
resumed farm skips every job that already has a FINISHED run (an adversary that racing stopped
has one); a race cut short starts afresh among its adversaries that have none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from privar.cluster import capacity, unplaced_bundles, waiting_for
from privar.console import progress_note
from privar.data.dataset import StudyData
from privar.farm.attacks import (
    AdversaryState,
)
from privar.farm.jobs import (
    FARM_KEYS,
    WAIT_SAY_EVERY_S,
    Candidate,
    FarmResult,
    _is_identity,
    _job,
    _judge,
    _located,
    _reason,
    aggregate,
    job_bundle,
)
from privar.farm.racing import Rung, score, survivors
from privar.farm.spec import FarmSpec
from privar.resources import check_group, concurrency, describe
from privar.tracking import Tracker
from privar.tracking.runs import ADVERSARY, ENCODER, ERROR, NODE, RACING

LOST_CHECK_S = 5.0  # how often a farm waiting on its tasks checks for bundles a node took away


class Tally:
    """Counts the farm's finished tasks out of ``total`` and says how far it got:
    :meth:`tick` -> ``[5/20 done, 01:10 elapsed, ~02:00 left]``."""

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.clock = total, 0, clock
        self.t0 = clock()

    def tick(self) -> str:
        self.done += 1
        note = progress_note(self.done, self.total, self.clock() - self.t0)
        return f"[{self.done}/{self.total} done, {note}]"


@dataclass
class _Race:
    """A candidate's adversaries racing through ``rungs``: those ``alive`` at rung ``at``, the
    rung's results so far (metrics, state, node), and each adversary's score at every rung it
    finished (epoch, score) and seconds of training so far."""

    candidate: Candidate
    rungs: tuple[Rung, ...]
    alive: list[str]
    at: int = 0
    waiting: dict[str, tuple[dict[str, float], AdversaryState | None, str]] = field(
        default_factory=dict)  # fmt: skip
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def later_tasks(self) -> int:
        """Jobs the rungs after this one will run, given who is alive now."""
        return sum(min(r.alive, len(self.alive)) for r in self.rungs[self.at + 1 :])


class Farm:
    """Attacks candidates with the farm ``spec`` on ``data`` (prepared); results go to
    ``tracker`` under each candidate's run, in experiment ``experiment_id``."""

    def __init__(self, spec: FarmSpec, data: StudyData, tracker: Tracker, experiment_id: str,
                 say: Callable[[str], None] = print) -> None:  # fmt: skip
        self.spec, self.data, self.tracker, self.exp, self.say = (
            spec, data, tracker, experiment_id, say)  # fmt: skip
        # Without a clip cache a job decodes through Ray Data tasks, which run in the job's
        # placement group: each bundle then holds one CPU for them beside the job's own.
        self.data_cpus = 0 if data.cache is not None else 1
        self.bundle = job_bundle(spec, self.data_cpus)
        self.capacity = capacity()
        check_group([self.bundle], self.capacity, FARM_KEYS, "each farm job")
        self.data_ref = ray.put(data)

    def _placed(self, wanted: int) -> tuple[Any, int]:
        """A placement group of up to ``wanted`` job bundles, once placed, and its size. Waits,
        saying every half minute what for: a cluster busy with other work, or nodes the
        autoscaler is adding. When the cluster can no longer hold the group (a node left since
        the farm sized it), a group of what it still holds takes its place, rather than
        waiting for resources that are gone."""
        num_bundles = concurrency([self.bundle], self.capacity, wanted)
        pg = placement_group([self.bundle] * num_bundles, strategy="PACK")
        t0, said = time.monotonic(), -WAIT_SAY_EVERY_S
        while not ray.wait([pg.ready()], timeout=5.0)[0]:
            self.capacity = capacity()
            fit = concurrency([self.bundle], self.capacity, num_bundles)
            if fit < num_bundles:
                self.say(f"  farm: the cluster now holds {fit} x {describe(self.bundle)}, "
                         f"not {num_bundles}: {fit} at a time")  # fmt: skip
                remove_placement_group(pg)
                num_bundles = fit
                pg = placement_group([self.bundle] * num_bundles, strategy="PACK")
                continue
            waited = time.monotonic() - t0
            if waited - said >= WAIT_SAY_EVERY_S:
                said = waited
                self.say(f"  farm: waiting {waited:.0f} s for {num_bundles} x "
                         f"{describe(self.bundle)}; {waiting_for(self.capacity)}")  # fmt: skip
        return pg, num_bundles

    def _run(self, pg, num_bundles: int, calls: list,
             lost: set[int]) -> Iterator[tuple[Any, Any]]:  # fmt: skip
        """Run ``calls`` ([(key, fn, args)]) as Ray tasks, each pinned to a free bundle of
        ``pg``, at most one per bundle, in the list's order; yields (key, (result, the id of
        the node it ran on) or the exception it ended with). The list is consumed in place:
        calls the caller puts in it while iterating run too.

        A bundle whose node left is not placed again while the rest of the group holds what is
        left, and a task pinned to it (Ray's retry of one that ran there) would wait forever:
        such tasks are cancelled and their calls go back to the front of the queue, for the
        bundles that are still placed; a bundle placed again (a node joined: Ray places it as
        soon as the node is up) is used again. ``lost``, the bundles known lost, is updated in
        place and carries over to the group's next ``_run``."""
        f = self.spec
        free, pending, queue = [b for b in range(num_bundles) if b not in lost], {}, calls

        def fill() -> None:
            while queue and free:
                call = queue.pop(0)
                bundle = free.pop()
                ref = ray.remote(_located).options(
                    num_cpus=f.cpus_per_job, num_gpus=f.gpus_per_job,
                    memory=self.bundle.get("memory", 0), max_retries=f.retries,
                    retry_exceptions=True,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        pg, placement_group_bundle_index=bundle,
                        placement_group_capture_child_tasks=True),
                ).remote(call[1], *call[2])  # fmt: skip
                pending[ref] = (call, bundle)

        def recount(done: list) -> None:
            """Look at which bundles sit on no node: cancel and requeue the jobs pinned to
            newly lost ones (except those in ``done``, which ended), free the ones placed again."""
            now_lost = unplaced_bundles(pg)
            if back := lost - now_lost:
                self.say(f"  farm: {len(back)} lost slot(s) placed again on a node that "
                         f"joined; {num_bundles - len(now_lost)} of {num_bundles} at "
                         "work")  # fmt: skip
            free.extend(back)
            free[:] = [b for b in free if b not in now_lost]
            stranded = [ref for ref, (_, bundle) in pending.items()
                        if bundle in now_lost and ref not in done]  # fmt: skip
            for ref in stranded:
                ray.cancel(ref, force=True)
                queue.insert(0, pending.pop(ref)[0])
            if now_lost - lost:
                self.say(f"  farm: a node left, taking {len(now_lost)} of {num_bundles} "
                         f"slots; {len(stranded)} of its jobs start again on the "
                         "others")  # fmt: skip
            lost.clear()
            lost.update(now_lost)
            fill()

        recount([])  # fills the free bundles
        checked = time.monotonic()
        while pending or queue:
            ready = []
            if pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=LOST_CHECK_S)
            else:
                time.sleep(LOST_CHECK_S)  # every placed bundle's node left: wait for one back
            # Every LOST_CHECK_S, also while other jobs keep ending: a job stranded on a lost
            # bundle, or a bundle placed again, would otherwise wait for a lull.
            if not ready or time.monotonic() - checked >= LOST_CHECK_S:
                checked = time.monotonic()
                recount(ready)
            if not ready:
                continue
            call, bundle = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except Exception as e:  # retried f.retries times already
                result = e
            if isinstance(result, Exception) and bundle in unplaced_bundles(pg):
                self.say("  farm: a job died with its node; it starts again on another")
                lost.add(bundle)  # not a failure of its own
                queue.insert(0, call)
                fill()
                continue
            if bundle not in lost:
                free.append(bundle)
            # The freed bundle takes its next call before the caller logs this one to MLflow:
            # no slot idles while the driver writes.
            fill()
            yield call[0], result
            fill()  # the calls the caller added

    def attack(self, candidates: list[Candidate]) -> list[FarmResult]:
        """Run every job of every candidate (skipping jobs already FINISHED in MLflow) and log
        each job's run and each candidate's aggregate metrics."""
        f = self.spec
        jobs: list[tuple[Candidate, str, str]] = []
        done: dict[str, dict[tuple[str, str], dict]] = {c.run_id: {} for c in candidates}
        for c in candidates:
            wanted = [("adversary", a.name) for a in f.adversaries]
            wanted.append(("action", f.action.name))
            if f.reconstruction:
                wanted.append(("reconstruction", f.reconstruction.name))
            for kind, name in wanted:
                previous = self._finished_job(c, kind, name)
                if previous is not None:
                    done[c.run_id][(kind, name)] = previous
                else:
                    jobs.append((c, kind, name))
        judging = any(kind == "reconstruction" for _, kind, _ in jobs)
        # The judges are the identity encoder's adversaries: no need to train them twice.
        judged = [j for j in jobs if judging and _is_identity(j[0]) and j[1] == "adversary"]
        races: dict[str, _Race] = {}
        for c, kind, name in jobs:
            if kind == "adversary" and (c, kind, name) not in judged:
                races.setdefault(c.run_id, _Race(c, (), [])).alive.append(name)
        for race in races.values():
            race.rungs = f.race(len(race.alive))
        others = [j for j in jobs if j[1] != "adversary"]
        pg, num_bundles = self._placed(max(len(jobs), len(f.adversaries), 1))
        lost: set[int] = set()  # of pg's bundles, across the judges' phase and the jobs
        raced = sum(r.rungs[0].alive + r.later_tasks() for r in races.values())
        tally = Tally(len(f.adversaries) * judging + len(others) + raced)
        try:
            judge = None
            if judging:
                self.say(f"  farm: {len(f.adversaries)} judges on raw frames first, "
                         f"{num_bundles} at a time")  # fmt: skip
                calls = [(a.name, _judge, (a.name, f, self.data_ref)) for a in f.adversaries]
                judges = {}
                for name, result in self._run(pg, num_bundles, calls, lost):
                    if isinstance(result, Exception):
                        raise result
                    judges[name] = {**result[0], "node": result[1]}
                    self.say(f"  farm: judge {name} on raw frames: "
                             f"{_shown(judges[name])}  {tally.tick()}")  # fmt: skip
                judge = max(judges.values(), key=lambda j: (j["privacy_acc_clip"],
                                                           j["privacy_acc"]))  # fmt: skip
                self.say(f"  farm: judge of reconstructions: {judge['name']} on raw frames, "
                         f"privacy_acc {judge['privacy_acc']:.3f}")  # fmt: skip
                for c, kind, name in judged:
                    result = {k: v for k, v in judges[name].items()
                              if k in ("privacy_acc", "privacy_acc_clip", "privacy_nll",
                                       "epochs", "data_wait_frac")}  # fmt: skip
                    self._log_job(c, kind, name, result, node=judges[name]["node"])
                    done[c.run_id][(kind, name)] = result
            self.say(f"  farm: {tally.total - tally.done} jobs for {len(candidates)} encoders "
                     f"({num_bundles} at a time)")  # fmt: skip
            # The attacks that take every epoch first, then the races' first rungs; each later
            # rung goes to the front (see _raced), so a race's long last rung starts early and
            # no slot idles at the end while it trains alone.
            calls = [((c, kind, name), _job, (kind, name, c, f, self.data_ref, self.tracker,
                                               judge if kind == "reconstruction" else None))
                     for c, kind, name in others]  # fmt: skip
            calls += [self._rung_call(r, name, None) for r in races.values() for name in r.alive]
            for (c, kind, name), result in self._run(pg, num_bundles, calls, lost):
                if kind == "adversary":
                    calls[:0] = self._raced(races[c.run_id], name, result, tally,
                                            done[c.run_id])  # fmt: skip
                    continue
                if isinstance(result, Exception):
                    self._log_job(c, kind, name, {}, failed=_reason(result), tally=tally)
                    continue
                (metrics, _), node = result
                self._log_job(c, kind, name, metrics, node=node, tally=tally)
                done[c.run_id][(kind, name)] = metrics
        finally:
            remove_placement_group(pg)
        out = []
        for c in candidates:
            metrics = aggregate(done[c.run_id])
            self.tracker.log_metrics(c.run_id, metrics)
            if c.encoder is not None:  # a baseline's run holds only the farm's work: close it
                self.tracker.finish(c.run_id)
            out.append(FarmResult(c, metrics))
        return out

    def _rung_call(self, race: _Race, name: str, state: AdversaryState | None) -> tuple:
        """The call that trains adversary ``name`` of ``race`` through the race's rung, on from
        ``state`` (``None``: fresh)."""
        c, until = race.candidate, race.rungs[race.at].until
        return ((c, "adversary", name), _job, ("adversary", name, c, self.spec, self.data_ref,
                                               self.tracker, None, (until, state)))  # fmt: skip

    def _raced(self, race: _Race, name: str, result: Any, tally: Tally,
               done: dict[tuple[str, str], dict]) -> list:  # fmt: skip
        """Take adversary ``name``'s rung ``result`` (as :meth:`_run` yields it) into its race.
        An adversary that ran every epoch, or failed, is logged at once. Once every adversary
        alive has finished the rung, those it stops are logged (``racing_stopped`` 1, the
        epochs they got) and the survivors' calls for the next rung returned, to go on from
        their states."""
        c, f, last = race.candidate, self.spec, race.at == len(race.rungs) - 1
        until, raced = race.rungs[race.at].until, len(race.rungs) > 1
        if isinstance(result, Exception):
            planned = race.later_tasks()
            race.alive.remove(name)
            tally.total -= planned - race.later_tasks()
            self._log_job(c, "adversary", name, {}, failed=_reason(result), tally=tally)
        else:
            (metrics, state), node = result
            race.seconds[name] = race.seconds.get(name, 0.0) + metrics["job_s"]
            race.history.setdefault(name, []).append((until, score(metrics)[0]))
            metrics = {**metrics, "job_s": race.seconds[name]}
            if last:
                result = {**metrics, "racing_stopped": 0.0} if raced else metrics
                self._log_job(c, "adversary", name, result, node=node, tally=tally,
                              racing=f"ran all {until} epochs" if raced else None,
                              history=race.history[name] if raced else ())  # fmt: skip
                done["adversary", name] = result
                return []
            self.say(f"  farm: {c.label} adversary {name} at epoch {until} of {f.epochs}: "
                     f"{_shown(metrics)}  {tally.tick()}")  # fmt: skip
            race.waiting[name] = (metrics, state, node)
        if last or len(race.waiting) < len(race.alive):
            return []
        names = race.alive  # the farm's order, which breaks ties
        kept = [names[i] for i in survivors([score(race.waiting[n][0]) for n in names],
                                            race.rungs[race.at + 1].alive)]  # fmt: skip
        for n in names:
            if n not in kept:
                metrics, _, node = race.waiting[n]
                done["adversary", n] = {**metrics, "racing_stopped": 1.0}
                self._log_job(c, "adversary", n, done["adversary", n], node=node,
                              racing=f"stopped at epoch {until} of {f.epochs}",
                              history=race.history[n])  # fmt: skip
        states = {n: race.waiting[n][1] for n in kept}
        race.alive, race.at, race.waiting = kept, race.at + 1, {}
        return [self._rung_call(race, n, states[n]) for n in kept]

    def _finished_job(self, c: Candidate, kind: str, name: str) -> dict[str, float] | None:
        runs = self.tracker.find_runs(self.exp, kind, c.run_id, {ADVERSARY: name})
        for run in runs:
            if run.info.status == "FINISHED":
                return dict(run.data.metrics)
        return None

    def _log_job(self, c: Candidate, kind: str, name: str, result: dict[str, float],
                 failed: str | None = None, node: str | None = None,
                 tally: Tally | None = None, racing: str | None = None,
                 history: Sequence[tuple[int, float]] = ()) -> None:  # fmt: skip
        """Log one job's run under the candidate's and say its result (with how far the farm
        got, when ``tally`` counts the job). A raced adversary's run says how it fared
        (``racing``, a tag) and its score at each rung (``history``: (epoch, score), the metric
        ``racing_score`` at that step)."""
        tags = {ADVERSARY: name, ENCODER: c.label, **({NODE: node} if node else {}),
                **({RACING: racing} if racing else {})}  # fmt: skip
        # Logged once the job is over: started job_s ago, so the UI shows how long it took.
        start = time.time() - result["job_s"] if "job_s" in result else None
        run_id = self.tracker.create_run(self.exp, kind, f"{kind}-{name}", c.run_id, tags, start)
        self.tracker.log_metrics(run_id, result)
        for epoch, value in history:
            self.tracker.log_metrics(run_id, {"racing_score": value}, step=epoch)
        if failed:
            self.tracker.set_tags(run_id, {ERROR: failed[:500]})
        # Ended before it is said: a job the console calls done is one a resumed farm skips.
        self.tracker.finish(run_id, "FAILED" if failed else "FINISHED")
        progress = f"  {tally.tick()}" if tally is not None else ""
        fared = f" ({racing})" if racing else ""
        if failed:
            self.say(f"  farm: {c.label} {kind} {name} FAILED: {failed}{progress}")
        else:
            self.say(f"  farm: {c.label} {kind} {name}{fared}: {_shown(result)}{progress}")


def _shown(result: dict[str, Any]) -> str:
    """A job's metrics for the console: ``privacy_acc 0.325  privacy_acc_clip 0.317``."""
    return "  ".join(f"{k} {v:.3f}" for k, v in result.items()
                     if k not in ("epochs", "job_s", "racing_stopped")
                     and isinstance(v, int | float))  # fmt: skip
