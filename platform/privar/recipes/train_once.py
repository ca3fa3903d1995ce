"""``privar train``: the study's scheme once, without search, for debugging.

Top to bottom: check the study file (as every command does), open its data, start or join Ray,
decode the data once into the clip cache, and train the study's
:class:`~privar.train.spec.TrainSpec` with its scheme, checkpointing under
``out_dir/<name>/train`` (a second run resumes from there). One line per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from privar.cluster import connect
from privar.data.pipeline import open_study_data
from privar.recipes.common import echo, label_counts, load_checked, train_spec
from privar.train.common import pick_device
from privar.train.schemes import SCHEMES, build_encoder


def train_once(path: str, address: str | None = None, device: str | None = None,
               say: Callable[[str], None] = echo) -> dict[str, float]:  # fmt: skip
    """Train study ``path``'s scheme once; returns the last epoch's metrics."""
    study = load_checked(path)
    say(f"study {study.name}: scheme {study.scheme}, encoder {study.encoder.name}, action model "
        f"{study.action_model.name}, privacy model {study.privacy_model.name}")  # fmt: skip

    def report(epoch: int, metrics: dict[str, float]) -> None:
        shown = "  ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items()))
        say(f"  epoch {epoch + 1}/{study.train.epochs}  {shown}")

    data = open_study_data(study.data, seed=study.seed)
    connect(address)
    data.prepare()
    spec = train_spec(study, label_counts(data))
    folder = Path(study.out_dir) / study.name / "train"
    encoder = build_encoder(spec.encoder)
    metrics = SCHEMES.create(spec.scheme, spec=spec, data=data, encoder=encoder,
                             device=pick_device(device), checkpoint_dir=folder,
                             report=report)  # fmt: skip
    say("final: " + "  ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items())))
    return metrics
