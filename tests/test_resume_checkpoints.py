"""A resume whose saved Tune state names a checkpoint no longer on storage: Tune deletes a
trial's older checkpoints as it registers new ones but saves its state a second or so later, so
a driver killed in between leaves exactly this (seen in the suite's fault test). Made here for
real, on a real Tune experiment in the shared local Ray, by doing what Tune does in that second:
the named checkpoint goes, a newer one stays."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ray import tune

from privar.search.tuner import refill_named_checkpoints

EPOCHS = 4


def _experiment(marker: Path):
    """A trainable of EPOCHS epochs whose checkpoint holds its epoch (as privar's do), and
    which fails after its second epoch unless ``marker`` exists."""

    def train(config: dict) -> None:
        start = 0
        if (saved := tune.get_checkpoint()) is not None:
            with saved.as_directory() as folder:
                start = json.loads(Path(folder, "state.json").read_text())["epoch"] + 1
        for epoch in range(start, EPOCHS):
            folder = tempfile.mkdtemp()
            Path(folder, "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"epoch": epoch, "start": start},
                        checkpoint=tune.Checkpoint.from_directory(folder))  # fmt: skip
            shutil.rmtree(folder)
            if epoch == 1 and not marker.exists():
                raise RuntimeError("the driver dies here")

    return train


def _restore(path: Path, train) -> tune.Tuner:
    return tune.Tuner.restore(str(path), train, resume_errored=True)


def test_a_resume_goes_on_from_the_newest_checkpoint_when_the_named_one_is_gone(
        tmp_path: Path, ray_local) -> None:  # fmt: skip
    marker = tmp_path / "go on"
    train = _experiment(marker)
    tune.Tuner(train, run_config=tune.RunConfig(
        name="race", storage_path=str(tmp_path / "storage"), verbose=0,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
    )).fit()  # fmt: skip
    experiment = tmp_path / "storage" / "race"
    (trial_dir,) = [p for p in experiment.iterdir() if p.is_dir() and p.name.startswith("train")]
    named = trial_dir / "checkpoint_000001"
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == [
        "checkpoint_000000", named.name]  # fmt: skip
    # Tune's second: epoch 2's checkpoint registered, the one the state names deleted.
    named.rename(trial_dir / "checkpoint_000002")
    marker.touch()

    # Without the refill Tune cannot go on: the fault this guards against is real.
    shutil.copytree(experiment, tmp_path / "as is" / "race")
    (lost,) = _restore(tmp_path / "as is" / "race", train).fit()
    assert "does not exist on storage anymore" in str(lost.error)

    tuner = _restore(experiment, train)
    assert refill_named_checkpoints(tuner) == [str(named)]
    assert refill_named_checkpoints(tuner) == []  # nothing left to refill
    (result,) = tuner.fit()
    assert result.error is None
    # It went on after epoch 1 (the newest checkpoint's), not from scratch.
    assert result.metrics["start"] == 2 and result.metrics["epoch"] == EPOCHS - 1
