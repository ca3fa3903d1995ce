"""The recipes turn a study into the frozen specs the layers below take: every model's keyword
arguments resolved through its registry (STAT's segments and ViT's image size come from the data
section), the scheme's own section picked, a trial's sampled values applied and checked; and the
scheme registry trains any spec with one signature, the same weights for the same seed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from privar import study as schema
from privar.data.dataset import StudyData
from privar.errors import UserError
from privar.recipes.common import farm_spec, label_counts, train_spec
from privar.recipes.run_study import search_spec
from privar.study import (
    AttentionConfig,
    DataConfig,
    FarmConfig,
    ModelConfig,
    Study,
    TrainConfig,
    load_study,
)
from privar.train.common import pick_device
from privar.train.schemes import SCHEMES, build_encoder

STUDIES = Path(__file__).parent.parent / "studies"


def test_every_scheme_of_the_schema_is_registered() -> None:
    assert SCHEMES.names() == sorted(schema.SCHEMES)


def test_train_spec_resolves_the_models_from_the_data_section() -> None:
    study = load_study(STUDIES / "baby_stat.yaml")
    spec = train_spec(study, (3, 4))
    k = {"num_segments": study.data.segments, "frames_per_segment": study.data.clip_len}
    assert spec.scheme == "attention" and isinstance(spec.section, AttentionConfig)
    assert spec.action.kwargs == {**k, **study.action_model.params}
    assert (spec.num_actions, spec.num_privacy) == (3, 4)
    assert spec.encoder == study.encoder and spec.train == study.train


def test_a_trial_applies_its_values_and_a_bad_one_names_the_trial() -> None:
    study = load_study(STUDIES / "smoke.yaml")
    search = pickle.loads(pickle.dumps(search_spec(study, (2, 3))))  # as Tune ships it
    spec = search.make_trial({"adversarial.alpha": 2.5}, "trial t1")
    assert spec.section.alpha == 2.5 and spec.seed == study.seed
    with pytest.raises(UserError, match="trial t1: adversarial.alpha"):
        search.make_trial({"adversarial.alpha": -1.0}, "trial t1")


def test_farm_spec_resolves_each_attacker() -> None:
    study = Study(
        name="f",
        data=DataConfig(size=(32, 32)),
        action_model=ModelConfig("baby3d", params={"width": 4}),
        farm=FarmConfig(adversaries=("baby2d", "vit_b_16"), reconstruction=None,
                        pretrained="torchvision", cpus_per_job=2),
    )  # fmt: skip
    spec = farm_spec(study)
    assert spec.adversary("vit_b_16").kwargs == {"image_size": 32}
    assert spec.adversary("baby2d").kwargs == {}
    assert all(a.pretrained == "torchvision" for a in spec.adversaries)
    # The fresh action model is the study's, trained from scratch with its own defaults.
    assert (spec.action.name, spec.action.kwargs, spec.action.pretrained) == ("baby3d", {}, None)
    assert spec.reconstruction is None and spec.cpus_per_job == 2


def test_a_scheme_trains_a_spec_the_same_for_the_same_seed(
    colour_motion_data: StudyData, tmp_path: Path
) -> None:
    study = Study(name="s", train=TrainConfig(epochs=1, batch_size=4, optimizer="adam", lr=3e-3))
    spec = train_spec(study, label_counts(colour_motion_data))
    assert (spec.num_actions, spec.num_privacy) == (2, 2)

    def train() -> dict[str, float]:
        torch.manual_seed(spec.seed)
        encoder = build_encoder(spec.encoder)
        return SCHEMES.create(spec.scheme, spec=spec, data=colour_motion_data, encoder=encoder,
                              device=pick_device("cpu"))  # fmt: skip

    first = train()
    assert set(first) == {"action_acc", "privacy_acc", "loss"}
    assert train() == first
