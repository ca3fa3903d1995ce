"""What a study's search needs, as one small frozen value; a recipe fills it from the study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from privar.study import ResourcesConfig, SearchConfig
from privar.train.spec import TrainSpec

MakeTrial = Callable[[dict[str, Any], str], TrainSpec]
"""(a trial's sampled overrides by dotted study key, where: ``trial <id>`` for error messages)
-> the trial's :class:`~privar.train.spec.TrainSpec`. Tune pickles it with every trial: a
``functools.partial`` of a module-level function."""


@dataclass(frozen=True)
class SearchSpec:
    """A search: the study's ``name`` (the Optuna study and the Tune experiment under
    ``search.storage``), its ``search`` section (sampler, trials, concurrency, early stopping,
    space, storage), what each trial reserves (``resources``), a trial's ``epochs`` (progress
    lines, ASHA's horizon), the sampler's ``seed``, how many encoded frames each trial logs as a
    picture (``sample_frames``) and ``make_trial``, which turns a trial's sampled values into
    the training run it trains."""

    name: str
    search: SearchConfig
    resources: ResourcesConfig
    epochs: int
    seed: int
    sample_frames: int
    make_trial: MakeTrial
