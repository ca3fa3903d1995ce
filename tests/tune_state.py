"""Reading what Tune saved of an experiment, for tests that check what a stop or a kill left."""

from __future__ import annotations

import glob
import json
from pathlib import Path


def newest(pattern: str) -> Path:
    """The newest of Tune's state files matching ``pattern``, by the time stamp in its name:
    a resumed Tune copies the experiment folder to its storage again, which gives every file
    there the same modification time."""
    return Path(max(glob.glob(pattern)))


def saved_trials(experiment: Path) -> dict[str, dict]:
    """Tune's last saved word on each trial of the experiment folder: trial id -> its runtime
    metadata (``num_failures``, ``last_result``) with its ``status``."""
    state = json.loads(newest(f"{experiment}/experiment_state-*.json").read_text())
    out = {}
    for trial, runtime in state["trial_data"]:
        trial, runtime = json.loads(trial), json.loads(runtime)
        out[trial["trial_id"]] = {**runtime, "status": trial["status"]}
    return out
