"""Registries, as in timm: ``@REG.register("name", **config)`` on a factory, ``REG.create(name,
**kw)``, ``REG.names()``. One registry per kind (encoders, action / privacy / reconstruction
models, dataset adapters, decoders, training schemes), and one contract test per registry that
every entry passes.

Every entry carries an :class:`EntryConfig` (timm's ``default_cfg``): what it takes as input,
what its input size must be, whether it has attention maps, where pretrained weights come from,
and which of its arguments the platform derives from the study's data section. That config is
the one place those facts live: the training loops, the farm, ``privar validate`` and the
contract tests read it through :meth:`Registry.arguments` and :meth:`Registry.entry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from privar.errors import UserError

if TYPE_CHECKING:
    from privar.study import DataConfig

T = TypeVar("T")
INPUTS = ("clip", "frames", "none")


@dataclass(frozen=True)
class EntryConfig:
    """What a registry entry needs and offers, known without building it.

    - ``input``: ``clip`` (``(B, C, T, H, W)`` float clips), ``frames`` (``(N, C, H, W)``) or
      ``none`` (an adapter, a decoder, a scheme);
    - ``square_multiple``: frames must be square and a multiple of this many pixels (ViT's
      16-px patches); 0 for any size;
    - ``attention``: the model has ``forward_attention`` (STAT's K-segment models);
    - ``pretrained``: where weights come from besides a local state-dict file (``torchvision``);
    - ``from_data``: the arguments the platform derives from the study's data section (STAT's
      ``num_segments``, ViT's ``image_size``); a study may not set them in ``params``;
    - ``creates_root``: an adapter that makes its dataset when the folder is missing;
    - ``options``: for an entry that passes its ``**options`` on (the synthetic adapter, to
      ``SynthSpec``), what they bind to.
    """

    input: str = "none"
    square_multiple: int = 0
    attention: bool = False
    pretrained: tuple[str, ...] = ()
    from_data: Callable[[DataConfig], dict[str, Any]] | None = None
    creates_root: bool = False
    options: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"input: {self.input!r} is not one of {', '.join(INPUTS)}")

    def derived(self, data: DataConfig | None) -> dict[str, Any]:
        """The arguments derived from ``data`` (none without a data section)."""
        return dict(self.from_data(data)) if self.from_data and data is not None else {}

    def test_input(self, data: DataConfig, batch: int = 2) -> tuple[int, ...]:
        """The input shape for clips of ``data``: ``(batch, 3, T, H, W)`` with T the sampled
        frames (K segments of ``clip_len``), or ``(batch, 3, H, W)`` frames."""
        h, w = data.size
        if self.input == "frames":
            return (batch, 3, h, w)
        return (batch, 3, max(data.segments, 1) * data.clip_len, h, w)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory with its config."""

    name: str
    factory: Callable[..., T]
    cfg: EntryConfig = field(default_factory=EntryConfig)


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, **cfg: Any) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register the factory as ``name`` with :class:`EntryConfig` ``cfg``."""
        config = EntryConfig(**cfg)

        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = Entry(name, factory, config)
            return factory

        return wrap

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Entry[T]:
        """Entry ``name``; an unknown name is a :class:`UserError` listing the known ones."""
        if name not in self._entries:
            raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``, to inspect without building."""
        return self.entry(name).factory

    def arguments(
        self,
        name: str,
        data: DataConfig | None = None,
        params: Mapping[str, Any] | None = None,
        **platform: Any,
    ) -> dict[str, Any]:
        """The keyword arguments entry ``name`` is built with: what it derives from ``data``,
        the study's ``params``, and what the ``platform`` fills in (``num_classes``,
        ``pretrained``...). The one resolver of the loops, the farm and validation."""
        return {**self.entry(name).cfg.derived(data), **(params or {}), **platform}

    def create(self, name: str, **kwargs: Any) -> T:
        """Build entry ``name``; an unknown name is a :class:`UserError` listing the known ones."""
        return self.entry(name).factory(**kwargs)
