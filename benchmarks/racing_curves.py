"""Why a race keeps or misses the strongest adversary, measured: every adversary's validation
privacy accuracy after every epoch, and every successive-halving schedule replayed on them.

    python benchmarks/racing_curves.py [--out FILE.json] [--seeds 0 1 2] [--epochs 8]
        [--candidates identity bdq_untrained] [--adversaries baby2d baby_vit baby_mlp baby2d_wide]
        [--study studies/smoke.yaml] [--cpus N]

A raced adversary goes on from its state, so its training is the full farm's, exactly on a CPU
(tests/test_farm_attacks.py): what a race keeps is a function of the adversaries' learning
curves alone. Each curve is one Ray task: the adversary trained one epoch at a time
(:func:`privar.farm.attacks.privacy_rung`, the farm's settings and seed, as
``benchmarks/farm.py`` sets them) and scored after each epoch as a rung scores it. Each schedule
(``racing_eta`` x ``racing_min_epochs``) is then replayed on the curves
(:func:`privar.farm.racing.schedule`, :func:`~privar.farm.racing.survivors`) and gives its
compute fraction and worst-case error against the full farm, as ``benchmarks/farm.py`` measures
them; and for each epoch, how often the full farm's strongest adversary leads or is in the top
half then.

Measured (defaults: smoke data, 8 epochs, identity and untrained BDQ, seeds 0-2; 6 cases): the
full farm's strongest adversary leads at epoch 1 in none of them and is in the top half in 2
(on BDQ every adversary is at chance, 1/6, for two epochs; on raw frames the MLP-Mixer learns
first and the CNNs end stronger). No schedule at 0.4 of the adversary-epochs or fewer came
within 0.02 of the full farm's worst case: the best, ``eta`` 2 from 1 epoch (0.375), missed by
up to 0.083 (0.026 on average) ranked as the farm ranks, by up to 0.200 on accuracy alone.
Closer takes more: ``eta`` 3 from 2 epochs, 0.56 of the adversary-epochs, missed by up to 0.033
(0.021 on accuracy alone). The strongest adversaries' final figures differ by about one
validation clip (1/60), so 0.02 is near what this set resolves.
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
from privar.farm.racing import compute_fraction, schedule, survivors
from privar.farm.spec import FarmSpec
from privar.recipes.common import farm_spec, load_checked
from privar.study import EncoderConfig

CANDIDATES = {
    "identity": EncoderConfig("identity"),
    "downsample8": EncoderConfig("downsample", {"size": 8}),
    "bdq_untrained": EncoderConfig("bdq"),
}
Score = tuple[float, float, float]  # (worst case, per-frame accuracy, -NLL): as the farm ranks


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
        scores.append((max(s["privacy_acc"], s["privacy_acc_clip"]), s["privacy_acc"],
                       -s["privacy_nll"]))  # fmt: skip
    return scores


def replay(curves: dict[str, list[Score]], eta: int, min_epochs: int, by_loss: bool) -> float:
    """The worst case a race by ``eta`` from ``min_epochs`` reports on these curves: ranked as
    the farm ranks (``by_loss``: ties in accuracy go to the lower loss), or on accuracy alone
    (ties to the farm's adversary order)."""
    names = list(curves)
    rungs = schedule(len(names), len(curves[names[0]]), eta, min_epochs)
    alive = names
    for rung, after in zip(rungs, rungs[1:], strict=False):
        scores = [curves[n][rung.until - 1][: 3 if by_loss else 2] for n in alive]
        alive = [alive[i] for i in survivors(scores, after.alive)]
    return max(curves[n][-1][0] for n in alive)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="studies/smoke.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--adversaries", nargs="+",
                    default=["baby2d", "baby_vit", "baby_mlp", "baby2d_wide"])  # fmt: skip
    ap.add_argument("--candidates", nargs="+", default=["identity", "bdq_untrained"],
                    choices=list(CANDIDATES))  # fmt: skip
    ap.add_argument("--cpus", type=int, default=None, help="Ray CPUs (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="write the curves here as JSON")
    args = ap.parse_args()
    configure_console(verbose=False)
    connect(None, num_cpus=args.cpus)
    refs = {}
    for seed in args.seeds:
        study = load_checked(args.study, {"seed": seed, "farm.adversaries": args.adversaries,
                                          "farm.epochs": args.epochs})  # fmt: skip
        data = open_study_data(study.data, seed=seed)
        data.prepare()
        data_ref, spec = ray.put(data), farm_spec(study)
        for c in args.candidates:
            for a in args.adversaries:
                refs[seed, c, a] = curve.remote(data_ref, CANDIDATES[c], spec, a)
    curves = dict(zip(refs, ray.get(list(refs.values())), strict=True))
    cases = [(s, c) for s in args.seeds for c in args.candidates]
    by_case = {k: {a: curves[(*k, a)] for a in args.adversaries} for k in cases}
    print(f"{len(args.adversaries)} adversaries {args.adversaries}, {args.epochs} epochs, "
          f"candidates {args.candidates}, seeds {args.seeds}")  # fmt: skip
    print("\nthe full farm's strongest adversary, by epoch: share of cases where it leads / is "
          "in the top half (validation, the race's ranking)")  # fmt: skip
    half = (len(args.adversaries) + 1) // 2
    for e in range(args.epochs):
        leads = tops = 0
        for k in cases:
            cs = by_case[k]
            best = max(cs, key=lambda a: cs[a][-1])
            ranked = sorted(cs, key=lambda a: cs[a][e], reverse=True)
            leads += ranked[0] == best
            tops += best in ranked[:half]
        print(f"  epoch {e + 1}: {leads / len(cases):.2f} / {tops / len(cases):.2f}")
    print(f"\n{'eta':>4}{'min':>5}{'fraction':>10}  max / mean err: accuracy, loss breaks ties")
    table = []
    for eta in (2, 3, 4):
        for low in range(1, args.epochs):
            rungs = schedule(len(args.adversaries), args.epochs, eta, low)
            if len(rungs) == 1:
                continue
            row = {"eta": eta, "min_epochs": low, "fraction": compute_fraction(rungs)}
            for by_loss in (False, True):
                errs = [max(v[-1][0] for v in by_case[k].values())
                        - replay(by_case[k], eta, low, by_loss) for k in cases]  # fmt: skip
                ranker = "loss" if by_loss else "accuracy"
                row[ranker] = {"max_err": max(errs), "mean_err": statistics.mean(errs)}
            table.append(row)
            print(f"{eta:>4}{low:>5}{row['fraction']:>10.3f}  "
                  f"{row['accuracy']['max_err']:.3f} / {row['accuracy']['mean_err']:.3f}  "
                  f"{row['loss']['max_err']:.3f} / {row['loss']['mean_err']:.3f}")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({
            "settings": vars(args) | {"out": str(args.out)},
            "curves": [{"seed": s, "candidate": c, "adversary": a, "scores": v}
                       for (s, c, a), v in curves.items()],
            "schedules": table,
        }, indent=2))  # fmt: skip
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
