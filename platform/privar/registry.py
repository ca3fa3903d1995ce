"""Registries, as in timm: ``@REG.register("name")`` on a factory, ``REG.create(name, **kw)``,
``REG.names()``. One registry per kind (encoders, action models, privacy models, ...), and one
contract test that every registered entry passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from privar.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return wrap

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``, to inspect without building (``privar validate``);
        an unknown name is a :class:`UserError` listing the known ones."""
        if name not in self._factories:
            raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._factories[name]

    def create(self, name: str, **kwargs: Any) -> T:
        """Build entry ``name``; an unknown name is a :class:`UserError` listing the known ones."""
        if name not in self._factories:
            raise UserError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._factories[name](**kwargs)
