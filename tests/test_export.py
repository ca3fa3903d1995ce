"""Exporting encoders to TorchScript: every registered encoder round-trips through a file, and
an export that does not reproduce the eager module is an error naming the encoder. And the
registry side, against a real `mlflow server`: front encoders become MLflow PyTorch models with
an input example, registered with aliases and described, which `mlflow.pytorch.load_model`
gives back as a module that encodes a clip; `select_front` ranks, tags, writes and logs the
front on a hand-made run tree."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from privar.encoders import create_encoder, list_encoders
from privar.export import ExportError, export_encoder

SHAPE = (1, 3, 8, 32, 32)


def _clip(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _load(path: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        return torch.jit.load(path)


CASES = [(name, {}) for name in list_encoders()] + [
    ("bdq", {"preset": "reference"}),
    ("elr", {"resolution": (6, 8), "blur_sigma": 1.0, "noise_std": 0.05}),  # draws noise
]


@pytest.mark.parametrize(("name", "params"), CASES, ids=lambda v: str(v) if v else "default")
def test_every_encoder_exports_and_reloads(name: str, params: dict, tmp_path: Path) -> None:
    enc = create_encoder(name, **params)
    assert enc.training
    example = _clip(*SHAPE)
    other = _clip(*SHAPE, seed=1)  # same shape, other values: catches branches baked in a trace

    info = export_encoder(enc, example, tmp_path / f"{name}.pt", name=name, check_inputs=[other])

    assert info["method"] in ("script", "trace")
    assert info["method"] == "script" or info["script_error"]  # why it had to trace
    assert info["param_count"] == enc.param_count()
    assert 0.0 <= info["max_abs_diff"] <= 1e-5
    assert info["input_shape"] == list(SHAPE)
    assert Path(info["path"]).is_file()
    assert enc.training  # the mode is restored

    # The caller's encoder is not frozen by the export; the exported one is.
    trainable = [p for p in enc.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == enc.param_count()
    loaded = _load(info["path"])
    assert not any(p.requires_grad for p in loaded.parameters())

    # Independently: the file alone reproduces the eager encoder (same RNG draws for the noisy
    # one), called as a user would, with grad enabled.
    with torch.no_grad():
        torch.manual_seed(7)
        want = enc.eval()(other)
    torch.manual_seed(7)
    got = loaded(other)
    assert got.shape == want.shape == (1, 3, enc.out_frames(SHAPE[2]), 32, 32)
    assert torch.allclose(got, want, rtol=0, atol=1e-5)


def test_export_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    enc = create_encoder("elr", noise_std=0.1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    export_encoder(enc, _clip(*SHAPE), tmp_path / "elr.pt")
    assert torch.equal(torch.rand(3), expected)


class FrameDiff(nn.Module):
    """Scriptable: x[:, :, 1:] - x[:, :, :-1], one frame at a time (a loop over T)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = [x[:, :, t] - x[:, :, t - 1] for t in range(1, x.shape[2])]
        return torch.stack(frames, dim=2)


class UnscriptableFrameDiff(FrameDiff):
    """The same with an input check TorchScript rejects (``tuple`` of a shape, as in
    ``Encoder.check_input``): it must be traced, and the trace unrolls the loop for the example's
    T, as the ``events`` encoder's is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5:
            raise ValueError(f"expected (B, C, T, H, W), got {tuple(x.shape)}")
        return super().forward(x)


def test_scriptable_modules_are_scripted_and_keep_their_loops(tmp_path: Path) -> None:
    longer = _clip(1, 3, 12, 32, 32)
    info = export_encoder(FrameDiff(), _clip(*SHAPE), tmp_path / "d.pt", check_inputs=[longer])
    assert info["method"] == "script" and info["script_error"] is None
    assert info["max_abs_diff"] == 0.0
    assert info["param_count"] == 0  # a plain nn.Module: counted from its parameters


def test_a_trace_that_does_not_generalise_is_an_error(tmp_path: Path) -> None:
    enc = UnscriptableFrameDiff()
    # On the example's shape the trace is right.
    info = export_encoder(enc, _clip(*SHAPE), tmp_path / "ok.pt")
    assert info["method"] == "trace" and info["max_abs_diff"] == 0.0
    # Another T: 7 frames out, not 11, and the error names the encoder.
    with pytest.raises(ExportError, match=r"encoder 'framediff'.*shape \(1, 3, 7, 32, 32\)"):
        export_encoder(
            enc,
            _clip(*SHAPE),
            tmp_path / "bad.pt",
            name="framediff",
            check_inputs=[_clip(1, 3, 12, 32, 32)],
        )


class PythonNoise(nn.Module):
    """Adds a Python-random offset: tracing freezes the value drawn at trace time."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x + random.random()


def test_an_export_that_differs_from_eager_is_an_error_naming_the_encoder(
    tmp_path: Path,
) -> None:
    random.seed(0)
    enc = PythonNoise()
    with pytest.raises(ExportError, match=r"encoder 'PythonNoise'.*differs from eager by"):
        export_encoder(enc, _clip(*SHAPE), tmp_path / "noise.pt")
    assert enc.training  # restored on failure too


def test_bad_examples_are_rejected(tmp_path: Path) -> None:
    enc = create_encoder("identity")
    with pytest.raises(ValueError, match=r"example must be a float \(B, C, T, H, W\)"):
        export_encoder(enc, torch.rand(3, 8, 32, 32), tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"example must hold values in \[0, 1\]"):
        export_encoder(enc, 2 * torch.ones(*SHAPE), tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"check_inputs\[0\] must be a float"):
        export_encoder(
            enc, _clip(*SHAPE), tmp_path / "a.pt", check_inputs=[torch.ones(*SHAPE).int()]
        )


# -- MLflow models and the front ----------------------------------------------------------------


def _trained_bdq(seed: int) -> nn.Module:
    """A bdq encoder with weights no fresh one has (and parameters that require grad)."""
    torch.manual_seed(seed)
    enc = create_encoder("bdq", levels=4)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return enc


def test_an_encoder_is_an_mlflow_model_that_encodes_a_clip(mlflow_server: str) -> None:
    import mlflow
    import mlflow.pytorch

    from privar.tracking import Tracker
    from privar.tracking.models import log_torch_model, model_version
    from privar.tracking.runs import MODEL

    tracker = Tracker(mlflow_server)
    exp = tracker.experiment("export-models")
    run = tracker.create_run(exp, "trial", "t1 alpha=1 levels=4")
    enc = _trained_bdq(0)
    example = _clip(*SHAPE).numpy().round(2)
    uri = log_torch_model(tracker, run, enc, example)
    assert uri.startswith("models:/") and tracker.client.get_run(run).data.tags[MODEL] == uri
    assert all(p.requires_grad for p in enc.parameters())  # the caller's encoder is untouched
    assert log_torch_model(tracker, run, enc, example) == uri  # logged once
    version = model_version(tracker, "export-models-encoder", uri, run, "first words")
    assert model_version(tracker, "export-models-encoder", uri, run, "**trial t1**") == version
    tracker.client.set_registered_model_alias("export-models-encoder", "knee", version)
    mv = tracker.client.get_model_version_by_alias("export-models-encoder", "knee")
    assert mv.run_id == run and mv.description == "**trial t1**"

    mlflow.set_tracking_uri(mlflow_server)
    loaded = mlflow.pytorch.load_model("models:/export-models-encoder@knee")
    clip = _clip(*SHAPE, seed=3)
    with torch.no_grad():
        want = enc.eval()(clip)
    got = loaded(clip)  # with grad enabled, as a user calls it
    assert got.shape == want.shape == (1, 3, 7, 32, 32)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_select_front_ranks_tags_registers_and_reports(mlflow_server: str, tmp_path: Path) -> None:
    """A study's run tree made by hand (no training): three farmed trials, one pruned, two
    baselines; the front is t1 and t2, t3 is dominated by t1."""
    import csv

    import mlflow
    import mlflow.pytorch

    from privar.encoders.artifact import ENCODER_FILE, log_encoder, save_encoder
    from privar.front import select_front
    from privar.tracking import Tracker
    from privar.tracking.images import SAMPLES
    from privar.tracking.runs import ALIAS

    tracker = Tracker(mlflow_server)
    exp = tracker.experiment("hand-front")
    study = tracker.create_run(exp, "study", "hand-front")
    tracker.log_metrics(study, {"action_chance": 0.5, "privacy_chance": 0.34})
    picture = np.zeros((8, 8, 3), np.uint8)
    trials = {}
    for i, (a, p) in enumerate([(0.9, 0.6), (0.7, 0.4), (0.6, 0.7)], 1):
        name = f"t{i} alpha={i:.3g} levels=4"
        run = tracker.trial_run(exp, study, f"id{i}", name,
                                {"adversarial.alpha": float(i), "encoder.params.levels": 4,
                                 "train.lr": 0.003}, "bdq",
                                ("adversarial.alpha", "encoder.params.levels"))  # fmt: skip
        folder = tmp_path / name
        folder.mkdir()
        log_encoder(tracker, run, save_encoder(_trained_bdq(i), "bdq", {"levels": 4},
                                               folder / ENCODER_FILE))  # fmt: skip
        tracker.log_image(run, picture + 10 * i, SAMPLES)
        tracker.log_metrics(run, {"action_acc": 0.99, "privacy_acc": 0.1,
                                  "action_acc_fresh": a, "privacy_acc_worst": p})  # fmt: skip
        tracker.finish(run)
        trials[i] = run
    pruned = tracker.trial_run(exp, study, "id4", "t4", {}, "bdq")
    tracker.prune(pruned)
    baselines = {}
    for label, enc, params, a, p in [("identity", "identity", {}, 0.95, 0.9),
                                     ("downsample size=4", "downsample", {"size": 4}, 0.55,
                                      0.65)]:  # fmt: skip
        run = tracker.baseline_run(exp, study, label, enc, params)
        tracker.log_image(run, picture + 100, SAMPLES)
        tracker.log_metrics(run, {"action_acc_fresh": a, "privacy_acc_worst": p})
        tracker.finish(run)
        baselines[label] = run

    said: list[str] = []
    out = tmp_path / "out"
    front = select_front(tracker, exp, study, "hand-front", out, (8, 32, 32), said.append)
    assert [r["run_id"] for r in front] == [trials[1], trials[2]]

    # pareto_rank: the trials by non-dominated sorting, the baselines placed among them.
    def rank(run_id: str) -> float | None:
        return tracker.client.get_run(run_id).data.metrics.get("pareto_rank")

    assert [rank(trials[i]) for i in (1, 2, 3)] == [1, 1, 2]
    assert rank(baselines["identity"]) == 1 and rank(baselines["downsample size=4"]) == 2
    assert rank(pruned) is None

    # Each placed run's page says where it sits, and by what.
    def note(run_id: str) -> str:
        return tracker.client.get_run(run_id).data.tags.get("mlflow.note.content", "")

    assert "on the Pareto front; action_acc_fresh 0.900, privacy_acc_worst 0.600" in note(trials[1])
    assert "in Pareto layer 2 of 2" in note(trials[3])
    assert "it would sit in Pareto layer 2 (they form 2)" in note(baselines["downsample size=4"])
    assert note(pruned) == ""
    # Aliases, on the registry and as tags of the trials (knee: both extremes tie, the lower
    # leak wins).
    assert tracker.client.get_run(trials[1]).data.tags[ALIAS] == "pareto-1"
    assert tracker.client.get_run(trials[2]).data.tags[ALIAS] == "pareto-2,knee"
    assert ALIAS not in tracker.client.get_run(trials[3]).data.tags
    mv = tracker.client.get_model_version_by_alias("hand-front-encoder", "knee")
    assert mv.run_id == trials[2]
    for part in ("t2 alpha=2 levels=4", "id2", trials[2], "pareto-2, knee",
                 "action_acc_fresh 0.7000", "privacy_acc_worst 0.4000", "alpha=2 levels=4",
                 "(1, 3, 8, 32, 32)"):  # fmt: skip
        assert part in mv.description, part
    mlflow.set_tracking_uri(mlflow_server)
    model = mlflow.pytorch.load_model("models:/hand-front-encoder@knee")
    assert model(_clip(1, 3, 8, 32, 32)).shape == (1, 3, 7, 32, 32)
    assert (out / "camera-2.ts").is_file()  # the camera export stays

    # pareto.csv names its columns as the metrics; the study run holds the files and the page.
    with (out / "pareto.csv").open(newline="") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0])[:7] == ["rank", "trial", "run_id", "run_name", "encoder",
                                  "action_acc_fresh", "privacy_acc_worst"]  # fmt: skip
    assert [(r["trial"], r["run_name"]) for r in lines] == [
        ("id1", "t1 alpha=1 levels=4"),
        ("id2", "t2 alpha=2 levels=4"),
    ]
    assert json.loads(lines[0]["params"]) == {"adversarial.alpha": 1.0,
                                              "encoder.params.levels": 4}  # fmt: skip
    arts = {a.path for a in tracker.client.list_artifacts(study)}
    assert {"report.html", "pareto"} <= arts
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 + 2 + 2  # plot, 2 front trials, 2 baselines
    assert "t3 alpha=3" not in page

    # Again, with t1 gone from the study: its alias tag goes, pareto-2 is dropped, and the knee
    # keeps its registered version.
    tracker.client.delete_run(trials[1])
    select_front(tracker, exp, study, "hand-front", out, (8, 32, 32), said.append)
    aliases = tracker.client.get_registered_model("hand-front-encoder").aliases
    assert set(aliases) == {"pareto-1", "knee"}
    assert aliases["knee"] == mv.version
    assert tracker.client.get_run(trials[2]).data.tags[ALIAS] == "pareto-1,knee"
