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
    assert set(first) == {"action_acc", "privacy_acc", "loss", "data_wait_frac"}
    again = train()
    del first["data_wait_frac"], again["data_wait_frac"]  # a timing, not a result of training
    assert again == first


# -- what a study leaves in MLflow ---------------------------------------------------------------


def test_a_trial_logs_every_setting_that_shapes_it() -> None:
    from privar.data.sampling import ClipSpec
    from privar.search.trial import trial_params

    study = load_study(STUDIES / "smoke.yaml")
    sampled = {"adversarial.alpha": 1.109375, "encoder.params.levels": 4}
    spec = search_spec(study, (2, 3)).make_trial(sampled, "trial t1")
    data = StudyData([], ClipSpec(clip_len=8, stride=1, size=(32, 32)))
    params = trial_params(spec, data, sampled)
    assert params["adversarial.alpha"] == 1.109375 and params["encoder.params.levels"] == 4
    expected = {
        "scheme": "adversarial", "seed": study.seed, "encoder.name": "bdq",
        "train.lr": study.train.lr, "train.epochs": study.train.epochs,
        "train.batch_size": study.train.batch_size, "train.optimizer": "adam",
        "action_model.name": "baby3d", "privacy_model.name": "baby2d",
        "data.clip_len": 8, "data.size": (32, 32), "data.stride": 1,
        "num_actions": 2, "num_privacy": 3,
    }  # fmt: skip
    assert {k: params[k] for k in expected} == expected
    # The scheme's whole section and the whole optimisation, not only what was sampled.
    assert {"adversarial.privacy_reset_every", "train.weight_decay", "train.schedule"} <= set(
        params
    )


def test_trial_number_from_tunes_trial_folder() -> None:
    from privar.search.trial import trial_number

    folder = "/x/tune/train_trial_3f2a1b0c_3_adversarial_alpha=1.1093,levels=4_2026-01-01_10-00-00"
    assert trial_number(folder, "3f2a1b0c") == 3
    assert trial_number("/x/tune/train_trial_3f2a1b0c_12", "3f2a1b0c") == 12
    assert trial_number("/x/tune/train_trial_3f2a1b0c", "3f2a1b0c") is None
    assert trial_number("/x/tune/train_trial_other_3_a=1", "3f2a1b0c") is None


def test_study_description_says_what_is_searched_on_what_data() -> None:
    from privar.recipes.run_study import study_description

    text = study_description(load_study(STUDIES / "smoke.yaml"))
    parts = ("**smoke**", "scheme `adversarial`", "encoder `bdq`", "action model `baby3d`",
             "`adversarial.alpha` in [0.1, 32] (log)", "`encoder.params.levels` in {2, 4, 8, 16}",
             "`gp`, 8 trials", "`synthetic` at `privar-data/synthetic`",
             "8 frames, stride 1 at 32x32", "downsample size=8", "privacy_acc_worst")  # fmt: skip
    for part in parts:
        assert part in text, part


def test_baselines_are_named_by_encoder_and_parameters_all_distinct(tmp_path: Path) -> None:
    from privar.recipes.run_study import candidates
    from privar.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    study = load_study(STUDIES / "smoke.yaml")
    twice = (*study.farm.baselines, study.farm.baselines[0])  # identity twice
    study = Study(**{**study.__dict__, "farm": FarmConfig(baselines=twice)})
    exp = tracker.experiment(study.name)
    parent = tracker.create_run(exp, "study", study.name)
    out = candidates(tracker, exp, parent, study)
    names = [tracker.client.get_run(c.run_id).info.run_name for c in out]
    assert names == ["identity", "downsample size=8", "identity (2)"]
    # Found again by their labels: the same runs, none created twice.
    assert [c.run_id for c in candidates(tracker, exp, parent, study)] == [c.run_id for c in out]


def test_every_run_shows_the_same_clips_captioned_and_visible(
    colour_motion_data: StudyData, tmp_path: Path
) -> None:
    import numpy as np
    from PIL import Image

    from privar.encoders import create_encoder
    from privar.search.trial import log_samples, sample_clips
    from privar.tracking import Tracker
    from privar.tracking.images import SAMPLES

    first = sample_clips(colour_motion_data, 2)
    assert first.shape == (2, 3, 4, 32, 32) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, sample_clips(colour_motion_data, 2))  # the same clips, always
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = tracker.experiment("samples")
    pictures = {}
    for name in ("identity", "bdq"):
        run = tracker.create_run(exp, "trial", name)
        assert log_samples(tracker, run, colour_motion_data, create_encoder(name), 2,
                           f"encoder: {name}")  # fmt: skip
        path = tracker.download(run, SAMPLES, tmp_path / name)
        pictures[name] = np.asarray(Image.open(path).convert("RGB")).astype(float)
    raw_h = 32 * 4  # the frames, enlarged 4 times, under a caption band
    ident, bdq = pictures["identity"], pictures["bdq"]
    assert ident.shape[1] == bdq.shape[1] == 2 * 32 * 4
    # Rows: a caption, the raw frames, a caption (BDQ's says more), the encoded frames. The raw
    # rows are the same pictures in both.
    cap = 14 + 4  # one caption line
    assert np.array_equal(ident[cap : cap + raw_h], bdq[cap : cap + raw_h])
    # Captions are drawn (dark text on white).
    assert (ident[:cap] < 100).any() and (ident[:cap] > 250).mean() > 0.5
    # The identity's encoded row is its raw row; BDQ's signed differences are stretched around
    # grey so they are visible, not a few grey levels apart.
    assert np.array_equal(ident[-raw_h:], ident[cap : cap + raw_h])
    assert bdq[-raw_h:].std() > 30
