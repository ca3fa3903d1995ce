"""Does the default sampler earn its place? Hypervolume after N trials, default against random.

    python benchmarks/search.py [--trials 8 16 32] [--seeds 0 1 ... 9] [--concurrency 2]
        [--samplers nsga2 tpe gp random] [--quick] [--out FILE.json]

The objective is cheap and its front is known, so the figure measures the sampler and nothing
else. It is ZDT1 (Zitzler, Deb & Thiele, "Comparison of Multiobjective Evolutionary Algorithms:
Empirical Results") dressed as a privar study's space and objectives:

- ``adversarial.alpha`` (log-uniform 0.1..8) places a candidate along the trade-off: a larger
  weight leaks less and recognises fewer actions;
- ``encoder.params.levels`` (4, 8, 16), ``train.lr`` (log-uniform 1e-4..1e-1) and
  ``encoder.params.sigma`` (0.5..5) are the settings a study must get right as well: each has a
  best value, and any other pushes the point off the front (ZDT1's ``g``).

With ``u`` in [0, 1] from alpha (0 at alpha 8) and ``g >= 1`` (1 only at the best settings),
``privacy_acc = 0.1 + 0.9 u`` and ``action_acc = 1 - 0.09 g (1 - sqrt(u / g))``; the front,
``g = 1``, runs from (0.91, 0.1) to (1.0, 1.0), and its hypervolume against the reference point
(action 0.1, privacy 1.0), the one :func:`privar.front` uses for chance-level action, is computed
on a dense sample of it.

Trials are asked and told as the study's search does: Optuna's sampler (built by
:func:`privar.search.space.make_sampler`, the same sizes for the same budget), the study's
suggestions (:func:`privar.search.space.suggest`), ``concurrency`` trials asked before any is
told. The table gives, per sampler and budget, the mean and spread over seeds of the
hypervolume's share of the true front's; ``hv_default_over_random`` is the ratio of the default
sampler's mean to random's at each budget (JSON: per budget, and ``hv_default_over_random`` at the
smoke study's budget).

``--study FILE`` also runs that study's own search (``privar run`` with ``farm.enabled: false``;
a local Ray, a throw-away MLflow store) with the default sampler and with ``random``, once for
each of ``--study-seeds`` (the study's ``seed``: the sampler's, the data's and the models'), and
compares the hypervolume of the trials' final in-loop objectives (``action_acc``,
``privacy_acc``) against the reference point the study's front uses (action at chance, privacy
1.0). That is what the sampler optimises; the farm's worst case is not measured here (it would
add four minutes a search on the smoke study). JSON: under ``study``.

Measured (2026-11-28, the 2-core machine). ZDT1, the defaults (10 seeds, concurrency 2, 69 s):
share of the true front's hypervolume at 8, 16 and 32 trials, ``gp`` 0.863, 0.946, 0.992;
``tpe`` 0.799, 0.921, 0.972; ``nsga2`` 0.729, 0.831, 0.907; ``random`` 0.799, 0.870, 0.911, so
``hv_default_over_random`` 1.080, 1.087, 1.089. The smoke study (``--study studies/smoke.yaml``,
seeds 0-2, 17 minutes): ``gp`` 0.5255, 0.6049, 0.5342 against ``random`` 0.5255, 0.5674,
0.5335, a ratio of 1.024, higher on two seeds of three (by 0.038 and 0.001). On the smoke
study's eight trials the two searches share their first five: ``gp`` starts with four random
trials from the same seed, and the fifth is asked before the fourth is told. So ``gp`` chooses
three trials of eight there, and the smoke study can hardly tell the samplers apart; ZDT1, at
every budget, is why ``gp`` stays the default.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from privar.console import configure_console
from privar.pareto import hypervolume
from privar.recipes.common import load_checked
from privar.recipes.run_study import run_study
from privar.search.space import make_sampler, suggest
from privar.study import Param, SearchConfig
from privar.tracking import Tracker

SPACE = {
    "adversarial.alpha": Param("loguniform", 0.1, 8.0),
    "encoder.params.levels": Param("choice", values=[4, 8, 16]),
    "train.lr": Param("loguniform", 1e-4, 1e-1),
    "encoder.params.sigma": Param("uniform", 0.5, 5.0),
}
#: Each setting's distance from its best value, in [0, 1].
LEVELS_OFF = {4: 1.0, 8: 0.0, 16: 0.5}
BEST_LR, BEST_SIGMA = 3e-3, 2.0
REF = (0.1, 1.0)  # (action, privacy): chance-level action, a complete leak
SMOKE_TRIALS = 8


def objective(p: dict) -> tuple[float, float]:
    """(action_acc, privacy_acc) of a sampled configuration; see the module's docstring."""
    u = 1.0 - math.log(p["adversarial.alpha"] / 0.1) / math.log(80.0)
    off = (
        LEVELS_OFF[p["encoder.params.levels"]],
        abs(math.log10(p["train.lr"] / BEST_LR)) / 2.0,  # 0 at the best, ~1 at the range's ends
        abs(p["encoder.params.sigma"] - BEST_SIGMA) / 3.0,
    )
    g = 1.0 + 9.0 * sum(o * o for o in off) / len(off)
    return 1.0 - 0.09 * g * (1.0 - math.sqrt(u / g)), 0.1 + 0.9 * u


def true_front_hv(n: int = 10_001) -> float:
    """The known front's hypervolume (g = 1, ``n`` points along u)."""
    u = np.linspace(0.0, 1.0, n)
    return hypervolume(np.stack([1.0 - 0.09 * (1.0 - np.sqrt(u)), 0.1 + 0.9 * u], 1), REF)


def search(sampler: str, seed: int, trials: int, concurrency: int) -> np.ndarray:
    """(trials, 2) points a search of ``trials`` trials finds, ``concurrency`` asked at once."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler(sampler, seed, trials))  # fmt: skip
    points = []
    while len(points) < trials:
        asked = [study.ask() for _ in range(min(concurrency, trials - len(points)))]
        for t in asked:
            suggest(t, SPACE)
        for t in asked:
            points.append(objective(t.params))
            study.tell(t, list(points[-1]))
    return np.array(points)


def study_hv(path: str, sampler: str, seed: int, work: Path) -> tuple[float, int]:
    """The hypervolume of the trials a real search of the study at ``path`` finds with
    ``sampler`` and ``seed`` (farm off, MLflow in ``work``), and how many trials it counts:
    those that reported both objectives."""
    uri = f"sqlite:///{work / f'{sampler}-{seed}.db'}"
    overrides = {"seed": seed, "search.sampler": sampler, "farm.enabled": False,
                 "out_dir": str(work / f"out-{sampler}-{seed}")}  # fmt: skip
    if run_study(path, tracking_uri=uri, overrides=overrides, say=lambda _: None) != 0:
        raise SystemExit(f"benchmarks/search.py: the {sampler} search of {path} (seed {seed}) "
                         f"failed")  # fmt: skip
    client = Tracker(uri).client
    exp = client.get_experiment_by_name(load_checked(path, overrides).name).experiment_id
    study_run = client.search_runs([exp], "tags.`privar.kind` = 'study'")[0]
    trials = client.search_runs([exp], "tags.`privar.kind` = 'trial'")
    points = [(r.data.metrics["action_acc"], r.data.metrics["privacy_acc"]) for r in trials
              if {"action_acc", "privacy_acc"} <= r.data.metrics.keys()]  # fmt: skip
    ref = (study_run.data.metrics["action_chance"], 1.0)
    return hypervolume(points, ref), len(points)


def compare_on_study(path: str, seeds: list[int], default: str) -> dict:
    """:func:`study_hv` for ``default`` and ``random`` on every seed; prints a table."""
    work = Path(tempfile.mkdtemp(prefix="privar-search-"))
    hv: dict[str, list[float]] = {default: [], "random": []}
    t0 = time.monotonic()
    for seed in seeds:
        for sampler in hv:
            value, n = study_hv(path, sampler, seed, work)
            hv[sampler].append(value)
            print(f"{path}, seed {seed}, {sampler}: hypervolume {value:.4f} ({n} trials)",
                  flush=True)  # fmt: skip
    ratio = statistics.mean(hv[default]) / statistics.mean(hv["random"])
    wins = sum(a > b for a, b in zip(hv[default], hv["random"], strict=True))
    print(f"{path}: {default} / random {ratio:.3f} (mean over seeds {seeds}); {default} higher "
          f"on {wins} of {len(seeds)} seeds ({time.monotonic() - t0:.0f} s)")  # fmt: skip
    return {"path": path, "seeds": seeds, "hv": hv, "hv_default_over_random": ratio,
            "default_higher_on": wins}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[SMOKE_TRIALS, 16, 32])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--samplers", nargs="+", default=["nsga2", "tpe", "gp", "random"])
    ap.add_argument("--quick", action="store_true", help="budgets 8 and 16, five seeds")
    ap.add_argument("--study", default=None, help="also compare on this study's own search")
    ap.add_argument("--study-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.seeds = [SMOKE_TRIALS, 16], list(range(5))
    default = SearchConfig().sampler
    samplers = list(dict.fromkeys([default, *args.samplers, "random"]))
    full = true_front_hv()

    share: dict[str, dict[int, list[float]]] = {s: {} for s in samplers}
    t0 = time.monotonic()
    for s in samplers:
        for n in args.trials:
            share[s][n] = [hypervolume(search(s, seed, n, args.concurrency), REF) / full
                           for seed in args.seeds]  # fmt: skip
    print(f"hypervolume / true front's, mean (sd) over {len(args.seeds)} seeds, "
          f"concurrency {args.concurrency}; default sampler: {default}")  # fmt: skip
    print(f"{'sampler':<8}" + "".join(f"{f'{n} trials':>16}" for n in args.trials))
    for s in samplers:
        cells = (f"{statistics.mean(v):.3f} ({statistics.pstdev(v):.3f})"
                 for v in (share[s][n] for n in args.trials))  # fmt: skip
        print(f"{s:<8}" + "".join(f"{c:>16}" for c in cells))
    ratio = {n: statistics.mean(share[default][n]) / statistics.mean(share["random"][n])
             for n in args.trials}  # fmt: skip
    print("default / random: " + ", ".join(f"{r:.3f} at {n}" for n, r in ratio.items()))
    print(f"({time.monotonic() - t0:.0f} s)")
    on_study = None
    if args.study:
        configure_console(verbose=False)
        on_study = compare_on_study(args.study, args.study_seeds, default)
    if args.out:
        args.out.write_text(json.dumps({
            "default_sampler": default, "seeds": args.seeds, "concurrency": args.concurrency,
            "true_front_hv": full,
            "hv_share": {s: {str(n): v for n, v in d.items()} for s, d in share.items()},
            "hv_default_over_random_by_trials": {str(n): r for n, r in ratio.items()},
            "hv_default_over_random": ratio.get(SMOKE_TRIALS, next(iter(ratio.values()))),
            "study": on_study,
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
