"""Why a race keeps or misses the strongest adversary, measured: every adversary's validation
privacy accuracy after every epoch, and every successive-halving schedule replayed on them.

    python benchmarks/racing_curves.py [--out FILE.json] [--seeds 0 1 2] [--epochs 10]
        [--candidates identity bdq_untrained] [--farm NAME=ADV,ADV,...] ...
        [--study studies/smoke.yaml] [--cpus N] [--curves FILE.json]

A raced adversary goes on from its state, so its training is the full farm's, exactly on a CPU
(tests/test_farm_attacks.py): what a race keeps is a function of the adversaries' learning
curves alone. Each curve is one Ray task: the adversary trained one epoch at a time
(:func:`privar.farm.attacks.privacy_rung`, the farm's settings and seed, as
``benchmarks/farm.py`` sets them) and scored after each epoch as a rung scores it
(:func:`privar.farm.racing.score`). A *farm* is a named set of adversaries (``--farm``, again
for each; default: the study's, ``smoke``, and the four babies, ``babies``); the curves are
trained once for all of them. For each farm, each schedule (``racing_eta`` x
``racing_min_epochs``) is replayed on the curves (:func:`~privar.farm.racing.schedule`,
:func:`~privar.farm.racing.survivors`) and gives its compute fraction and its worst-case error
against the full farm (largest and mean over the cases, largest per seed), as
``benchmarks/farm.py`` measures them; and for each epoch, how often the full farm's strongest
adversary leads or is in the top half then. ``--curves``: replay the curves of an earlier
``--out`` instead of training them.

Measured (smoke data, 10 epochs, identity and untrained BDQ; seeds 3 and 4 to look for a rule,
seeds 0-2 to judge it; farms ``smoke``, the study's three adversaries, ``babies``, the four, and
``five``, the babies and ``shufflenet_v2_x1_0``, the cheapest torchvision adversary: 8 s an
epoch on one core where ``resnet18`` takes 27 s, ``mobilenet_v3_large`` 25 s and
``efficientnet_b0`` 37 s, too slow here for a ten-adversary farm). On raw frames the MLP-Mixer
learns first (0.47-0.71 after epoch 1, every other adversary 0.17-0.35) and a CNN ends
strongest in all five seeds; on BDQ every adversary is at or near chance (1/6) for two epochs
and the Mixer ends strongest in three seeds of five. No schedule at 0.4 of the adversary-epochs
or fewer came within 0.02 of the full farm's worst case on any farm: at best 0.117, 0.081 and
0.083 on seeds 3-4, 0.217, 0.038 and 0.083 on seeds 0-2 (smoke, babies, five); 0.02 took 0.63
to 0.87 of the adversary-epochs. The full farm's own worst case moves by up to 0.05 from its
9th to its 10th epoch: 0.02, about one validation clip of 60, is below that.

Again on version 3 of the synthetic set (2026-11-28, seeds 0-4, 7 minutes): at 0.4 of the
adversary-epochs or fewer the best schedule missed by 0.250 (``smoke``) and 0.117 (``babies``,
eta 3 from 1 epoch) on some seed; within 0.02 took 0.867 (``smoke``, eta 2 from 6 epochs) and
0.625 (``babies``, eta 3 from 3). Untrained BDQ holds every adversary at chance for two epochs,
so a race that halves by then ranks noise, and one that waits has spent 0.3 of a 10-epoch farm.

A longer farm does not rescue it (``--epochs 30``, same seeds, 18 minutes): untrained BDQ then
leaks 0.82-0.95 to the CNNs, and the curves cross late. The MLP-Mixer leads at epoch 3 in four seeds
of five and levels off at 0.80-0.89; ``baby2d`` and ``baby2d_wide`` overtake it between epochs 13
and 25, after validation swings of up to 0.37 from one epoch to the next. The full farm's strongest
adversary leads at epoch 10 in 0.6 (``smoke``) and 0.4 (``babies``) of the cases. At 0.4 or fewer
the best schedule still missed by 0.067 (``smoke``, seeds 0-2 and 0-4) and by 0.050 (``babies``,
seeds 0-2; 0.100 on seeds 0-4); within 0.02 took 0.65-0.67. This is not the validation noise:
keeping the adversary with the best mean over the last five epochs errs by 0.017 and 0.033 in
two of twenty cases, and by 0 in the others. Successive halving assumes that early rank predicts
final rank, and here the adversary that learns first is the one that levels off first.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import ray
import torch

from privar.cluster import connect
from privar.console import configure_console
from privar.data.dataset import StudyData
from privar.data.manifest import label_index
from privar.data.pipeline import open_study_data
from privar.encoders import create_encoder
from privar.farm.attacks import privacy_rung
from privar.farm.racing import compute_fraction, schedule, score, survivors
from privar.farm.spec import FarmSpec
from privar.models.privacy import BABY_ADVERSARIES
from privar.recipes.common import farm_spec, load_checked
from privar.study import EncoderConfig

CANDIDATES = {
    "identity": EncoderConfig("identity"),
    "downsample8": EncoderConfig("downsample", {"size": 8}),
    "bdq_untrained": EncoderConfig("bdq"),
}
Score = tuple[float, float, float]  # (worst case, per-frame accuracy, -NLL): racing.score
Curves = dict[tuple[int, str, str], list[Score]]  # (seed, candidate, adversary) -> per epoch


@ray.remote(num_cpus=1)
def curve(data: StudyData, encoder: EncoderConfig, spec: FarmSpec, name: str) -> list[Score]:
    """Adversary ``name``'s score on the frozen ``encoder`` after each of the farm's epochs."""
    torch.set_num_threads(1)
    data.ensure_cache()
    enc, m = create_encoder(encoder.name, **encoder.params).eval(), spec.adversary(name)
    num_privacy, state, scores = len(label_index(data.records, "privacy")), None, []
    for epoch in range(1, spec.epochs + 1):
        s, state = privacy_rung(data, enc, m.name, num_privacy, spec.train, spec.epochs,
                                torch.device("cpu"), epoch, state, m.pretrained, spec.seed,
                                **m.kwargs)  # fmt: skip
        scores.append(score(s))
    return scores


def replay(curves: dict[str, list[Score]], eta: int, min_epochs: int) -> float:
    """The worst case a race by ``eta`` from ``min_epochs`` reports on these curves (adversary
    -> its score after each epoch), ranked as the farm ranks."""
    names = list(curves)
    rungs = schedule(len(names), len(curves[names[0]]), eta, min_epochs)
    alive = names
    for rung, after in zip(rungs, rungs[1:], strict=False):
        scores = [curves[n][rung.until - 1] for n in alive]
        alive = [alive[i] for i in survivors(scores, after.alive)]
    return max(curves[n][-1][0] for n in alive)


def measure(study_path: str, seeds: list[int], epochs: int, candidates: list[str],
            adversaries: list[str]) -> Curves:  # fmt: skip
    """Every adversary's curve on every candidate, for every seed, as parallel Ray tasks."""
    refs = {}
    for seed in seeds:
        study = load_checked(study_path, {"seed": seed, "farm.adversaries": adversaries,
                                          "farm.epochs": epochs})  # fmt: skip
        data = open_study_data(study.data, seed=seed)
        data.prepare()
        data_ref, spec = ray.put(data), farm_spec(study)
        for c in candidates:
            for a in adversaries:
                refs[seed, c, a] = curve.remote(data_ref, CANDIDATES[c], spec, a)
    return dict(zip(refs, ray.get(list(refs.values())), strict=True))


def report(farm: str, adversaries: list[str], curves: Curves, seeds: list[int],
           candidates: list[str], epochs: int) -> dict:  # fmt: skip
    """Print the farm's epoch-by-epoch leader table, how far its worst case moves between its
    last two epochs, and its schedules' replays; return them (a dict; one row per schedule)."""
    cases = [(s, c) for s in seeds for c in candidates]
    by_case = {k: {a: curves[(*k, a)] for a in adversaries} for k in cases}
    print(f"\nfarm {farm}: {len(adversaries)} adversaries {adversaries}, {epochs} epochs, "
          f"candidates {candidates}, seeds {seeds}")  # fmt: skip
    print("the full farm's strongest adversary, by epoch: share of cases where it leads / is "
          "in the top half (validation, the race's ranking)")  # fmt: skip
    half = (len(adversaries) + 1) // 2
    for e in range(epochs):
        leads = tops = 0
        for k in cases:
            cs = by_case[k]
            best = max(cs, key=lambda a: cs[a][-1])
            ranked = sorted(cs, key=lambda a: cs[a][e], reverse=True)
            leads += ranked[0] == best
            tops += best in ranked[:half]
        print(f"  epoch {e + 1}: {leads / len(cases):.2f} / {tops / len(cases):.2f}")
    worst = {k: [max(v[e][0] for v in by_case[k].values()) for e in (-2, -1)] for k in cases}
    wobble = max(abs(b - a) for a, b in worst.values())
    print(f"the full farm's worst case moves by up to {wobble:.3f} from epoch {epochs - 1} to "
          f"{epochs}")  # fmt: skip
    seed_cols = "".join(f"{f'seed {s}':>8}" for s in seeds)
    print(f"{'eta':>4}{'min':>5}{'fraction':>10}{'max err':>9}{'mean':>7}{seed_cols}")
    table = []
    for eta in (2, 3, 4):
        for low in range(1, epochs):
            rungs = schedule(len(adversaries), epochs, eta, low)
            if len(rungs) == 1:
                continue
            errs = {k: max(v[-1][0] for v in by_case[k].values()) - replay(by_case[k], eta, low)
                    for k in cases}  # fmt: skip
            per_seed = {s: max(errs[s, c] for c in candidates) for s in seeds}
            row = {"farm": farm, "eta": eta, "min_epochs": low,
                   "fraction": compute_fraction(rungs), "max_err": max(errs.values()),
                   "mean_err": statistics.mean(errs.values()),
                   "max_err_per_seed": per_seed}  # fmt: skip
            table.append(row)
            print(
                f"{eta:>4}{low:>5}{row['fraction']:>10.3f}{row['max_err']:>9.3f}"
                f"{row['mean_err']:>7.3f}" + "".join(f"{per_seed[s]:>8.3f}" for s in seeds)
            )
    return {"farm": farm, "adversaries": adversaries, "last_epoch_move": wobble, "schedules": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="studies/smoke.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="farm epochs (default: the study's)")
    ap.add_argument("--farm", action="append", default=None, metavar="NAME=ADV,ADV,...",
                    help="a farm of adversaries to replay (again for each)")  # fmt: skip
    ap.add_argument("--candidates", nargs="+", default=["identity", "bdq_untrained"],
                    choices=list(CANDIDATES))  # fmt: skip
    ap.add_argument("--cpus", type=int, default=None, help="Ray CPUs (default: all)")
    ap.add_argument("--curves", type=Path, default=None,
                    help="replay the curves of an earlier --out, training none")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None, help="write the curves here as JSON")
    args = ap.parse_args()
    study = load_checked(args.study)
    epochs = args.epochs or study.farm.epochs
    specs = args.farm or [f"smoke={','.join(study.farm.adversaries)}",
                          f"babies={','.join(BABY_ADVERSARIES)}"]  # fmt: skip
    farms = {name: adv.split(",") for name, adv in (f.split("=", 1) for f in specs)}
    union = list(dict.fromkeys(a for advs in farms.values() for a in advs))
    if args.curves:
        stored = json.loads(args.curves.read_text())["curves"]
        curves = {(c["seed"], c["candidate"], c["adversary"]): [tuple(s) for s in c["scores"]]
                  for c in stored}  # fmt: skip
    else:
        configure_console(verbose=False)
        connect(None, num_cpus=args.cpus)
        curves = measure(args.study, args.seeds, epochs, args.candidates, union)
    reports = [report(name, advs, curves, args.seeds, args.candidates, epochs)
               for name, advs in farms.items()]  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({
            "settings": vars(args) | {"out": str(args.out), "curves": str(args.curves),
                                      "epochs": epochs, "farm": farms},
            "curves": [{"seed": s, "candidate": c, "adversary": a, "scores": v}
                       for (s, c, a), v in curves.items()],
            "farms": reports,
        }, indent=2))  # fmt: skip
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
