"""The study file's schema: frozen dataclasses, each section holding the values its users need.

Range checks live in each ``__post_init__`` (raising ``ValueError("field: problem")``, which the
loader turns into ``file: section.field: problem``); registry names, parameters and the search
space are checked by :func:`privar.validate.check_study` without building anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from privar.config import brief, from_dict, key_name, load_yaml
from privar.errors import UserError


def _at_least(config: object, low: float, *names: str, above: bool = False) -> None:
    """Raise ``ValueError("name: must be ...")`` for the first field of ``names`` below ``low``
    (or, with ``above``, not above it): one message per field, so the error names its key."""
    for name in names:
        value = getattr(config, name)
        if value < low or (above and value == low):
            bound = f"> {low}" if above else ("at least 1" if low == 1 else f">= {low}")
            raise ValueError(f"{name}: must be {bound}, got {value}")


@dataclass(frozen=True)
class DataConfig:
    """Where the videos are and how clips are cut from them.

    ``root`` is relative to the working directory; ``options`` go to the adapter (for
    ``synthetic``: the :class:`privar.data.synthetic.SynthSpec` fields). ``size`` is (height,
    width) in pixels after decoding; ``cache_budget_gb`` decides between the clip cache and
    decoding every epoch.
    """

    adapter: str = "synthetic"
    root: str = "privar-data/synthetic"
    options: dict[str, Any] = field(default_factory=dict)
    clip_len: int = 8
    stride: int = 1
    segments: int = 0
    size: tuple[int, int] = (32, 32)
    decoder: str = "decord"
    cache_dir: str | None = None  # default: ROOT/.privar-cache; on a cluster, shared storage
    cache_budget_gb: float = 8.0
    probe_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("clip_len", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.segments < 0:
            raise ValueError(f"segments: must be 0 (one clip) or a count, got {self.segments}")
        if min(self.size) < 1:
            raise ValueError(f"size: both sides must be at least 1 pixel, got {self.size}")
        if self.cache_budget_gb < 0:
            raise ValueError(f"cache_budget_gb: must be >= 0, got {self.cache_budget_gb}")
        if self.probe_timeout_s <= 0:
            raise ValueError(f"probe_timeout_s: must be > 0, got {self.probe_timeout_s}")


SCHEMES = ("adversarial", "distill", "attention")


@dataclass(frozen=True)
class EncoderConfig:
    """An encoder from the registry (``privar.encoders``) and its fixed parameters."""

    name: str = "identity"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """A model from a registry (``privar.models``). ``pretrained``: a local state-dict file, or
    ``torchvision`` for torchvision's weights (needs internet or a filled cache)."""

    name: str = "baby3d"
    pretrained: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation shared by every scheme. ``schedule``: ``cosine`` (annealed over the
    epochs), ``step`` (lr x ``step_gamma`` every ``step_every`` epochs) or ``none``; the first
    ``warmup_epochs`` ramp the lr up linearly. ``encoder_lr_scale`` multiplies the lr of the
    encoder's own parameters, where a scheme trains one (BDQ's blur sigma and quantisation
    thresholds, in pixels and levels, move ~lr per Adam step: too slowly for a short run).
    ``compile``: ``torch.compile`` the encoder and models, once per trial process; ``auto`` on a
    GPU only (on a CPU the minutes of compiling outweigh a baby model's gain), or ``true`` /
    ``false``."""

    epochs: int = 2
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    step_every: int = 20
    step_gamma: float = 0.1
    warmup_epochs: int = 0
    encoder_lr_scale: float = 1.0
    compile: Any = "auto"  # "auto", true or false: YAML gives a string or a bool

    def __post_init__(self) -> None:
        if not (self.compile == "auto" or isinstance(self.compile, bool)):
            raise ValueError(f"compile: must be auto, true or false, got {self.compile!r}")
        _at_least(self, 1, "epochs", "batch_size")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer: {self.optimizer!r} is not one of sgd, adam, adamw")
        if self.schedule not in ("cosine", "step", "none"):
            raise ValueError(f"schedule: {self.schedule!r} is not one of cosine, step, none")
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if not self.encoder_lr_scale > 0:
            raise ValueError(f"encoder_lr_scale: must be > 0, got {self.encoder_lr_scale}")
        if not 0 <= self.warmup_epochs < self.epochs + 1:
            raise ValueError(
                f"warmup_epochs: must be between 0 and epochs, got {self.warmup_epochs}"
            )


@dataclass(frozen=True)
class AdversarialConfig:
    """BDQ (Sec. 3.2): minimise CE(action) - ``alpha`` * entropy(privacy); the privacy model is
    re-initialised every ``privacy_reset_every`` epochs (Wu et al.'s restarts; 0 = never) and
    takes ``privacy_steps`` steps (Eq. 2) on each batch for the encoder's one: an adversary near
    chance has a flat softmax, and Eq. 1's entropy then gives the encoder almost no gradient.
    The encoder is held for the first ``encoder_warmup_epochs`` while the models learn on its
    initial output, as Wu et al. ("Towards Privacy-Preserving Visual Recognition via Adversarial
    Training: A Pilot Study", ECCV 2018) initialise the models before alternating: BDQ's models
    start from pre-trained weights, but models trained from scratch give the encoder a gradient
    that is noise at first, and Adam moves BDQ's sigma a fixed step whatever the gradient's size
    (``benchmarks/tradeoff.py`` on the synthetic set: alpha 0's learned sigma ended at 0.30-5.83
    px over three seeds without a warm-up, 0.30-1.03 px with two epochs of it)."""

    alpha: float = 1.0
    privacy_reset_every: int = 0
    privacy_steps: int = 1
    encoder_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ValueError(f"alpha: must be >= 0, got {self.alpha}")
        if self.privacy_reset_every < 0:
            raise ValueError("privacy_reset_every: must be >= 0 (0 = never)")
        if not 1 <= self.privacy_steps <= 100:
            raise ValueError(f"privacy_steps: must be in 1..100, got {self.privacy_steps}")
        if self.encoder_warmup_epochs < 0:
            raise ValueError("encoder_warmup_epochs: must be >= 0")


@dataclass(frozen=True)
class DistillConfig:
    """ELR: CE + ``weight`` x KD(teacher on full resolution -> student on the encoder's output).
    The teacher is trained first for ``teacher_epochs`` (default: train.epochs) unless
    ``teacher_checkpoint`` names a saved one."""

    weight: float = 1.0
    temperature: float = 4.0
    direction: str = "teacher_student"
    scale_t2: bool = True
    teacher_epochs: int | None = None
    teacher_checkpoint: str | None = None

    def __post_init__(self) -> None:
        _at_least(self, 0, "weight")
        _at_least(self, 0, "temperature", above=True)
        if self.direction not in ("teacher_student", "student_teacher"):
            raise ValueError(
                f"direction: {self.direction!r} is not teacher_student or student_teacher"
            )


@dataclass(frozen=True)
class AttentionConfig:
    """STAT: ``w_ce`` CE + ``w_sat`` SAT + ``w_tat`` TAT (Eq. 4), per-block SAT weights and
    per-layer TAT weights, rotated every ``rolling_every`` epochs when ``rolling`` (Sec. 3.3.2);
    ``pretrain_epochs`` of SAT + TAT only on the training clips without labels first (Sec.
    3.3.1). The teacher is trained first unless ``teacher_checkpoint`` names a saved one."""

    w_ce: float = 1 / 3
    w_sat: float = 1 / 3
    w_tat: float = 1 / 3
    sat_weights: tuple[float, float, float, float] = (0.4, 0.3, 0.2, 0.1)
    tat_weights: tuple[float, float] = (0.66, 0.33)
    rolling: bool = True
    rolling_every: int = 10
    p: int = 2
    pretrain_epochs: int = 0
    teacher_epochs: int | None = None
    teacher_checkpoint: str | None = None

    def __post_init__(self) -> None:
        _at_least(self, 0, "w_ce", "w_sat", "w_tat")
        if self.rolling_every < 1:
            raise ValueError(f"rolling_every: must be at least 1, got {self.rolling_every}")


SAMPLERS = ("tpe", "nsga2", "gp", "random")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")


@dataclass(frozen=True)
class Param:
    """One searched hyper-parameter: ``uniform`` / ``loguniform`` floats in [low, high],
    ``int`` in [low, high] (``log`` for a log scale), or a ``choice`` among ``values`` (any YAML
    values, lists included: ``[[12, 16], [24, 32]]`` for a resolution)."""

    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: list[Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in DISTRIBUTIONS:
            raise ValueError(f"type: {self.type!r} is not one of {', '.join(DISTRIBUTIONS)}")
        if self.type == "choice":
            if not self.values:
                raise ValueError("values: a choice needs a non-empty list of values")
            return
        if self.low is None or self.high is None:
            raise ValueError(f"low, high: a {self.type} parameter needs both")
        if not self.low <= self.high:
            raise ValueError(f"low: must be <= high, got {self.low} > {self.high}")
        if (self.type == "loguniform" or self.log) and self.low <= 0:
            raise ValueError(f"low: a log scale needs low > 0, got {self.low}")


@dataclass(frozen=True)
class SearchConfig:
    """Ray Tune + Optuna over ``space`` (dotted study keys, as ``--set`` takes them, to
    :class:`Param`), with two objectives: in-loop ``action_acc`` up, ``privacy_acc`` down.
    ``concurrency`` trials run at once; ``early_stop`` ends hopeless trials with ASHA after
    ``grace_epochs`` (Optuna is told they were pruned, so they never reach the front).
    ``storage``: where Tune keeps the search's state and the trials' checkpoints: a folder
    every node and a resuming driver can read (NFS) or an object-store URI (``s3://...``);
    default: the study run's output folder, which only works on one machine. The default
    sampler, ``gp``, found more of a known front than ``random``, ``tpe`` and ``nsga2`` at 8, 16
    and 32 trials, and about as much as ``random`` on the smoke study's own search, where the
    two share five of the eight trials (``benchmarks/search.py``)."""

    sampler: str = "gp"
    num_trials: int = 8
    concurrency: int = 2
    early_stop: bool = False
    grace_epochs: int = 2
    space: dict[str, Param] = field(default_factory=dict)
    storage: str | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler: {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        _at_least(self, 1, "num_trials", "concurrency", "grace_epochs")


@dataclass(frozen=True)
class FarmConfig:
    """The adversary farm: every candidate encoder, frozen, is attacked afresh by the
    ``adversaries`` (privacy models, trained ``epochs`` on its output, from ``pretrained``
    weights when set), a ``reconstruction`` model (``None``: skip) trained ``recon_epochs``, and a
    fresh ``action_model`` (default: the study's). ``candidates``: farm ``all`` finished trials or
    the in-loop ``pareto`` front. ``baselines``: encoders (``{name, params}``) farm-checked once
    per study. ``enabled: false`` skips the farm. ``racing`` races the adversaries by successive
    halving (:mod:`privar.farm.racing`): all train ``racing_min_epochs``, the best
    ``1 / racing_eta`` of them (by validation privacy accuracy, ties by its cross-entropy) go on
    to ``racing_eta`` times as many epochs, and so on, the last one to ``epochs``; a race can
    miss an adversary that learns late (``benchmarks/racing_curves.py``), and a missed one makes
    the leak look smaller than it is. It is off by default because on the synthetic set it did
    (``benchmarks/farm.py``, seeds 0-2: up to 0.05 below the full farm's worst case at 0.43 of
    its adversary-epochs): ``racing: false`` trains every adversary ``epochs``. The reconstruction
    attack and the fresh action model are never raced."""

    enabled: bool = True
    candidates: str = "all"
    adversaries: tuple[str, ...] = ("baby2d", "baby2d_wide")
    pretrained: str | None = None
    epochs: int = 6
    reconstruction: str | None = "baby_unet3d"
    recon_epochs: int = 6
    action_model: str | None = None
    baselines: tuple[EncoderConfig, ...] = ()
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    memory_gb_per_job: float = 0.0
    retries: int = 2
    racing: bool = False
    racing_eta: int = 2
    racing_min_epochs: int = 1

    def __post_init__(self) -> None:
        if self.racing_eta < 2:
            raise ValueError(f"racing_eta: must be at least 2, got {self.racing_eta}")
        if self.racing_min_epochs < 1:
            raise ValueError(f"racing_min_epochs: must be at least 1, got {self.racing_min_epochs}")
        if self.memory_gb_per_job < 0:
            raise ValueError(f"memory_gb_per_job: must be >= 0, got {self.memory_gb_per_job}")
        if self.candidates not in ("all", "pareto"):
            raise ValueError(f"candidates: {self.candidates!r} is not all or pareto")
        if not self.adversaries:
            raise ValueError("adversaries: name at least one privacy model")
        _at_least(self, 1, "epochs", "recon_epochs")
        _at_least(self, 0, "cpus_per_job", above=True)
        _at_least(self, 0, "gpus_per_job", "retries")


@dataclass(frozen=True)
class ResourcesConfig:
    """What one trial reserves (a placement group): ``cpus``, a ``gpu`` fraction and
    ``memory_gb`` (Ray's ``memory`` resource; 0 asks none) for its training, plus ``data_cpus``
    for the Ray Data tasks it starts, so the data pipeline never starves behind the trials.
    Concurrency is capped by how many such groups the cluster holds or can grow to."""

    cpus: float = 1.0
    gpu: float = 0.0
    data_cpus: float = 0.0
    memory_gb: float = 0.0

    def __post_init__(self) -> None:
        _at_least(self, 0, "cpus", above=True)
        _at_least(self, 0, "gpu", "data_cpus", "memory_gb")


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow: ``uri`` (default: ``sqlite:///mlflow.db`` in the working directory;
    ``--tracking-uri`` overrides) and how many encoded ``sample_frames`` each trial logs."""

    uri: str | None = None
    sample_frames: int = 4

    def __post_init__(self) -> None:
        if self.sample_frames < 0:
            raise ValueError(f"sample_frames: must be >= 0, got {self.sample_frames}")


@dataclass(frozen=True)
class Study:
    """A study file. ``scheme`` picks the training method; only its own section is used.
    ``out_dir`` (relative to the working directory) holds checkpoints, the search's state and
    the Pareto outputs, under ``out_dir/<name>/``."""

    name: str
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0
    scheme: str = "adversarial"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    action_model: ModelConfig = field(default_factory=ModelConfig)
    privacy_model: ModelConfig = field(default_factory=lambda: ModelConfig(name="baby2d"))
    train: TrainConfig = field(default_factory=TrainConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    farm: FarmConfig = field(default_factory=FarmConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    out_dir: str = "privar-out"

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme: {self.scheme!r} is not one of {', '.join(SCHEMES)}")
        if self.scheme == "attention" and self.data.segments < 1:
            raise ValueError("data.segments: the attention scheme (STAT) needs K >= 1 segments")
        warmup = self.adversarial.encoder_warmup_epochs
        if self.scheme == "adversarial" and warmup >= self.train.epochs:
            raise ValueError(f"adversarial.encoder_warmup_epochs: must be below train.epochs "
                             f"({self.train.epochs}), or the encoder never trains")  # fmt: skip
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"name: use letters, digits, '-' and '_', got {brief(self.name)}")
        if not 0 <= self.seed < 2**32:  # what numpy's and Optuna's generators take
            raise ValueError(f"seed: must be between 0 and 2**32 - 1, got {self.seed}")


def load_study(path: str | Path) -> Study:
    """Read and check a study file; every problem is a :class:`UserError` naming the key."""
    return from_dict(Study, load_yaml(path), str(path))


def with_overrides(study: Study, overrides: dict[str, Any], where: str = "--set") -> Study:
    """``study`` with dotted keys replaced (``{"adversarial.alpha": 2.0}``), checked exactly like
    a study file: an unknown key or a bad value is a :class:`UserError` naming it."""
    tree = asdict(study)
    for dotted, value in overrides.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for i, key in enumerate(parents):
            if not isinstance(node.get(key), dict):
                section = key_name(".".join(parents[: i + 1]))
                raise UserError(f"{where}: {section}: not a section of a study")
            node = node[key]
        if leaf not in node and not (parents and parents[-1] in ("params", "options")):
            raise UserError(f"{where}: {key_name(dotted)}: unknown key")
        node[leaf] = value
    return from_dict(Study, tree, where)
