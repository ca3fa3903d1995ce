"""The three papers' methods on the synthetic set, CPU, side by side in one run.

For each setting: the in-loop action accuracy and privacy accuracy on the validation split
(privacy: a 2-D model trained on the encoder's output alongside, per frame; for BDQ it is the
adversary the encoder trained against, which is optimistic: the farm attacks afresh later).

    python benchmarks/methods.py [--epochs N] [--seeds 0 1 2] [--only bdq|elr|stat]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from privar.cluster import connect
from privar.data.manifest import label_index
from privar.data.pipeline import open_study_data
from privar.recipes.common import label_counts, train_spec
from privar.study import load_study, with_overrides
from privar.train.common import pick_device
from privar.train.schemes import SCHEMES, build_encoder

ROWS = {
    "bdq": [
        ("identity encoder, no adversary", "studies/smoke.yaml",
         {"encoder.name": "identity", "adversarial.alpha": 0.0}),
        ("BDQ, alpha 0 (no adversary)", "studies/smoke.yaml", {"adversarial.alpha": 0.0}),
        ("BDQ, alpha 1", "studies/smoke.yaml", {"adversarial.alpha": 1.0}),
        ("BDQ, alpha 4", "studies/smoke.yaml", {"adversarial.alpha": 4.0}),
    ],
    "elr": [
        ("ELR 12x16, CE only", "studies/baby_elr.yaml", {"distill.weight": 0.0}),
        ("ELR 12x16, CE + KD", "studies/baby_elr.yaml", {}),
    ],
    "stat": [("STAT 12x16, SAT + TAT + CE", "studies/baby_stat.yaml", {})],
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", choices=sorted(ROWS), nargs="+", default=sorted(ROWS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    connect()
    datasets: dict = {}
    results: list[tuple[str, list[dict[str, float]], dict[str, float]]] = []
    for group in args.only:
        for label, path, overrides in ROWS[group]:
            runs = []
            for seed in args.seeds:
                o = {**overrides, "seed": seed}
                if args.epochs:
                    o["train.epochs"] = args.epochs
                study = with_overrides(load_study(path), o)
                key = (repr(study.data), seed)
                if key not in datasets:  # decode once per data section, not once per run
                    datasets[key] = open_study_data(study.data, seed=seed)
                    datasets[key].prepare()
                data = datasets[key]
                torch.manual_seed(seed)
                t = time.perf_counter()
                spec = train_spec(study, label_counts(data))
                metrics = SCHEMES.create(spec.scheme, spec=spec, data=data,
                                         encoder=build_encoder(spec.encoder),
                                         device=pick_device())  # fmt: skip
                runs.append({**metrics, "seconds": time.perf_counter() - t})
            chance = {"action": 1 / len(label_index(data.records, "action")),
                      "privacy": 1 / len(label_index(data.records, "privacy"))}  # fmt: skip
            results.append((label, runs, chance))
            print(f"done: {label}", flush=True)

    print(f"\n{len(args.seeds)} seed(s); mean (min-max) over seeds; validation split")
    print(f"{'setting':<34}{'action_acc':>18}{'privacy_acc':>18}{'teacher':>9}{'s/run':>7}")
    for label, runs, _ in results:
        print(f"{label:<34}{_cell(runs, 'action_acc'):>18}{_cell(runs, 'privacy_acc'):>18}"
              f"{_cell(runs, 'teacher_action_acc', short=True):>9}"
              f"{statistics.mean(r['seconds'] for r in runs):>7.0f}")  # fmt: skip
    _, _, chance = results[0]
    print(f"chance: action {chance['action']:.3f}, privacy {chance['privacy']:.3f}")


def _cell(runs: list[dict[str, float]], key: str, short: bool = False) -> str:
    values = [r[key] for r in runs if key in r]
    if not values:
        return "-"
    mean = statistics.mean(values)
    if short or len(values) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
