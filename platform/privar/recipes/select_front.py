"""``privar pareto``: the front of a study's newest run, read back from MLflow.

Top to bottom: check the study file, find the newest run of the study in the tracking store, and
hand it to :func:`privar.front.select_front`, which prints the table and writes ``pareto.csv``,
``pareto.png``, the ``hypervolume`` metric, the registry aliases and the camera exports (into
``--out``, or the run's own folder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from privar.errors import UserError
from privar.front import select_front
from privar.recipes.common import clip_shape, echo, load_checked
from privar.tracking import Tracker, resolve_uri
from privar.tracking.runs import FOLDER


def pareto_study(path: str, tracking_uri: str | None = None, out: str | None = None,
                 say: Callable[[str], None] = echo) -> int:  # fmt: skip
    """``privar pareto``: the newest run of the study, its front from MLflow."""
    study = load_checked(path)
    tracker = Tracker(resolve_uri(tracking_uri or study.tracking.uri))
    exp, study_run, folder = _study_run(tracker, study.name, path)
    select_front(tracker, exp, study_run, study.name, Path(out) if out else folder,
                 clip_shape(study), say)  # fmt: skip
    return 0


def _study_run(tracker: Tracker, name: str, path: str) -> tuple[str, str, Path]:
    """(experiment id, newest study run id, its folder) of study ``name``."""
    runs = tracker.study_runs(name)
    if not runs:
        raise UserError(f"{path}: no run of study {name!r} in {tracker.uri}")
    return runs[0].info.experiment_id, runs[0].info.run_id, Path(runs[0].data.tags[FOLDER])
