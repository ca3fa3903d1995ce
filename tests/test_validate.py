"""``privar validate``: every shipped study checks out without building a model or touching
data, every kind of mistake is one line naming the file and key path, exit code 2, and every
mistake of a file is reported, one per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from privar.cli import main
from privar.errors import UserError
from privar.validate import StudyProblems, validate_file

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.yaml"))


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Fail the test if anything builds a model or encoder, scans a dataset or opens a decoder;
    run in an empty folder, so no study's (relative) data root exists."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate built or read something")

    monkeypatch.setattr(torch.nn.Module, "__init__", boom)
    monkeypatch.setattr("privar.registry.Registry.create", boom)
    monkeypatch.setattr("privar.data.adapters.scan_dataset", boom)
    monkeypatch.setattr("privar.data.decoder.create_decoder", boom)
    monkeypatch.setattr("privar.data.decoder.DecordDecoder.read", boom)
    monkeypatch.setattr("privar.data.decoder.PyAVDecoder.read", boom)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    assert not any(work.iterdir()), "validate wrote files"


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_every_shipped_study_validates(path: Path, nothing_built: Path, capsys) -> None:
    study = validate_file(path)
    assert study.name == path.stem
    assert not Path(study.data.root).exists()  # relative to the empty folder: never needed
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.strip()
    n = len(study.search.space)
    assert out == f"ok: {path} ({study.name}, scheme {study.scheme}, {n} searched parameters)"


def test_every_shipped_study_searches_and_farms() -> None:
    for path in STUDIES:
        study = validate_file(path)
        assert study.search.space, f"{path.name}: no search space"
        assert study.farm.adversaries, f"{path.name}: no farm adversaries"


def test_several_files_one_line_each(capsys) -> None:
    assert main(["validate", *map(str, STUDIES)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines] == [str(p) for p in STUDIES]


BASE = "name: s\n"
BDQ = "name: s\nencoder: {name: bdq}\n"


def run_bad(tmp_path: Path, capsys, text: str, *extra: str) -> str:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    assert main(["validate", str(p), *extra]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        # the schema: unknown key, wrong type, out of range
        (BASE + "data: {clip_lenn: 4}\n", "s.yaml: data.clip_lenn: unknown key"),
        (BASE + "train: {epochs: many}\n", "s.yaml: train.epochs: expected int, got str"),
        (BASE + "adversarial: {alpha: -1}\n", "s.yaml: adversarial.alpha: must be >= 0"),
        (BASE + "farm: {epochs: 0}\n", "s.yaml: farm.epochs: must be at least 1, got 0"),
        (BASE + "search: {sampler: grid}\n", "s.yaml: search.sampler: 'grid' is not one of"),
        # unknown names, one per registry and place
        (BASE + "encoder: {name: bqd}\n", "s.yaml: encoder.name: unknown encoder 'bqd'; known:"),
        (
            BASE + "action_model: {name: i3d}\n",
            "s.yaml: action_model.name: unknown action model 'i3d'; known:",
        ),
        (
            BASE + "privacy_model: {name: resnet9}\n",
            "s.yaml: privacy_model.name: unknown privacy model 'resnet9'; known:",
        ),
        (
            BASE + "farm: {adversaries: [baby2d, resnet9]}\n",
            "s.yaml: farm.adversaries[1]: unknown privacy model 'resnet9'; known:",
        ),
        (
            BASE + "farm: {reconstruction: unet2d}\n",
            "s.yaml: farm.reconstruction: unknown reconstruction model 'unet2d'; known:",
        ),
        (
            BASE + "farm: {action_model: c3d}\n",
            "s.yaml: farm.action_model: unknown action model 'c3d'; known:",
        ),
        (
            BASE + "farm: {baselines: [{name: identity}, {name: dowsample}]}\n",
            "s.yaml: farm.baselines[1].name: unknown encoder 'dowsample'; known:",
        ),
        (
            BASE + "data: {adapter: kinetics}\n",
            "s.yaml: data.adapter: unknown adapter 'kinetics'; known:",
        ),
        (
            BASE + "data: {decoder: ffmpeg}\n",
            "s.yaml: data.decoder: unknown decoder 'ffmpeg'; known: decord, pyav",
        ),
        # parameters the factories do not take, or of the wrong type
        (
            BDQ.replace("bdq}", "bdq, params: {levls: 8}}"),
            "s.yaml: encoder.params.levls: encoder 'bdq' has no parameter 'levls'; it takes:",
        ),
        (
            BDQ.replace("bdq}", "bdq, params: {levels: 8.5}}"),
            "s.yaml: encoder.params.levels: encoder 'bdq': expected int, got 8.5",
        ),
        (
            BASE + "encoder: {name: elr, params: {resolution: 12}}\n",
            "s.yaml: encoder.params.resolution: encoder 'elr': expected Sequence[int], got 12",
        ),
        (
            BASE + "farm: {baselines: [{name: downsample, params: {side: 8}}]}\n",
            "s.yaml: farm.baselines[0].params.side: encoder 'downsample' has no parameter 'side'",
        ),
        (
            BASE + "action_model: {name: i3d_r50, params: {widht: 2}}\n",
            "s.yaml: action_model.params.widht: action model 'i3d_r50' has no parameter 'widht'",
        ),
        (
            BASE + "privacy_model: {name: baby2d, params: {num_classes: 3}}\n",
            "s.yaml: privacy_model.params.num_classes: privacy model 'baby2d': num_classes is set",
        ),
        (
            BASE + "data: {options: {num_actor: 3}}\n",
            "s.yaml: data.options.num_actor: adapter 'synthetic' has no option 'num_actor'",
        ),
        (
            BASE + "data: {adapter: ucf101, options: {split: 1}}\n",
            "s.yaml: data.options.split: adapter 'ucf101' has no option 'split'; it takes: fold",
        ),
        # cross-field checks
        (
            BASE + "privacy_model: {name: baby2d, pretrained: torchvision}\n",
            "s.yaml: privacy_model.pretrained: 'baby2d' has no torchvision weights",
        ),
        (
            BASE + "farm: {pretrained: torchvision, adversaries: [resnet18, baby2d]}\n",
            "s.yaml: farm.adversaries[1]: 'baby2d' has no torchvision weights",
        ),
        (
            BASE + "scheme: attention\ndata: {segments: 4}\naction_model: {name: baby3d}\n",
            "s.yaml: action_model.name: the attention scheme (STAT) needs a K-segment model",
        ),
        (
            BASE + "scheme: attention\ndata: {segments: 4}\n"
            "action_model: {name: baby_stat, params: {num_segments: 8}}\n",
            "s.yaml: action_model.params.num_segments: action model 'baby_stat': num_segments is "
            "set from data.segments",
        ),
        (
            BASE + "scheme: attention\ndata: {segments: 4}\naction_model: {name: baby_stat}\n"
            "farm: {action_model: baby3d}\n",
            "s.yaml: farm.action_model: the attention scheme's clips are K segments",
        ),
        (
            BASE + "data: {size: [24, 24]}\nprivacy_model: {name: vit_b_16}\n",
            "s.yaml: privacy_model.name: vit_b_16 takes square frames, a multiple of 16 px, but "
            "data.size is [24, 24]",
        ),
        # keys the platform derives from the data section, refused with where they come from
        (
            BASE + "privacy_model: {name: vit_b_16, params: {image_size: 32}}\n",
            "s.yaml: privacy_model.params.image_size: privacy model 'vit_b_16': image_size is set "
            "from data.size, not here",
        ),
        (
            BASE + "action_model: {name: baby_stat, params: {frames_per_segment: 2}}\n"
            "data: {segments: 2}\n",
            "s.yaml: action_model.params.frames_per_segment: action model 'baby_stat': "
            "frames_per_segment is set from data.clip_len, not here",
        ),
        (
            BASE + "action_model: {name: baby_stat}\n",
            "s.yaml: action_model.name: 'baby_stat' is a K-segment model: it needs "
            "data.segments >= 1",
        ),
        (
            BASE + "data: {options: {root: elsewhere}}\n",
            "s.yaml: data.options.root: adapter 'synthetic': root is set from data.root, not here",
        ),
        (
            BASE + "data: {size: [24, 32]}\nfarm: {adversaries: [vit_b_16]}\n",
            "s.yaml: farm.adversaries[0]: vit_b_16 takes square frames",
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tmp_path: Path, capsys, text: str,
                                              needle: str) -> None:  # fmt: skip
    line = run_bad(tmp_path, capsys, text)
    assert line.startswith("privar: error: ")
    assert needle in line, line


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        # keys that are not study keys, or not searchable
        (
            "adversarial.alfa: {type: uniform, low: 0, high: 1}",
            "search.space.adversarial.alfa: not a study key (adversarial has no key 'alfa'",
        ),
        (
            "adversarial.alpha.x: {type: choice, values: [1]}",
            "search.space.adversarial.alpha.x: not a study key (adversarial.alpha is not a section",
        ),
        (
            "farm.epochs: {type: int, low: 1, high: 4}",
            "search.space.farm.epochs: farm is how the study runs",
        ),
        (
            "encoder.params.sigmaa: {type: uniform, low: 1, high: 2}",
            "search.space.encoder.params.sigmaa: low 1.0 makes an invalid study: encoder 'bdq' has "
            "no parameter 'sigmaa'",
        ),
        # values outside the schema's ranges or of the wrong type
        (
            "adversarial.alpha: {type: uniform, low: -1, high: 2}",
            "search.space.adversarial.alpha: low -1.0 makes an invalid study: must be >= 0",
        ),
        (
            "train.epochs: {type: uniform, low: 1, high: 8}",
            "search.space.train.epochs: low 1.0 makes an invalid study: "
            "expected int, got float 1.0 (search it with type: int)",
        ),
        (
            "train.optimizer: {type: choice, values: [sgd, lamb]}",
            "search.space.train.optimizer: values[1] 'lamb' makes an invalid study: "
            "'lamb' is not one of sgd, adam, adamw",
        ),
        (
            "encoder.params.levels: {type: choice, values: [4, 8.5]}",
            "search.space.encoder.params.levels: values[1] 8.5 makes an invalid study: "
            "encoder 'bdq': expected int, got 8.5",
        ),
        (
            "encoder.params.levels: {type: int, low: 4.5, high: 16}",
            "search.space.encoder.params.levels: an int parameter needs whole low and high",
        ),
        (
            "privacy_model.name: {type: choice, values: [baby2d, resnet9]}",
            "search.space.privacy_model.name: values[1] 'resnet9' makes an invalid study: unknown "
            "privacy model 'resnet9'",
        ),
        # the Param schema itself
        (
            "adversarial.alpha: {type: loguniform, low: 0, high: 2}",
            "search.space.adversarial.alpha.low: a log scale needs low > 0",
        ),
        (
            "adversarial.alpha: {type: normal, low: 0, high: 2}",
            "search.space.adversarial.alpha.type: 'normal' is not one of",
        ),
    ],
)
def test_space_mistakes_name_the_searched_key(tmp_path: Path, capsys, space: str,
                                              needle: str) -> None:  # fmt: skip
    line = run_bad(tmp_path, capsys, BDQ + f"search:\n  space:\n    {space}\n")
    assert f"s.yaml: {needle}" in line, line


def test_space_values_are_checked_against_the_study_they_land_in(tmp_path: Path, capsys) -> None:
    # 32 px frames: fine for the study, but one choice gives vit_b_16 frames it cannot take.
    text = (
        BASE
        + "data: {size: [32, 32]}\nprivacy_model: {name: vit_b_16}\n"
        + "search:\n  space:\n    data.size: {type: choice, values: [[32, 32], [24, 32]]}\n"
    )
    line = run_bad(tmp_path, capsys, text)
    assert "s.yaml: search.space.data.size: values[1] [24, 32] makes an invalid study" in line
    assert "privacy_model.name: vit_b_16 takes square frames" in line


def test_set_overrides_are_validated_too(capsys) -> None:
    smoke = str(Path(__file__).parent.parent / "studies" / "smoke.yaml")
    assert main(["validate", smoke, "--set", "adversarial.alpha=3", "--set",
                 "encoder.params.levels=8"]) == 0  # fmt: skip
    assert "ok: " in capsys.readouterr().out
    for flag, needle in [
        ("adversarial.alpha=-1", "--set: adversarial.alpha: must be >= 0"),
        ("adversarial.alfa=1", "--set: adversarial.alfa: unknown key"),
        ("train.epochs=many", "--set: train.epochs: expected int, got str"),
        (
            "encoder.params.levls=8",
            "smoke.yaml (with --set): encoder.params.levls: encoder 'bdq' has no parameter",
        ),
        ("privacy_model.name=resnet9", "(with --set): privacy_model.name: unknown privacy model"),
        ("search.num_trials=0", "--set: search.num_trials: must be at least 1, got 0"),
        # the space is checked against the overridden study: identity takes no levels
        (
            "encoder.name=identity",
            "smoke.yaml (with --set): search.space.encoder.params.levels: values[0] 2 makes an "
            "invalid study: encoder 'identity' has no parameter 'levels'",
        ),
        ("bogus", "--set 'bogus': expected key=value"),
    ]:
        assert main(["validate", smoke, "--set", flag]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (flag, err)


def test_a_missing_file_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such study file" in capsys.readouterr().err


def test_every_problem_of_a_file_is_reported(tmp_path: Path, capsys) -> None:
    text = (
        BDQ.replace("bdq}", "bdq, params: {levls: 8, sigma: high}}")
        + "data: {decoder: ffmpeg}\n"
        + "privacy_model: {name: resnet9}\n"
        + "farm: {adversaries: [baby2d, vit_b_16], action_model: c3d}\n"
        + "search:\n  space:\n    adversarial.alfa: {type: uniform, low: 0, high: 1}\n"
    )
    p = tmp_path / "s.yaml"
    p.write_text(text)
    assert main(["validate", str(p), str(p)]) == 2  # every file, not only the first
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    expected = [
        "data.decoder: unknown decoder 'ffmpeg'",
        "encoder.params.levls: encoder 'bdq' has no parameter 'levls'",
        "encoder.params.sigma: encoder 'bdq': expected float, got 'high'",
        "privacy_model.name: unknown privacy model 'resnet9'",
        "farm.action_model: unknown action model 'c3d'",
        "search.space.adversarial.alfa: not a study key",
    ]
    assert len(lines) == 2 * len(expected), captured.err
    for line, needle in zip(lines, expected * 2, strict=True):
        assert line.startswith(f"privar: error: {p}: {needle}"), (line, needle)
    assert "Traceback" not in captured.err and not captured.out

    # `privar run` (through check_study) stops in one line, counting the others.
    with pytest.raises(StudyProblems) as e:
        validate_file(p)
    assert isinstance(e.value, UserError) and len(e.value.lines) == len(expected)
    assert str(e.value) == f"{e.value.lines[0]} (and {len(expected) - 1} more: run privar validate)"
    assert "\n" not in str(e.value)


def test_attention_needs_a_model_with_attention_maps(tmp_path: Path, capsys) -> None:
    line = run_bad(tmp_path, capsys, BASE + "scheme: attention\ndata: {segments: 4}\n")
    assert line.endswith("those that do: baby_stat, stat_r2plus1d_18, stat_resnet34"), line
