"""The farm's settings, as one small frozen value: what to attack with, how long, and what each
job reserves. A recipe fills it from the study; the farm never reads the study."""

from __future__ import annotations

from dataclasses import dataclass

from privar.farm.racing import Rung, schedule
from privar.study import TrainConfig
from privar.train.spec import ModelSpec


@dataclass(frozen=True)
class FarmSpec:
    """Every candidate encoder, frozen, is attacked by the privacy ``adversaries`` (trained
    ``epochs`` on its output), a ``reconstruction`` model (``None``: skip; trained
    ``recon_epochs``) and a fresh ``action`` model (``epochs``), each built from its
    :class:`~privar.train.spec.ModelSpec` (keyword arguments resolved through its registry),
    trained with ``train``'s optimiser and schedule from ``seed``. Each job is a Ray task that
    reserves ``cpus_per_job``, a ``gpus_per_job`` fraction and ``memory_gb_per_job``, and is
    retried ``retries`` times when it crashes. With ``racing`` the adversaries race
    (:meth:`race`): successive halving by ``racing_eta`` from ``racing_min_epochs``."""

    adversaries: tuple[ModelSpec, ...]
    action: ModelSpec
    reconstruction: ModelSpec | None
    epochs: int
    recon_epochs: int
    train: TrainConfig
    seed: int = 0
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    memory_gb_per_job: float = 0.0
    retries: int = 2
    racing: bool = True
    racing_eta: int = 2
    racing_min_epochs: int = 1

    def race(self, num: int) -> tuple[Rung, ...]:
        """The rungs ``num`` adversaries of a candidate train through
        (:func:`privar.farm.racing.schedule`); without racing, one rung of ``epochs``: the
        full farm."""
        if not self.racing:
            return (Rung(self.epochs, num),)
        return schedule(num, self.epochs, self.racing_eta, self.racing_min_epochs)

    def adversary(self, name: str) -> ModelSpec:
        """The adversary called ``name``."""
        return next(a for a in self.adversaries if a.name == name)
